"""Batch input and output files on the resource: upload, wait until processed, download.

The calls of wire-samples.md §6, through the shared data-plane client (auth, retries, error
mapping). A download streams to a temporary file next to the target and is renamed into place
only when complete, so a failed download never leaves a partial file behind.
"""

from __future__ import annotations

import io
import logging
import os
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, Final

import attrs
import requests

from .errors import ConfigurationError, ErrorDetail, TransportError
from .http import RetryMode, data_plane, read_json, response_request_id
from .ids import FILE_ID
from .platform import PlatformConfig

log = logging.getLogger(__name__)

CHUNK_BYTES: Final = 1024 * 1024
#: File states Azure reports while it is still processing an upload.
PROCESSING: Final = frozenset({"uploaded", "pending", "running"})


@attrs.frozen
class FileInfo:
    """The fields of an Azure file object the commands show (wire-samples.md §6)."""

    id: str
    filename: str | None
    purpose: str | None
    status: str | None
    bytes: int | None
    status_details: str | None
    created_at: datetime | None

    @classmethod
    def from_json(cls, payload: Mapping[str, Any]) -> FileInfo:
        size = payload.get("bytes")
        created = payload.get("created_at")
        return cls(
            id=str(payload.get("id") or ""),
            filename=_text(payload.get("filename")),
            purpose=_text(payload.get("purpose")),
            status=_text(payload.get("status")),
            bytes=size if isinstance(size, int) and not isinstance(size, bool) else None,
            status_details=_text(payload.get("status_details")),
            created_at=datetime.fromtimestamp(created, UTC) if isinstance(created, int) and created > 0 else None,
        )

    @property
    def processing(self) -> bool:
        return self.status in PROCESSING


def check_file_id(file_id: str) -> str:
    """The id, checked before it goes into a URL path (spec §6)."""
    if not FILE_ID.fullmatch(file_id):
        raise ConfigurationError(
            f"File id {file_id[:80]!r} is not an Azure file id: 'file-' followed by 1-128 letters, digits, "
            "'-' or '_'. Use the id that the upload (or the batch's output_file_id) gave."
        )
    return file_id


class MultipartStream(io.RawIOBase):
    """``multipart/form-data`` with a ``purpose`` field and a ``file`` part, read from disk in chunks.

    requests would build the whole body in memory (up to Azure's 200 MB input limit); this
    stream has a known length and can be rewound, so a retried attempt resends every byte.
    """

    def __init__(self, handle: BinaryIO, filename: str, purpose: str) -> None:
        super().__init__()
        boundary = uuid.uuid4().hex
        self.content_type = f"multipart/form-data; boundary={boundary}"
        safe_name = filename.replace('"', "_").replace("\r", "_").replace("\n", "_")
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\n{purpose}\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{safe_name}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        tail = f"\r\n--{boundary}--\r\n".encode()
        self.file_size = os.fstat(handle.fileno()).st_size
        self._parts: list[tuple[int, BinaryIO]] = [
            (len(head), io.BytesIO(head)),
            (self.file_size, handle),
            (len(tail), io.BytesIO(tail)),
        ]
        self._length = len(head) + self.file_size + len(tail)
        self._origin = handle.tell()
        self._position = 0

    def __len__(self) -> int:
        return self._length

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence != io.SEEK_SET or offset != 0:
            raise io.UnsupportedOperation("a multipart upload only rewinds to its start")
        self._parts[0][1].seek(0)
        self._parts[1][1].seek(self._origin)
        self._parts[2][1].seek(0)
        self._position = 0
        return 0

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer)
        offset = self._position
        for size, part in self._parts:
            if offset < size:
                count = part.readinto(view[: min(len(view), size - offset)])  # type: ignore[attr-defined]
                self._position += count
                return int(count)
            offset -= size
        return 0


