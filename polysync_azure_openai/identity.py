"""The identity a platform authenticates as (spec §1.1, second-release §E): the methods, their
attributes, the certificate forms and the token file, checked before any request."""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Hashable
from typing import Any, Final

import attrs

from . import ids
from .attributes import AttributeReader
from .clouds import MICROSOFT_AUTHORITIES, Cloud, parse_https_base
from .errors import ConfigurationError
from .ids import shown

# Auth method display names (spec §1.1).
POLYSYNC_SERVICE_PRINCIPAL: Final = "Polysync Service Principal"
SERVICE_PRINCIPAL: Final = "Service Principal"
CERTIFICATE: Final = "Certificate"
MANAGED_IDENTITY: Final = "Managed Identity"
WORKLOAD_IDENTITY: Final = "Workload Identity"
API_KEY: Final = "API Key"
AUTH_METHODS: Final = (
    POLYSYNC_SERVICE_PRINCIPAL,
    SERVICE_PRINCIPAL,
    CERTIFICATE,
    MANAGED_IDENTITY,
    WORKLOAD_IDENTITY,
    API_KEY,
)

#: Where Kubernetes' workload identity webhook names the projected service account token.
FEDERATED_TOKEN_FILE_VARIABLE: Final = "AZURE_FEDERATED_TOKEN_FILE"  # noqa: S105 (a variable name)
#: What azure-identity's ManagedIdentityCredential reads to find the host's identity endpoint
#: (App Service, Azure Arc, Service Fabric, Cloud Shell, Azure ML, AKS pod identity's IMDS, and
#: the workload identity it prefers when all three of its variables are set).
MANAGED_IDENTITY_VARIABLES: Final = (
    "IDENTITY_ENDPOINT",
    "IDENTITY_HEADER",
    "IDENTITY_SERVER_THUMBPRINT",
    "IMDS_ENDPOINT",
    "MSI_ENDPOINT",
    "MSI_SECRET",
    "AZURE_POD_IDENTITY_AUTHORITY_HOST",
    "AZURE_CLIENT_ID",
    "AZURE_TENANT_ID",
    FEDERATED_TOKEN_FILE_VARIABLE,
)


@attrs.frozen
class AuthConfig:
    """The identity a platform authenticates as. Secrets are kept out of ``repr``."""

    method: str
    tenant_id: str | None = None
    client_id: str | None = None
    authority: str | None = None
    instance_discovery: bool = True
    client_secret: str | None = attrs.field(default=None, repr=False)
    certificate: bytes | None = attrs.field(default=None, repr=False)
    certificate_path: str | None = None
    certificate_password: str | None = attrs.field(default=None, repr=False)
    thumbprint: str | None = None
    #: Workload Identity: the federated token's file (the path, never its content).
    token_file_path: str | None = None
    api_key: str | None = attrs.field(default=None, repr=False)
    host_credential: Any = attrs.field(default=None, repr=False, eq=False)
    #: The environment the credential reads itself (environment_of): a changed endpoint or
    #: IDENTITY_HEADER is another identity, so its tokens and credential are not reused.
    environment: tuple[str | None, ...] = attrs.field(default=(), repr=False)

    @property
    def secrets(self) -> tuple[str, ...]:
        """The values no text from a server may carry back (the token cache adds its tokens)."""
        named = dict(zip(MANAGED_IDENTITY_VARIABLES, self.environment, strict=False)) if self.method == MANAGED_IDENTITY else {}
        # The identity endpoint's secret header reaches the plugin only through the environment.
        held = (named.get("IDENTITY_HEADER"), named.get("MSI_SECRET"))
        return tuple(v for v in (self.client_secret, self.api_key, self.certificate_password, *held) if v)

    @property
    def identity_key(self) -> Hashable:
        """Equal for two platforms that authenticate as the same identity (spec §1.1)."""
        if self.method == POLYSYNC_SERVICE_PRINCIPAL:
            return (self.method, hashable_identity(self.host_credential))
        return (
            self.method,
            self.authority,
            self.tenant_id,
            self.client_id,
            self.client_secret,
            self.certificate,
            self.certificate_path,
            self.certificate_password,
            self.thumbprint,
            self.token_file_path,
            self.api_key,
            self.environment,
        )


