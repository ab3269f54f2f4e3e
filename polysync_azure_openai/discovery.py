"""Discovery shared by the three job types: one ARM listing per host ``import_jobs`` call.

The host's single ``import_jobs`` call reaches the three sibling job types one after another.
The outermost sibling's hook wrapper opens an import scope (a ``contextvars`` slot keyed by the
platform's configuration); the first sibling that needs deployments lists them, the others reuse
that listing, and the scope closes when the host's call returns, so the next import lists again.
Context variables are per thread, so two imports on two threads never share a listing.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
from collections.abc import Hashable, Iterator, Mapping
from typing import Any, Final
from urllib.parse import urlsplit

import attrs

from .clouds import parse_https_base
from .errors import ConfigurationError, ErrorDetail, RemoteError, TransportError
from .http import RetryMode, read_json, resource_manager
from .identity import API_KEY
from .ids import DEPLOYMENT_NAME
from .jobs import BATCH, CHAT, EMBEDDING, OPENAI_FORMAT
from .platform import PlatformConfig
from .troubleshooting import advise

log = logging.getLogger(__name__)

ARM_API_VERSION: Final = "2023-05-01"
#: Known model families that can never serve chat completions (spec §1.2).
NON_CHAT_FAMILIES: Final = ("dall-e", "gpt-image", "whisper", "tts", "transcribe", "realtime", "sora")
#: A listing longer than this is surely a loop in nextLinks, not a resource.
MAX_PAGES: Final = 1000


@attrs.frozen
class Deployment:
    """One ARM deployment, as much of it as classification and job descriptions need."""

    name: str
    model_name: str
    model_version: str
    sku_name: str
    provisioning_state: str
    capabilities: Mapping[str, str] = attrs.field(factory=dict)
    #: ``properties.model.format``: OpenAI, or a Foundry model's publisher (DeepSeek, Meta, ...).
    model_format: str = OPENAI_FORMAT

    @classmethod
    def from_json(cls, item: Mapping[str, Any]) -> Deployment:
        properties = item.get("properties") or {}
        model = properties.get("model") or {}
        sku = item.get("sku") or {}
        if not sku and isinstance(properties.get("scaleSettings"), dict):
            sku = {"name": properties["scaleSettings"].get("scaleType")}
        capabilities = properties.get("capabilities") or {}
        return cls(
            name=str(item.get("name") or ""),
            model_name=str(model.get("name") or ""),
            model_version=str(model.get("version") or ""),
            sku_name=str(sku.get("name") or ""),
            provisioning_state=str(properties.get("provisioningState") or ""),
            capabilities={str(k): str(v) for k, v in capabilities.items()} if isinstance(capabilities, dict) else {},
            model_format=str(model.get("format") or OPENAI_FORMAT),
        )

    @property
    def is_batch_sku(self) -> bool:
        return self.sku_name.lower().endswith("batch")

    @property
    def is_foundry(self) -> bool:
        """A model Azure serves through Foundry, not Azure OpenAI: on the v1 API only (second-release §F)."""
        return self.model_format.lower() != OPENAI_FORMAT.lower()

    @property
    def is_embedding(self) -> bool:
        # Foundry embedding models are named "...-embed-..." (Cohere-embed-v3-english).
        return ("embed" if self.is_foundry else "embedding") in self.model_name.lower()

    @property
    def is_chat_capable(self) -> bool:
        if self.capabilities and self.capabilities.get("chatCompletion", "").lower() != "true":
            return False
        model = self.model_name.lower()
        return not any(family in model for family in NON_CHAT_FAMILIES)

    def describe(self) -> str:
        version = f" version {self.model_version}" if self.model_version else ""
        sku = f", {self.sku_name} SKU" if self.sku_name else ""
        foundry = f", {self.model_format} format (a Foundry model, v1 API only)" if self.is_foundry else ""
        return f"model {self.model_name or 'unknown'}{version}{sku}{foundry}"


@attrs.frozen
class Catalog:
    """Deployments per job type, classified once per listing."""

    by_job_type: Mapping[str, tuple[Deployment, ...]]

    def deployments_for(self, job_type: str) -> tuple[Deployment, ...]:
        return self.by_job_type.get(job_type, ())


def classify(deployments: tuple[Deployment, ...]) -> Catalog:
    """Spec §1.2: which job types each deployment gets; skipped ones are named in warnings."""
    jobs: dict[str, list[Deployment]] = {CHAT: [], EMBEDDING: [], BATCH: []}
    not_ready: list[str] = []
    not_chat: list[str] = []
    for deployment in deployments:
        if deployment.provisioning_state != "Succeeded":
            not_ready.append(f"{deployment.name} ({deployment.provisioning_state or 'no state'})")
        elif deployment.is_batch_sku:
            jobs[BATCH].append(deployment)
        elif deployment.is_embedding:
            jobs[EMBEDDING].append(deployment)
        elif deployment.is_chat_capable:
            jobs[CHAT].append(deployment)
            if not deployment.is_foundry:  # Azure's batches serve Azure OpenAI models only
                jobs[BATCH].append(deployment)
        else:
            not_chat.append(f"{deployment.name} ({deployment.model_name})")
    if not_ready:
        log.warning("Skipped deployments that are not provisioned (provisioningState is not Succeeded): %s", ", ".join(not_ready))
    if not_chat:
        log.warning("Skipped deployments whose model serves neither chat nor embeddings: %s", ", ".join(not_chat))
    return Catalog({k: tuple(v) for k, v in jobs.items()})


# -- the import scope ---------------------------------------------------------------------------


class _Slot:
    catalog: Catalog | None = None


_SCOPES: contextvars.ContextVar[Mapping[Hashable, _Slot] | None] = contextvars.ContextVar(
    "polysync_azure_openai_import_scopes", default=None
)


@contextlib.contextmanager
def import_scope(config: PlatformConfig) -> Iterator[None]:
    """Share one listing among the siblings inside this block (re-entrant per platform)."""
    scopes = _SCOPES.get()
    if scopes is not None and config.key in scopes:
        yield
        return
    token = _SCOPES.set({**(scopes or {}), config.key: _Slot()})
    try:
        yield
    finally:
        _SCOPES.reset(token)


def catalog(config: PlatformConfig) -> Catalog:
    """The platform's classified deployments: listed once per import scope."""
    scopes = _SCOPES.get()
    slot = scopes.get(config.key) if scopes is not None else None
    if slot is None:
        return classify(list_deployments(config))
    if slot.catalog is None:
        slot.catalog = classify(list_deployments(config))
    return slot.catalog


