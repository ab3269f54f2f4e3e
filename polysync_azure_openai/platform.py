"""Host platform attributes -> a validated, frozen ``PlatformConfig``.

Everything a request needs (endpoints, scopes, timeouts, auth) is checked here, before any
network call, so that no attribute value can send a request to another host or path and every
mistake gets a message naming the attribute, what is wrong and how to fix it.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections.abc import Hashable, Mapping
from typing import Any, Final
from urllib.parse import unquote, urlsplit

import attrs

from . import ids
from .cache import BoundedCache
from .errors import ConfigurationError
from .ids import shown

# Auth method display names (spec §1.1).
POLYSYNC_SERVICE_PRINCIPAL: Final = "Polysync Service Principal"
SERVICE_PRINCIPAL: Final = "Service Principal"
CERTIFICATE: Final = "Certificate"
API_KEY: Final = "API Key"
AUTH_METHODS: Final = (POLYSYNC_SERVICE_PRINCIPAL, SERVICE_PRINCIPAL, CERTIFICATE, API_KEY)

DEFAULT_API_VERSION: Final = "2024-10-21"
DEFAULT_REQUEST_TIMEOUT: Final = 120.0
DEFAULT_MAX_RETRIES: Final = 3
CONNECT_TIMEOUT: Final = 10.0
MAX_REQUEST_TIMEOUT: Final = 3600.0
#: Below this no Azure answer can arrive; a smaller value is a typo, not a wish.
MIN_REQUEST_TIMEOUT: Final = 0.1
MAX_RETRIES_LIMIT: Final = 10


@attrs.frozen
class Cloud:
    """One row of spec §1.3."""

    name: str
    data_plane_suffix: str
    data_plane_scope: str
    arm_endpoint: str
    arm_scope: str
    authority: str
    portal: str


CLOUDS: Final[Mapping[str, Cloud]] = {
    c.name: c
    for c in (
        Cloud(
            "AzureCloud",
            "openai.azure.com",
            "https://cognitiveservices.azure.com/.default",
            "https://management.azure.com",
            "https://management.azure.com/.default",
            "login.microsoftonline.com",
            "portal.azure.com",
        ),
        Cloud(
            "AzureUSGovernment",
            "openai.azure.us",
            "https://cognitiveservices.azure.us/.default",
            "https://management.usgovcloudapi.net",
            "https://management.core.usgovcloudapi.net/.default",
            "login.microsoftonline.us",
            "portal.azure.us",
        ),
        Cloud(
            "AzureChinaCloud",
            "openai.azure.cn",
            "https://cognitiveservices.azure.cn/.default",
            "https://management.chinacloudapi.cn",
            "https://management.core.chinacloudapi.cn/.default",
            "login.chinacloudapi.cn",
            "portal.azure.cn",
        ),
    )
}

# Microsoft's own authorities: MSAL knows them, so instance discovery may stay on for them.
MICROSOFT_AUTHORITIES: Final = frozenset(
    {
        "login.microsoftonline.com",
        "login.microsoft.com",
        "login.windows.net",
        "login.microsoftonline.us",
        "login-us.microsoftonline.com",
        "login.usgovcloudapi.net",
        "login.chinacloudapi.cn",
        "login.partner.microsoftonline.cn",
    }
)


@attrs.frozen
class Endpoint:
    """An https origin plus an optional path prefix (an API gateway's ``/aoai``)."""

    origin: str
    prefix: str = ""

    @property
    def base(self) -> str:
        return self.origin + self.prefix

    def url(self, path: str) -> str:
        return self.origin + self.prefix + path


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
    api_key: str | None = attrs.field(default=None, repr=False)
    host_credential: Any = attrs.field(default=None, repr=False, eq=False)

    @property
    def identity_key(self) -> Hashable:
        """Equal for two platforms that authenticate as the same identity (spec §1.1)."""
        if self.method == POLYSYNC_SERVICE_PRINCIPAL:
            return (self.method, _hashable_identity(self.host_credential))
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
            self.api_key,
        )


def _hashable_identity(obj: Any) -> Hashable:
    try:
        hash(obj)
    except TypeError:
        return ("id", id(obj))
    return ("object", obj)


