"""Everything the emulator remembers, behind one lock, plus the value types it stores.

Request handlers run on many threads at once while a test mutates the emulator from its own
thread, so every read and write of mutable state goes through :class:`EmulatorState`.
"""

from __future__ import annotations

import collections
import re
import threading
import time
from collections.abc import Iterable

import attrs
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from .clouds import Cloud
from .ratelimit import RateLimiter

OPENAI_USER_ROLE = "Cognitive Services OpenAI User"
READER_ROLE = "Reader"
DEFAULT_ROLES: tuple[str, ...] = (OPENAI_USER_ROLE, READER_ROLE)
#: The audience Entra requires of a federated token (the default of a federated identity credential).
TOKEN_EXCHANGE_AUDIENCE = "api://AzureADTokenExchange"  # noqa: S105 (an audience, not a password)

# gpt-5-chat is a chat model in a reasoning family's name: it takes temperature, like gpt-4o.
_REASONING_MODEL = re.compile(r"^(o1|o3|o4|gpt-5(?!-chat))", re.IGNORECASE)


@attrs.frozen
class EmulatorConfig:
    """What stays fixed for an emulator's life: its tenant, its resource and its cloud."""

    tenant_id: str
    tenant_domain: str
    subscription_id: str
    resource_group: str
    resource_name: str
    cloud: Cloud
    embedding_dimensions: int

    def is_tenant(self, tenant: str) -> bool:
        """Entra takes a tenant by GUID or by domain name, in any case."""
        return tenant.lower() in (self.tenant_id.lower(), self.tenant_domain.lower())


@attrs.frozen
class Deployment:
    """One model deployment of the emulated resource, served by ARM and callable on the data plane."""

    name: str
    model: str
    model_version: str = "1"
    sku: str = "Standard"
    # None derives the capabilities from the model name, as Azure fills them in.
    capabilities: dict[str, str] | None = None
    provisioning_state: str = "Succeeded"
    # None derives it from the model name (o-series and gpt-5 reject max_tokens).
    reasoning: bool | None = None
    capacity: int = 10
    # `properties.model.format`: "OpenAI", or a Foundry model's publisher ("DeepSeek", "Meta", ...).
    format: str = "OpenAI"

    @property
    def effective_capabilities(self) -> dict[str, str]:
        if self.capabilities is not None:
            return dict(self.capabilities)
        if "embedding" in self.model.lower():
            return {"embeddings": "true"}
        return {"chatCompletion": "true"}

    @property
    def is_reasoning(self) -> bool:
        if self.reasoning is not None:
            return self.reasoning
        return _REASONING_MODEL.match(self.model) is not None

    @property
    def is_batch_only(self) -> bool:
        """Global and data-zone batch deployments take no synchronous calls."""
        return self.sku.lower().endswith("batch")

    @property
    def is_openai(self) -> bool:
        """An Azure OpenAI model; other formats are Foundry models, served on the v1 API only."""
        return self.format.lower() == "openai"

    @property
    def model_label(self) -> str:
        """The `model` field of a chat answer: an OpenAI model with its version; a Foundry model's name."""
        return f"{self.model}-{self.model_version}" if self.is_openai else self.model

    def supports(self, capability: str) -> bool:
        return self.effective_capabilities.get(capability, "").lower() == "true"


DEFAULT_DEPLOYMENTS: tuple[Deployment, ...] = (
    Deployment("gpt-4o", "gpt-4o", model_version="2024-08-06", sku="GlobalStandard", capacity=50),
    Deployment("embed-small", "text-embedding-3-small", sku="Standard", capacity=120),
    Deployment("gpt-4o-batch", "gpt-4o", model_version="2024-08-06", sku="GlobalBatch", capacity=100),
    Deployment("o3-mini", "o3-mini", model_version="2025-01-31", sku="GlobalStandard"),
    Deployment("dalle", "dall-e-3", model_version="3.0", capabilities={"imageGenerations": "true"}),
    Deployment("gpt-35-old", "gpt-35-turbo", model_version="0125", provisioning_state="Creating"),
    # A Foundry model: not an OpenAI format, served on the v1 API only (second-release §F).
    Deployment("DeepSeek-R1", "DeepSeek-R1", model_version="1", sku="GlobalStandard", format="DeepSeek"),
)


@attrs.frozen
class FederatedCredential:
    """A federated identity credential: the external tokens (issuer and subject) an app trusts."""

    issuer: str
    subject: str
    audiences: tuple[str, ...] = (TOKEN_EXCHANGE_AUDIENCE,)


