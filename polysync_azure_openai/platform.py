"""Host platform attributes -> a validated, frozen ``PlatformConfig``.

Everything a request needs (endpoints, scopes, timeouts, auth) is checked here, before any
network call, so that no attribute value can send a request to another host or path and every
mistake gets a message naming the attribute, what is wrong and how to fix it.
"""

from __future__ import annotations

import math
import os
from collections.abc import Hashable, Mapping
from typing import Any, Final

import attrs

from . import ids
from .attributes import AttributeReader, attributes_of
from .cache import BoundedCache
from .clouds import CLOUDS, Cloud, Endpoint, parse_https_base
from .errors import ConfigurationError
from .identity import POLYSYNC_SERVICE_PRINCIPAL, AuthConfig, environment_of, hashable_identity, parse_auth
from .ids import shown
from .surface import V1, Surface

#: Blank means Azure's v1 API (second-release §B; 0.1.0's default was 2024-10-21).
DEFAULT_API_VERSION: Final = V1
DEFAULT_REQUEST_TIMEOUT: Final = 120.0
DEFAULT_MAX_RETRIES: Final = 3
CONNECT_TIMEOUT: Final = 10.0
MAX_REQUEST_TIMEOUT: Final = 3600.0
#: Below this no Azure answer can arrive; a smaller value is a typo, not a wish.
MIN_REQUEST_TIMEOUT: Final = 0.1
MAX_RETRIES_LIMIT: Final = 10


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
    #: The data-plane API this platform speaks (v1 or a dated api-version), from ``api_version``.
    surface: Surface = attrs.field(init=False, eq=False, repr=False)
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

    @surface.default
    def _surface(self) -> Surface:
        return Surface(self.api_version)

    @classmethod
    def from_host(cls, platform: Any) -> PlatformConfig:
        """Validate the host's platform object; cached per configuration."""
        attributes = attributes_of(platform)
        method = getattr(platform, "auth_method", None)
        credential = getattr(platform, "credential", None)
        key = (
            getattr(platform, "name", None),
            method,
            tuple(sorted(attributes.items())),
            hashable_identity(credential) if method == POLYSYNC_SERVICE_PRINCIPAL else None,
            environment_of(method),
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

    def trusted_ca_bundle(self) -> str | None:
        """The CA bundle to verify with (spec §1), checked to exist; None for the system's CAs.

        Read when a session or credential is built, as requests would read it, and checked
        then, so that a bundle that moved is a clear error, not a raw ``OSError`` mid-request.
        """
        for source, path in (
            ("the platform's ca_bundle", self.ca_bundle),
            ("REQUESTS_CA_BUNDLE", os.environ.get("REQUESTS_CA_BUNDLE")),
            ("CURL_CA_BUNDLE", os.environ.get("CURL_CA_BUNDLE")),
        ):
            if path:
                if not os.path.exists(path):
                    raise ConfigurationError(
                        f"Platform '{self.name}': {source} names {path!r}, which does not exist. Point it at "
                        "a PEM file holding the private CA and the public CAs, or unset it to use the system's CAs."
                    )
                return path
        return None

    def portal_url(self) -> str:
        return f"https://{self.cloud.portal}/#@/resource{self.resource_path()}/overview"


_CONFIGS: BoundedCache[PlatformConfig] = BoundedCache("platform-configs", max_size=256)


# -- parsing ------------------------------------------------------------------------------------


def _parse(platform: Any, attributes: Mapping[str, str], key: Hashable) -> PlatformConfig:
    name = str(getattr(platform, "name", "") or "(unnamed)")
    r = AttributeReader(name, attributes)

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
    api_version = _api_version(r)

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

    auth = parse_auth(r, platform, cloud)
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


def _api_version(r: AttributeReader) -> str:
    """``v1`` (also when blank, in any case) or a dated version as Azure writes it."""
    value = r.get("OpenAI API Version")
    if value is None or value.lower() == V1:
        return DEFAULT_API_VERSION
    checked = r.matching(
        "OpenAI API Version",
        value,
        ids.DATED_API_VERSION,
        "it must be v1 (Azure's current API, the default) or a dated version such as 2024-10-21 or 2025-04-01-preview",
    )
    assert checked is not None
    return checked


def _ca_bundle(platform: Any) -> str | None:
    """An optional ``ca_bundle`` path on the platform object: not part of the host contract, so
    a caller that owns the platform (the CLI) can trust a CA without touching the environment."""
    value = getattr(platform, "ca_bundle", None)
    return value if isinstance(value, str) and value else None


def _endpoint(r: AttributeReader, attribute: str) -> Endpoint | None:
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


def _number(r: AttributeReader, attribute: str, default: float) -> float:
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


def _integer(r: AttributeReader, attribute: str, default: int, *, minimum: int, maximum: int) -> int:
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
