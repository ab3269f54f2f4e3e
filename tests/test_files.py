"""Upload, processing and streamed download of files, against the emulator over real HTTPS."""

from __future__ import annotations

import hashlib
import json
import tracemalloc
from pathlib import Path

import pytest

from polysync_azure_openai.emulator import Emulator
from polysync_azure_openai.emulator.faults import TruncatedBody
from polysync_azure_openai.errors import AzureServiceError, ConfigurationError, TransportError
from polysync_azure_openai.files import FileInfo, FilesApi
from polysync_azure_openai.platform import PlatformConfig

from .conftest import sp_platform

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
    from polysync_azure_openai.emulator.faults import Status

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


def test_a_lost_upload_answer_is_looked_up_by_name_not_sent_again(tmp_path: Path, emu: Emulator) -> None:
    source = tmp_path / "requests.jsonl"
    source.write_text(LINE + "\n")
    emu.lose_next_upload()
    info = api(emu).upload(source)
    uploads = [r for r in emu.requests if r.kind == "files.upload"]
    assert len(uploads) == 1  # stored once; the lost answer was found by the file's name
    assert emu.file(info.id)["filename"] == "requests.jsonl"
    assert [f.id for f in api(emu).listing() if f.filename == "requests.jsonl"] == [info.id]
