"""Upload, processing and streamed download of files, against the emulator over real HTTPS."""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import stat
import threading
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest
import trustme

from polysync_azure_openai.emulator import Emulator
from polysync_azure_openai.emulator.faults import DropFields, Status, TruncatedBody
from polysync_azure_openai.emulator.server import Exchange
from polysync_azure_openai.errors import AzureServiceError, ConfigurationError, TransportError
from polysync_azure_openai.files import FileInfo, FilesApi, newest_named
from polysync_azure_openai.platform import PlatformConfig

from .conftest import api_key_platform, sp_platform
from .http import loopback as lb

LINE = json.dumps(
    {
        "custom_id": "t-1",
        "method": "POST",
        "url": "/chat/completions",
        "body": {"model": "gpt-4o-batch", "messages": [{"role": "user", "content": "Hi"}]},
    }
)


def api(emu: Emulator) -> FilesApi:
    return FilesApi(PlatformConfig.from_host(sp_platform(emu, Max_Retries="0")))


def test_upload_sends_multipart_and_the_file_gets_processed(tmp_path: Path, emu: Emulator) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text(LINE + "\n", encoding="utf-8")
    files = api(emu)
    info = files.upload(path)
    assert info.id.startswith("file-") and info.filename == "in.jsonl" and info.purpose == "batch"
    assert info.bytes == path.stat().st_size
    assert emu.file_content(info.id) == path.read_bytes()
    seen: list[FileInfo] = []
    done = files.wait_until_processed(info.id, interval=5, pause=emu.advance, on_status=seen.append)
    assert done.status == "processed" and seen[-1] == done


@pytest.mark.parametrize(
    ("name", "stored"),
    [('say "hi".jsonl', "say _hi_.jsonl"), ("two\nlines\r.jsonl", "two_lines_.jsonl")],
    ids=["quotes", "line-breaks"],
)
def test_a_file_name_that_would_break_the_multipart_header_is_uploaded_with_underscores(
    tmp_path: Path, emu: Emulator, name: str, stored: str
) -> None:
    path = tmp_path / name
    path.write_text(LINE + "\n", encoding="utf-8")
    info = api(emu).upload(path)
    assert info.filename == stored and emu.file(info.id)["filename"] == stored
    assert emu.file_content(info.id) == path.read_bytes()


def test_waiting_ends_with_azure_s_error_details(tmp_path: Path, emu: Emulator) -> None:
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + LINE.encode() + b"\n")
    files = api(emu)
    done = files.wait_until_processed(files.upload(path).id, interval=5, pause=emu.advance)
    assert done.status == "error" and "byte order mark" in (done.status_details or "")


