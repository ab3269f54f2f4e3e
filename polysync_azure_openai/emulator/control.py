"""The :class:`Emulator` handle: start and stop the local Azure, configure it, read what it saw."""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from cryptography import x509

from .arm import ArmService
from .batch_quota import QuotaTable
from .batches import BatchesService, BatchStore, LoseBatchCreate
from .clock import BatchTiming, Clock
from .clouds import CLOUDS
from .dataplane import DataPlaneService
from .entra import EntraService
from .faults import FaultRule, FaultTable, ResetBeforeResponse
from .federation import OidcIssuer
from .files import FilesService, FileStore
from .handle import ServerHandle
from .managed_identity import PATH as MSI_PATH
from .managed_identity import ManagedIdentityService, new_identity_header
from .ratelimit import DEFAULT_WINDOW_SECONDS, RateLimit, ThrottleShape
from .server import EmulatorHTTPServer, Fault, Route
from .state import (
    DEFAULT_DEPLOYMENTS,
    DEFAULT_ROLES,
    TOKEN_EXCHANGE_AUDIENCE,
    Deployment,
    EmulatorConfig,
    EmulatorState,
    FederatedCredential,
)

#: The service account the default workload identity trusts (namespace polysync).
DEFAULT_WORKLOAD_SUBJECT = "system:serviceaccount:polysync:polysync-worker"

if TYPE_CHECKING:
    import trustme


