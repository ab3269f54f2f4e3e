"""Injected faults, driven per test and seen through plain requests; and requests that must not hurt."""

from __future__ import annotations

import json
import socket
import ssl
import threading
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from http.client import HTTPException, HTTPSConnection
from typing import Any

import pytest
import requests

from polysync_azure_openai.emulator import Emulator, RecordingServer, faults

from .emulator_helpers import batch_jsonl, batches_url, chat_url, embeddings_url

PROMPT = {"messages": [{"role": "user", "content": "Name a prime number."}]}


def _chat(http: requests.Session, emu: Emulator, **kwargs: Any) -> requests.Response:
    return http.post(chat_url(emu), json=PROMPT, headers={"api-key": emu.api_key}, **kwargs)


def _create_batch(http: requests.Session, emu: Emulator) -> requests.Response:
    body = {"input_file_id": emu.add_file(batch_jsonl(1)), "endpoint": "/chat/completions", "completion_window": "24h"}
    return http.post(batches_url(emu), json=body, headers={"api-key": emu.api_key})


def test_throttled_n_times_then_served(emu: Emulator, http: requests.Session) -> None:
    rule = emu.inject(faults.throttled(6, retry_after_ms=5500, x_ms_retry_after_ms=5500), kind="chat", times=3)
    answers = [_chat(http, emu) for _ in range(4)]
    assert [answer.status_code for answer in answers] == [429, 429, 429, 200]
    throttled = answers[0]
    assert throttled.headers["Retry-After"] == "6"
    assert throttled.headers["retry-after-ms"] == "5500" and throttled.headers["x-ms-retry-after-ms"] == "5500"
    error = throttled.json()["error"]
    assert error["code"] == "429" and "Please retry after 6 seconds." in error["message"]
    assert throttled.headers["apim-request-id"]
    assert rule.hits == 3 and rule.remaining == 0
    assert [(r.kind, r.status, r.fault) for r in emu.requests] == [("chat", 429, "status 429")] * 3 + [("chat", 200, None)]


def test_retry_after_as_an_http_date(emu: Emulator, http: requests.Session) -> None:
    when = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=30)
    emu.inject(faults.throttled(when), kind="chat")
    response = _chat(http, emu)
    assert response.status_code == 429
    assert parsedate_to_datetime(response.headers["Retry-After"]) == when
    assert "retry-after-ms" not in response.headers


@pytest.mark.parametrize(
    ("code", "body"),
    [
        (
            500,
            {
                "error": {
                    "code": "InternalServerError",
                    "message": "Backend returned unexpected response. Please contact Microsoft for help.",
                }
            },
        ),
        (502, {"error": {"code": "BadGateway", "message": "Bad gateway: the backend did not answer in time."}}),
        (
            503,
            {
                "error": {
                    "code": "ServiceUnavailable",
                    "message": "The service is temporarily unable to process your request. Please try again later.",
                }
            },
        ),
        (504, {"error": {"code": "Timeout", "message": "The operation was timeout."}}),
        (
            401,
            {
                "statusCode": 401,
                "message": "Unauthorized. Access token is missing, invalid, audience is incorrect "
                "(https://cognitiveservices.azure.com), or have expired.",
            },
        ),
        (418, {"error": {"code": "418", "message": "I'm a Teapot"}}),
    ],
)
def test_status_faults_have_azure_shaped_default_bodies(
    emu: Emulator, http: requests.Session, code: int, body: dict[str, Any]
) -> None:
    emu.inject(faults.Status(code), kind="chat")
    response = _chat(http, emu)
    assert (response.status_code, response.json()) == (code, body)
    assert response.headers["Content-Type"] == "application/json"
    assert _chat(http, emu).status_code == 200


def test_status_with_custom_body_and_headers(emu: Emulator, http: requests.Session) -> None:
    emu.inject(
        faults.Status(503, "<html>busy</html>", headers={"Content-Type": "text/html", "Retry-After": "1"}), kind="embeddings"
    )
    response = http.post(embeddings_url(emu), json={"input": "x"}, headers={"api-key": emu.api_key})
    assert (response.status_code, response.text) == (503, "<html>busy</html>")
    assert response.headers["Content-Type"] == "text/html" and response.headers["Retry-After"] == "1"


