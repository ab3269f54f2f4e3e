"""Credentials per identity, a token cache per identity and scope, and requests auth hooks.

azure-identity alone lets every racing thread fetch its own token and hangs for minutes on a
dead authority. Here each identity's credential is built once, with bounded timeouts; each
(identity, scope) token is fetched once and shared until shortly before it expires; and a 401
gets one resend with a token that is really new (spec §1.1).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import attrs
import requests

from .cache import BoundedCache
from .errors import AzureServiceError, ConfigurationError, ErrorDetail, TransportError
from .identity import (
    API_KEY,
    CERTIFICATE,
    MANAGED_IDENTITY,
    POLYSYNC_SERVICE_PRINCIPAL,
    SERVICE_PRINCIPAL,
    WORKLOAD_IDENTITY,
    AuthConfig,
)
from .ids import HEADER_VALUE
from .platform import CONNECT_TIMEOUT, PlatformConfig
from .redaction import Redactor
from .troubleshooting import token_advice

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

log = logging.getLogger(__name__)

#: A token is renewed when less than this is left, as azure-core and azure-identity do.
REFRESH_MARGIN = 300.0


@attrs.frozen
class CachedToken:
    token: str = attrs.field(repr=False)
    expires_on: float

    def fresh(self, now: float) -> bool:
        return self.expires_on - now > REFRESH_MARGIN


class TokenProvider:
    """All tokens of one identity: one credential, one cache slot and lock per scope."""

    def __init__(self, auth: AuthConfig, build: Callable[[], TokenCredential]) -> None:
        self._auth = auth
        self._build = build
        self._credential: TokenCredential | None = None
        self._credential_lock = threading.Lock()
        self._tokens: dict[str, CachedToken] = {}
        self._scope_locks: dict[str, threading.Lock] = {}
        self._locks_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<TokenProvider {self._auth.method} client={self._auth.client_id}>"

    def token(self, scope: str) -> str:
        cached = self._tokens.get(scope)
        if cached is not None and cached.fresh(time.time()):
            return cached.token
        with self._scope_lock(scope):
            # Another thread may have fetched it while this one waited.
            cached = self._tokens.get(scope)
            if cached is not None and cached.fresh(time.time()):
                return cached.token
            return self._fetch(scope).token

    def renew_after_401(self, scope: str, rejected: str) -> str | None:
        """A token to resend with after a 401, or None when no different token is to be had."""
        with self._scope_lock(scope):
            cached = self._tokens.get(scope)
            if cached is not None and cached.token != rejected:
                return cached.token  # another thread already renewed it
            self._tokens.pop(scope, None)
            if self._auth.method != POLYSYNC_SERVICE_PRINCIPAL:
                # An azure-identity credential would hand back its own cached token: rebuild.
                with self._credential_lock:
                    self._credential = None
            fresh = self._fetch(scope)
            return fresh.token if fresh.token != rejected else None

    def held_tokens(self) -> tuple[str, ...]:
        return tuple(t.token for t in list(self._tokens.values()))

    def _scope_lock(self, scope: str) -> threading.Lock:
        with self._locks_lock:
            return self._scope_locks.setdefault(scope, threading.Lock())

    def _get_credential(self) -> TokenCredential:
        with self._credential_lock:
            if self._credential is None:
                self._credential = self._build()
            return self._credential

    def _fetch(self, scope: str) -> CachedToken:
        credential = self._get_credential()
        now = time.time()
        try:
            access = credential.get_token(scope)
        except Exception as exc:
            raise _token_error(exc, self._auth, scope) from None
        raw = getattr(access, "token", None)
        if not isinstance(raw, str) or not HEADER_VALUE.fullmatch(raw):
            # Checked before it goes into an Authorization header; never quoted.
            source = "the host's credential" if self._auth.method == POLYSYNC_SERVICE_PRINCIPAL else "Microsoft Entra ID"
            raise ConfigurationError(
                f"{source} returned a malformed token for {scope} (not printable ASCII text); nothing "
                "was sent with it. Check the credential's configuration or its token source."
            )
        token = CachedToken(raw, float(access.expires_on))
        self._tokens[scope] = token
        log.debug("Got a token for scope %s (expires in %.0f s)", scope, token.expires_on - now)
        return token


def _token_error(exc: Exception, auth: AuthConfig, scope: str) -> Exception:
    """azure-identity's failure as one of ours, keeping the AADSTS code and message."""
    from azure.core.exceptions import ClientAuthenticationError, ServiceRequestError

    if isinstance(exc, ConfigurationError):
        return exc
    if auth.token_file_path is not None and isinstance(exc, OSError) and exc.filename == auth.token_file_path:
        # Present when the configuration was checked, gone or unreadable now.
        return ConfigurationError(
            f"The federated token file {auth.token_file_path!r} ('Token File Path' or AZURE_FEDERATED_TOKEN_FILE) "
            f"cannot be read ({exc.strerror}); nothing was sent. Mount the token there on every worker."
        )
    text = str(getattr(exc, "message", None) or exc)
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if status is None:
        # azure-identity keeps no response for a token endpoint that answered with an error
        # page; MSAL's text still names the status ("HTTP Error: 503", {'code': '429', ...}).
        # Without it an Entra outage would read as permanent and end a running batch as Failed.
        named = re.search(r"HTTP Error: (\d{3})\b|'code': '(\d{3})'", text)
        status = int(named.group(1) or named.group(2)) if named else None
    aadsts = re.search(r"AADSTS\d+", text)
    trace = re.search(r"Trace ID: ([0-9a-fA-F-]{36})", text)
    code_match = re.search(r"\((\w+)\)", text)
    code = aadsts.group(0) if aadsts else (code_match.group(1) if code_match else None)
    endpoint = re.search(r"Token request error: \(\w+\) (\d{3}), ", text) if auth.method == MANAGED_IDENTITY else None
    if endpoint is not None:
        # MSAL puts the identity endpoint's status in the text and makes up the OAuth code.
        status, code = int(endpoint.group(1)), None
    # azure-identity's own client (Workload Identity) quotes whatever was not a token: a JSON
    # object as a dict, anything else (an HTML page) verbatim, with no status kept.
    page = re.match(r"Unexpected response from Microsoft Entra ID: (?!\{)", text) is not None
    if page or _not_json(exc):
        # MSAL parses every answer as JSON: a redirect or a proxy's HTML page reads as
        # "Expecting value: line 1 column 1", which tells an operator nothing.
        source = "the managed identity endpoint" if auth.method == MANAGED_IDENTITY else f"the authority {auth.authority}"
        text = f"{source} did not answer with JSON (a redirect, a proxy's sign-in or error page, or an outage page)"
        code = "NonJsonTokenAnswer"
    message = f"Getting a Microsoft Entra token for {scope} failed: {_first_lines(text)}"
    detail = ErrorDetail(status, code, message, trace.group(1) if trace else None, fix=token_advice(code, text, auth, status))
    # The authority's words may echo the form it was sent (the client secret): scrub them here,
    # so that no log record or message of the plugin carries them.
    detail = Redactor.of(auth.secrets).detail(detail)
    if isinstance(exc, ServiceRequestError) or not isinstance(exc, ClientAuthenticationError):
        return TransportError(detail, transient=True)
    # A page without a status cannot be told from an outage: transient, so that a running batch
    # is polled on (Unknown) rather than ended; a submit still fails once Max Retries is spent.
    transient = (status is None and page) or (status is not None and (status == 429 or status >= 500))
    return AzureServiceError(detail, transient=transient)


