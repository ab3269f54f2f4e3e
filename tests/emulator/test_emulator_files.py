"""The Files API: multipart upload, processing on the clock, listing, deletion, streamed content."""

from __future__ import annotations

import http.client
import json
import ssl
import tracemalloc
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests

from polysync_azure_openai.emulator import Emulator

from .emulator_helpers import DATA_SCOPE, batch_jsonl, files_url, secret_token

FILE_KEYS = {"id", "object", "bytes", "created_at", "filename", "purpose", "status", "status_details"}


def _upload(
    http: requests.Session, emu: Emulator, content: bytes, *, purpose: str | None = "batch", filename: str = "input.jsonl"
) -> requests.Response:
    data = {} if purpose is None else {"purpose": purpose}
    return http.post(files_url(emu), data=data, files={"file": (filename, content)}, headers={"api-key": emu.api_key})


def _get(http: requests.Session, emu: Emulator, suffix: str = "", **params: str) -> requests.Response:
    return http.get(files_url(emu, suffix), params=params, headers={"api-key": emu.api_key})


def test_upload_answers_201_pending_then_the_file_is_processed(emu: Emulator, http: requests.Session) -> None:
    content = batch_jsonl(3).encode()
    response = _upload(http, emu, content, filename="test.jsonl")
    assert response.status_code == 201
    uploaded = response.json()
    assert set(uploaded) == FILE_KEYS
    assert uploaded["id"].startswith("file-") and len(uploaded["id"]) == len("file-") + 32
    assert uploaded["object"] == "file" and uploaded["bytes"] == len(content)
    assert uploaded["filename"] == "test.jsonl" and uploaded["purpose"] == "batch"
    assert (uploaded["status"], uploaded["status_details"]) == ("pending", None)
    assert uploaded["created_at"] == int(emu.clock.now())
    assert response.headers["Location"] == f"{emu.url}/openai/files/{uploaded['id']}?api-version=2024-10-21"
    assert response.headers["apim-request-id"]
    read = _get(http, emu, f"/{uploaded['id']}")
    assert read.status_code == 200
    assert read.json() == {**uploaded, "status": "processed"}
    assert emu.file_content(uploaded["id"]) == content
    assert [r.kind for r in emu.requests] == ["files.upload", "files.get"]
    assert emu.requests[0].client_id == "api-key"


def test_processing_waits_for_the_clock(emu: Emulator, http: requests.Session) -> None:
    emu.file_processing_seconds = 30
    file_id = _upload(http, emu, batch_jsonl(1).encode()).json()["id"]
    emu.advance(29.9)
    assert _get(http, emu, f"/{file_id}").json()["status"] == "pending"
    emu.advance(0.1)
    assert _get(http, emu, f"/{file_id}").json()["status"] == "processed"


@pytest.mark.parametrize(
    ("content", "details"),
    [
        pytest.param(b"", "The file is empty", id="empty"),
        pytest.param(b"\n  \n", "no request lines", id="blank-lines"),
        pytest.param(b"\xef\xbb\xbf" + batch_jsonl(1).encode(), "byte order mark", id="bom"),
        pytest.param(batch_jsonl(1).encode() + b'{"custom_id": "\xff"}\n', "Line 2 is not valid UTF-8", id="not-utf8"),
        pytest.param(batch_jsonl(2).encode() + b"{nope\n", "Line 3 is not valid JSON", id="not-json"),
        pytest.param(b'["a list"]\n', "Line 1 is not a JSON object", id="not-object"),
    ],
)
def test_invalid_batch_jsonl_ends_in_error_with_details(
    emu: Emulator, http: requests.Session, content: bytes, details: str
) -> None:
    file_id = _upload(http, emu, content).json()["id"]
    answer = _get(http, emu, f"/{file_id}").json()
    assert answer["status"] == "error"
    assert details in answer["status_details"]