class FilesApi:
    """The files calls of one platform's data plane."""

    def __init__(self, config: PlatformConfig) -> None:
        self.config = config
        self.client = data_plane(config)
        self.surface = config.surface
        self.params = config.surface.params

    def upload(self, path: Path, purpose: str = "batch") -> FileInfo:
        """POST the file as ``multipart/form-data`` (fields ``purpose`` and ``file``), streamed."""
        try:
            handle = path.open("rb")
        except OSError as exc:
            raise ConfigurationError(f"File {path} cannot be read ({exc.strerror}). Check the path.") from None
        with handle, MultipartStream(handle, path.name, purpose) as body:
            response = self.client.send(
                "POST",
                self.surface.path("files"),
                params=self.params,
                body=body,
                headers={"Content-Type": body.content_type},
                mode=RetryMode.POST,
            )
            size = body.file_size
        info = FileInfo.from_json(read_json(response, f"Uploading {path.name}"))
        if not FILE_ID.fullmatch(info.id):
            raise TransportError(
                ErrorDetail(
                    response.status_code,
                    "UnexpectedResponse",
                    f"the upload answer carries no usable file id ({info.id[:80]!r})",
                    response_request_id(response),
                )
            )
        log.info("Uploaded %s (%d bytes) as %s, status %s", path.name, size, info.id, info.status)
        return info

    def get(self, file_id: str) -> FileInfo:
        check_file_id(file_id)
        response = self.client.send("GET", self.surface.path(f"files/{file_id}"), params=self.params, mode=RetryMode.READ)
        return FileInfo.from_json(read_json(response, f"Reading file {file_id}"))

    def wait_until_processed(
        self,
        file_id: str,
        *,
        interval: float,
        pause: Callable[[float], object] = time.sleep,
        on_status: Callable[[FileInfo], None] | None = None,
    ) -> FileInfo:
        """Poll until Azure has finished with the upload (``processed``, ``error`` or anything else)."""
        while True:
            info = self.get(file_id)
            if on_status is not None:
                on_status(info)
            if not info.processing:
                return info
            pause(interval)

    def download(self, file_id: str, destination: Path) -> tuple[Path, int]:
        """Stream the file's content to ``destination`` (a file, or a directory to put FILE_ID.jsonl in).

        Returns the path written and its size. The file is created owner-readable only: batch
        output holds whatever the prompts and answers held.
        """
        check_file_id(file_id)
        target = destination / f"{file_id}.jsonl" if destination.is_dir() else destination
        if not target.parent.is_dir():
            raise ConfigurationError(
                f"Cannot write {target}: the directory {target.parent} does not exist. Create it or choose another --out."
            )
        response = self.client.send(
            "GET", self.surface.path(f"files/{file_id}/content"), params=self.params, mode=RetryMode.READ, stream=True
        )
        request_id = response_request_id(response)
        # With a content coding, Content-Length counts the encoded bytes, not the ones written.
        length = response.headers.get("Content-Length")
        expected = int(length) if length and length.isdigit() and not response.headers.get("Content-Encoding") else None
        descriptor, partial = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
        written = 0
        try:
            with response, os.fdopen(descriptor, "wb") as handle:
                for chunk in response.iter_content(CHUNK_BYTES):
                    handle.write(chunk)
                    written += len(chunk)
            if expected is not None and written != expected:
                raise TransportError(
                    ErrorDetail(
                        response.status_code,
                        "IncompleteDownload",
                        f"Downloading file {file_id}: got {written:,} of the {expected:,} bytes announced",
                        request_id,
                    ),
                    transient=True,
                )
            os.replace(partial, target)
        except requests.RequestException as exc:
            _remove(partial)
            raise TransportError(
                ErrorDetail(
                    response.status_code,
                    "BrokenResponse",
                    f"Downloading file {file_id}: the connection failed after {written:,} bytes ({type(exc).__name__})",
                    request_id,
                ),
                transient=True,
            ) from None
        except BaseException:
            _remove(partial)
            raise
        log.info("Downloaded %s (%d bytes) to %s", file_id, written, target)
        return target, written


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