@attrs.frozen
class PlatformConfig:
    """A platform's validated configuration; built by ``PlatformConfig.from_host``."""

    name: str
    cloud: Cloud
    resource_name: str
    subscription_id: str | None
    resource_group: str | None
    api_version: str
    openai_endpoint: Endpoint
    arm_endpoint: Endpoint
    arm_overridden: bool
    request_timeout: float
    max_retries: int
    auth: AuthConfig
    key: Hashable = attrs.field(repr=False, eq=False)
    #: A CA bundle handed over by the caller (the CLI's embedded emulator); None means the
    #: standard REQUESTS_CA_BUNDLE mechanism (spec §1), read once when a session is built.
    ca_bundle: str | None = None

    @property
    def data_plane_scope(self) -> str:
        return self.cloud.data_plane_scope

    @property
    def arm_scope(self) -> str:
        return self.cloud.arm_scope

    @property
    def timeout(self) -> tuple[float, float]:
        return (min(CONNECT_TIMEOUT, self.request_timeout), self.request_timeout)

    @classmethod
    def from_host(cls, platform: Any) -> PlatformConfig:
        """Validate the host's platform object; cached per configuration."""
        attributes = _attributes(platform)
        method = getattr(platform, "auth_method", None)
        credential = getattr(platform, "credential", None)
        key = (
            getattr(platform, "name", None),
            method,
            tuple(sorted(attributes.items())),
            _hashable_identity(credential) if method == POLYSYNC_SERVICE_PRINCIPAL else None,
            _ca_bundle(platform),
        )
        return _CONFIGS.get_or_create(key, lambda: _parse(platform, attributes, key))

    # -- what the job types need -------------------------------------------------------------

    def require_discovery_scope(self) -> tuple[str, str]:
        """Subscription and resource group, or a clear error (discovery, monitor links)."""
        missing = [
            name
            for name, value in (
                ("Subscription Id", self.subscription_id),
                ("Resource Group Name", self.resource_group),
            )
            if not value
        ]
        if missing:
            raise ConfigurationError(
                f"Platform '{self.name}': {' and '.join(repr(m) for m in missing)} "
                f"{'is' if len(missing) == 1 else 'are'} not set; set "
                f"{'it' if len(missing) == 1 else 'them'} in the platform's settings "
                "(the Azure portal shows both on the resource's Overview page)."
            )
        assert self.subscription_id is not None and self.resource_group is not None
        return self.subscription_id, self.resource_group

    def resource_path(self) -> str:
        sub, rg = self.require_discovery_scope()
        return f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.CognitiveServices/accounts/{self.resource_name}"

    def portal_url(self) -> str:
        return f"https://{self.cloud.portal}/#@/resource{self.resource_path()}/overview"


_CONFIGS: BoundedCache[PlatformConfig] = BoundedCache("platform-configs", max_size=256)


# -- parsing ------------------------------------------------------------------------------------


def _attributes(platform: Any) -> dict[str, str]:
    raw = getattr(platform, "attributes", None) or {}
    values: dict[str, str] = {}
    for name, value in raw.items():
        if value is None:
            continue
        text = str(value).strip()
        if text:
            values[str(name)] = text
    return values


class _Reader:
    """Reads one platform's attributes and words its errors consistently."""

    def __init__(self, platform_name: str, attributes: Mapping[str, str]) -> None:
        self.platform_name = platform_name
        self.attributes = attributes

    def fail(self, attribute: str, problem: str, fix: str) -> ConfigurationError:
        return ConfigurationError(f"Platform '{self.platform_name}': attribute '{attribute}' {problem}. {fix}")

    def get(self, attribute: str) -> str | None:
        return self.attributes.get(attribute)

    def required(self, attribute: str, why: str) -> str:
        value = self.attributes.get(attribute)
        if value is None:
            raise self.fail(attribute, "is not set", f"Set it in the platform's settings ({why}).")
        return value

    def matching(self, attribute: str, value: str | None, pattern: re.Pattern[str], rule: str) -> str | None:
        if value is None:
            return None
        if not pattern.fullmatch(value):
            raise self.fail(attribute, f"is {shown(value)}: {rule}", "Correct it in the platform's settings.")
        return value


def _parse(platform: Any, attributes: Mapping[str, str], key: Hashable) -> PlatformConfig:
    name = str(getattr(platform, "name", "") or "(unnamed)")
    r = _Reader(name, attributes)

    resource_name = r.required("OpenAI Resource Name", "the name of the Azure OpenAI resource")
    r.matching(
        "OpenAI Resource Name",
        resource_name,
        ids.RESOURCE_NAME,
        "it must be 2-64 letters, digits or hyphens, starting and ending with a letter or digit "
        "(the resource's name, not its URL)",
    )
    subscription_id = r.matching(
        "Subscription Id", r.get("Subscription Id"), ids.GUID, "it must be a GUID such as 11111111-2222-3333-4444-555555555555"
    )
    resource_group = r.matching(
        "Resource Group Name",
        r.get("Resource Group Name"),
        ids.RESOURCE_GROUP,
        "it must be 1-90 letters, digits, '_', '-', '.', '(' or ')', not ending in '.'",
    )
    api_version = (
        r.matching(
            "OpenAI API Version",
            r.get("OpenAI API Version"),
            ids.DATED_API_VERSION,
            "it must look like 2024-10-21 or 2025-01-01-preview",
        )
        or DEFAULT_API_VERSION
    )

    cloud_name = r.get("Azure Cloud") or "AzureCloud"
    cloud = next((c for n, c in CLOUDS.items() if n.lower() == cloud_name.lower()), None)
    if cloud is None:
        raise r.fail("Azure Cloud", f"is {shown(cloud_name)}", f"Use one of {', '.join(CLOUDS)}.")

    openai_override = _endpoint(r, "OpenAI Endpoint")
    openai_endpoint = openai_override or Endpoint(f"https://{resource_name}.{cloud.data_plane_suffix}")
    arm_override = _endpoint(r, "Resource Manager Endpoint")
    arm_endpoint = arm_override or Endpoint(cloud.arm_endpoint)

    request_timeout = _number(r, "Request Timeout Seconds", DEFAULT_REQUEST_TIMEOUT)
    max_retries = _integer(r, "Max Retries", DEFAULT_MAX_RETRIES, minimum=0, maximum=MAX_RETRIES_LIMIT)

    auth = _auth(r, platform, cloud)
    return PlatformConfig(
        name=name,
        cloud=cloud,
        resource_name=resource_name,
        subscription_id=subscription_id,
        resource_group=resource_group,
        api_version=api_version,
        openai_endpoint=openai_endpoint,
        arm_endpoint=arm_endpoint,
        arm_overridden=arm_override is not None,
        request_timeout=request_timeout,
        max_retries=max_retries,
        auth=auth,
        key=key,
        ca_bundle=_ca_bundle(platform),
    )


