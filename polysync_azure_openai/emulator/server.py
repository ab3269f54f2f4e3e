"""The HTTPS server: TLS per connection, request parsing, the routing table, recording, answers.

Services (Entra, ARM, data plane, files, batches) contribute :class:`Route` rows; this module
knows nothing about what they do. Each request becomes an :class:`Exchange`, which an injected
fault (faults.py) may take over before routing. Every request is recorded before its answer is
written, so a test that has just received an answer always finds its request in the log.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import re
import selectors
import socket
import socketserver
import ssl
import struct
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, BinaryIO, Protocol
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
# Bodies move between socket and disk in pieces of this size, never whole.
IO_CHUNK_BYTES = 1024 * 1024
# The request log keeps this much of a body spooled to disk (a 200 MB upload stays on disk).
RECORDED_SPOOL_BYTES = 1024 * 1024

NOT_FOUND_BODY = b'{"error":{"code":"404","message": "Resource not found"}}'
# What a connection is doing, for close_idle_connections().
HANDLING, WRITING, IDLE = "handling", "writing", "idle"


@attrs.define
class Request:
    """A parsed request as handlers see it; `client_id` is filled in by authentication.

    On a route that spools its body (uploads), `body_path` names the file holding the whole body
    and `body` keeps only its first MiB, for the request log.
    """

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes = attrs.field(repr=False)
    base_url: str
    client_id: str | None = None
    request_id: str = attrs.field(factory=lambda: str(uuid.uuid4()))
    body_path: Path | None = None

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def content_type(self) -> str:
        """The media type without parameters, lower-cased ("" when absent)."""
        return (self.header("content-type") or "").split(";", 1)[0].strip().lower()


@attrs.frozen
class Response:
    """An answer; with `stream` set, its `stream_length` bytes are sent from that open file instead of `body`.

    The server closes the stream once the answer is sent (or abandoned).
    """

    status: int
    body: bytes = attrs.field(repr=False)
    headers: Mapping[str, str] = attrs.field(factory=dict)
    stream: BinaryIO | None = attrs.field(default=None, repr=False, eq=False)
    stream_length: int = 0

    @property
    def length(self) -> int:
        return self.stream_length if self.stream is not None else len(self.body)


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


# What the gateway reports left of a minute when the answer names no deployment (files, batches,
# errors): a fresh window of a 10-unit deployment. Inference answers report their deployment's.
_DEFAULT_REMAINING_REQUESTS = "59"
_DEFAULT_REMAINING_TOKENS = "10000"


def azure_headers(request: Request) -> dict[str, str]:
    """The ids and rate-limit headers Azure OpenAI puts on every answer; the client's request id is echoed."""
    return {
        "Content-Type": "application/json",
        "apim-request-id": request.request_id,
        "x-request-id": str(uuid.uuid4()),
        "x-ms-client-request-id": request.header("x-ms-client-request-id") or request.request_id,
        "x-ms-region": "Emulator",
        "x-ratelimit-remaining-requests": _DEFAULT_REMAINING_REQUESTS,
        "x-ratelimit-remaining-tokens": _DEFAULT_REMAINING_TOKENS,
    }