class Emulator(ServerHandle):
    """A local Azure (Entra ID, ARM, Azure OpenAI data plane with files and batches) over HTTPS on 127.0.0.1.

    Use it as a context manager: entering starts the server on a free port in a background
    thread, leaving stops it and deletes its CA file, its files and its batches. A default
    service principal holding both roles and a default API key exist from the start, and so do
    the identities of the two keyless methods, each holding both roles: a system-assigned managed
    identity of the emulated Azure host (served by an App Service style endpoint, plain HTTP on
    127.0.0.1, see :meth:`managed_identity_environment`) and a workload identity app that trusts
    the emulated cluster's service account :data:`DEFAULT_WORKLOAD_SUBJECT` (see
    :meth:`write_federated_token`).

    Files and batches follow :attr:`clock`, which stands still unless advanced
    (`realtime_clock=False`, for tests) or follows real time plus the advances
    (`realtime_clock=True`, for a hand-run emulator or the demo). `clock_start` (Unix seconds)
    starts it in the past, so that what a test creates first is days old by the time it ends.
    """

    def __init__(
        self,
        ca: trustme.CA | None = None,
        cloud: str = "AzureCloud",
        embedding_dimensions: int = 1536,
        token_lifetime: int = 3600,
        page_size: int = 100,
        port: int = 0,
        realtime_clock: bool = False,
        clock_start: float | None = None,
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
        super().__init__(EmulatorState(token_lifetime=token_lifetime, page_size=page_size), ca, port)
        self._state.add_secret_client(self._client_id, self._client_secret, DEFAULT_ROLES)
        self._state.add_api_key(self._api_key)
        self._state.set_deployments(DEFAULT_DEPLOYMENTS)
        self._clock = Clock(running=realtime_clock, start=clock_start)
        self._batch_timing = BatchTiming()
        self._files = FileStore(self._clock)
        self._dataplane = DataPlaneService(self._config, self._state)
        self._quotas = QuotaTable()
        self._batches = BatchStore(self._clock, self._batch_timing, self._files, self._dataplane, self._state, self._quotas)
        self._faults = FaultTable()
        self._step_per_request = 0.0
        # The keyless identities: the emulated host's managed identity and a cluster's workload identity.
        self._identity_header = new_identity_header()
        self._msi_server: EmulatorHTTPServer | None = None
        self._system_assigned_client_id = str(uuid.uuid4())
        self._state.add_managed_identity(self._system_assigned_client_id, DEFAULT_ROLES, system_assigned=True)
        self._issuer = OidcIssuer(f"https://oidc.emulator.invalid/{self._config.tenant_id}/{uuid.uuid4()}/")
        self._workload_client_id = str(uuid.uuid4())
        self.add_federated_credential(self._workload_client_id, DEFAULT_WORKLOAD_SUBJECT)
        self._token_dir: Path | None = None

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
    label = "the emulator"

    def _routes(self) -> list[Route]:
        authorize = self._dataplane.authorize
        return [
            *EntraService(self._config, self._state, self._issuer).routes(),
            *ArmService(self._config, self._state).routes(),
            *self._dataplane.routes(),
            *FilesService(self._files, authorize).routes(),
            *BatchesService(self._batches, self._files, authorize).routes(),
        ]

    def _server_options(self) -> dict[str, Any]:
        return {
            "faults": self._faults,
            "spool_dir": self._files.directory,
            "clock": self._clock.now,
            "before_request": self._tick,
        }

    def _tick(self) -> None:
        step = self._step_per_request
        if step:
            self._clock.advance(step)

    def start(self) -> Self:
        super().start()
        try:
            # Plain HTTP, as App Service serves it: only processes on the machine can reach it.
            self._msi_server = EmulatorHTTPServer(
                ("127.0.0.1", 0),
                routes=ManagedIdentityService(self._config, self._state, self._identity_header).routes(),
                state=self._state,
                ssl_context=None,
                faults=self._faults,
            )
        except BaseException:
            super().stop()
            raise
        self._msi_server.start()
        return self

    def stop(self) -> None:
        msi, self._msi_server = self._msi_server, None
        if msi is not None:
            msi.stop()
        super().stop()
        if self._token_dir is not None:
            shutil.rmtree(self._token_dir, ignore_errors=True)
            self._token_dir = None
        self._faults.clear()
        self._batches.close()
        self._files.close()

    # Where it is.
    @property
    def host(self) -> str:
        """`127.0.0.1:PORT`, the form azure-identity's `authority` accepts."""
        return self._running()[0].host

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

    # Managed identities: the emulated Azure host's App Service style endpoint.
    @property
    def identity_endpoint(self) -> str:
        """`http://127.0.0.1:PORT/msi/token`, the value App Service gives `IDENTITY_ENDPOINT`."""
        if self._msi_server is None:
            raise RuntimeError("the emulator is not running; use it in a 'with' block")
        return self._msi_server.base_url + MSI_PATH

    @property
    def identity_header(self) -> str:
        """The secret the endpoint wants in `X-IDENTITY-HEADER` (App Service's `IDENTITY_HEADER`)."""
        return self._identity_header

    def managed_identity_environment(self) -> dict[str, str]:
        """`IDENTITY_ENDPOINT` and `IDENTITY_HEADER` as App Service sets them for a process on the host."""
        return {"IDENTITY_ENDPOINT": self.identity_endpoint, "IDENTITY_HEADER": self._identity_header}

    @property
    def system_assigned_client_id(self) -> str:
        """The client id of the host's system-assigned identity (tokens name it as `appid`)."""
        return self._system_assigned_client_id

    def add_user_assigned_identity(self, client_id: str | None = None, roles: Iterable[str] = DEFAULT_ROLES) -> str:
        """Create a user-assigned identity, attach it to the host and return its client id."""
        client_id = client_id or str(uuid.uuid4())
        self._state.add_managed_identity(client_id, roles, system_assigned=False)
        return client_id

    # Workload identity: a cluster's OIDC issuer and federated identity credentials on apps.
    @property
    def oidc_issuer(self) -> str:
        """The emulated cluster's OIDC issuer URL (the `iss` of its service account tokens)."""
        return self._issuer.url

    @property
    def workload_client_id(self) -> str:
        """The default workload identity app, trusting :data:`DEFAULT_WORKLOAD_SUBJECT`."""
        return self._workload_client_id

    def add_federated_credential(
        self,
        client_id: str,
        subject: str,
        *,
        audiences: Iterable[str] = (TOKEN_EXCHANGE_AUDIENCE,),
        roles: Iterable[str] = DEFAULT_ROLES,
    ) -> None:
        """Let an app (created if new) trust the cluster's tokens for `subject`.

        As `az identity federated-credential create --issuer <oidc_issuer> --subject <subject>` does.
        """
        credential = FederatedCredential(self._issuer.url, subject, tuple(audiences))
        self._state.add_federated_credential(client_id, credential, roles)

    def federated_token(
        self,
        subject: str = DEFAULT_WORKLOAD_SUBJECT,
        *,
        audience: str = TOKEN_EXCHANGE_AUDIENCE,
        lifetime: int = 3600,
        issuer: str | None = None,
    ) -> str:
        """A service account token signed by the cluster's issuer (`issuer` replaces only the `iss` claim)."""
        return self._issuer.mint(subject, audience=audience, lifetime=lifetime, issuer=issuer)

    def write_federated_token(
        self,
        path: str | os.PathLike[str] | None = None,
        subject: str = DEFAULT_WORKLOAD_SUBJECT,
        *,
        audience: str = TOKEN_EXCHANGE_AUDIENCE,
        lifetime: int = 3600,
        issuer: str | None = None,
    ) -> Path:
        """Write :meth:`federated_token` to `path`, or to a new owner-only file; return the path.

        As the AKS webhook projects it for `AZURE_FEDERATED_TOKEN_FILE`. A file of the emulator's
        own is deleted when the emulator stops.
        """
        token = self.federated_token(subject, audience=audience, lifetime=lifetime, issuer=issuer)
        if path is None:
            if self._token_dir is None:
                self._token_dir = Path(tempfile.mkdtemp(prefix="polysync-emulator-tokens-"))
            path = self._token_dir / f"azure-identity-token-{uuid.uuid4().hex[:8]}"
        target = Path(path)
        descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="ascii") as handle:
            handle.write(token)
        return target

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

    def set_rate_limit(
        self,
        deployment: str,
        *,
        requests: int | None = None,
        tokens: int | None = None,
        window: float = DEFAULT_WINDOW_SECONDS,
        shape: ThrottleShape = "retry-after-ms",
    ) -> RateLimit:
        """Limit `deployment` to `requests` and/or `tokens` (Azure's estimate) per `window` seconds.

        Windows follow each other from the deployment's next request; answers then report what
        the window has left, and a request over the limit gets Azure's 429 in `shape`
        (ratelimit.py). Setting a limit again starts afresh.
        """
        if self._state.deployment(deployment) is None:
            names = ", ".join(d.name for d in self._state.deployments())
            raise ValueError(f"no deployment named {deployment!r} to limit; the emulator has: {names}")
        limit = RateLimit(requests=requests, tokens=tokens, window=window, shape=shape)
        self._state.rate_limits.set(deployment, limit)
        return limit

    def clear_rate_limits(self) -> None:
        """Every deployment unlimited again."""
        for name in self._state.rate_limits.limits():
            self._state.rate_limits.set(name, None)

    @property
    def rate_limits(self) -> dict[str, RateLimit]:
        """The limited deployments and their limits."""
        return self._state.rate_limits.limits()

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
    def clear_requests(self) -> None:
        self._state.clear_requests()

    def token_requests(self, client_id: str | None = None, scope: str | None = None) -> int:
        """How many token requests arrived, optionally only those of one client and/or scope."""
        return self._state.token_requests(client_id, scope)

    # The clock, files and batches.
    @property
    def clock(self) -> Clock:
        """The time files and batches live by (`clock.now()`, `clock.advance(s)`, `clock.running`)."""
        return self._clock

    def advance(self, seconds: float) -> float:
        """Move the clock forward; return the new time (Unix seconds)."""
        return self._clock.advance(seconds)

    @property
    def clock_step_per_request(self) -> float:
        """Seconds the clock moves before each request is handled (default 0: it does not).

        Lets a test watch a client that waits on Azure's clock (its Date header, which follows
        this clock) without sleeping through the wait.
        """
        return self._step_per_request

    @clock_step_per_request.setter
    def clock_step_per_request(self, seconds: float) -> None:
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 <= seconds < float("inf"):
            raise ValueError(f"clock_step_per_request must be a finite number of seconds >= 0, not {seconds!r}")
        self._step_per_request = float(seconds)

    @property
    def batch_timing(self) -> BatchTiming:
        """Batch phase durations and throughput; mutable (validating 1 s, 100 lines/s, finalizing 1 s, cancelling 1 s)."""
        return self._batch_timing

    @property
    def file_processing_seconds(self) -> float:
        """Clock seconds from upload until a file is processed (default 0: the first read after upload)."""
        return self._files.processing_seconds

    @file_processing_seconds.setter
    def file_processing_seconds(self, seconds: float) -> None:
        self._files.processing_seconds = seconds

    def add_file(
        self,
        content: bytes | str | os.PathLike[str],
        *,
        purpose: str = "batch",
        filename: str = "input.jsonl",
        status: str | None = None,
    ) -> str:
        """Create a file as if uploaded; return its id.

        `content` is bytes, text (stored as UTF-8) or a path, which is hard-linked (else copied by
        the kernel), never read into memory; do not modify such a file while the emulator uses it.
        `status` (`pending`, `processed`, `error`) fixes the status for good; None lets the file be
        processed like an upload.
        """
        return self._files.add(content, purpose=purpose, filename=filename, status=status).id

    def file(self, file_id: str) -> dict[str, Any]:
        """The file object as `GET /openai/files/{id}` would return it now."""
        snapshot = self._files.snapshot(file_id)
        if snapshot is None:
            raise KeyError(file_id)
        return snapshot

    def file_listing(self, purpose: str | None = None) -> list[dict[str, Any]]:
        """Every file as `GET /openai/files` would list it now, newest first."""
        return self._files.listing(purpose)

    def file_content(self, file_id: str) -> bytes:
        """A (small) file's bytes, for assertions."""
        opened = self._files.open(file_id)
        if opened is None:
            raise KeyError(file_id)
        handle, _ = opened
        with handle:
            return handle.read()

    @property
    def batches(self) -> list[str]:
        """The ids of every batch, newest first (the list API's order)."""
        return [batch.id for batch in self._batches.newest_first()]

    def batch(self, batch_id: str) -> dict[str, Any]:
        """The batch object as `GET /openai/batches/{id}` would return it now."""
        batch = self._batches.get(batch_id)
        if batch is None:
            raise KeyError(batch_id)
        return self._batches.view(batch)

    def lose_next_batch_create(self, newer_batches: int = 0, *, times: int = 1) -> FaultRule:
        """The next `times` `POST /openai/batches` create their batch, then reset the connection unanswered.

        Before the reset, `newer_batches` more batches are created, newer by one second each and
        with other metadata values, so that a client looking for its batch by metadata must page.
        """
        if isinstance(newer_batches, bool) or not isinstance(newer_batches, int) or newer_batches < 0:
            raise ValueError(f"newer_batches must be an integer >= 0, not {newer_batches!r}")
        return self._faults.add(LoseBatchCreate(self._batches, newer_batches), kind="batches.create", times=times)

    def lose_next_upload(self, *, times: int = 1) -> FaultRule:
        """The next `times` uploads store their file, then reset the connection unanswered."""
        return self._faults.add(ResetBeforeResponse(handled=True), kind="files.upload", times=times)

    # The enqueued-token quota of batch deployments.
    def set_batch_token_quota(self, deployment: str, tokens: int | None, *, fail_fast: bool = False) -> None:
        """Let `deployment` hold at most `tokens` prompt tokens in batches at once (None: no limit).

        A batch's tokens are the words of its lines' messages or inputs. One more batch over the
        limit fails validation with `token_limit_exceeded`; with `fail_fast`, its create is
        answered 400 `token_limit_exceeded` instead, as some regions do (wire-samples §8).
        """
        self._quotas.set(deployment, tokens, fail_fast=fail_fast)

    def enqueued_tokens(self, deployment: str) -> int:
        """The prompt tokens `deployment`'s batches hold against its quota now."""
        now = self._clock.now_us()
        self._batches.settle(now)
        return self._batches.enqueued(deployment, now)

    # Faults.
    def inject(
        self,
        fault: Fault,
        *,
        kind: str | None = None,
        path: str | None = None,
        method: str | None = None,
        times: int | None = 1,
    ) -> FaultRule:
        """Let `fault` (see faults.py) take over the next `times` requests that match (None: all, until cleared).

        A request matches when its `kind` (as in the request log) equals `kind`, its path fully
        matches the regex `path` and its method equals `method`; omitted criteria match anything.
        The first armed rule that matches wins. The returned rule counts its `hits`.
        """
        return self._faults.add(fault, kind=kind, path=path, method=method, times=times)

    def clear_faults(self) -> None:
        self._faults.clear()

    def close_idle_connections(self) -> int:
        """Close every open connection as soon as it is idle (waiting ones at once); return how many.

        As when Azure's front end times an idle connection out: the client's pool holds a dead one.
        A request in flight still gets its whole answer first.
        """
        return self._running()[0].close_idle_connections()
