"""A tiny TLS server on 127.0.0.1 that misbehaves in one chosen way, for real exception chains.

Each behaviour gets the accepted TCP socket and the server's TLS context and does what a peer,
a gateway or a dying service does: reset or close during the handshake, present a certificate
the client must refuse, close without TLS close_notify while the request is written or the
answer read, stall, or cut a chunked answer.
"""

from __future__ import annotations

import socket
import ssl
import struct
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import requests
import trustme

from polysync_azure_openai.http.fastpath import FastSession

Behaviour = Callable[[socket.socket, ssl.SSLContext], None]


def _reset(sock: socket.socket) -> None:
    """Close with a TCP RST (SO_LINGER 0), as a crashed peer or a load balancer does."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def _read_head(tls: ssl.SSLSocket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = tls.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def _read_request(tls: ssl.SSLSocket) -> None:
    data = _read_head(tls)
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        chunk = tls.recv(65536)
        if not chunk:
            break
        body += chunk


def reset_in_handshake(raw: socket.socket, context: ssl.SSLContext) -> None:
    raw.recv(65536)  # the ClientHello
    _reset(raw)


def eof_in_handshake(raw: socket.socket, context: ssl.SSLContext) -> None:
    raw.recv(65536)  # the ClientHello, read so that the close is a clean FIN
    raw.shutdown(socket.SHUT_RDWR)
    raw.close()


def stall_in_handshake(raw: socket.socket, context: ssl.SSLContext) -> None:
    raw.recv(65536)
    raw.settimeout(10)
    try:
        raw.recv(1)  # until the client gives up
    except OSError:
        pass
    raw.close()


def _tls(then: Callable[[ssl.SSLSocket], None]) -> Behaviour:
    def behaviour(raw: socket.socket, context: ssl.SSLContext) -> None:
        try:
            tls = context.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError):
            raw.close()  # the client refused the certificate: nothing more to do
            return
        then(tls)

    return behaviour


def _handshake_only(tls: ssl.SSLSocket) -> None:
    tls.close()


def _cut_during_body(tls: ssl.SSLSocket) -> None:
    _read_head(tls)  # the headers, not the body the client is still writing
    _reset(tls)  # no close_notify


def _close_after_request(tls: ssl.SSLSocket) -> None:
    _read_request(tls)
    tls.close()  # a plain close: no close_notify (that needs unwrap())


def _reset_after_request(tls: ssl.SSLSocket) -> None:
    _read_request(tls)
    _reset(tls)


def _stall_answer(tls: ssl.SSLSocket) -> None:
    _read_request(tls)
    tls.settimeout(10)
    try:
        tls.recv(1)  # until the client gives up
    except OSError:
        pass
    tls.close()


def _cut_chunked_answer(tls: ssl.SSLSocket) -> None:
    _read_request(tls)
    tls.sendall(b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n{"id":')
    tls.close()


def _cut_sized_answer(tls: ssl.SSLSocket) -> None:
    _read_request(tls)
    tls.sendall(b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"id":')
    tls.close()


def answer(raw: bytes) -> Behaviour:
    """Read each request and send ``raw`` (status line, headers and body, as given); then close.

    For answer shapes the emulator never sends (a chunked or gzip-encoded body, a body shorter
    than its Content-Length) that a gateway or Azure's front end may.
    """

    def then(tls: ssl.SSLSocket) -> None:
        _read_request(tls)
        tls.sendall(raw)
        tls.close()

    return _tls(then)


def hold_after_headers(head: bytes, release: threading.Event) -> Behaviour:
    """Send ``head`` (status line and headers announcing a body), then nothing until ``release`` is
    set; then close, cutting the body: the client is caught mid-answer for as long as a test needs."""

    def then(tls: ssl.SSLSocket) -> None:
        _read_request(tls)
        tls.sendall(head)
        release.wait(30)
        tls.close()

    return _tls(then)


untrusted_handshake = _tls(_handshake_only)
cut_during_body = _tls(_cut_during_body)
close_after_request = _tls(_close_after_request)
reset_after_request = _tls(_reset_after_request)
stall_answer = _tls(_stall_answer)
cut_chunked_answer = _tls(_cut_chunked_answer)
cut_sized_answer = _tls(_cut_sized_answer)


@contextmanager
def loopback(behaviour: Behaviour, issuer: trustme.CA, hostname: str = "127.0.0.1") -> Iterator[str]:
    """The https origin of a server that runs ``behaviour`` on every connection, with a certificate
    for ``hostname`` issued by ``issuer``."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    issuer.issue_cert(hostname).configure_cert(context)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                raw, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            raw.settimeout(10)
            threading.Thread(target=_quietly, args=(behaviour, raw, context), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join()
        listener.close()


def _quietly(behaviour: Behaviour, raw: socket.socket, context: ssl.SSLContext) -> None:
    try:
        behaviour(raw, context)
    except OSError:
        pass  # the client went away first: its side is what the test looks at


@contextmanager
def full_backlog() -> Iterator[str]:
    """An origin whose accept queue is full: the SYN is dropped and connecting times out."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(3):
        filler = socket.socket()
        filler.setblocking(False)
        try:
            filler.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        fillers.append(filler)
    try:
        yield f"https://127.0.0.1:{port}"
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


def closed_port() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"https://127.0.0.1:{probe.getsockname()[1]}"


def raised(
    origin: str, ca_bundle: str, *, method: str = "POST", body: bytes = b"{}", read_timeout: float = 5.0
) -> requests.RequestException:
    """What the plugin's own fast path raises for one request to ``origin`` (it must raise)."""
    session = FastSession(origin, ca_bundle)
    try:
        session.send(
            method,
            f"{origin}/openai/deployments/d/chat/completions",
            params=None,
            body=body,
            headers={"Content-Type": "application/json"},
            auth=lambda request: request,
            timeout=(0.5, read_timeout),
            stream=False,
        )
    except requests.RequestException as exc:
        return exc
    finally:
        session.close()
    raise AssertionError(f"{origin} answered")