def test_line_content_is_not_checked_by_file_processing(emu: Emulator, http: requests.Session) -> None:
    # Duplicate ids and unknown models are the batch's validation, not the file's.
    content = b'{"custom_id": "a"}\n{"custom_id": "a", "body": {"model": "nowhere"}}\n'
    file_id = _upload(http, emu, content).json()["id"]
    assert _get(http, emu, f"/{file_id}").json()["status"] == "processed"


def test_other_purposes_are_processed_without_checks(emu: Emulator, http: requests.Session) -> None:
    file_id = _upload(http, emu, b"\x00\x01 not jsonl", purpose="fine-tune", filename="data.bin").json()["id"]
    assert _get(http, emu, f"/{file_id}").json()["status"] == "processed"


def _raw_upload(http: requests.Session, emu: Emulator, body: bytes, content_type: str) -> requests.Response:
    return http.post(files_url(emu), data=body, headers={"api-key": emu.api_key, "Content-Type": content_type})


@pytest.mark.parametrize(
    ("body", "content_type", "target"),
    [
        pytest.param(b'{"purpose": "batch"}', "application/json", None, id="json-body"),
        pytest.param(b"--x\r\n", "multipart/form-data", None, id="no-boundary"),
        pytest.param(b"", "multipart/form-data; boundary=x", None, id="empty-body"),
        pytest.param(b"garbage without boundary", "multipart/form-data; boundary=x", None, id="garbage"),
        pytest.param(
            b'--x\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch',
            "multipart/form-data; boundary=x",
            None,
            id="unterminated",
        ),
        pytest.param(b"--x\r\nX-Nothing: 1\r\n\r\nv\r\n--x--\r\n", "multipart/form-data; boundary=x", None, id="no-disposition"),
        pytest.param(
            b'--x\r\nContent-Disposition: form-data; name="file"; filename="a.jsonl"\r\n\r\n{}\r\n--x--\r\n',
            "multipart/form-data; boundary=x",
            "purpose",
            id="no-purpose",
        ),
        pytest.param(
            b'--x\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n--x--\r\n',
            "multipart/form-data; boundary=x",
            "file",
            id="no-file",
        ),
        pytest.param(
            b'--x\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n'
            b'--x\r\nContent-Disposition: form-data; name="file"\r\n\r\n{}\r\n--x--\r\n',
            "multipart/form-data; boundary=x",
            "file",
            id="file-without-filename",
        ),
    ],
)
def test_malformed_uploads_are_400_invalid_payload(
    emu: Emulator, http: requests.Session, body: bytes, content_type: str, target: str | None
) -> None:
    response = _raw_upload(http, emu, body, content_type)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalidPayload" and error["message"]
    assert error.get("target") == target
    assert _get(http, emu).json()["data"] == []


@pytest.mark.parametrize("purpose", [None, "batch_output", "Batch", "evals"])
def test_upload_purpose_must_be_one_of_the_upload_purposes(emu: Emulator, http: requests.Session, purpose: str | None) -> None:
    response = _upload(http, emu, b"{}\n", purpose=purpose)
    assert response.status_code == 400
    assert response.json()["error"]["target"] == "purpose"


def test_multipart_with_preamble_and_unicode_filename(emu: Emulator, http: requests.Session) -> None:
    body = (
        b"preamble to ignore\r\n--b0und\r\n"
        b'Content-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n'
        b'--b0und\r\nContent-Disposition: form-data; name="file"; filename="d\xc3\xa9j\xc3\xa0.jsonl"\r\n'
        b"Content-Type: application/jsonl\r\n\r\n"
        b'{"a": 1}\r\n{"b": 2}\r\n'
        b"\r\n--b0und--\r\nepilogue"
    )
    response = _raw_upload(http, emu, body, 'multipart/form-data; boundary="b0und"')
    assert response.status_code == 201, response.text
    assert response.json()["filename"] == "déjà.jsonl"
    assert emu.file_content(response.json()["id"]) == b'{"a": 1}\r\n{"b": 2}\r\n'