def arm_headers(request: Request) -> dict[str, str]:
    """ARM's own ids; none of the data plane's gateway headers (apim-request-id, x-ratelimit-*)."""
    return {
        "Content-Type": "application/json; charset=utf-8",
        "Cache-Control": "no-cache",
        "x-ms-request-id": request.request_id,
        "x-ms-correlation-request-id": (request.header("x-ms-correlation-request-id") or str(uuid.uuid4())),
        "x-ms-ratelimit-remaining-subscription-reads": "11999",
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

    `kind` names the route in the request log. `spool_body` sends the body to a temporary file
    instead of memory (uploads of up to 200 MB).
    """

    method: str
    pattern: re.Pattern[str]
    kind: str
    handler: Handler
    headers: HeaderPolicy = azure_headers
    spool_body: bool = False


def route(
    method: str,
    pattern: str,
    kind: str,
    handler: Handler,
    headers: HeaderPolicy = azure_headers,
    *,
    spool_body: bool = False,
) -> Route:
    return Route(method, re.compile(pattern), kind, handler, headers, spool_body)


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


class Fault(Protocol):
    """Something that takes over one exchange instead of the normal read-handle-answer (faults.py)."""

    @property
    def name(self) -> str: ...

    def apply(self, exchange: Exchange) -> None: ...


class FaultSource(Protocol):
    def take(self, kind: str, method: str, path: str) -> Fault | None:
        """The fault for this request, if one is armed for it (consuming one of its uses)."""
        ...


class _BadFraming(Exception):
    """The request's body framing is broken; answer 400 and drop the connection."""


class Exchange:
    """One request between its headers and its answer, with the steps a fault may recombine.

    The normal course is ``exchange.send(exchange.respond())``. A fault may reset the connection
    before the body is read, delay or cut the answer, or replace it. Whatever happens, the request
    is recorded exactly once, before the first byte of any answer (status 0: none was sent).
    """

    def __init__(
        self,
        handler: _RequestHandler,
        route_: Route,
        match: re.Match[str],
        path: str,
        query: dict[str, str],
        headers: dict[str, str],
    ) -> None:
        self._handler = handler
        self.route = route_
        self._match = match
        self.method = handler.command
        self.path = path
        self.query = query
        self.headers = headers
        self.fault: str | None = None
        self._request: Request | None = None
        self._framing_error: str | None = None
        self._response: Response | None = None
        self._recorded = False
        self._answered = False

    @property
    def kind(self) -> str:
        return self.route.kind

    @property
    def answered(self) -> bool:
        """Whether any answer byte was sent (or the connection was reset)."""
        return self._answered

    def request(self) -> Request:
        """The request with its body, read from the socket on first use."""
        if self._request is None:
            server = self._handler.server
            body, body_path = b"", None
            try:
                body, body_path = self._handler.read_body(server.spool_dir if self.route.spool_body else None)
            except _BadFraming as exc:
                self._framing_error = str(exc)
                self._handler.close_connection = True
            request = Request(self.method, self.path, self.query, self.headers, body, server.base_url, body_path=body_path)
            if self._framing_error is None:
                request.client_id = identify_caller(server.state, self.headers)
            self._request = request
        return self._request

    def respond(self) -> Response:
        """The normal answer: the route's handler run on the request (once)."""
        if self._response is None:
            request = self.request()
            if self._framing_error is not None:
                self._response = json_response(400, {"error": {"code": "BadRequest", "message": self._framing_error}})
            else:
                self._response = self._handler.run(self.route, request, self._match)
        return self._response

    def record(self, status: int) -> None:
        if self._recorded:
            return
        self._recorded = True
        server = self._handler.server
        # A request reset before its body was read is logged without one.
        request = self._request or Request(self.method, self.path, self.query, self.headers, b"", server.base_url)
        server.state.record(
            RecordedRequest(
                method=request.method,
                path=request.path,
                query=request.query,
                headers=request.headers,
                body=request.body,
                kind=self.kind,
                client_id=request.client_id,
                status=status,
                connection_id=server.connection_id(self._handler.connection),
                fault=self.fault,
            )
        )

    def send(self, response: Response, *, stall_seconds: float = 0.0, truncate: bool = False) -> None:
        """Answer; optionally stall between the headers and the body, or send half the body and close."""
        request = self.request()
        self.record(response.status)
        self._answered = True
        handler = self._handler
        server = handler.server
        if server.closing_when_idle(handler.connection):
            # close_idle_connections() came while this request was handled: say so in the answer.
            handler.close_connection = True
        if stall_seconds <= 0:
            server.set_connection_state(handler.connection, WRITING)
        headers = {**self.route.headers(request), **response.headers}
        headers.setdefault("Content-Type", "application/json")
        handler.send_response(response.status)
        for name, value in headers.items():
            handler.send_header(name, value)
        # Keep-alive clients frame every answer by its length.
        handler.send_header("Content-Length", str(response.length))
        if handler.close_connection:
            handler.send_header("Connection", "close")
        handler.end_headers()
        if stall_seconds > 0:
            if not self.sleep(stall_seconds):
                handler.close_connection = True
                return
            server.set_connection_state(handler.connection, WRITING)
        limit = response.length // 2 if truncate else response.length
        if response.stream is None:
            handler.wfile.write(response.body[:limit])
        else:
            remaining = limit
            while remaining > 0:
                chunk = response.stream.read(min(IO_CHUNK_BYTES, remaining))
                if not chunk:
                    # The file shrank under us: the framing is broken, so the connection must go.
                    handler.close_connection = True
                    break
                handler.wfile.write(chunk)
                remaining -= len(chunk)
        handler.wfile.flush()
        if truncate:
            self.close()
        elif not handler.close_connection:
            # Idle from the last byte on, before this thread does anything else: a test that has
            # the whole answer and closes idle connections finds this one idle, not busy.
            server.set_connection_state(handler.connection, IDLE)

    def sleep(self, seconds: float) -> bool:
        """Wait, but wake at once when the server stops; False if it did."""
        return not self._handler.server.stopping.wait(seconds)

    def close(self) -> None:
        """End the connection with a FIN once this exchange is over."""
        self._handler.close_connection = True
        _shutdown(self._handler.connection)

    def reset(self) -> None:
        """Abort the connection with a TCP RST: the client gets no (further) answer byte."""
        self.record(0)
        self._answered = True
        handler = self._handler
        handler.close_connection = True
        connection = handler.connection
        try:
            connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        # The descriptor really closes (and the RST leaves) only once the buffered reader made
        # from the socket is closed too.
        connection.close()
        handler.rfile.close()

    def cleanup(self) -> None:
        if self._response is not None and self._response.stream is not None:
            self._response.stream.close()
        if self._request is not None and self._request.body_path is not None:
            self._request.body_path.unlink(missing_ok=True)


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
        if code in (HTTPStatus.REQUEST_URI_TOO_LONG, HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE):
            # Azure's front end answers oversized request lines and headers with a plain 400.
            explain = f"Request Header Or Cookie Too Large ({message or explain or 'too long'})."
            code, message = HTTPStatus.BAD_REQUEST, None
        body = json.dumps({"error": {"code": str(code), "message": message or explain or "Bad request."}}).encode("utf-8")
        self.close_connection = True
        self.send_response(code, message)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD" and code >= 200 and code not in (204, 304):
            self.wfile.write(body)

    def parse_request(self) -> bool:
        # A request line has arrived: from here until its answer goes out the connection is busy.
        self.server.set_connection_state(self.connection, HANDLING)
        return super().parse_request()

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

    def date_time_string(self, timestamp: float | None = None) -> str:
        if timestamp is None and self.server.clock is not None:
            timestamp = self.server.clock()
        return super().date_time_string(timestamp)

    def _dispatch(self) -> None:
        if self.server.before_request is not None:
            self.server.before_request()
        split = urlsplit(self.path)
        path = unquote(split.path)
        headers = {name.lower(): value for name, value in self.headers.items()}
        query: dict[str, str] = {}
        for name, value in parse_qsl(split.query, keep_blank_values=True):
            query.setdefault(name, value)
        route_, match = self.server.router.resolve(self.command, path)
        exchange = Exchange(self, route_, match, path, query, headers)
        fault = self.server.faults.take(route_.kind, self.command, path) if self.server.faults is not None else None
        try:
            if fault is None:
                exchange.send(exchange.respond())
            else:
                exchange.fault = fault.name
                self._apply(fault, exchange)
            exchange.record(0)
        finally:
            exchange.cleanup()

    def _apply(self, fault: Fault, exchange: Exchange) -> None:
        try:
            fault.apply(exchange)
        except OSError:
            raise
        except Exception:
            # A broken fault must not take the server down either.
            logger.exception("emulator fault %s failed on %s %s", fault.name, exchange.method, exchange.path)
            if not exchange.answered:
                exchange.send(_internal_error())
            else:
                self.close_connection = True

    def run(self, route_: Route, request: Request, match: re.Match[str]) -> Response:
        try:
            return route_.handler(request, match)
        except Exception:
            # The emulator must outlive any bad request: a bug in a handler becomes a 500.
            logger.exception("emulator handler %s failed on %s %s", route_.kind, request.method, request.path)
            return _internal_error()

    def read_body(self, spool_dir: Path | None) -> tuple[bytes, Path | None]:
        """The body in memory, or (its first MiB, the file holding all of it) when spooling."""
        if spool_dir is None:
            chunks: list[bytes] = []
            for chunk in self._body_chunks():
                chunks.append(chunk)
            return b"".join(chunks), None
        descriptor, name = tempfile.mkstemp(prefix="upload-", suffix=".part", dir=spool_dir)
        path = Path(name)
        prefix = bytearray()
        try:
            with os.fdopen(descriptor, "wb") as spool:
                for chunk in self._body_chunks():
                    spool.write(chunk)
                    if len(prefix) < RECORDED_SPOOL_BYTES:
                        prefix += chunk[: RECORDED_SPOOL_BYTES - len(prefix)]
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return bytes(prefix), path

    def _body_chunks(self) -> Iterator[bytes]:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            yield from self._chunked_chunks()
            return
        length_header = self.headers.get("Content-Length")
        if length_header is None:
            return
        try:
            length = int(length_header)
        except ValueError:
            raise _BadFraming(f"Invalid Content-Length header: {length_header!r}.") from None
        if length < 0 or length > MAX_BODY_BYTES:
            raise _BadFraming(f"Content-Length {length} is out of range.")
        yield from self._exactly(length, "The request body ended before Content-Length bytes.")

    def _exactly(self, length: int, short: str) -> Iterator[bytes]:
        """``length`` body bytes in chunks; ``short`` is the 400 message if the client stops early."""
        remaining = length
        while remaining > 0:
            chunk = self.rfile.read(min(IO_CHUNK_BYTES, remaining))
            if not chunk:
                raise _BadFraming(short)
            remaining -= len(chunk)
            yield chunk

    def _chunked_chunks(self) -> Iterator[bytes]:
        total = 0
        while True:
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise _BadFraming("Malformed chunk size in a chunked body.") from None
            if size < 0:
                raise _BadFraming("Malformed chunk size in a chunked body.")
            if size == 0:
                # Trailers end with an empty line.
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass
                return
            total += size
            if total > MAX_BODY_BYTES:
                raise _BadFraming("The chunked body is too large.")
            yield from self._exactly(size, "The chunked body ended early.")
            self.rfile.readline(1024)


def _internal_error() -> Response:
    return json_response(
        500,
        {"error": {"code": "InternalServerError", "message": "The emulator failed to handle the request."}},
    )


class EmulatorHTTPServer(ThreadingHTTPServer):
    """A threaded HTTPS server; the TLS handshake runs in each connection's own thread.

    Without an `ssl_context` it speaks plain HTTP: only for endpoints Azure itself serves over
    plain HTTP on the machine (the App Service managed-identity endpoint).
    """

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
        ssl_context: ssl.SSLContext | None,
        faults: FaultSource | None = None,
        spool_dir: Path | None = None,
        clock: Callable[[], float] | None = None,
        before_request: Callable[[], object] | None = None,
    ) -> None:
        self.router = Router(routes)
        self.state = state
        self.faults = faults
        self.spool_dir = spool_dir
        # The Date header tells the service's time; the emulator's is its clock.
        self.clock = clock
        self.before_request = before_request
        # Set on stop: wakes every fault that is sleeping inside a connection thread.
        self.stopping = threading.Event()
        self._ssl_context = ssl_context
        # Live connections, numbered in accept order so the log can show keep-alive reuse; what
        # each is doing (HANDLING, WRITING, IDLE); which are to close as soon as they are idle.
        self._connections: dict[socket.socket, int] = {}
        self._states: dict[socket.socket, str] = {}
        self._closing_when_idle: set[socket.socket] = set()
        self._connection_numbers = itertools.count(1)
        self._connections_lock = threading.Lock()
        self._states_changed = threading.Condition(self._connections_lock)
        self._wake_reader, self._wake_writer = socket.socketpair()
        self._thread: threading.Thread | None = None
        try:
            super().__init__(address, _RequestHandler)
        except BaseException:
            self._wake_reader.close()
            self._wake_writer.close()
            raise
        self.host = f"{address[0]}:{self.server_port}"
        self.base_url = f"{'https' if ssl_context is not None else 'http'}://{self.host}"

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host's FQDN, a DNS lookup the emulator never needs.
        socketserver.TCPServer.server_bind(self)
        host, port = self.socket.getsockname()[:2]
        self.server_name, self.server_port = str(host), int(port)

    def finish_request(self, request: Any, client_address: Any) -> None:
        # Handshaking here rather than in accept() keeps one silent client from stalling the
        # accept loop for everyone.
        connection: socket.socket = request
        if self._ssl_context is not None:
            connection.settimeout(HANDSHAKE_TIMEOUT_SECONDS)
            try:
                connection = self._ssl_context.wrap_socket(connection, server_side=True)
            except (ssl.SSLError, OSError) as exc:
                logger.debug("TLS handshake with %s failed: %s", client_address, exc)
                return
        with self._connections_lock:
            self._connections[connection] = next(self._connection_numbers)
            self._states[connection] = IDLE
        try:
            _RequestHandler(connection, client_address, self)
        except (ssl.SSLError, OSError) as exc:
            logger.debug("connection from %s ended: %s", client_address, exc)
        finally:
            with self._connections_lock:
                self._connections.pop(connection, None)
                self._states.pop(connection, None)
                self._closing_when_idle.discard(connection)
                self._states_changed.notify_all()
            connection.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        # socketserver calls this from inside its own except block.
        logger.exception("unexpected error on the connection from %s", client_address)  # noqa: LOG004

    def connection_id(self, connection: Any) -> int:
        with self._connections_lock:
            return self._connections.get(connection, 0)

    def set_connection_state(self, connection: Any, state: str) -> None:
        with self._connections_lock:
            if connection not in self._connections:
                return
            doomed = state == IDLE and connection in self._closing_when_idle
            if doomed:
                self._closing_when_idle.discard(connection)
                self._states.pop(connection, None)
            else:
                self._states[connection] = state
            self._states_changed.notify_all()
        if doomed:
            _shutdown(connection)

    def closing_when_idle(self, connection: Any) -> bool:
        with self._connections_lock:
            return connection in self._closing_when_idle

    def close_idle_connections(self) -> int:
        """Close keep-alive connections once idle, as an idle timeout does; return how many.

        Connections waiting for their next request close at once (after an answer still being
        written). Those handling a request close after answering it, with `Connection: close`.
        Either way no connection open now serves another request, and a client that kept an
        idle one in its pool finds it dead.
        """
        with self._states_changed:
            # Writing lasts as long as sending the answer takes; the bound only guards a stuck client.
            self._states_changed.wait_for(lambda: WRITING not in self._states.values(), timeout=CONNECTION_TIMEOUT_SECONDS)
            idle = [connection for connection, state in self._states.items() if state == IDLE]
            for connection in idle:
                del self._states[connection]
            busy = set(self._states) - self._closing_when_idle
            self._closing_when_idle |= busy
        for connection in idle:
            _shutdown(connection)
        return len(idle) + len(busy)

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
        self.stopping.set()
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
            _shutdown(connection)


def _shutdown(connection: socket.socket) -> None:
    """End a connection with a FIN; its handler thread then reads EOF and finishes."""
    try:
        connection.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
