"""Batch input and output files on the resource: upload, wait until processed, download.

The calls of wire-samples.md §6, through the shared data-plane client (auth, retries, error
mapping). An upload creates something, so it is never sent again blindly (second-release §A):
when its answer is lost it is looked up by file name first. A download streams to a temporary
file next to the target and is renamed into place only when complete, so a failed download
never leaves a partial file behind.
"""

from __future__ import annotations

import io
import logging
import os
import tempfile
import time
import uuid
from collections.abc import Callable, Generator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, Final

import attrs
import requests

from .errors import ConfigurationError, ErrorDetail, TransportError
from .http import RetryMode, create_or_find, data_plane, read_json, response_request_id
from .ids import FILE_ID
from .platform import PlatformConfig

log = logging.getLogger(__name__)

CHUNK_BYTES: Final = 1024 * 1024
#: File states Azure reports while it is still processing an upload.
PROCESSING: Final = frozenset({"uploaded", "pending", "running"})
#: File states of a file that is going away: never reused.
GONE: Final = frozenset({"deleted", "deleting"})
#: An upload looked up after a lost answer is one created no earlier than this before it was
#: sent: the operator's clock and Azure's may disagree by this much.
CLOCK_SKEW_SECONDS: Final = 600.0


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
        self._origin = handle.tell()
        self.file_size = handle.seek(0, io.SEEK_END) - self._origin
        handle.seek(self._origin)
        self._parts: list[tuple[int, BinaryIO]] = [
            (len(head), io.BytesIO(head)),
            (self.file_size, handle),
            (len(tail), io.BytesIO(tail)),
        ]
        self._length = len(head) + self.file_size + len(tail)
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
        """POST the file as ``multipart/form-data`` (fields ``purpose`` and ``file``), streamed.

        After a lost answer the upload is the newest file of the same name and size created
        since shortly before it was sent; only when there is none is it sent again.
        """
        try:
            handle = path.open("rb")
        except OSError as exc:
            raise ConfigurationError(f"File {path} cannot be read ({exc.strerror}). Check the path.") from None
        sent_at = time.time()
        with handle:
            size = os.fstat(handle.fileno()).st_size

            def find() -> FileInfo | None:
                return self.find_named(path.name, purpose, size=size, not_before=sent_at - CLOCK_SKEW_SECONDS)

            return self.upload_as(handle, path.name, purpose, find)

    def upload_as(
        self, handle: BinaryIO, filename: str, purpose: str, find: Callable[[], FileInfo | None] | None = None
    ) -> FileInfo:
        """Upload an open file under ``filename``; after a lost answer, ``find`` (default: that name) looks first."""

        def send(retries: int) -> requests.Response:
            handle.seek(origin)
            with MultipartStream(handle, filename, purpose) as body:
                return self.client.send(
                    "POST",
                    self.surface.path("files"),
                    params=self.params,
                    body=body,
                    headers={"Content-Type": body.content_type},
                    mode=RetryMode.CREATE,
                    max_retries=retries,
                )

        def read(response: requests.Response) -> FileInfo:
            info = FileInfo.from_json(read_json(response, f"Uploading {filename}"))
            if not FILE_ID.fullmatch(info.id):
                raise TransportError(
                    ErrorDetail(
                        response.status_code,
                        "UnexpectedResponse",
                        f"the upload answer carries no usable file id ({info.id[:80]!r})",
                        response_request_id(response),
                    )
                )
            return info

        origin = handle.tell()
        info = create_or_find(
            send,
            read,
            find or (lambda: self.find_named(filename, purpose)),
            max_retries=self.config.max_retries,
            what=f"Uploading {filename}",
            hint=f"Look for a file named {filename!r} on the resource before uploading it again.",
        )
        log.info("Uploaded %s as %s, status %s", filename, info.id, info.status)
        return info

    def listing(self, purpose: str | None = "batch") -> list[FileInfo]:
        """Every file of ``purpose`` on the resource, following ``has_more`` pages where Azure pages.

        Azure's list filters by purpose only, so a file is found by name in this listing.
        """
        files: list[FileInfo] = []
        params = dict(self.params)
        if purpose is not None:
            params["purpose"] = purpose
        seen: set[str] = set()
        while True:
            response = self.client.send("GET", self.surface.path("files"), params=params, mode=RetryMode.READ)
            page = read_json(response, "Listing files")
            items = [FileInfo.from_json(i) for i in page.get("data") or [] if isinstance(i, dict)]
            fresh = [i for i in items if FILE_ID.fullmatch(i.id) and i.id not in seen]
            seen.update(i.id for i in fresh)
            files.extend(fresh)
            last = page.get("last_id") or (items[-1].id if items else None)
            # A page that adds nothing new ends the walk, whatever has_more says.
            if page.get("has_more") is not True or not fresh or not isinstance(last, str) or not FILE_ID.fullmatch(last):
                return files
            params["after"] = last

    def find_named(
        self, filename: str, purpose: str, *, size: int | None = None, not_before: float | None = None
    ) -> FileInfo | None:
        """The newest file named ``filename`` (of ``size`` bytes, created since ``not_before``), if any."""
        return newest_named(self.listing(purpose), filename, size=size, not_before=not_before)

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
        chunks = self.content(file_id)
        descriptor, partial = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
        written = 0
        try:
            with os.fdopen(descriptor, "wb") as handle:
                for chunk in chunks:
                    handle.write(chunk)
                    written += len(chunk)
            os.replace(partial, target)
        except BaseException:
            chunks.close()
            _remove(partial)
            raise
        log.info("Downloaded %s (%d bytes) to %s", file_id, written, target)
        return target, written

    def content(self, file_id: str) -> Generator[bytes, None, None]:
        """The file's bytes in chunks of up to 1 MiB, as they arrive: the request is sent now.

        A connection lost midway, or fewer bytes than announced, raises a transient
        TransportError from the iteration; closing the generator early closes the response.
        """
        check_file_id(file_id)
        response = self.client.send(
            "GET", self.surface.path(f"files/{file_id}/content"), params=self.params, mode=RetryMode.READ, stream=True
        )
        return _chunks(response, file_id)