def test_a_status_fault_stops_the_request_before_the_service(emu: Emulator, http: requests.Session) -> None:
    emu.inject(faults.Status(500), kind="batches.create")
    assert _create_batch(http, emu).status_code == 500
    assert emu.batches == []


def test_a_handled_status_fault_lets_the_service_act_first(emu: Emulator, http: requests.Session) -> None:
    emu.inject(faults.Status(504, handled=True), kind="batches.create")
    assert _create_batch(http, emu).status_code == 504
    assert len(emu.batches) == 1


def test_a_401_once(emu: Emulator, http: requests.Session) -> None:
    emu.inject(faults.Status(401), kind="chat")
    assert _chat(http, emu).json()["statusCode"] == 401
    assert _chat(http, emu).status_code == 200


def test_reset_before_the_body_is_read(emu: Emulator, http: requests.Session) -> None:
    emu.inject(faults.ResetBeforeBody(), kind="embeddings")
    with pytest.raises(requests.exceptions.ConnectionError):
        http.post(embeddings_url(emu), json={"input": ["x" * 1000] * 1000}, headers={"api-key": emu.api_key})
    [recorded] = emu.requests
    assert (recorded.kind, recorded.status, recorded.fault, recorded.body) == ("embeddings", 0, "reset_before_body", b"")
    assert http.post(embeddings_url(emu), json={"input": "x"}, headers={"api-key": emu.api_key}).status_code == 200


@pytest.mark.parametrize("handled", [True, False])
def test_reset_before_the_response(emu: Emulator, http: requests.Session, handled: bool) -> None:
    emu.inject(faults.ResetBeforeResponse(handled=handled), kind="batches.create")
    with pytest.raises(requests.exceptions.ConnectionError):
        _create_batch(http, emu)
    [recorded] = emu.requests
    assert (recorded.status, recorded.fault) == (0, "reset_before_response")
    assert json.loads(recorded.body)["endpoint"] == "/chat/completions"
    assert len(emu.batches) == (1 if handled else 0)


def test_delay_before_the_status_line(emu: Emulator, http: requests.Session) -> None:
    emu.inject(faults.Delay(0.5), kind="batches.create")
    body = {"input_file_id": emu.add_file(batch_jsonl(1)), "endpoint": "/chat/completions", "completion_window": "24h"}
    with pytest.raises(requests.exceptions.ReadTimeout):
        http.post(batches_url(emu), json=body, headers={"api-key": emu.api_key}, timeout=(5, 0.1))
    # The service acted; only the answer came too late for this client.
    assert len(emu.batches) == 1
    emu.inject(faults.Delay(0.01), kind="chat")
    assert _chat(http, emu, timeout=5).status_code == 200


def test_stalled_body_times_the_read_out(emu: Emulator, http: requests.Session) -> None:
    emu.inject(faults.StallBody(0.5), kind="chat")
    response = _chat(http, emu, timeout=(5, 0.1), stream=True)
    assert response.status_code == 200
    with pytest.raises((requests.exceptions.ConnectionError, requests.exceptions.Timeout)):
        response.content  # noqa: B018
    response.close()


def test_sleeping_faults_end_when_the_emulator_stops(shared_ca: Any) -> None:
    emulator = Emulator(ca=shared_ca).start()
    rule = emulator.inject(faults.Delay(60), kind="chat")
    outcome: list[BaseException | int] = []

    def call() -> None:
        with requests.Session() as session:
            session.trust_env = False
            try:
                outcome.append(_chat(session, emulator, verify=emulator.ca_path).status_code)
            except requests.exceptions.RequestException as exc:
                outcome.append(exc)

    caller = threading.Thread(target=call)
    caller.start()
    try:
        while rule.hits == 0 and caller.is_alive():
            threading.Event().wait(0.01)
    finally:
        emulator.stop()
    caller.join(timeout=10)
    assert not caller.is_alive()
    assert isinstance(outcome[0], requests.exceptions.ConnectionError)


