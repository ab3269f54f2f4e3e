"""The HTTPS server: TLS per connection, request parsing, the routing table, recording, answers.

Services (Entra, ARM, data plane) contribute :class:`Route` rows; this module knows nothing about
what they do. Every request is recorded before its answer is written, so a test that has just
received an answer always finds its request in the log.
"""

from __future__ import annotations

import itertools
import json
import logging
import re
import selectors
import socket
import socketserver
import ssl
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import attrs

from .auth import identify_caller
from .state import EmulatorState, RecordedRequest

logger = logging.getLogger(__name__)

# Large enough for batch input files (Azure allows 200 MB), small enough to refuse garbage.
MAX_BODY_BYTES = 256 * 1024 * 1024
# A connection that sends nothing for this long is dropped; idle keep-alive connections too.
CONNECTION_TIMEOUT_SECONDS = 60.0
HANDSHAKE_TIMEOUT_SECONDS = 10.0

NOT_FOUND_BODY = b'{"error":{"code":"404","message": "Resource not found"}}'


@attrs.define
class Request:
    """A parsed request as handlers see it; `client_id` is filled in by authentication."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes = attrs.field(repr=False)
    base_url: str
    client_id: str | None = None
    request_id: str = attrs.field(factory=lambda: str(uuid.uuid4()))

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def content_type(self) -> str:
        """The media type without parameters, lower-cased ("" when absent)."""
        return (self.header("content-type") or "").split(";", 1)[0].strip().lower()


@attrs.frozen
class Response:
    status: int
    body: bytes = attrs.field(repr=False)
    headers: Mapping[str, str] = attrs.field(factory=dict)


def json_response(status: int, payload: Any, headers: Mapping[str, str] | None = None) -> Response:
    return Response(
        status=status,
        body=json.dumps(payload, separators=(",", ":")).encode("utf-8"),
        headers=dict(headers or {}),
    )


def not_found(request: Request, match: re.Match[str]) -> Response:
    """Azure's answer for an unknown route or api-version (string code, its spacing)."""
    return Response(404, NOT_FOUND_BODY)


HeaderPolicy = Callable[[Request], dict[str, str]]
Handler = Callable[[Request, re.Match[str]], Response]


def azure_headers(request: Request) -> dict[str, str]:
    """The ids Azure OpenAI puts on every answer; the client's request id is echoed."""
    return {
        "Content-Type": "application/json",
        "apim-request-id": request.request_id,
        "x-request-id": str(uuid.uuid4()),
        "x-ms-client-request-id": request.header("x-ms-client-request-id") or request.request_id,
        "x-ms-region": "Emulator",
    }


def arm_headers(request: Request) -> dict[str, str]:
    return {
        **azure_headers(request),
        "Content-Type": "application/json; charset=utf-8",
        "x-ms-request-id": request.request_id,
        "x-ms-correlation-request-id": (request.header("x-ms-correlation-request-id") or str(uuid.uuid4())),
    }


def entra_headers(request: Request) -> dict[str, str]:
    headers = {"Content-Type": "application/json; charset=utf-8", "x-ms-request-id": request.request_id}
    client_request_id = request.header("client-request-id")
    if client_request_id:
        headers["client-request-id"] = client_request_id
    return headers


@attrs.frozen
class Route:
    """One row of the routing table: method and full-path regex to a handler.

    `kind` names the route in the request log.
    """

    method: str
    pattern: re.Pattern[str]
    kind: str
    handler: Handler
    headers: HeaderPolicy = azure_headers


def route(method: str, pattern: str, kind: str, handler: Handler, headers: HeaderPolicy = azure_headers) -> Route:
    return Route(method, re.compile(pattern), kind, handler, headers)


UNKNOWN_ROUTE = Route("*", re.compile(".*"), "unknown", not_found, azure_headers)