# -- the ARM listing ----------------------------------------------------------------------------


def list_deployments(config: PlatformConfig) -> tuple[Deployment, ...]:
    """GET the deployments of the resource, following safe ``nextLink`` pages.

    A failure carries the same advice as the CLI's ``check`` (a 403 names the Reader role).
    """
    try:
        return _list_deployments(config)
    except RemoteError as exc:
        exc.replace_detail(advise(exc.detail, operation="discovery"))
        raise


def _list_deployments(config: PlatformConfig) -> tuple[Deployment, ...]:
    if config.auth.method == API_KEY:
        raise ConfigurationError(
            f"Platform '{config.name}': Import Jobs needs Microsoft Entra ID authentication, but the "
            "platform uses 'API Key' (Azure Resource Manager does not accept keys). Switch the "
            "platform to 'Service Principal' (or another Entra method: 'Polysync Service Principal', 'Certificate', "
            "'Managed Identity', 'Workload Identity') "
            "for the import, then back to 'API Key' for execution if you want."
        )
    listing_path = config.resource_path() + "/deployments"
    client = resource_manager(config)
    url: str | None = client.endpoint.url(listing_path)
    params: dict[str, str] | None = {"api-version": ARM_API_VERSION}
    found: list[Deployment] = []
    pages = 0
    while url is not None:
        pages += 1
        if pages > MAX_PAGES:
            raise TransportError(
                ErrorDetail(None, "TooManyPages", f"Listing deployments stopped after {MAX_PAGES} pages (a nextLink loop?)", None)
            )
        response = client.send("GET", url, params=params, mode=RetryMode.READ)
        payload = read_json(response, "Listing deployments")
        items = payload.get("value")
        if not isinstance(items, list):
            raise TransportError(
                ErrorDetail(response.status_code, "MalformedListing", "Listing deployments: the answer has no 'value' list", None)
            )
        for item in items:
            if not isinstance(item, dict):
                continue
            deployment = Deployment.from_json(item)
            if not DEPLOYMENT_NAME.fullmatch(deployment.name):
                log.warning("Skipped a deployment whose name cannot be used in a URL: %r", deployment.name[:80])
                continue
            found.append(deployment)
        link = payload.get("nextLink")
        url = _next_url(config, str(link), listing_path) if link else None
        params = None  # a nextLink carries its own query
    log.info("Listed %d deployments of %s in %d page(s)", len(found), config.resource_name, pages)
    return tuple(found)


def _within(path: str, prefix: str) -> bool:
    """``path`` is ``prefix`` or below it, segment by segment ("/armEVIL" is not under "/arm")."""
    return not prefix or path == prefix or path.startswith(prefix + "/")


def _next_url(config: PlatformConfig, link: str, listing_path: str) -> str:
    """Spec §1.2 nextLink safety: follow only links to the configured ARM endpoint."""
    parsed = parse_https_base(link.split("?", 1)[0])
    query = link.split("?", 1)[1] if "?" in link else ""
    if not isinstance(parsed, str) and "#" not in link:
        path = parsed.prefix
        if parsed.origin == config.arm_endpoint.origin and _within(path, config.arm_endpoint.prefix):
            return link
        public = parse_https_base(config.cloud.arm_endpoint)
        if config.arm_overridden and not isinstance(public, str) and parsed.origin == public.origin and path == listing_path:
            # A proxy passed ARM's own answer through: keep paging through the proxy.
            return config.arm_endpoint.url(path) + (f"?{query}" if query else "")
    host = urlsplit(link).netloc or "an unparseable address"
    raise TransportError(
        ErrorDetail(
            None,
            "UnsafeNextLink",
            f"Listing deployments: the answer's nextLink points at {host}, which is not the "
            f"configured Resource Manager endpoint {config.arm_endpoint.origin}; it was not "
            "followed. Check 'Resource Manager Endpoint' (a proxy must rewrite nextLink or pass "
            "ARM's own links through unchanged).",
            None,
        )
    )