def test_malformed_json_with_200(emu: Emulator, http: requests.Session) -> None:
    emu.inject(faults.MalformedJson(), kind="chat")
    response = _chat(http, emu)
    assert response.status_code == 200 and response.headers["Content-Type"] == "application/json"
    with pytest.raises(requests.exceptions.JSONDecodeError):
        response.json()


def test_truncated_body(emu: Emulator, http: requests.Session) -> None:
    emu.inject(faults.TruncatedBody(), kind="chat")
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        _chat(http, emu)
    assert _chat(http, emu).status_code == 200


@pytest.mark.parametrize("status", [200, 502])
def test_html_error_page(emu: Emulator, http: requests.Session, status: int) -> None:
    emu.inject(faults.HtmlPage(status), kind="chat")
    response = _chat(http, emu)
    assert response.status_code == status
    assert response.headers["Content-Type"] == "text/html"
    assert response.text.startswith("<!DOCTYPE html>") and str(status) in response.text


def test_json_under_another_content_type(emu: Emulator, http: requests.Session) -> None:
    emu.inject(faults.ContentType("text/plain"), kind="chat")
    response = _chat(http, emu)
    assert response.headers["Content-Type"] == "text/plain"
    assert response.json()["choices"]


@pytest.mark.parametrize("field", ["choices", "usage"])
def test_chat_answer_without_a_field(emu: Emulator, http: requests.Session, field: str) -> None:
    emu.inject(faults.DropFields([field]), kind="chat")
    answer = _chat(http, emu).json()
    assert field not in answer and answer["object"] == "chat.completion"


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_redirect_to_a_second_server(emu: Emulator, http: requests.Session, status: int) -> None:
    with RecordingServer(emu.ca) as elsewhere:
        emu.inject(faults.Redirect(elsewhere.url + "/stolen", status), kind="chat", times=2)
        response = _chat(http, emu, allow_redirects=False)
        assert response.status_code == status
        assert response.headers["Location"] == elsewhere.url + "/stolen"
        assert elsewhere.requests == []
        # What the redirect is there to catch: a client that follows it hands over its api-key.
        followed = _chat(http, emu)
        assert followed.status_code == 200 and followed.json() == {}
        [leaked] = elsewhere.requests
        assert leaked.path == "/stolen" and leaked.headers["api-key"] == emu.api_key
        assert leaked.kind == "recorded"


def test_recording_server_records_every_method(emu: Emulator, http: requests.Session) -> None:
    with RecordingServer(emu.ca) as elsewhere:
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
            response = http.request(method, f"{elsewhere.url}/x?y=1", data=b"body", headers={"Authorization": "Bearer t"})
            assert (response.status_code, response.json()) == (200, {})
        assert [(r.method, r.path, r.query, r.body) for r in elsewhere.requests] == [
            (method, "/x", {"y": "1"}, b"body") for method in ("GET", "POST", "PUT", "PATCH", "DELETE")
        ]
        assert elsewhere.requests[0].headers["authorization"] == "Bearer t"
    with pytest.raises(RuntimeError):
        _ = elsewhere.url


def test_content_filter_for_any_prompt(emu: Emulator, http: requests.Session) -> None:
    emu.inject(faults.ContentFilter(), kind="chat")
    response = _chat(http, emu)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "content_filter" and error["innererror"]["content_filter_result"]["violence"]["filtered"]


def test_matching_by_path_and_method_until_cleared(emu: Emulator, http: requests.Session) -> None:
    emu.inject(faults.Status(503), path=r"/openai/deployments/[^/]+/embeddings", method="post", times=None)
    emu.inject(faults.Status(500), method="GET")
    assert _chat(http, emu).status_code == 200
    for _ in range(3):
        assert http.post(embeddings_url(emu), json={"input": "x"}, headers={"api-key": emu.api_key}).status_code == 503
    assert http.get(emu.url + "/anything").status_code == 500
    assert http.get(emu.url + "/anything").status_code == 404
    emu.clear_faults()
    assert http.post(embeddings_url(emu), json={"input": "x"}, headers={"api-key": emu.api_key}).status_code == 200