def _chunks(response: requests.Response, file_id: str) -> Generator[bytes, None, None]:
    request_id = response_request_id(response)
    # With a content coding, Content-Length counts the encoded bytes, not the ones written.
    length = response.headers.get("Content-Length")
    expected = int(length) if length and length.isdigit() and not response.headers.get("Content-Encoding") else None
    received = 0
    with response:
        try:
            for chunk in response.iter_content(CHUNK_BYTES):
                received += len(chunk)
                yield chunk
        except requests.RequestException as exc:
            raise TransportError(
                ErrorDetail(
                    response.status_code,
                    "BrokenResponse",
                    f"Downloading file {file_id}: the connection failed after {received:,} bytes ({type(exc).__name__})",
                    request_id,
                ),
                transient=True,
            ) from None
    if expected is not None and received != expected:
        raise TransportError(
            ErrorDetail(
                response.status_code,
                "IncompleteDownload",
                f"Downloading file {file_id}: got {received:,} of the {expected:,} bytes announced",
                request_id,
            ),
            transient=True,
        )


def newest_named(
    files: list[FileInfo], filename: str, *, size: int | None = None, not_before: float | None = None
) -> FileInfo | None:
    """The newest usable file of ``files`` named ``filename`` (and of ``size`` bytes, created since ``not_before``)."""
    best: FileInfo | None = None
    for info in files:
        if info.filename != filename or info.status in GONE or (size is not None and info.bytes != size):
            continue
        created = info.created_at.timestamp() if info.created_at is not None else None
        if not_before is not None and (created is None or created < not_before):
            continue
        if best is None or (created or 0) > (best.created_at.timestamp() if best.created_at else 0):
            best = info
    return best


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
