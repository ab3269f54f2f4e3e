"""The Files API: uploads stored on disk, processing on the emulator's clock, listing, download.

File bytes never live in memory: uploads are spooled to disk by the server and copied range to
range, downloads are streamed from disk, and batch outputs are written there as they grow.
Everything sits in one temporary directory that disappears when the emulator stops.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import tempfile
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import attrs

from .clock import Clock, to_microseconds, to_unix_seconds
from .multipart import FormPart, MultipartError, boundary_of, parse_form_data, read_value
from .server import Request, Response, Route, json_response, route

# wire-samples §6: what an upload may declare; listings also know the service's own outputs.
UPLOAD_PURPOSES = ("fine-tune", "fine-tune-results", "assistants", "assistants_output", "batch")
PURPOSES = (*UPLOAD_PURPOSES, "batch_output")
# What a test may force with `add_file(status=...)`.
FILE_STATUSES = ("pending", "processed", "error")
# Azure's limit on a batch input file (global-batch-limits).
MAX_BATCH_FILE_BYTES = 200 * 1024 * 1024
_MAX_FILENAME = 255
_COPY_CHUNK_BYTES = 1024 * 1024
_UTF8_BOM = b"\xef\xbb\xbf"
# The list API's page size bounds (OpenAI's: default and maximum 10,000).
MAX_LIST_LIMIT = 10_000


def files_error(status: int, code: str, message: str, target: str | None = None) -> Response:
    """The files and batches error envelope (wire-samples §5): `code` from the authoring API's list."""
    error: dict[str, Any] = {"code": code, "message": message}
    if target is not None:
        error["target"] = target
    return json_response(status, {"error": error})


def file_not_found(file_id: str) -> Response:
    return files_error(404, "notFound", f"File with id '{file_id}' not found.")


@attrs.define(eq=False)
class StoredFile:
    """One file: its metadata in memory, its bytes at `path`."""

    id: str
    filename: str
    purpose: str
    path: Path = attrs.field(repr=False)
    size: int
    created_us: int
    # Creation order: files made in the same clock tick still list in a stable order.
    sequence: int
    status: str = "pending"
    status_details: str | None = None
    # A status the test set by hand is final: the clock does not process such a file.
    forced: bool = False
    lock: threading.Lock = attrs.field(factory=threading.Lock, repr=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "file",
            "bytes": self.size,
            "created_at": to_unix_seconds(self.created_us),
            "filename": self.filename,
            "purpose": self.purpose,
            "status": self.status,
            "status_details": self.status_details,
        }


def check_batch_jsonl(path: Path, size: int) -> str | None:
    """None if the file is well-formed batch JSONL, else the `status_details` text.

    Only the form is checked here (encoding, one JSON object per line), as Azure's file
    processing does; what the lines ask for is the batch's validation.
    """
    if size == 0:
        return "The file is empty. A batch input file needs at least one request line."
    if size > MAX_BATCH_FILE_BYTES:
        return f"The file has {size} bytes; batch input files may have at most {MAX_BATCH_FILE_BYTES} bytes (200 MB)."
    with path.open("rb") as content:
        if content.read(len(_UTF8_BOM)) == _UTF8_BOM:
            return "The file starts with a UTF-8 byte order mark (BOM). Save it as UTF-8 without BOM."
        content.seek(0)
        requests = 0
        for number, raw in enumerate(content, start=1):
            if not raw.strip():
                continue
            try:
                line = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError:
                return f"Line {number} is not valid UTF-8."
            except ValueError:
                return f"Line {number} is not valid JSON."
            if not isinstance(line, dict):
                return f"Line {number} is not a JSON object."
            requests += 1
    if requests == 0:
        return "The file contains no request lines."
    return None