class Router:
    def __init__(self, routes: Iterable[Route]) -> None:
        self._routes = tuple(routes)

    def resolve(self, method: str, path: str) -> tuple[Route, re.Match[str]]:
        for candidate in self._routes:
            if candidate.method == method:
                match = candidate.pattern.fullmatch(path)
                if match is not None:
                    return candidate, match
        match = UNKNOWN_ROUTE.pattern.fullmatch(path)
        assert match is not None  # ".*" matches every path
        return UNKNOWN_ROUTE, match


class _BadFraming(Exception):
    """The request's body framing is broken; answer 400 and drop the connection."""


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "AzureEmulator/1.0"
    timeout = CONNECTION_TIMEOUT_SECONDS
    # Headers and body leave in separate TLS records; with Nagle on, the body would wait for the
    # client's delayed ACK (40 ms per request).
    disable_nagle_algorithm = True
    server: EmulatorHTTPServer

    # Answers to unparsable requests still start with a status line: nobody speaks HTTP/0.9.
    default_request_version = "HTTP/1.1"

    def version_string(self) -> str:
        return self.server_version

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Protocol errors the stdlib detects, answered in JSON like everything else."""
        body = json.dumps({"error": {"code": str(code), "message": message or explain or "Bad request."}}).encode("utf-8")
        self.close_connection = True
        self.send_response(code, message)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD" and code >= 200 and code not in (204, 304):
            self.wfile.write(body)

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s - %s", self.address_string(), format % args)

    def _dispatch(self) -> None:
        split = urlsplit(self.path)
        path = unquote(split.path)
        headers = {name.lower(): value for name, value in self.headers.items()}
        query: dict[str, str] = {}
        for name, value in parse_qsl(split.query, keep_blank_values=True):
            query.setdefault(name, value)
        route_, match = self.server.router.resolve(self.command, path)
        try:
            body = self._read_body()
        except _BadFraming as exc:
            self.close_connection = True
            body = b""
            request = Request(self.command, path, query, headers, body, self.server.base_url)
            response = json_response(400, {"error": {"code": "BadRequest", "message": str(exc)}})
        else:
            request = Request(self.command, path, query, headers, body, self.server.base_url)
            request.client_id = identify_caller(self.server.state, headers)
            response = self._run(route_, request, match)
        self.server.state.record(
            RecordedRequest(
                method=request.method,
                path=request.path,
                query=request.query,
                headers=request.headers,
                body=request.body,
                kind=route_.kind,
                client_id=request.client_id,
                status=response.status,
                connection_id=self.server.connection_id(self.connection),
            )
        )
        self._send(request, route_, response)

    def _run(self, route_: Route, request: Request, match: re.Match[str]) -> Response:
        try:
            return route_.handler(request, match)
        except Exception:
            # The emulator must outlive any bad request: a bug in a handler becomes a 500.
            logger.exception("emulator handler %s failed on %s %s", route_.kind, request.method, request.path)
            return json_response(
                500,
                {"error": {"code": "InternalServerError", "message": "The emulator failed to handle the request."}},
            )

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return self._read_chunked()
        length_header = self.headers.get("Content-Length")
        if length_header is None:
            return b""
        try:
            length = int(length_header)
        except ValueError:
            raise _BadFraming(f"Invalid Content-Length header: {length_header!r}.") from None
        if length < 0 or length > MAX_BODY_BYTES:
            raise _BadFraming(f"Content-Length {length} is out of range.")
        body = self.rfile.read(length)
        if len(body) != length:
            raise _BadFraming("The request body ended before Content-Length bytes.")
        return body

    def _read_chunked(self) -> bytes:
        chunks: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise _BadFraming("Malformed chunk size in a chunked body.") from None
            if size == 0:
                # Trailers end with an empty line.
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(chunks)
            total += size
            if total > MAX_BODY_BYTES:
                raise _BadFraming("The chunked body is too large.")
            chunk = self.rfile.read(size)
            if len(chunk) != size:
                raise _BadFraming("The chunked body ended early.")
            chunks.append(chunk)
            self.rfile.readline(1024)

    def _send(self, request: Request, route_: Route, response: Response) -> None:
        headers = {**route_.headers(request), **response.headers}
        headers.setdefault("Content-Type", "application/json")
        self.send_response(response.status)
        for name, value in headers.items():
            self.send_header(name, value)
        # Keep-alive clients frame every answer by its length.
        self.send_header("Content-Length", str(len(response.body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(response.body)
        self.wfile.flush()


class EmulatorHTTPServer(ThreadingHTTPServer):
    """A threaded HTTPS server; the TLS handshake runs in each connection's own thread."""

    daemon_threads = True
    allow_reuse_address = True
    # socketserver's default backlog of 5 drops the SYNs of a burst of clients, which then
    # retry a second later: concurrency tests would measure the kernel's retransmit timer.
    request_queue_size = 128

    def __init__(
        self,
        address: tuple[str, int],
        *,
        routes: Iterable[Route],
        state: EmulatorState,
        ssl_context: ssl.SSLContext,
    ) -> None:
        self.router = Router(routes)
        self.state = state
        self._ssl_context = ssl_context
        # Live connections, numbered in accept order so the log can show keep-alive reuse.
        self._connections: dict[ssl.SSLSocket, int] = {}
        self._connection_numbers = itertools.count(1)
        self._connections_lock = threading.Lock()
        self._wake_reader, self._wake_writer = socket.socketpair()
        self._thread: threading.Thread | None = None
        try:
            super().__init__(address, _RequestHandler)
        except BaseException:
            self._wake_reader.close()
            self._wake_writer.close()
            raise
        self.host = f"{address[0]}:{self.server_port}"
        self.base_url = f"https://{self.host}"

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host's FQDN, a DNS lookup the emulator never needs.
        socketserver.TCPServer.server_bind(self)
        host, port = self.socket.getsockname()[:2]
        self.server_name, self.server_port = str(host), int(port)

    def finish_request(self, request: Any, client_address: Any) -> None:
        # Handshaking here rather than in accept() keeps one silent client from stalling the
        # accept loop for everyone.
        raw: socket.socket = request
        raw.settimeout(HANDSHAKE_TIMEOUT_SECONDS)
        try:
            connection = self._ssl_context.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            logger.debug("TLS handshake with %s failed: %s", client_address, exc)
            return
        with self._connections_lock:
            self._connections[connection] = next(self._connection_numbers)
        try:
            _RequestHandler(connection, client_address, self)
        except (ssl.SSLError, OSError) as exc:
            logger.debug("connection from %s ended: %s", client_address, exc)
        finally:
            with self._connections_lock:
                self._connections.pop(connection, None)
            connection.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        # socketserver calls this from inside its own except block.
        logger.exception("unexpected error on the connection from %s", client_address)  # noqa: LOG004

    def connection_id(self, connection: Any) -> int:
        with self._connections_lock:
            return self._connections.get(connection, 0)

    def start(self) -> None:
        """Accept connections on a background thread until :meth:`stop`."""
        self._thread = threading.Thread(target=self._serve, name=f"azure-emulator-{self.host}", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        # Like serve_forever, but woken by a socket pair instead of polling, so stop() returns
        # at once (the test suite starts and stops an emulator per test).
        with selectors.DefaultSelector() as selector:
            selector.register(self.socket, selectors.EVENT_READ)
            selector.register(self._wake_reader, selectors.EVENT_READ)
            while True:
                ready = selector.select()
                if any(key.fileobj is self._wake_reader for key, _ in ready):
                    return
                try:
                    request, client_address = self.get_request()
                except OSError:
                    continue
                try:
                    self.process_request(request, client_address)
                except (RuntimeError, OSError):  # no thread could be started for it
                    self.handle_error(request, client_address)
                    self.shutdown_request(request)

    def stop(self) -> None:
        """Stop accepting, cut live connections, release the port."""
        self._wake_writer.send(b"x")
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._close_connections()
        self.server_close()
        self._wake_reader.close()
        self._wake_writer.close()

    def _close_connections(self) -> None:
        """Cut live keep-alive connections so their threads end and clients see the stop."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