def _ca_bundle(platform: Any) -> str | None:
    """An optional ``ca_bundle`` path on the platform object: not part of the host contract, so
    a caller that owns the platform (the CLI) can trust a CA without touching the environment."""
    value = getattr(platform, "ca_bundle", None)
    return value if isinstance(value, str) and value else None


def parse_https_base(value: str) -> Endpoint | str:
    """An ``https://`` base URL as an Endpoint, or the reason it is not acceptable."""
    if any(ch.isspace() or ord(ch) < 32 or ch == "\\" for ch in value):
        return "contains whitespace, control characters or backslashes"
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError as exc:
        return f"is not a valid URL ({exc})"
    if parts.scheme.lower() != "https":
        return "must start with https:// (plain http would expose the credential)"
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        return "must not carry user info (user:password@)"
    if parts.query or value.rstrip("/").endswith("?"):
        return "must not have a query string"
    if parts.fragment or "#" in value:
        return "must not have a fragment"
    host = parts.hostname
    if not host or not ids.HOST_PORT.fullmatch(host if port is None else f"{host}:{port}"):
        return "must name a host (letters, digits, dots and hyphens, optionally :port)"
    # Split after decoding too: a gateway may decode "%2f..%2f" into "/../" before routing.
    segments = re.split(r"[/\\]", unquote(parts.path))
    if any(s in (".", "..") for s in segments):
        return "must not contain '.' or '..' path segments (encoded or not)"
    prefix = parts.path.rstrip("/")
    # https://host:443 and https://host are one origin (a nextLink may spell the port out).
    origin = f"https://{host.lower()}" + (f":{port}" if port not in (None, 443) else "")
    return Endpoint(origin, prefix)


def _endpoint(r: _Reader, attribute: str) -> Endpoint | None:
    value = r.get(attribute)
    if value is None:
        return None
    parsed = parse_https_base(value)
    if isinstance(parsed, str):
        raise r.fail(
            attribute,
            f"is {shown(value)}: it {parsed}",
            "Use an https:// base URL such as https://apim.contoso.com/aoai, or leave it blank.",
        )
    return parsed


def _number(r: _Reader, attribute: str, default: float) -> float:
    value = r.get(attribute)
    if value is None:
        return default
    # Plain decimals only: float() would also take "1_0", "1e-300", "nan" and non-ASCII digits.
    number = float(value) if ids.DECIMAL.fullmatch(value) else math.nan
    if not math.isfinite(number) or number < MIN_REQUEST_TIMEOUT or number > MAX_REQUEST_TIMEOUT:
        raise r.fail(
            attribute,
            f"is {shown(value)}",
            f"Use a number of seconds from {MIN_REQUEST_TIMEOUT:g} to {MAX_REQUEST_TIMEOUT:g}, "
            f"or leave it blank for {default:g}.",
        )
    return number


def _integer(r: _Reader, attribute: str, default: int, *, minimum: int, maximum: int) -> int:
    value = r.get(attribute)
    if value is None:
        return default
    if not ids.WHOLE_NUMBER.fullmatch(value) or not minimum <= int(value) <= maximum:
        raise r.fail(
            attribute,
            f"is {shown(value)}",
            f"Use a whole number from {minimum} to {maximum}, or leave it blank for {default}.",
        )
    return int(value)


def _authority(r: _Reader, cloud: Cloud) -> tuple[str, bool]:
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


def _auth(r: _Reader, platform: Any, cloud: Cloud) -> AuthConfig:
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
                "service principal configured, or choose 'Service Principal' or 'Certificate'."
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

    why = "the app registration's Overview page in the Azure portal"
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


def _certificate(r: _Reader) -> tuple[bytes | None, str | None]:
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
