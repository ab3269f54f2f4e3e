"""`multipart/form-data` (RFC 7578) read from a body spooled to disk, without loading it into memory.

The body file is scanned for boundaries a MiB at a time; each part comes back as a byte range of
that file, so a 200 MB upload is copied once, disk to disk, and never held in memory.
"""

from __future__ import annotations

import email.message
import email.parser
from pathlib import Path
from typing import BinaryIO

import attrs

# Part headers are a few short lines; anything longer is not a form a client sent on purpose.
_MAX_PART_HEADER_BYTES = 16 * 1024
_MAX_BOUNDARY = 70  # RFC 2046
_SCAN_BYTES = 1024 * 1024


class MultipartError(ValueError):
    """The body is not the multipart/form-data its Content-Type announces."""


@attrs.frozen
class FormPart:
    """One form field: its name, its filename (file fields only) and where its value lies in the body."""

    name: str
    filename: str | None
    start: int
    end: int

    @property
    def size(self) -> int:
        return self.end - self.start


def boundary_of(content_type: str) -> str | None:
    """The `boundary` parameter of a `multipart/form-data` Content-Type, if valid."""
    message = email.message.Message()
    message["content-type"] = content_type
    if message.get_content_type() != "multipart/form-data":
        return None
    boundary = message.get_param("boundary")
    if not isinstance(boundary, str) or not 1 <= len(boundary) <= _MAX_BOUNDARY:
        return None
    return boundary


def _part_header(raw: bytes) -> tuple[str, str | None]:
    # Browsers and urllib3 send raw UTF-8 in these headers (RFC 7578 §4.2); decoding first keeps
    # a non-ASCII filename intact, and `filename*=` (RFC 2231) still works.
    headers = email.parser.HeaderParser().parsestr(raw.decode("utf-8", "replace"))
    if headers.get_content_disposition() != "form-data":
        raise MultipartError("Every part needs a 'Content-Disposition: form-data' header.")
    name = headers.get_param("name", header="content-disposition")
    if not isinstance(name, str) or not name:
        raise MultipartError("A form-data part has no name.")
    return name, headers.get_filename()


def read_value(path: Path, part: FormPart, limit: int) -> bytes:
    """The value of a small (text) field; at most `limit` bytes."""
    with path.open("rb") as body:
        body.seek(part.start)
        return body.read(min(part.size, limit))


def parse_form_data(path: Path, boundary: str) -> list[FormPart]:
    """The parts of the multipart body stored at `path`, in order."""
    delimiter = b"--" + boundary.encode("ascii", "replace")
    with path.open("rb") as body:
        if not _read(body, 0, 1):
            raise MultipartError("The request body is empty.")
        return _parts(body, delimiter)


def _read(body: BinaryIO, start: int, size: int) -> bytes:
    body.seek(start)
    return body.read(size)


def _find(body: BinaryIO, needle: bytes, start: int, limit: int | None = None) -> int:
    """Where `needle` first occurs at or after `start` (within `limit` bytes), else -1."""
    position = start
    stop = None if limit is None else start + limit
    while stop is None or position < stop:
        size = _SCAN_BYTES if stop is None else min(_SCAN_BYTES, stop - position)
        # Blocks overlap by one needle, so a needle across a block border is still found.
        block = _read(body, position, size + len(needle) - 1)
        found = block.find(needle)
        if found >= 0:
            return position + found if stop is None or position + found < stop else -1
        if len(block) < size + len(needle) - 1:
            return -1
        position += size
    return -1


def _parts(body: BinaryIO, delimiter: bytes) -> list[FormPart]:
    separator = b"\r\n" + delimiter
    if _read(body, 0, len(delimiter)) == delimiter:
        position = len(delimiter)
    else:
        # A preamble before the first delimiter is allowed, and ignored.
        found = _find(body, separator, 0)
        if found < 0:
            raise MultipartError("The body does not contain the boundary announced in Content-Type.")
        position = found + len(separator)
    parts: list[FormPart] = []
    while True:
        if _read(body, position, 2) == b"--":
            return parts
        line_end = _find(body, b"\r\n", position, _MAX_PART_HEADER_BYTES)
        # Only linear whitespace may follow a delimiter on its line.
        if line_end < 0 or _read(body, position, line_end - position).strip(b" \t"):
            raise MultipartError("A boundary line is malformed.")
        header_start = line_end + 2
        if _read(body, header_start, 2) == b"\r\n":
            raw_header, content_start = b"", header_start + 2
        else:
            header_end = _find(body, b"\r\n\r\n", header_start, _MAX_PART_HEADER_BYTES)
            if header_end < 0:
                raise MultipartError("A part's headers do not end with an empty line.")
            raw_header, content_start = _read(body, header_start, header_end + 2 - header_start), header_end + 4
        name, filename = _part_header(raw_header)
        content_end = _find(body, separator, content_start)
        if content_end < 0:
            raise MultipartError("The body ends before its closing boundary.")
        parts.append(FormPart(name, filename, content_start, content_end))
        position = content_end + len(separator)
