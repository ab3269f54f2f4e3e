"""What the emulator and the recording server share: a TLS server's life cycle as a context manager."""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar, Self

from .server import EmulatorHTTPServer, Route
from .state import EmulatorState, RecordedRequest
from .tls import ServerTLS, make_server_tls

if TYPE_CHECKING:
    import trustme


class ServerHandle:
    """Starts an :class:`EmulatorHTTPServer` with a throwaway certificate on 127.0.0.1, stops it, says where it is.

    Subclasses supply their routes and state; entering starts, leaving stops and deletes the CA file.
    """

    #: How error messages name the server ("the emulator").
    label: ClassVar[str]

    def __init__(self, state: EmulatorState, ca: trustme.CA | None, port: int = 0) -> None:
        self._state = state
        self._ca = ca
        self._port = port
        self._tls: ServerTLS | None = None
        self._server: EmulatorHTTPServer | None = None

    def _routes(self) -> list[Route]:
        raise NotImplementedError

    def _server_options(self) -> dict[str, Any]:
        """Extra keyword arguments of the server (faults, spool directory)."""
        return {}

    def start(self) -> Self:
        if self._server is not None:
            raise RuntimeError(f"{self.label} is already running")
        self._tls = make_server_tls(self._ca)
        try:
            self._server = EmulatorHTTPServer(
                ("127.0.0.1", self._port),
                routes=self._routes(),
                state=self._state,
                ssl_context=self._tls.context,
                **self._server_options(),
            )
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
            raise RuntimeError(f"{self.label} is not running; use it in a 'with' block")
        return self._server, self._tls

    @property
    def url(self) -> str:
        """`https://127.0.0.1:PORT`, without a trailing slash."""
        return self._running()[0].base_url

    @property
    def ca_path(self) -> str:
        """A PEM file with the CA certificate, for `REQUESTS_CA_BUNDLE` or `verify=`."""
        return str(self._running()[1].ca_path)

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of every request received so far, in order."""
        return self._state.requests()