def test_the_first_armed_rule_wins(emu: Emulator, http: requests.Session) -> None:
    first = emu.inject(faults.Status(500), kind="chat")
    second = emu.inject(faults.Status(502), kind="chat")
    assert [_chat(http, emu).status_code for _ in range(3)] == [500, 502, 200]
    assert (first.hits, second.hits) == (1, 1)


@pytest.mark.parametrize("times", [0, -1, True, 1.5])
def test_times_must_be_positive(emu: Emulator, times: Any) -> None:
    with pytest.raises(ValueError):
        emu.inject(faults.Status(500), times=times)


def _connection(emu: Emulator) -> HTTPSConnection:
    host, port = emu.host.split(":")
    return HTTPSConnection(host, int(port), context=ssl.create_default_context(cafile=emu.ca_path), timeout=10)


def test_idle_keep_alive_connections_are_closed(emu: Emulator, http: requests.Session) -> None:
    assert _chat(http, emu).status_code == 200
    raw = _connection(emu)
    raw.request("GET", "/nowhere")
    raw.getresponse().read()
    assert emu.close_idle_connections() == 2
    # A client that checks its pool before reuse (urllib3) reconnects.
    assert _chat(http, emu).status_code == 200
    first, _, third = (request.connection_id for request in emu.requests)
    assert third != first
    # One that does not finds the connection dead.
    with pytest.raises((HTTPException, OSError)):
        raw.request("GET", "/nowhere")
        raw.getresponse().read()
    raw.close()


def test_a_busy_connection_closes_after_its_answer(emu: Emulator, http: requests.Session) -> None:
    rule = emu.inject(faults.Delay(0.2), kind="chat")
    result: list[int] = []
    caller = threading.Thread(target=lambda: result.append(_chat(http, emu).status_code))
    caller.start()
    while rule.hits == 0 and caller.is_alive():
        threading.Event().wait(0.01)
    assert emu.close_idle_connections() == 1
    caller.join(timeout=10)
    assert result == [200]
    assert _chat(http, emu).status_code == 200
    first, second = (request.connection_id for request in emu.requests)
    assert first != second


def _raw_exchange(emu: Emulator, payload: bytes) -> bytes:
    host, port = emu.host.split(":")
    context = ssl.create_default_context(cafile=emu.ca_path)
    with socket.create_connection((host, int(port)), timeout=10) as sock, context.wrap_socket(sock, server_hostname=host) as tls:
        tls.sendall(payload)
        chunks = []
        while chunk := tls.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", id="huge-request-line"),
        pytest.param(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 70_000 + b"\r\n\r\n", id="huge-header"),
        pytest.param(b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(150)) + b"\r\n", id="too-many-headers"),
        pytest.param(b"POST /openai/files HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", id="bad-chunk"),
        pytest.param(b"\x16\x03\x01garbage\r\n\r\n", id="garbage"),
    ],
)
def test_bad_requests_are_400_and_the_server_lives(emu: Emulator, http: requests.Session, payload: bytes) -> None:
    head, _, body = _raw_exchange(emu, payload).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400"), head
    assert json.loads(body)["error"]["message"]
    assert _chat(http, emu).status_code == 200


@pytest.mark.parametrize(
    ("url_suffix", "data", "content_type"),
    [
        ("/openai/files", b"\x00\xff" * 100, "application/octet-stream"),
        ("/openai/batches", b"\x00\xff" * 100, "application/json"),
        ("/openai/batches", b'{"input_file_id": ["x"]}', "application/json"),
        ("/openai/deployments/gpt-4o/chat/completions", b"\x00\xff", "multipart/form-data; boundary=x"),
    ],
)
def test_garbage_bodies_are_400(emu: Emulator, http: requests.Session, url_suffix: str, data: bytes, content_type: str) -> None:
    response = http.post(
        f"{emu.url}{url_suffix}?api-version=2024-10-21", data=data, headers={"api-key": emu.api_key, "Content-Type": content_type}
    )
    assert response.status_code == 400
    assert response.json()["error"]["message"]
