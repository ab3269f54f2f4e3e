"""The identity a platform authenticates as (spec §1.1): the methods, their attributes and
the certificate forms, checked before any request."""

from __future__ import annotations

import base64
import binascii
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
API_KEY: Final = "API Key"
AUTH_METHODS: Final = (POLYSYNC_SERVICE_PRINCIPAL, SERVICE_PRINCIPAL, CERTIFICATE, API_KEY)


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
    def secrets(self) -> tuple[str, ...]:
        """The values no text from a server may carry back (the token cache adds its tokens)."""
        return tuple(v for v in (self.client_secret, self.api_key, self.certificate_password) if v)

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
            self.api_key,
        )


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
