"""The HTTP layer: every call to Azure, its transport rules (second-release.md §A) and Azure's errors.

- ``client``: ``HttpClient.send``, the one send loop, and the shared clients per platform.
- ``classify``: an exception chain → its transport class, by phase.
- ``decide``: the pure rule table: wait, give up, look up, renew.
- ``create``: creates that look for what they made before creating again.
- ``azure_errors``: Azure's error bodies, request ids and retry headers.
- ``fastpath``: the requests session and adapter each attempt goes through.
- ``pacer``: one lane per deployment, shared by every thread: the quota's pauses and budget.
- ``quota``: what the quota counts and says: Azure's cost estimate, remaining headers, the window.

The names below are the ones the rest of the plugin, the tests and the benchmarks import from
``polysync_azure_openai.http``.
"""

from __future__ import annotations

from .azure_errors import error_detail, read_json, response_request_id, retry_after, retry_hint
from .classify import Failure, Transport, classify
from .client import _CLIENTS, HttpClient, MayExist, client_for, data_plane, dumps, resource_manager
from .create import REATTACH_SECONDS, create_or_find
from .decide import MAX_TOTAL_WAIT, RETRY_STATUSES, Kind, RetryMode, decide
from .fastpath import POOL_SIZE, USER_AGENT, StreamBody

__all__ = [
    "MAX_TOTAL_WAIT",
    "POOL_SIZE",
    "REATTACH_SECONDS",
    "RETRY_STATUSES",
    "USER_AGENT",
    "_CLIENTS",
    "Failure",
    "HttpClient",
    "Kind",
    "MayExist",
    "RetryMode",
    "StreamBody",
    "Transport",
    "classify",
    "client_for",
    "create_or_find",
    "data_plane",
    "decide",
    "dumps",
    "error_detail",
    "read_json",
    "resource_manager",
    "response_request_id",
    "retry_after",
    "retry_hint",
]