@attrs.frozen
class Principal:
    """A service principal (an app or a managed identity): its credentials and its role assignments."""

    client_id: str
    object_id: str
    roles: frozenset[str]
    secret: str | None = attrs.field(default=None, repr=False)
    certificates: tuple[x509.Certificate, ...] = ()
    federated: tuple[FederatedCredential, ...] = ()
    #: A managed identity has no credential of its own: only the host it is attached to gets its tokens.
    managed: bool = False

    def has_role(self, role: str) -> bool:
        return role in self.roles

    def certificate_by_thumbprint(self, algorithm: str, thumbprint: bytes) -> x509.Certificate | None:
        """The registered certificate whose SHA-1 (`x5t`) or SHA-256 (`x5t#S256`) digest matches."""
        # x5t is SHA-1 by definition (RFC 7515); the digest only names a certificate.
        digest: hashes.HashAlgorithm = hashes.SHA1() if algorithm == "sha1" else hashes.SHA256()  # noqa: S303
        for certificate in self.certificates:
            if certificate.fingerprint(digest) == thumbprint:
                return certificate
        return None


@attrs.frozen
class IssuedToken:
    """An access token the emulator handed out; tokens are checked by lookup, not by signature."""

    token: str = attrs.field(repr=False)
    client_id: str
    tenant_id: str
    audience: str
    expires_at: float

    def is_expired(self, now: float | None = None) -> bool:
        return (time.time() if now is None else now) >= self.expires_at