class FileStore:
    """Thread-safe store of files; processing happens lazily, when a file is read after its time."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._files: dict[str, StoredFile] = {}
        self._directory: Path | None = None
        self._processing_us = 0
        self._sequence = itertools.count()

    @property
    def directory(self) -> Path:
        """The store's temporary directory, created on first use."""
        with self._lock:
            if self._directory is None:
                self._directory = Path(tempfile.mkdtemp(prefix="polysync-emulator-files-"))
            return self._directory

    @property
    def processing_seconds(self) -> float:
        with self._lock:
            return self._processing_us / 1_000_000

    @processing_seconds.setter
    def processing_seconds(self, seconds: float) -> None:
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 <= seconds < float("inf"):
            raise ValueError(f"file_processing_seconds must be a finite number of seconds >= 0, not {seconds!r}")
        with self._lock:
            self._processing_us = to_microseconds(seconds)

    def close(self) -> None:
        """Forget every file and delete the directory (the emulator stops)."""
        with self._lock:
            directory, self._directory = self._directory, None
            self._files.clear()
        if directory is not None:
            shutil.rmtree(directory, ignore_errors=True)

    def new_path(self, suffix: str) -> Path:
        """A fresh, empty file in the store's directory, for content that is still being written."""
        descriptor, name = tempfile.mkstemp(suffix=suffix, dir=self.directory)
        os.close(descriptor)
        return Path(name)

    # Adding files. Uploads get `file-` + 32 hex digits, service-made files a dashed UUID (§6).
    def add(
        self,
        content: bytes | str | os.PathLike[str],
        *,
        purpose: str,
        filename: str,
        status: str | None = None,
    ) -> StoredFile:
        """A file from bytes, text (stored as UTF-8) or a path (hard-linked when possible, else copied)."""
        if purpose not in PURPOSES:
            raise ValueError(f"purpose must be one of {', '.join(PURPOSES)}, not {purpose!r}")
        if status is not None and status not in FILE_STATUSES:
            raise ValueError(f"status must be None or one of {', '.join(FILE_STATUSES)}, not {status!r}")
        if not filename:
            raise ValueError("filename must not be empty")
        path = self.new_path(".data")
        try:
            if isinstance(content, str):
                path.write_bytes(content.encode("utf-8"))
            elif isinstance(content, bytes):
                path.write_bytes(content)
            else:
                _link_or_copy(Path(content), path)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return self._register(f"file-{uuid.uuid4().hex}", path, purpose=purpose, filename=filename, status=status)

    def add_range(self, source: Path, start: int, end: int, *, purpose: str, filename: str) -> StoredFile:
        """An uploaded file: bytes `start` to `end` of the spooled request body."""
        path = self.new_path(".data")
        try:
            with source.open("rb") as reader, path.open("wb") as writer:
                reader.seek(start)
                remaining = end - start
                while remaining > 0:
                    chunk = reader.read(min(_COPY_CHUNK_BYTES, remaining))
                    if not chunk:
                        break
                    writer.write(chunk)
                    remaining -= len(chunk)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return self._register(f"file-{uuid.uuid4().hex}", path, purpose=purpose, filename=filename, status=None)

    def adopt(self, path: Path, *, purpose: str, filename: str, created_us: int) -> StoredFile:
        """A file the service made (a batch output), moved into the store as it is: processed."""
        return self._register(
            f"file-{uuid.uuid4()}", path, purpose=purpose, filename=filename, status="processed", created_us=created_us
        )

    def _register(
        self, file_id: str, path: Path, *, purpose: str, filename: str, status: str | None, created_us: int | None = None
    ) -> StoredFile:
        stored = StoredFile(
            id=file_id,
            filename=filename,
            purpose=purpose,
            path=path,
            size=path.stat().st_size,
            created_us=self._clock.now_us() if created_us is None else created_us,
            sequence=next(self._sequence),
            status=status or "pending",
            status_details="The status was set by the test." if status == "error" else None,
            forced=status is not None,
        )
        with self._lock:
            self._files[file_id] = stored
        return stored

    # Reading.
    def get(self, file_id: str) -> StoredFile | None:
        """The file, processed first if its processing time has come."""
        with self._lock:
            stored = self._files.get(file_id)
            due = self._processing_us
        if stored is not None:
            self._process(stored, due)
        return stored

    def snapshot(self, file_id: str) -> dict[str, Any] | None:
        stored = self.get(file_id)
        if stored is None:
            return None
        with stored.lock:
            return stored.to_json()

    def listing(self, purpose: str | None = None, *, newest_first: bool = True) -> list[dict[str, Any]]:
        """Every file in creation order (newest first by default), optionally of one purpose."""
        with self._lock:
            files = sorted(self._files.values(), key=lambda stored: (stored.created_us, stored.sequence), reverse=newest_first)
        snapshots = []
        for stored in files:
            if purpose is None or stored.purpose == purpose:
                snapshot = self.snapshot(stored.id)
                if snapshot is not None:
                    snapshots.append(snapshot)
        return snapshots

    def _process(self, stored: StoredFile, processing_us: int) -> None:
        # Per-file lock: checking a 200 MB file must not stall requests for other files.
        with stored.lock:
            if stored.forced or stored.status != "pending":
                return
            if self._clock.now_us() < stored.created_us + processing_us:
                return
            problem = check_batch_jsonl(stored.path, stored.size) if stored.purpose == "batch" else None
            stored.status = "error" if problem else "processed"
            stored.status_details = problem

    def open(self, file_id: str) -> tuple[BinaryIO, int] | None:
        """The file's bytes as an open binary file and its size; it stays readable if deleted meanwhile."""
        with self._lock:
            stored = self._files.get(file_id)
        if stored is None:
            return None
        try:
            handle = stored.path.open("rb")
        except FileNotFoundError:
            return None
        return handle, os.fstat(handle.fileno()).st_size

    def link(self, file_id: str, target: Path) -> bool:
        """Give `target` the file's bytes (hard link, else copy), so a batch keeps its input if deleted."""
        with self._lock:
            stored = self._files.get(file_id)
        if stored is None:
            return False
        _link_or_copy(stored.path, target)
        return True

    def delete(self, file_id: str) -> bool:
        with self._lock:
            stored = self._files.pop(file_id, None)
        if stored is None:
            return False
        stored.path.unlink(missing_ok=True)
        return True