def environment_of(method: str | None) -> tuple[str | None, ...]:
    """The environment variables a method's credential reads on its own, as they are now.

    Part of the configuration's cache key: read per hook call (a few dictionary look-ups), so a
    worker whose variables change gets a new credential, never a stale endpoint.
    """
    if method == MANAGED_IDENTITY:
        return tuple(os.environ.get(name) for name in MANAGED_IDENTITY_VARIABLES)
    if method == WORKLOAD_IDENTITY:
        return (os.environ.get(FEDERATED_TOKEN_FILE_VARIABLE),)
    return ()


def hashable_identity(obj: Any) -> Hashable:
    try:
        hash(obj)
    except TypeError:
        return ("id", id(obj))
    return ("object", obj)


def _authority(r: AttributeReader, cloud: Cloud) -> tuple[str, bool]:
    value = r.get("Authority Host")
    if value is None:
        return cloud.authority, True
    candidate = value if value.lower().startswith(("https://", "http://")) else f"https://{value}"
    parsed = parse_https_base(candidate)
    if isinstance(parsed, str) or parsed.prefix:
        reason = parsed if isinstance(parsed, str) else "must not have a path"
        raise r.fail(
            "Authority Host",
            f"is {shown(value)}: it {reason}",
            "Use a host name such as login.microsoftonline.us, host:port, or an https:// URL "
            "without a path, or leave it blank for the cloud's authority.",
        )
    host = parsed.origin.removeprefix("https://")
    return host, host in MICROSOFT_AUTHORITIES


def parse_auth(r: AttributeReader, platform: Any, cloud: Cloud) -> AuthConfig:
    method = getattr(platform, "auth_method", None)
    if method not in AUTH_METHODS:
        given = shown(str(method)) if method else "not set"
        raise ConfigurationError(
            f"Platform '{r.platform_name}': authentication method {given} is not supported. "
            f"Choose one of: {', '.join(AUTH_METHODS)}."
        )
    if method == POLYSYNC_SERVICE_PRINCIPAL:
        credential = getattr(platform, "credential", None)
        if credential is None or not callable(getattr(credential, "get_token", None)):
            raise ConfigurationError(
                f"Platform '{r.platform_name}': authentication method '{method}' needs the host's "
                "identity, but the host passed no credential. Check that the Polysync host has a "
                "service principal configured, or choose 'Service Principal', 'Certificate', 'Managed Identity' "
                "or 'Workload Identity'."
            )
        return AuthConfig(method=method, host_credential=credential)
    if method == API_KEY:
        key = r.required("API Key", "Keys and Endpoint page of the resource in the Azure portal")
        if not ids.HEADER_VALUE.fullmatch(key):
            # Never quote the value: it is the secret, or two of them pasted together.
            raise r.fail(
                "API Key",
                "contains spaces, line breaks, control or non-ASCII characters, so it cannot be sent "
                "as the api-key header (Key 1 and Key 2 pasted together?)",
                "Paste exactly one key from the resource's Keys and Endpoint page.",
            )
        return AuthConfig(method=method, api_key=key)
    if method == MANAGED_IDENTITY:
        # Blank: the system-assigned identity of the Azure resource the worker runs on.
        client_id = r.matching(
            "Client Id",
            r.get("Client Id"),
            ids.GUID,
            "it must be a GUID (the user-assigned identity's Client ID), or blank for the system-assigned identity",
        )
        return AuthConfig(method=method, client_id=client_id, environment=environment_of(method))

    why = (
        "the managed identity's Overview page in the Azure portal"
        if method == WORKLOAD_IDENTITY
        else "the app registration's Overview page in the Azure portal"
    )
    tenant = r.required("Tenant Id", why)
    if not (ids.GUID.fullmatch(tenant) or ids.DOMAIN.fullmatch(tenant)):
        raise r.fail(
            "Tenant Id",
            f"is {shown(tenant)}: it must be a GUID or a domain such as contoso.onmicrosoft.com",
            "Copy the Directory (tenant) ID from the app registration's Overview page.",
        )
    client_id = r.required("Client Id", why)
    r.matching("Client Id", client_id, ids.GUID, "it must be a GUID (the Application (client) ID)")
    authority, microsoft = _authority(r, cloud)
    common = dict(
        method=method,
        tenant_id=tenant,
        client_id=client_id,
        authority=authority,
        instance_discovery=microsoft,
    )
    if method == WORKLOAD_IDENTITY:
        return AuthConfig(token_file_path=_token_file(r), environment=environment_of(method), **common)
    if method == SERVICE_PRINCIPAL:
        secret = r.required("Client Secret", "the secret's Value from Certificates & secrets")
        return AuthConfig(client_secret=secret, **common)

    certificate, path = _certificate(r)
    thumbprint = r.get("Thumbprint")
    if thumbprint is not None:
        normalised = ids.THUMBPRINT_NOISE.sub("", thumbprint).upper()
        if not ids.HEX40.fullmatch(normalised):
            raise r.fail(
                "Thumbprint",
                f"is {shown(thumbprint)}: it must be 40 hexadecimal digits (a SHA-1 thumbprint)",
                "Copy the thumbprint from Certificates & secrets in the Azure portal, or leave it blank.",
            )
        thumbprint = normalised
    return AuthConfig(
        certificate=certificate,
        certificate_path=path,
        certificate_password=r.get("Certificate Password"),
        thumbprint=thumbprint,
        **common,
    )