def test_chunked_upload_is_spooled_and_recorded_up_to_a_mib(emu: Emulator) -> None:
    line = json.dumps({"custom_id": "x" * 1000}).encode() + b"\n"
    content = line * 3000  # about 3 MB
    boundary = uuid.uuid4().hex
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.jsonl"\r\n\r\n'
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    host, port = emu.host.split(":")
    connection = http.client.HTTPSConnection(host, int(port), context=ssl.create_default_context(cafile=emu.ca_path), timeout=10)
    try:
        pieces = [head, *(content[i : i + 65536] for i in range(0, len(content), 65536)), tail]
        connection.request(
            "POST",
            "/openai/files?api-version=2024-10-21",
            body=iter(pieces),
            encode_chunked=True,
            headers={"api-key": emu.api_key, "Content-Type": f"multipart/form-data; boundary={boundary}"},
        )
        response = connection.getresponse()
        answer = json.loads(response.read())
    finally:
        connection.close()
    assert response.status == 201, answer
    assert answer["bytes"] == len(content)
    assert emu.file_content(answer["id"]) == content
    recorded = emu.requests[-1]
    assert recorded.kind == "files.upload"
    assert len(recorded.body) == 1024 * 1024 and recorded.body.startswith(head)


def test_list_filters_by_purpose_newest_first(emu: Emulator, http: requests.Session) -> None:
    first = emu.add_file("{}\n")
    emu.advance(1)
    tuning = emu.add_file(b"x", purpose="fine-tune", filename="train.jsonl")
    emu.advance(1)
    second = _upload(http, emu, b"{}\n").json()["id"]
    listing = _get(http, emu).json()
    assert listing["object"] == "list"
    assert [item["id"] for item in listing["data"]] == [second, tuning, first]
    assert all(set(item) == FILE_KEYS for item in listing["data"])
    assert [item["id"] for item in _get(http, emu, purpose="batch").json()["data"]] == [second, first]
    assert _get(http, emu, purpose="assistants").json() == {
        "object": "list",
        "data": [],
        "first_id": None,
        "last_id": None,
        "has_more": False,
    }


def test_delete_then_the_file_is_gone(emu: Emulator, http: requests.Session) -> None:
    file_id = emu.add_file("{}\n")
    response = http.delete(files_url(emu, f"/{file_id}"), headers={"api-key": emu.api_key})
    assert (response.status_code, response.json()) == (200, {"object": "file", "deleted": True, "id": file_id})
    for suffix in (f"/{file_id}", f"/{file_id}/content"):
        missing = _get(http, emu, suffix)
        assert missing.status_code == 404
        assert missing.json() == {"error": {"code": "notFound", "message": f"File with id '{file_id}' not found."}}
    again = http.delete(files_url(emu, f"/{file_id}"), headers={"api-key": emu.api_key})
    assert again.status_code == 404 and again.json()["error"]["code"] == "notFound"
    with pytest.raises(KeyError):
        emu.file_content(file_id)
    assert [r.kind for r in emu.requests] == ["files.delete", "files.get", "files.content", "files.delete"]


def test_content_is_streamed_from_disk(emu: Emulator, http: requests.Session, tmp_path: Path) -> None:
    size = 48 * 1024 * 1024
    path = tmp_path / "big.jsonl"
    with path.open("wb") as sparse:
        sparse.truncate(size)
    file_id = emu.add_file(path, purpose="batch_output", filename="big.jsonl")
    # The emulator runs in this process: the traced peak covers its side of the download too.
    tracemalloc.start()
    try:
        response = http.get(files_url(emu, f"/{file_id}/content"), headers={"api-key": emu.api_key}, stream=True)
        assert response.status_code == 200
        assert response.headers["Content-Type"] == "application/octet-stream"
        assert int(response.headers["Content-Length"]) == size
        received = sum(len(chunk) for chunk in response.iter_content(1024 * 1024))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert received == size
    assert peak < size // 4