def _link_or_copy(source: Path, target: Path) -> None:
    """A hard link costs nothing even for 500 MB; across file systems, copy in the kernel."""
    target.unlink(missing_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


class FilesService:
    """The `/openai/files` routes; auth and api-version rules are the data plane's."""

    def __init__(self, store: FileStore, authorize: Callable[[Request], Response | None]) -> None:
        self._store = store
        self._authorize = authorize

    def routes(self) -> list[Route]:
        # The dated API's paths and the v1 API's: one store, so a file is the same on both.
        routes: list[Route] = []
        for base in ("/openai/files", "/openai/v1/files"):
            one = base + r"/(?P<file_id>[^/]+)"
            routes += [
                route("POST", base, "files.upload", self.upload, spool_body=True),
                route("GET", base, "files.list", self.list_files),
                route("GET", one, "files.get", self.get_file),
                route("DELETE", one, "files.delete", self.delete_file),
                route("GET", one + r"/content", "files.content", self.content),
            ]
        return routes

    def upload(self, request: Request, match: re.Match[str]) -> Response:
        refused = self._authorize(request)
        if refused is not None:
            return refused
        boundary = boundary_of(request.header("content-type") or "")
        if boundary is None or request.body_path is None:
            return files_error(
                400,
                "invalidPayload",
                "The request must be multipart/form-data with a text field 'purpose' and a file field 'file'.",
            )
        try:
            parts = parse_form_data(request.body_path, boundary)
        except MultipartError as exc:
            return files_error(400, "invalidPayload", f"The multipart/form-data body is malformed: {exc}")
        fields: dict[str, FormPart] = {}
        for part in parts:
            fields.setdefault(part.name, part)
        purpose_part = fields.get("purpose")
        if purpose_part is None or purpose_part.filename is not None:
            return files_error(400, "invalidPayload", "The text field 'purpose' is required.", "purpose")
        purpose = read_value(request.body_path, purpose_part, 64).decode("utf-8", "replace").strip()
        if purpose not in UPLOAD_PURPOSES:
            return files_error(
                400,
                "invalidPayload",
                f"The purpose '{purpose[:64]}' is not supported. Supported purposes: {', '.join(UPLOAD_PURPOSES)}.",
                "purpose",
            )
        file_part = fields.get("file")
        if file_part is None or not file_part.filename:
            return files_error(400, "invalidPayload", "The file field 'file' with a filename is required.", "file")
        filename = file_part.filename[:_MAX_FILENAME]
        stored = self._store.add_range(request.body_path, file_part.start, file_part.end, purpose=purpose, filename=filename)
        api_version = request.query.get("api-version")
        query = f"?api-version={api_version}" if api_version is not None else ""
        location = f"{request.base_url}{request.path}/{stored.id}{query}"
        # The upload answer shows the file before processing, as Azure's does.
        return json_response(201, stored.to_json(), {"Location": location})

    def get_file(self, request: Request, match: re.Match[str]) -> Response:
        refused = self._authorize(request)
        if refused is not None:
            return refused
        snapshot = self._store.snapshot(match["file_id"])
        if snapshot is None:
            return file_not_found(match["file_id"])
        return json_response(200, snapshot)

    def list_files(self, request: Request, match: re.Match[str]) -> Response:
        """One page of the listing: `limit`, cursor `after` (a file id), `order` by creation time."""
        refused = self._authorize(request)
        if refused is not None:
            return refused
        query = request.query
        limit_text = query.get("limit", str(MAX_LIST_LIMIT))
        if not limit_text.isascii() or not limit_text.isdigit() or not 1 <= int(limit_text) <= MAX_LIST_LIMIT:
            message = f"limit must be an integer from 1 to {MAX_LIST_LIMIT}, not '{limit_text[:20]}'."
            return files_error(400, "invalidPayload", message, "limit")
        limit = int(limit_text)
        order = query.get("order", "desc")
        if order not in ("asc", "desc"):
            return files_error(400, "invalidPayload", f"order must be 'asc' or 'desc', not '{order[:20]}'.", "order")
        files = self._store.listing(query.get("purpose"), newest_first=order == "desc")
        after = query.get("after")
        if after:
            position = next((index for index, file in enumerate(files) if file["id"] == after), None)
            if position is None:
                return files_error(400, "invalidPayload", f"after names no file: '{after[:100]}'.", "after")
            files = files[position + 1 :]
        page = files[:limit]
        return json_response(
            200,
            {
                "object": "list",
                "data": page,
                "first_id": page[0]["id"] if page else None,
                "last_id": page[-1]["id"] if page else None,
                "has_more": len(files) > limit,
            },
        )

    def delete_file(self, request: Request, match: re.Match[str]) -> Response:
        refused = self._authorize(request)
        if refused is not None:
            return refused
        file_id = match["file_id"]
        if not self._store.delete(file_id):
            return file_not_found(file_id)
        return json_response(200, {"object": "file", "deleted": True, "id": file_id})

    def content(self, request: Request, match: re.Match[str]) -> Response:
        refused = self._authorize(request)
        if refused is not None:
            return refused
        opened = self._store.open(match["file_id"])
        if opened is None:
            return file_not_found(match["file_id"])
        handle, size = opened
        return Response(200, b"", {"Content-Type": "application/octet-stream"}, stream=handle, stream_length=size)
