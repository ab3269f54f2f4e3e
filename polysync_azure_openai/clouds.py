"""Clouds and endpoints: the per-cloud hosts and scopes (spec §1.3) and the https base URLs
that may replace them. Nothing here can point a request at another host or path than the one
configured: ``parse_https_base`` is the gate every endpoint attribute and nextLink goes through.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final
from urllib.parse import unquote, urlsplit

import attrs

from . import ids


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