def _not_json(exc: BaseException) -> bool:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, json.JSONDecodeError):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return "Expecting value: line 1 column 1" in str(exc)


def _first_lines(text: str, limit: int = 600) -> str:
    """``text`` on one line without its closing full stop, cut at ``limit`` characters ("..." marks the cut)."""
    text = " ".join(line.strip() for line in text.splitlines() if line.strip()).rstrip(".")
    return text if len(text) <= limit else text[:limit] + "..."


def redactor_for(config: PlatformConfig) -> Redactor:
    """Scrubs the platform's secrets and every token the plugin holds for its identity."""
    held: tuple[str, ...] = ()
    if config.auth.method != API_KEY:
        held = token_provider(config).held_tokens()
    return Redactor.of(config.auth.secrets + held)


# -- building credentials ---------------------------------------------------------------------

_PROVIDERS: BoundedCache[TokenProvider] = BoundedCache("token-providers", max_size=128)


def token_provider(config: PlatformConfig) -> TokenProvider:
    """The shared provider of the platform's identity (built once per identity).

    A public service: besides the HTTP layer, the CLI's ``check`` asks it for a token per scope,
    so its report shows the same cache, errors and advice a run would get.
    """
    auth = config.auth
    if auth.method == API_KEY:
        raise ConfigurationError(f"Platform '{config.name}': authentication method 'API Key' cannot get Microsoft Entra tokens.")
    key = (auth.identity_key, config.request_timeout, config.max_retries, config.ca_bundle)
    return _PROVIDERS.get_or_create(key, lambda: TokenProvider(auth, lambda: _build_credential(config)))


