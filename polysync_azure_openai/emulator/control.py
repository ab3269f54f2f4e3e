"""The :class:`Emulator` handle: start and stop the local Azure, configure it, read what it saw."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterable
from types import TracebackType
from typing import TYPE_CHECKING, Self

from cryptography import x509

from .arm import ArmService
from .clouds import CLOUDS
from .dataplane import DataPlaneService
from .entra import EntraService
from .server import EmulatorHTTPServer
from .state import (
    DEFAULT_DEPLOYMENTS,
    DEFAULT_ROLES,
    Deployment,
    EmulatorConfig,
    EmulatorState,
    RecordedRequest,
)
from .tls import ServerTLS, make_server_tls

if TYPE_CHECKING:
    import trustme


class Emulator:
    """A local Azure (Entra ID, ARM, Azure OpenAI data plane) over HTTPS on 127.0.0.1.

    Use it as a context manager: entering starts the server on a free port in a background
    thread, leaving stops it and deletes its CA file. A default service principal holding both
    roles and a default API key exist from the start.
    """

    def __init__(
        self,
        ca: trustme.CA | None = None,
        cloud: str = "AzureCloud",
        embedding_dimensions: int = 1536,
        token_lifetime: int = 3600,
        page_size: int = 100,
        port: int = 0,
    ) -> None:
        if cloud not in CLOUDS:
            raise ValueError(f"unknown cloud {cloud!r}; expected one of {', '.join(CLOUDS)}")
        if isinstance(embedding_dimensions, bool) or embedding_dimensions < 1:
            raise ValueError(f"embedding_dimensions must be positive, not {embedding_dimensions!r}")
        self._config = EmulatorConfig(
            tenant_id=str(uuid.uuid4()),
            tenant_domain="emulator.onmicrosoft.com",
            subscription_id=str(uuid.uuid4()),
            resource_group="rg-emulator",
            resource_name="emulator-aoai",
            cloud=CLOUDS[cloud],
            embedding_dimensions=embedding_dimensions,
        )
        self._client_id = str(uuid.uuid4())
        # Entra secrets are 40 URL-safe characters; Azure keys are 32 hex digits.
        self._client_secret = secrets.token_urlsafe(30)
        self._api_key = secrets.token_hex(16)
        self._ca = ca
        self._port = port
        self._state = EmulatorState(token_lifetime=token_lifetime, page_size=page_size)
        self._state.add_secret_client(self._client_id, self._client_secret, DEFAULT_ROLES)
        self._state.add_api_key(self._api_key)
        self._state.set_deployments(DEFAULT_DEPLOYMENTS)
        self._tls: ServerTLS | None = None
        self._server: EmulatorHTTPServer | None = None

    def __repr__(self) -> str:
        where = self._server.base_url if self._server is not None else "stopped"
        return f"<Emulator {self.cloud} {where}>"

    # Who and what it emulates; fixed for the emulator's life, hence read-only.
    @property
    def cloud(self) -> str:
        return self._config.cloud.name

    @property
    def tenant_id(self) -> str:
        return self._config.tenant_id

    @property
    def tenant_domain(self) -> str:
        """A domain name Entra also accepts for the tenant (`emulator.onmicrosoft.com`)."""
        return self._config.tenant_domain

    @property
    def subscription_id(self) -> str:
        return self._config.subscription_id

    @property
    def resource_group(self) -> str:
        return self._config.resource_group

    @property
    def resource_name(self) -> str:
        return self._config.resource_name

    @property
    def embedding_dimensions(self) -> int:
        return self._config.embedding_dimensions

    @property
    def client_id(self) -> str:
        """The default service principal, holding both roles."""
        return self._client_id

    @property
    def client_secret(self) -> str:
        return self._client_secret

    @property
    def api_key(self) -> str:
        """The default API key."""
        return self._api_key

    # Life cycle.
    def start(self) -> Self:
        if self._server is not None:
            raise RuntimeError("the emulator is already running")
        self._tls = make_server_tls(self._ca)
        routes = [
            *EntraService(self._config, self._state).routes(),
            *ArmService(self._config, self._state).routes(),
            *DataPlaneService(self._config, self._state).routes(),
        ]
        try:
            self._server = EmulatorHTTPServer(
                ("127.0.0.1", self._port), routes=routes, state=self._state, ssl_context=self._tls.context
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
            raise RuntimeError("the emulator is not running; use it inside 'with Emulator() as emu:'")
        return self._server, self._tls

    # Where it is.
    @property
    def url(self) -> str:
        """`https://127.0.0.1:PORT`, without a trailing slash."""
        return self._running()[0].base_url

    @property
    def host(self) -> str:
        """`127.0.0.1:PORT`, the form azure-identity's `authority` accepts."""
        return self._running()[0].host

    @property
    def ca_path(self) -> str:
        """A PEM file with the CA certificate, for `REQUESTS_CA_BUNDLE` or `verify=`."""
        return str(self._running()[1].ca_path)

    @property
    def ca(self) -> trustme.CA:
        return self._running()[1].ca

    # Identities.
    def add_secret_client(self, client_id: str, secret: str, roles: Iterable[str] = DEFAULT_ROLES) -> None:
        """Register an app that authenticates with a secret (an existing app gets it added)."""
        self._state.add_secret_client(client_id, secret, roles)

    def add_certificate_client(self, client_id: str, cert_pem: bytes, roles: Iterable[str] = DEFAULT_ROLES) -> None:
        """Register an app's public certificate (PEM); its assertions must verify against it."""
        self._state.add_certificate_client(client_id, x509.load_pem_x509_certificate(cert_pem), roles)

    def add_api_key(self, key: str) -> None:
        self._state.add_api_key(key)

    def revoke_tokens(self, client_id: str | None = None) -> int:
        """Make issued tokens (all, or one client's) unknown, as after a revocation or key roll.

        Requests that carry them get the "missing or invalid token" 401 and name no caller in the
        request log. Returns how many tokens were revoked.
        """
        return self._state.revoke_tokens(client_id)

    # Deployments and settings.
    def set_deployments(self, deployments: Iterable[Deployment]) -> None:
        """Replace the deployments ARM lists and the data plane serves."""
        self._state.set_deployments(deployments)

    @property
    def deployments(self) -> tuple[Deployment, ...]:
        return self._state.deployments()

    @property
    def page_size(self) -> int:
        return self._state.page_size

    @page_size.setter
    def page_size(self, size: int) -> None:
        self._state.page_size = size

    @property
    def next_link_origin(self) -> str | None:
        """The origin of ARM nextLinks; None means the emulator's own URL."""
        return self._state.next_link_origin

    @next_link_origin.setter
    def next_link_origin(self, origin: str | None) -> None:
        self._state.next_link_origin = origin

    @property
    def token_lifetime(self) -> int:
        """Lifetime in seconds of the tokens issued from now on."""
        return self._state.token_lifetime

    @token_lifetime.setter
    def token_lifetime(self, seconds: int) -> None:
        self._state.token_lifetime = seconds

    # What it saw.
    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of every request received so far, in order."""
        return self._state.requests()

    def clear_requests(self) -> None:
        self._state.clear_requests()

    def token_requests(self, client_id: str | None = None, scope: str | None = None) -> int:
        """How many token requests arrived, optionally only those of one client and/or scope."""
        return self._state.token_requests(client_id, scope)