def test_download_streams_in_chunks(tmp_path: Path, emu: Emulator) -> None:
    content = (LINE.encode() + b"\n") * (20 * 1024 * 1024 // (len(LINE) + 1))
    file_id = emu.add_file(content)
    files = api(emu)
    tracemalloc.start()
    try:
        path, size = files.download(file_id, tmp_path / "out.jsonl")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert size == len(content) and path == tmp_path / "out.jsonl"
    assert hashlib.sha256(path.read_bytes()).digest() == hashlib.sha256(content).digest()
    # 20 MB went through; a few 1 MiB chunks at a time were ever held in memory.
    assert peak < 6 * 1024 * 1024


def test_a_cut_download_leaves_no_partial_file(tmp_path: Path, emu: Emulator) -> None:
    file_id = emu.add_file(b"x" * (3 * 1024 * 1024))
    emu.inject(TruncatedBody(), kind="files.content")
    with pytest.raises(TransportError) as raised:
        api(emu).download(file_id, tmp_path / "out.jsonl")
    assert file_id in str(raised.value)
    assert list(tmp_path.iterdir()) == []


def test_an_unknown_file_is_a_404_and_writes_nothing(tmp_path: Path, emu: Emulator) -> None:
    with pytest.raises(AzureServiceError) as raised:
        api(emu).download("file-unknown", tmp_path)
    assert raised.value.detail.status == 404
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("file_id", ["file-../../x", "batch_1", "file-a?b"])
def test_a_bad_file_id_is_refused_before_any_request(tmp_path: Path, emu: Emulator, file_id: str) -> None:
    with pytest.raises(ConfigurationError, match="is not an Azure file id"):
        api(emu).download(file_id, tmp_path)
    with pytest.raises(ConfigurationError, match="is not an Azure file id"):
        api(emu).get(file_id)
    assert emu.requests == []


def test_a_missing_directory_is_refused_before_any_request(tmp_path: Path, emu: Emulator) -> None:
    with pytest.raises(ConfigurationError, match="does not exist"):
        api(emu).download("file-abc", tmp_path / "no" / "out.jsonl")
    assert emu.requests == []


def test_upload_streams_from_disk_and_a_retry_resends_every_byte(tmp_path: Path, emu: Emulator) -> None:
    content = (LINE.encode() + b"\n") * (20 * 1024 * 1024 // (len(LINE) + 1))
    source = tmp_path / "big.jsonl"
    source.write_bytes(content)
    # A 429 says nothing was stored: the upload is sent again, whole (a 5xx would mean "look first").
    first = emu.inject(Status(429, headers={"retry-after-ms": "5"}), kind="files.upload")
    files = FilesApi(PlatformConfig.from_host(sp_platform(emu)))
    tracemalloc.start()
    try:
        info = files.upload(source)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert first.hits == 1  # the first attempt failed, the second carried the whole file again
    assert hashlib.sha256(emu.file_content(info.id)).digest() == hashlib.sha256(content).digest()
    assert peak < 6 * 1024 * 1024  # 20 MB went out without being held in memory


def loopback_api(emu: Emulator, origin: str) -> FilesApi:
    """The files calls of an API-key platform whose data plane is a loopback server (tests/http/loopback.py)."""
    return FilesApi(PlatformConfig.from_host(api_key_platform(emu, OpenAI_Endpoint=origin, Max_Retries="0")))


def test_download_into_a_directory_writes_file_id_jsonl_owner_only(tmp_path: Path, emu: Emulator) -> None:
    file_id = emu.add_file(LINE.encode() + b"\n")
    path, size = api(emu).download(file_id, tmp_path)
    assert path == tmp_path / f"{file_id}.jsonl"
    assert path.read_bytes() == LINE.encode() + b"\n" and size == len(LINE) + 1
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # batch output holds prompts and answers
    assert list(tmp_path.iterdir()) == [path]


def test_a_download_is_logged_with_its_file_id_size_and_path(
    tmp_path: Path, emu: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="polysync_azure_openai")
    file_id = emu.add_file(b"x" * 1234)
    path, _ = api(emu).download(file_id, tmp_path / "results.jsonl")
    # The worker's log says what was written where (and the record formats).
    logged = [r.getMessage() for r in caplog.records if r.name == "polysync_azure_openai.files"]
    assert [m for m in logged if file_id in m and "1234 bytes" in m and str(path) in m]


def test_a_download_in_progress_is_a_hidden_part_file_next_to_the_target(tmp_path: Path, emu: Emulator, ca: trustme.CA) -> None:
    # What an operator finds if the worker dies mid-download: a hidden file named after the target,
    # in its directory (so the final rename never crosses file systems), ending in .part.
    release = threading.Event()
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 1000\r\n\r\n"
    outcome: list[BaseException] = []

    def download(files: FilesApi) -> None:
        try:
            files.download("file-abc", tmp_path / "results.jsonl")
        except BaseException as exc:
            outcome.append(exc)

    with lb.loopback(lb.hold_after_headers(head, release), ca) as origin:
        worker = threading.Thread(target=download, args=(loopback_api(emu, origin),))
        worker.start()
        try:
            for _ in range(3000):  # until the partial file appears (at most 30 s)
                partial = list(tmp_path.iterdir())
                if partial or not worker.is_alive():
                    break
                release.wait(0.01)
            assert len(partial) == 1, partial
            assert partial[0].name.startswith(".results.jsonl.") and partial[0].name.endswith(".part")
            assert stat.S_IMODE(partial[0].stat().st_mode) == 0o600
        finally:
            release.set()
            worker.join()
    assert isinstance(outcome[0], TransportError)
    assert list(tmp_path.iterdir()) == []


def test_a_download_is_retried_on_a_503(tmp_path: Path, emu: Emulator) -> None:
    file_id = emu.add_file(b"x" * 1000)
    emu.inject(Status(503, headers={"retry-after-ms": "5"}), kind="files.content")
    files = FilesApi(PlatformConfig.from_host(sp_platform(emu, Max_Retries="1")))
    path, size = files.download(file_id, tmp_path / "out.jsonl")
    assert size == 1000 and path.read_bytes() == b"x" * 1000
    assert [r.status for r in emu.requests if r.kind == "files.content"] == [503, 200]


def test_a_download_cut_short_is_a_transient_broken_response_with_azure_s_request_id(
    tmp_path: Path, emu: Emulator, ca: trustme.CA
) -> None:
    # 3 MiB announced, 1.5 MiB sent: the first whole chunk reached the disk before the cut.
    raw = (
        f"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {3 * 1024 * 1024}\r\n".encode()
        + b"apim-request-id: rid-cut-download\r\n\r\n"
        + b"x" * (3 * 1024 * 1024 // 2)
    )
    with lb.loopback(lb.answer(raw), ca) as origin, pytest.raises(TransportError) as raised:
        loopback_api(emu, origin).download("file-abc", tmp_path / "out.jsonl")
    error = raised.value
    assert error.transient  # downloading again may succeed
    assert (error.detail.status, error.detail.code, error.detail.request_id) == (200, "BrokenResponse", "rid-cut-download")
    assert "file-abc" in str(error) and "after 1,048,576 bytes" in str(error) and "ChunkedEncodingError" in str(error)
    assert list(tmp_path.iterdir()) == []


def test_a_chunked_download_without_content_length_is_written_whole(tmp_path: Path, emu: Emulator, ca: trustme.CA) -> None:
    content = LINE.encode() + b"\n"
    raw = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
        + f"{len(content):x}\r\n".encode()
        + content
        + b"\r\n0\r\n\r\n"
    )
    with lb.loopback(lb.answer(raw), ca) as origin:
        path, size = loopback_api(emu, origin).download("file-abc", tmp_path / "out.jsonl")
    assert path.read_bytes() == content and size == len(content)


def test_a_gzip_encoded_download_is_written_decoded_and_not_taken_for_a_short_one(
    tmp_path: Path, emu: Emulator, ca: trustme.CA
) -> None:
    # Content-Length counts the encoded bytes; fewer of them than the decoded ones were written.
    content = (LINE.encode() + b"\n") * 50
    encoded = gzip.compress(content)
    raw = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Encoding: gzip\r\n"
        + f"Content-Length: {len(encoded)}\r\n\r\n".encode()
        + encoded
    )
    with lb.loopback(lb.answer(raw), ca) as origin:
        path, size = loopback_api(emu, origin).download("file-abc", tmp_path / "out.jsonl")
    assert path.read_bytes() == content and size == len(content)


def test_a_lost_upload_answer_is_looked_up_by_name_not_sent_again(tmp_path: Path, emu: Emulator) -> None:
    source = tmp_path / "requests.jsonl"
    source.write_text(LINE + "\n")
    emu.lose_next_upload()
    info = api(emu).upload(source)
    uploads = [r for r in emu.requests if r.kind == "files.upload"]
    assert len(uploads) == 1  # stored once; the lost answer was found by the file's name
    assert emu.file(info.id)["filename"] == "requests.jsonl"
    assert [f.id for f in api(emu).listing() if f.filename == "requests.jsonl"] == [info.id]


@pytest.mark.parametrize("count", [1, 3])
def test_a_file_list_without_last_id_still_lists_every_file(emu: Emulator, count: int) -> None:
    # Azure's own REST example puts last_id inside an item (wire-samples): without a top-level
    # last_id the page's last item is the cursor, and a one-file page is listed like any other.
    made = {emu.add_file(LINE + "\n", filename=f"in-{i}.jsonl") for i in range(count)}
    emu.inject(DropFields("last_id"), kind="files.list", times=None)
    assert {f.id for f in api(emu).listing()} == made


class ListLags:
    """The files list does not show the newest file yet: Azure's list lags behind an upload."""

    name = "list_lags"

    def apply(self, exchange: Exchange) -> None:
        response = exchange.respond()
        payload = json.loads(response.body)
        payload["data"] = payload["data"][1:]
        exchange.send(attrs.evolve(response, body=json.dumps(payload).encode()))


HOUR = 3600


@pytest.fixture
def earlier(ca: trustme.CA) -> Iterator[Emulator]:
    """An emulator whose clock starts an hour ago: what a test creates first is that old."""
    with Emulator(ca=ca, clock_start=time.time() - HOUR) as emulator:
        yield emulator


@pytest.mark.parametrize("decoy", ["of another size", "of another purpose", "of another name", "made an hour before"])
def test_a_lost_upload_is_not_taken_for_another_file_while_the_list_lags(tmp_path: Path, earlier: Emulator, decoy: str) -> None:
    # The look-up after the lost answer first gets a list that does not show the upload yet, but
    # shows a file that is not it: only a file of the same name, size and purpose, created since
    # shortly before the upload was sent, is the upload. The next look-up finds the real one.
    emu = earlier
    source = tmp_path / "requests.jsonl"
    source.write_text(LINE + "\n")
    if decoy == "made an hour before":
        decoy_id = emu.add_file(LINE + "\n", filename="requests.jsonl")
    emu.advance(HOUR)
    if decoy == "of another size":
        decoy_id = emu.add_file(LINE + "\n" + LINE + "\n", filename="requests.jsonl")
    elif decoy == "of another purpose":
        decoy_id = emu.add_file(LINE + "\n", filename="requests.jsonl", purpose="fine-tune")
    elif decoy == "of another name":
        decoy_id = emu.add_file(LINE + "\n", filename="other.jsonl")
    emu.lose_next_upload()
    emu.inject(ListLags(), kind="files.list")
    info = api(emu).upload(source)
    assert info.id != decoy_id and info.filename == "requests.jsonl"
    assert emu.file_content(info.id) == source.read_bytes()
    kinds = [r.kind for r in emu.requests]
    assert kinds.count("files.upload") == 1 and kinds.count("files.list") == 2


def test_a_file_is_read_with_the_platform_s_api_version(tmp_path: Path, emu: Emulator) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text(LINE + "\n")
    files = FilesApi(PlatformConfig.from_host(sp_platform(emu, OpenAI_API_Version="2024-10-21")))
    uploaded = files.upload(source)
    assert files.get(uploaded.id).id == uploaded.id
    [read] = [r for r in emu.requests if r.kind == "files.get"]
    assert read.path == f"/openai/files/{uploaded.id}" and read.query.get("api-version") == "2024-10-21"


def _listed(file_id: str, filename: str, created_at: int) -> FileInfo:
    return FileInfo.from_json(
        {"id": file_id, "filename": filename, "purpose": "batch", "status": "processed", "bytes": 10, "created_at": created_at}
    )


@pytest.mark.parametrize(
    ("listing", "found"),
    [
        # Azure lists newest first: the newest of the name wins, whatever follows it.
        ([("file-new", "requests.jsonl", 2000), ("file-old", "requests.jsonl", 1000)], "file-new"),
        ([("file-old", "requests.jsonl", 1000), ("file-new", "requests.jsonl", 2000)], "file-new"),
        # Another name in the list is passed over, not the end of the search.
        ([("file-other", "other.jsonl", 3000), ("file-new", "requests.jsonl", 2000)], "file-new"),
    ],
    ids=["newest-first", "oldest-first", "another-name-first"],
)
def test_the_look_up_by_name_finds_the_newest_file_of_that_name(listing: list[tuple[str, str, int]], found: str) -> None:
    files = [_listed(*entry) for entry in listing]
    best = newest_named(files, "requests.jsonl", size=10)
    assert best is not None and best.id == found