@attrs.frozen
class RecordedRequest:
    """One request the emulator received, recorded whatever its outcome."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes = attrs.field(repr=False)
    kind: str
    client_id: str | None
    status: int
    # Requests that share a number came over one TCP connection (keep-alive).
    connection_id: int
    # The injected fault that took over this request (faults.py), if any. A status of 0 means
    # no answer was sent (the connection was reset or dropped).
    fault: str | None = None


class EmulatorState:
    """Thread-safe store of principals, keys, tokens, deployments, settings and the request log."""

    def __init__(self, *, token_lifetime: int, page_size: int) -> None:
        self._lock = threading.RLock()
        self._principals: dict[str, Principal] = {}
        # The managed identities of the emulated Azure host (the machine the MSI endpoint serves).
        self._system_assigned: str | None = None
        self._user_assigned: set[str] = set()
        self._api_keys: set[str] = set()
        self._tokens: dict[str, IssuedToken] = {}
        self._token_requests: collections.Counter[tuple[str | None, str | None]] = collections.Counter()
        self._deployments: dict[str, Deployment] = {}
        self._requests: list[RecordedRequest] = []
        self._next_object_id = 0
        self.token_lifetime = token_lifetime
        self.page_size = page_size
        self.next_link_origin: str | None = None
        #: The deployments' rate limits; the limiter keeps its own lock.
        self.rate_limits = RateLimiter()

    # Settings are validated here so that a bad value fails in the test that sets it, not later
    # inside a handler thread.
    @property
    def token_lifetime(self) -> int:
        with self._lock:
            return self._token_lifetime

    @token_lifetime.setter
    def token_lifetime(self, seconds: int) -> None:
        if isinstance(seconds, bool) or not isinstance(seconds, int) or seconds < 1:
            raise ValueError(f"token_lifetime must be a positive number of seconds, not {seconds!r}")
        with self._lock:
            self._token_lifetime = seconds

    @property
    def page_size(self) -> int:
        with self._lock:
            return self._page_size

    @page_size.setter
    def page_size(self, size: int) -> None:
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f"page_size must be a positive integer, not {size!r}")
        with self._lock:
            self._page_size = size

    @property
    def next_link_origin(self) -> str | None:
        with self._lock:
            return self._next_link_origin

    @next_link_origin.setter
    def next_link_origin(self, origin: str | None) -> None:
        with self._lock:
            self._next_link_origin = None if origin is None else origin.rstrip("/")

    # Principals.
    def add_secret_client(self, client_id: str, secret: str, roles: Iterable[str]) -> None:
        """Register an app with a client secret; an existing app gets the secret and these roles."""
        with self._lock:
            current = self._principals.get(client_id)
            if current is None:
                current = self._new_principal(client_id)
            self._principals[client_id] = attrs.evolve(current, secret=secret, roles=frozenset(roles))

    def add_certificate_client(self, client_id: str, certificate: x509.Certificate, roles: Iterable[str]) -> None:
        """Register an app's certificate; an app may hold several, as during a rotation."""
        with self._lock:
            current = self._principals.get(client_id)
            if current is None:
                current = self._new_principal(client_id)
            self._principals[client_id] = attrs.evolve(
                current, certificates=(*current.certificates, certificate), roles=frozenset(roles)
            )

    def add_federated_credential(self, client_id: str, credential: FederatedCredential, roles: Iterable[str]) -> None:
        """Let an app (or user-assigned identity) trust an external issuer's tokens for one subject."""
        with self._lock:
            current = self._principals.get(client_id)
            if current is None:
                current = self._new_principal(client_id)
            self._principals[client_id] = attrs.evolve(
                current, federated=(*current.federated, credential), roles=frozenset(roles)
            )

    def add_managed_identity(self, client_id: str, roles: Iterable[str], *, system_assigned: bool) -> None:
        """Create a managed identity and attach it to the emulated host (replacing a system-assigned one)."""
        with self._lock:
            current = self._principals.get(client_id) or self._new_principal(client_id)
            self._principals[client_id] = attrs.evolve(current, managed=True, roles=frozenset(roles))
            if system_assigned:
                self._system_assigned = client_id
            else:
                self._user_assigned.add(client_id)

    def managed_identity(self, client_id: str | None) -> Principal | None:
        """The host's identity for an MSI token request: user-assigned by client id, else system-assigned."""
        with self._lock:
            if client_id is None:
                wanted = self._system_assigned
            else:
                # Client ids are GUIDs: Azure compares them without regard to case.
                wanted = next((known for known in self._user_assigned if known.lower() == client_id.lower()), None)
            return None if wanted is None else self._principals.get(wanted)

    def _new_principal(self, client_id: str) -> Principal:
        # Object ids only appear in error messages; stable, readable ones ease debugging.
        self._next_object_id += 1
        object_id = f"00000000-0000-0000-0000-{self._next_object_id:012d}"
        return Principal(client_id=client_id, object_id=object_id, roles=frozenset())

    def principal(self, client_id: str) -> Principal | None:
        with self._lock:
            return self._principals.get(client_id)

    # API keys.
    def add_api_key(self, key: str) -> None:
        if not key:
            raise ValueError("an API key must not be empty")
        with self._lock:
            self._api_keys.add(key)

    def has_api_key(self, key: str) -> bool:
        with self._lock:
            return key in self._api_keys

    # Tokens.
    def store_token(self, token: IssuedToken) -> None:
        with self._lock:
            now = time.time()
            # Forget long-dead tokens so that a long demo run does not grow without bound; an
            # hour of grace keeps "expired" distinguishable from "never issued".
            dead = [key for key, old in self._tokens.items() if old.expires_at < now - 3600]
            for key in dead:
                del self._tokens[key]
            self._tokens[token.token] = token

    def lookup_token(self, token: str) -> IssuedToken | None:
        with self._lock:
            return self._tokens.get(token)

    def revoke_tokens(self, client_id: str | None = None) -> int:
        """Forget issued tokens (all, or one client's); return how many were revoked."""
        with self._lock:
            doomed = [key for key, token in self._tokens.items() if client_id in (None, token.client_id)]
            for key in doomed:
                del self._tokens[key]
            return len(doomed)

    def count_token_request(self, client_id: str | None, scope: str | None) -> None:
        with self._lock:
            self._token_requests[(client_id, scope)] += 1

    def token_requests(self, client_id: str | None = None, scope: str | None = None) -> int:
        with self._lock:
            return sum(
                count
                for (counted_client, counted_scope), count in self._token_requests.items()
                if (client_id is None or counted_client == client_id) and (scope is None or counted_scope == scope)
            )

    # Deployments.
    def set_deployments(self, deployments: Iterable[Deployment]) -> None:
        listed = list(deployments)
        by_name = {deployment.name: deployment for deployment in listed}
        if len(by_name) != len(listed):
            raise ValueError("deployment names must be unique")
        with self._lock:
            self._deployments = by_name

    def deployments(self) -> tuple[Deployment, ...]:
        with self._lock:
            return tuple(self._deployments.values())

    def deployment(self, name: str) -> Deployment | None:
        with self._lock:
            return self._deployments.get(name)

    # Request log.
    def record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()