def _token_file(r: AttributeReader) -> str:
    """The federated token's file: `Token File Path`, else AZURE_FEDERATED_TOKEN_FILE; absolute and present.

    Only the path is checked: the token is a secret and Kubernetes rotates it, so azure-identity
    reads it when it asks Entra for a token.
    """
    variable = FEDERATED_TOKEN_FILE_VARIABLE
    path = r.get("Token File Path")
    source = "attribute 'Token File Path'"
    if path is None:
        path = (os.environ.get(variable) or "").strip() or None
        source = f"attribute 'Token File Path' is blank and the environment variable {variable}"
        if path is None:
            raise r.fail(
                "Token File Path",
                f"is not set and neither is the environment variable {variable}",
                'On AKS, label the pod azure.workload.identity/use: "true" and annotate its service account with '
                "azure.workload.identity/client-id, so the webhook mounts the token and sets the variable; "
                "elsewhere set 'Token File Path' to the absolute path of the federated token file.",
            )
    where = f"Platform '{r.platform_name}': {source}"
    if not os.path.isabs(path):
        raise ConfigurationError(
            f"{where} is {shown(path, 200)}: it must be an absolute path. Use the full path of the federated token "
            "file, such as /var/run/secrets/azure/tokens/azure-identity-token."
        )
    if not os.path.isfile(path):
        problem = "a directory" if os.path.isdir(path) else "a file that does not exist on this worker"
        raise ConfigurationError(
            f"{where} names {shown(path, 200)}, {problem}. Mount the federated token there on every worker "
            "(on AKS the workload identity webhook does), or correct the path."
        )
    return path


def _certificate(r: AttributeReader) -> tuple[bytes | None, str | None]:
    """PEM text, strict base64 of PEM or PKCS#12, or an absolute path (spec §1.1)."""
    value = r.required("Certificate", "PEM text, base64 of a PEM or PKCS#12 file, or its path")
    if value.startswith("-----BEGIN"):
        return value.encode(), None
    compact = re.sub(r"\s", "", value)
    try:
        decoded = base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        decoded = b""
    # PEM text, or DER (an ASN.1 SEQUENCE, as PKCS#12 is).
    if decoded.startswith(b"-----BEGIN") or decoded[:1] == b"\x30":
        return decoded, None
    if value.startswith("/"):
        return None, value
    # Never echo the value: it may be a key pasted in a broken form.
    raise r.fail(
        "Certificate",
        "is neither PEM text (-----BEGIN ...), nor base64 of a PEM or PKCS#12 file, nor an absolute file path",
        "Paste the PEM text, its base64, or the absolute path of the file on the workers.",
    )
