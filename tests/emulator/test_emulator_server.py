"""The server underneath: routing, recording, HTTP/1.1 framing, robustness, life cycle."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import socket
import ssl
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from polysync_azure_openai.emulator import Deployment, Emulator, RecordedRequest
from polysync_azure_openai.emulator.server import (
    EmulatorHTTPServer,
    Request,
    Response,
    route,
)
from polysync_azure_openai.emulator.state import EmulatorState
from polysync_azure_openai.emulator.tls import make_server_tls

from .emulator_helpers import (
    ARM_SCOPE,
    DATA_SCOPE,
    chat_url,
    deployments_url,
    embeddings_url,
    secret_token,
)


def _connection(emu: Emulator) -> http.client.HTTPSConnection:
    host, port = emu.host.split(":")
    context = ssl.create_default_context(cafile=emu.ca_path)
    return http.client.HTTPSConnection(host, int(port), context=context, timeout=10)


def test_unknown_route_is_resource_not_found(emu: Emulator, http: requests.Session) -> None:
    for method, path in [
        ("GET", "/"),
        ("POST", "/openai/whatever?api-version=2024-10-21"),
        ("DELETE", "/openai/deployments/gpt-4o/chat/completions"),
    ]:
        response = http.request(method, emu.url + path)
        assert response.status_code == 404
        assert response.content == b'{"error":{"code":"404","message": "Resource not found"}}'
        assert response.headers["apim-request-id"]
    assert {request.kind for request in emu.requests} == {"unknown"}


def test_every_request_is_recorded_with_kind_and_caller(emu: Emulator, http: requests.Session) -> None:
    data_token = secret_token(http, emu, DATA_SCOPE)
    arm_token = secret_token(http, emu, ARM_SCOPE)
    emu.clear_requests()
    http.get(f"{emu.url}/{emu.tenant_id}/v2.0/.well-known/openid-configuration")
    http.post(
        chat_url(emu) + "&x=1",
        json={"messages": [{"role": "user", "content": "hi"}]},
        headers={"Authorization": f"Bearer {data_token}", "X-Custom": "yes"},
    )
    http.post(embeddings_url(emu), json={"input": "hi"}, headers={"api-key": emu.api_key})
    http.post(embeddings_url(emu), json={"input": "hi"}, headers={"api-key": "wrong"})
    http.get(deployments_url(emu), params={"api-version": "2023-05-01"}, headers={"Authorization": f"Bearer {arm_token}"})
    http.get(emu.url + "/nowhere")
    recorded = emu.requests
    assert [(r.kind, r.client_id, r.status) for r in recorded] == [
        ("entra.discovery", None, 200),
        ("chat", emu.client_id, 200),
        ("embeddings", "api-key", 200),
        ("embeddings", None, 401),
        ("arm.deployments", emu.client_id, 200),
        ("unknown", None, 404),
    ]
    chat = recorded[1]
    assert isinstance(chat, RecordedRequest)
    assert chat.method == "POST" and chat.path == "/openai/deployments/gpt-4o/chat/completions"
    assert chat.query == {"api-version": "2024-10-21", "x": "1"}
    assert chat.headers["x-custom"] == "yes"
    assert json.loads(chat.body) == {"messages": [{"role": "user", "content": "hi"}]}
    emu.clear_requests()
    assert emu.requests == []


def test_concurrent_requests_are_all_answered_and_recorded(emu: Emulator) -> None:
    def call(index: int) -> int:
        with requests.Session() as session:
            session.trust_env = False
            response = session.post(
                embeddings_url(emu),
                json={"input": f"text {index}"},
                headers={"api-key": emu.api_key},
                verify=emu.ca_path,
            )
            return response.status_code

    with ThreadPoolExecutor(max_workers=16) as pool:
        statuses = list(pool.map(call, range(32)))
    assert statuses == [200] * 32
    assert len(emu.requests) == 32
    assert len({request.connection_id for request in emu.requests}) == 32


def test_keep_alive_and_content_length_on_every_answer(emu: Emulator) -> None:
    connection = _connection(emu)
    try:
        sockets = []
        for path in ["/nowhere", f"/{emu.tenant_id}/v2.0/.well-known/openid-configuration", "/again"]:
            connection.request("GET", path)
            response = connection.getresponse()
            body = response.read()
            assert response.version == 11
            assert int(response.headers["Content-Length"]) == len(body)
            sockets.append(connection.sock)
        assert sockets[0] is sockets[1] is sockets[2]
    finally:
        connection.close()
    first, second, third = (request.connection_id for request in emu.requests)
    assert first == second == third != 0
    other = _connection(emu)
    other.request("GET", "/nowhere")
    other.getresponse().read()
    other.close()
    assert emu.requests[-1].connection_id != first


def test_chunked_request_body_is_read(emu: Emulator) -> None:
    connection = _connection(emu)
    try:
        parts = [b'{"input": ', b'"chunked text"}']
        connection.request(
            "POST",
            embeddings_url(emu).removeprefix(emu.url),
            body=iter(parts),
            encode_chunked=True,
            headers={"api-key": emu.api_key, "Content-Type": "application/json", "Transfer-Encoding": "chunked"},
        )
        response = connection.getresponse()
        assert response.status == 200, response.read()
        assert len(json.loads(response.read())["data"][0]["embedding"]) == 1536
    finally:
        connection.close()
    assert emu.requests[-1].body == b'{"input": "chunked text"}'


def _raw_exchange(emu: Emulator, payload: bytes) -> bytes:
    host, port = emu.host.split(":")
    context = ssl.create_default_context(cafile=emu.ca_path)
    with socket.create_connection((host, int(port)), timeout=10) as raw, context.wrap_socket(raw, server_hostname=host) as tls:
        tls.sendall(payload)
        chunks = []
        while chunk := tls.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)


def test_bad_content_length_is_400_and_closes(emu: Emulator) -> None:
    answer = _raw_exchange(emu, b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: nope\r\n\r\n")
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400")
    assert b"Connection: close" in head
    assert json.loads(body)["error"]["code"] == "BadRequest"


def test_garbage_request_line_does_not_kill_the_server(emu: Emulator, http: requests.Session) -> None:
    answer = _raw_exchange(emu, b"\x00\x01 nonsense\r\n\r\n")
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400")
    assert json.loads(body)["error"]["code"] == "400"
    assert http.get(emu.url + "/nowhere").status_code == 404


def test_plain_http_and_untrusting_clients_do_not_kill_the_server(emu: Emulator, http: requests.Session) -> None:
    host, port = emu.host.split(":")
    with socket.create_connection((host, int(port)), timeout=10) as raw:
        raw.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        with contextlib.suppress(ConnectionResetError):  # the failed handshake may reset
            assert not raw.recv(100).startswith(b"HTTP/")
    untrusting = requests.Session()
    untrusting.trust_env = False
    with pytest.raises(requests.exceptions.SSLError):
        untrusting.get(emu.url + "/nowhere", verify=True)
    untrusting.close()
    assert http.get(emu.url + "/nowhere").status_code == 404


@pytest.fixture
def crashing_server() -> Iterator[tuple[str, str]]:
    def explode(request: Request, match: re.Match[str]) -> Response:
        raise RuntimeError("handler bug")

    tls = make_server_tls()
    server = EmulatorHTTPServer(
        ("127.0.0.1", 0),
        routes=[route("GET", "/boom", "boom", explode)],
        state=EmulatorState(token_lifetime=3600, page_size=100),
        ssl_context=tls.context,
    )
    server.start()
    yield server.base_url, str(tls.ca_path)
    server.stop()
    tls.cleanup()


def test_handler_exception_becomes_a_logged_500(crashing_server: tuple[str, str], caplog: pytest.LogCaptureFixture) -> None:
    url, ca_path = crashing_server
    session = requests.Session()
    session.trust_env = False
    response = session.get(url + "/boom", verify=ca_path)
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "InternalServerError"
    assert any("handler bug" in (record.exc_text or "") or record.exc_info for record in caplog.records)
    assert session.get(url + "/boom", verify=ca_path).status_code == 500
    session.close()


def test_stop_cuts_keep_alive_connections_and_frees_the_port(shared_ca: Any) -> None:
    emulator = Emulator(ca=shared_ca).start()
    connection = _connection(emulator)
    connection.request("GET", "/nowhere")
    connection.getresponse().read()
    ca_path = emulator.ca_path
    emulator.stop()
    with pytest.raises((http.client.HTTPException, OSError)):
        connection.request("GET", "/nowhere")
        connection.getresponse()
    connection.close()
    assert not os.path.exists(ca_path)
    with pytest.raises(RuntimeError):
        _ = emulator.url


def test_settings_are_validated(emu: Emulator) -> None:
    with pytest.raises(ValueError):
        emu.page_size = 0
    with pytest.raises(ValueError):
        emu.token_lifetime = -5
    with pytest.raises(ValueError):
        Emulator(cloud="Mars")
    with pytest.raises(ValueError):
        emu.set_deployments([Deployment("twice", "gpt-4o"), Deployment("twice", "gpt-4o-mini")])
