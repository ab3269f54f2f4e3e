"""A second, trivial HTTPS server that answers every request `200 {}` and records it.

It is where an injected redirect points: a test proves that a client never followed the redirect
(the log stays empty) and so never sent its credential to another host.
"""

from __future__ import annotations

import re
from types import TracebackType
from typing import TYPE_CHECKING, Self

from .server import EmulatorHTTPServer, Request, Response, json_response, route
from .state import EmulatorState, RecordedRequest
from .tls import ServerTLS, make_server_tls

if TYPE_CHECKING:
    import trustme

_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def _ok(request: Request, match: re.Match[str]) -> Response:
    return json_response(200, {})


class RecordingServer:
    """HTTPS on 127.0.0.1 (port 0) with a certificate from `ca` (share the emulator's: `emu.ca`)."""

    def __init__(self, ca: trustme.CA | None = None) -> None:
        self._ca = ca
        self._state = EmulatorState(token_lifetime=3600, page_size=100)
        self._tls: ServerTLS | None = None
        self._server: EmulatorHTTPServer | None = None

    def start(self) -> Self:
        if self._server is not None:
            raise RuntimeError("the recording server is already running")
        self._tls = make_server_tls(self._ca)
        routes = [route(method, r".*", "recorded", _ok) for method in _METHODS]
        try:
            self._server = EmulatorHTTPServer(("127.0.0.1", 0), routes=routes, state=self._state, ssl_context=self._tls.context)
        except BaseException:
            self._tls.cleanup()
            self._tls = None
            raise
        self._server.start()
        return self

    def stop(self) -> None:
        server, tls = self._server, self._tls
        self._server = self._tls = None
        if server is not None:
            server.stop()
        if tls is not None:
            tls.cleanup()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _running(self) -> tuple[EmulatorHTTPServer, ServerTLS]:
        if self._server is None or self._tls is None:
            raise RuntimeError("the recording server is not running; use it inside 'with RecordingServer(...)'")
        return self._server, self._tls

    @property
    def url(self) -> str:
        """`https://127.0.0.1:PORT`, without a trailing slash."""
        return self._running()[0].base_url

    @property
    def ca_path(self) -> str:
        return str(self._running()[1].ca_path)

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, in order."""
        return self._state.requests()