def _build_credential(config: PlatformConfig) -> TokenCredential:
    auth = config.auth
    if auth.method == POLYSYNC_SERVICE_PRINCIPAL:
        credential: TokenCredential = auth.host_credential
        return credential
    # Every credential the plugin builds: bounded timeouts and tries, and the caller's CA.
    transport: dict[str, Any] = {
        "connection_timeout": min(CONNECT_TIMEOUT, config.request_timeout),
        "read_timeout": config.request_timeout,
        "retry_total": config.max_retries,
    }
    ca_bundle = config.trusted_ca_bundle()
    if ca_bundle:
        transport["connection_verify"] = ca_bundle
    if auth.method == MANAGED_IDENTITY:
        from azure.identity import ManagedIdentityCredential

        # The endpoint is the host's own (IDENTITY_ENDPOINT, IMDS): no authority to choose.
        return ManagedIdentityCredential(client_id=auth.client_id, **transport)
    options: dict[str, Any] = {"authority": f"https://{auth.authority}", **transport}
    if not auth.instance_discovery:
        # Otherwise MSAL asks the public cloud's authority about this host first.
        options["disable_instance_discovery"] = True
    assert auth.tenant_id is not None and auth.client_id is not None
    if auth.method == SERVICE_PRINCIPAL:
        from azure.identity import ClientSecretCredential

        assert auth.client_secret is not None
        return ClientSecretCredential(auth.tenant_id, auth.client_id, auth.client_secret, **options)
    if auth.method == CERTIFICATE:
        from azure.identity import CertificateCredential

        data = load_certificate(config)
        return CertificateCredential(
            auth.tenant_id,
            auth.client_id,
            certificate_data=data,
            password=auth.certificate_password,
            **options,
        )
    if auth.method == WORKLOAD_IDENTITY:
        from azure.identity import WorkloadIdentityCredential

        # The path checked in identity.py, passed explicitly so that the file checked is the file
        # read. azure-identity re-reads it every 10 minutes (and a rebuild after a 401 at once),
        # so the token Kubernetes rotates is picked up.
        return WorkloadIdentityCredential(
            tenant_id=auth.tenant_id, client_id=auth.client_id, token_file_path=auth.token_file_path, **options
        )
    raise AssertionError(auth.method)


def load_certificate(config: PlatformConfig) -> bytes:
    """The certificate's bytes, checked to load and to match ``Thumbprint`` when set."""
    auth = config.auth
    where = f"Platform '{config.name}': attribute 'Certificate'"
    if auth.certificate is not None:
        data = auth.certificate
    else:
        assert auth.certificate_path is not None
        try:
            with open(auth.certificate_path, "rb") as handle:
                data = handle.read()
        except OSError as exc:
            raise ConfigurationError(
                f"{where} names the file {auth.certificate_path!r}, which cannot be read "
                f"({exc.strerror}). Put the file on every worker or paste the PEM text instead."
            ) from None
    thumbprint = certificate_thumbprint(data, auth.certificate_password, where)
    if auth.thumbprint is not None and thumbprint != auth.thumbprint:
        raise ConfigurationError(
            f"Platform '{config.name}': attribute 'Thumbprint' is {auth.thumbprint} but the "
            f"certificate's SHA-1 thumbprint is {thumbprint}. Use the certificate registered in "
            "the app registration, or correct 'Thumbprint'."
        )
    return data