def test_add_file_takes_bytes_text_and_paths(emu: Emulator, tmp_path: Path) -> None:
    path = tmp_path / "lines.jsonl"
    path.write_bytes(b'{"from": "path"}\n')
    from_bytes = emu.add_file(b'{"a": 1}\n')
    from_text = emu.add_file('{"text": "déjà"}\n', filename="text.jsonl")
    from_path = emu.add_file(path)
    assert emu.file_content(from_bytes) == b'{"a": 1}\n'
    assert emu.file_content(from_text) == '{"text": "déjà"}\n'.encode()
    assert emu.file_content(from_path) == b'{"from": "path"}\n'
    assert emu.file(from_text)["filename"] == "text.jsonl"
    assert all(emu.file(file_id)["status"] == "processed" for file_id in (from_bytes, from_text, from_path))


def test_add_file_can_force_a_status(emu: Emulator) -> None:
    assert emu.file(emu.add_file("not json at all", status="processed"))["status"] == "processed"
    pending = emu.add_file("{}\n", status="pending")
    emu.advance(3600)
    assert emu.file(pending)["status"] == "pending"
    failed = emu.file(emu.add_file("{}\n", status="error"))
    assert failed["status"] == "error" and failed["status_details"]
    output = emu.file(emu.add_file("", purpose="batch_output", status="processed"))
    assert output["purpose"] == "batch_output" and output["bytes"] == 0


@pytest.mark.parametrize(
    "kwargs", [{"purpose": "nonsense"}, {"status": "deleted"}, {"filename": ""}], ids=["purpose", "status", "filename"]
)
def test_add_file_rejects_bad_arguments(emu: Emulator, kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        emu.add_file("{}\n", **kwargs)


def test_files_need_data_plane_auth_and_api_version(emu: Emulator, http: requests.Session) -> None:
    file_id = emu.add_file("{}\n")
    assert http.get(files_url(emu, f"/{file_id}")).status_code == 401
    assert http.get(files_url(emu, f"/{file_id}"), headers={"api-key": "0" * 32}).status_code == 401
    no_version = http.get(f"{emu.url}/openai/files/{file_id}", headers={"api-key": emu.api_key})
    assert no_version.status_code == 404 and no_version.json()["error"]["code"] == "404"
    token = secret_token(http, emu, DATA_SCOPE)
    assert http.get(files_url(emu, f"/{file_id}"), headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert http.get(files_url(emu, f"/{file_id}/content"), headers={"Authorization": f"Bearer {token}"}).content == b"{}\n"


def test_files_are_deleted_when_the_emulator_stops(shared_ca: Any, tmp_path: Path) -> None:
    source = tmp_path / "input.jsonl"
    source.write_text("{}\n")
    with Emulator(ca=shared_ca) as emulator:
        file_id = emulator.add_file(source)
        # Hard-linked, not copied: the emulator's store holds a second name for the same bytes.
        assert source.stat().st_nlink == 2
    assert source.stat().st_nlink == 1
    with pytest.raises(KeyError):
        emulator.file(file_id)


@pytest.mark.parametrize("offset", [-7, -3, -1, 0, 1])
def test_boundary_across_the_scan_block_border(emu: Emulator, http: requests.Session, offset: int) -> None:
    # The body is scanned a MiB at a time: a boundary split between two blocks must still be found.
    head = (
        b'--edge\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n'
        b'--edge\r\nContent-Disposition: form-data; name="file"; filename="edge.jsonl"\r\n\r\n'
    )
    content = b"x" * (1024 * 1024 - len(head) + offset)
    body = head + content + b"\r\n--edge--\r\n"
    response = _raw_upload(http, emu, body, "multipart/form-data; boundary=edge")
    assert response.status_code == 201, response.text
    assert emu.file_content(response.json()["id"]) == content
