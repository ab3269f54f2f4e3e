"""Which data-plane API a platform speaks: Azure's v1 API or a dated api-version (second-release §B).

The v1 API (the default since 0.2.0: a blank ``OpenAI API Version`` means ``v1``) lives under
``/openai/v1/``, takes no ``api-version`` and names the deployment in the body's ``model``; batch
endpoints and input-line urls carry ``/v1``. A dated version keeps 0.1.0's paths. Every path and
query the plugin sends to the data plane is built here, so the two cannot be mixed.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

import attrs

V1: Final = "v1"
_V1_PREFIX: Final = "/v1"
_NO_QUERY: Final[Mapping[str, str]] = MappingProxyType({})


@attrs.frozen
class Surface:
    """``api_version`` is ``v1`` or a dated version already checked (``YYYY-MM-DD[-preview]``)."""

    api_version: str
    #: The query every data-plane request carries: none on v1. Built once: it is on every call's path.
    params: Mapping[str, str] = attrs.field(init=False, eq=False, repr=False)

    @params.default
    def _params(self) -> Mapping[str, str]:
        return _NO_QUERY if self.is_v1 else MappingProxyType({"api-version": self.api_version})

    @property
    def is_v1(self) -> bool:
        return self.api_version == V1

    def inference_path(self, deployment: str, operation: str) -> str:
        """``operation`` is ``chat/completions`` or ``embeddings``; on v1 the body names the deployment."""
        return f"/openai/v1/{operation}" if self.is_v1 else f"/openai/deployments/{deployment}/{operation}"

    def path(self, suffix: str) -> str:
        """A files or batches path: ``files``, ``files/{id}/content``, ``batches/{id}/cancel``, ..."""
        return f"/openai/v1/{suffix}" if self.is_v1 else f"/openai/{suffix}"

    def batch_endpoint(self, endpoint: str) -> str:
        """A batch ``endpoint`` (and input-line ``url``) in this surface's form, from either form."""
        bare = endpoint.removeprefix(_V1_PREFIX) if endpoint.startswith(_V1_PREFIX + "/") else endpoint
        return _V1_PREFIX + bare if self.is_v1 else bare

    def older_than(self, minimum: str) -> bool:
        """Whether this is a dated version before ``minimum``; v1 serves every current feature.

        Dated versions order by date; a GA version of the same date as a preview is not older.
        """
        return not self.is_v1 and self.api_version[:10] < minimum[:10]

    def describe(self) -> str:
        return "the v1 API" if self.is_v1 else f"api-version {self.api_version}"