def certificate_thumbprint(data: bytes, password: str | None, where: str) -> str:
    """SHA-1 thumbprint (upper-case hex) of a PEM or PKCS#12 certificate with its key."""
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, load_pem_private_key, pkcs12

    secret = password.encode() if password else None
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            key = load_pem_private_key(_pem_block(data, b"PRIVATE KEY"), password=secret)
            cert = x509.load_pem_x509_certificate(_pem_block(data, b"CERTIFICATE"))
        else:
            p12_key, cert_or_none, _ = pkcs12.load_key_and_certificates(data, secret)
            if p12_key is None or cert_or_none is None:
                raise ValueError("the PKCS#12 file lacks a private key or a certificate")
            key, cert = p12_key, cert_or_none
    except (ValueError, TypeError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if "password" in reason.lower() or "decrypt" in reason.lower():
            fix = "Check 'Certificate Password'."
        else:
            fix = "It needs the certificate and its private key, as PEM or PKCS#12."
        raise ConfigurationError(f"{where} cannot be loaded ({_scrub(reason)}). {fix}") from None
    if not isinstance(key, RSAPrivateKey):
        raise ConfigurationError(
            f"{where} has a key of type {type(key).__name__.removeprefix('_')}, but Microsoft Entra "
            "certificate credentials are signed with RS256 and need an RSA key. Create an RSA certificate."
        )
    return hashlib.sha1(cert.public_bytes(Encoding.DER)).hexdigest().upper()  # noqa: S324 (Entra's thumbprint is SHA-1)


def _pem_block(data: bytes, label: bytes) -> bytes:
    match = re.search(rb"-----BEGIN ([A-Z ]*" + label + rb")-----.*?-----END \1-----", data, re.S)
    if match is None:
        raise ValueError(f"no {label.decode()} block in the PEM text")
    return match.group(0)


def _scrub(reason: str) -> str:
    # cryptography's messages describe structure, but keep them short and never echo bytes.
    return re.sub(r"b'[^']*'", "<bytes>", reason)[:200]


# -- requests auth ----------------------------------------------------------------------------


class BearerAuth(requests.auth.AuthBase):
    """``Authorization: Bearer`` from the shared provider; only ever sent over https."""

    def __init__(self, provider: TokenProvider, scope: str) -> None:
        self.provider = provider
        self.scope = scope

    def __repr__(self) -> str:
        return f"<BearerAuth scope={self.scope}>"

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        if not (request.url or "").startswith("https://"):
            raise ConfigurationError("Refusing to send a bearer token over a non-https URL.")
        request.headers["Authorization"] = "Bearer " + self.provider.token(self.scope)
        return request

    def renew(self, request: requests.PreparedRequest) -> bool:
        """After a 401 on ``request``: True when the cache now holds a newer token.

        The resend is prepared anew and reads its token from the cache, so ``request`` itself
        is only read (which token was refused), never rewritten.
        """
        sent = (request.headers.get("Authorization") or "").removeprefix("Bearer ")
        return self.provider.renew_after_401(self.scope, sent) is not None


class ApiKeyAuth(requests.auth.AuthBase):
    """The resource key as the ``api-key`` header."""

    def __init__(self, key: str) -> None:
        self._key = key

    def __repr__(self) -> str:
        return "<ApiKeyAuth>"

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["api-key"] = self._key
        return request

    def renew(self, request: requests.PreparedRequest) -> bool:
        return False  # a key has no newer version to try


def auth_for(config: PlatformConfig, scope: str) -> BearerAuth | ApiKeyAuth:
    if config.auth.method == API_KEY:
        assert config.auth.api_key is not None
        return ApiKeyAuth(config.auth.api_key)
    return BearerAuth(token_provider(config), scope)
