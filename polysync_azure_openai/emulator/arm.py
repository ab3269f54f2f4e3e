"""Azure Resource Manager: the emulated account's deployments (listing with paging, and one by name).

ARM paths the emulator does not serve get ARM's error body, not the data plane's.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from .auth import bearer_token
from .server import Request, Response, Route, arm_headers, json_response, route
from .state import READER_ROLE, Deployment, EmulatorConfig, EmulatorState

DEPLOYMENTS_READ = "Microsoft.CognitiveServices/accounts/deployments/read"
# Roles whose actions include reading deployments.
_READ_ROLES = frozenset({READER_ROLE, "Contributor", "Owner", "Cognitive Services Contributor"})
NAMESPACE = "Microsoft.CognitiveServices"
# Versions of Microsoft.CognitiveServices from 2023-05-01 on (2025-09-01 is the default of
# azure-mgmt-cognitiveservices 14), oldest first.
SUPPORTED_API_VERSIONS = (
    "2023-05-01",
    "2023-10-01-preview",
    "2024-04-01-preview",
    "2024-06-01-preview",
    "2024-10-01",
    "2025-04-01-preview",
    "2025-06-01",
    "2025-07-01-preview",
    "2025-09-01",
    "2025-10-01-preview",
)
# Resource types of the namespace the emulator serves; others are unknown to it.
_KNOWN_TYPES = frozenset({"accounts", "accounts/deployments"})
# Built-in types above any provider (subscriptions, resource groups) belong to this namespace.
_RESOURCES_NAMESPACE = "Microsoft.Resources"
_ARM_PATH = r"(?i)/(?:subscriptions|providers|tenants)(?:/.*)?"
# Creation time shown in systemData: fixed, so listings are reproducible.
_CREATED_AT = "2024-11-05T09:12:44.1234567Z"


def arm_error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    return json_response(status, {"error": {"code": code, "message": message}}, headers)


def encode_skip_token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"next": offset}, separators=(",", ":")).encode()).rstrip(b"=").decode()


def decode_skip_token(token: str) -> int | None:
    try:
        payload = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (ValueError, binascii.Error):
        return None
    offset = payload.get("next") if isinstance(payload, dict) else None
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        return None
    return offset


class ArmService:
    def __init__(self, config: EmulatorConfig, state: EmulatorState) -> None:
        self._config = config
        self._state = state

    def routes(self) -> list[Route]:
        # ARM matches path segment names case-insensitively (resourceGroups, resourcegroups).
        deployments = (
            r"(?i)/subscriptions/(?P<subscription>[^/]+)/resourceGroups/(?P<group>[^/]+)"
            r"/providers/Microsoft\.CognitiveServices/accounts/(?P<account>[^/]+)/deployments"
        )
        return [
            route("GET", deployments + "/?", "arm.deployments", self.list_deployments, arm_headers),
            route("GET", deployments + r"/(?P<deployment>[^/]+)/?", "arm.deployment", self.get_deployment, arm_headers),
            *(route(method, _ARM_PATH, "arm.unknown", self.unknown, arm_headers) for method in _ARM_METHODS),
        ]

    def _authenticate(self, request: Request) -> Response | str:
        """The caller's client id, or the 401 ARM gives for a missing or unusable token."""
        challenge = {
            "WWW-Authenticate": (
                f'Bearer authorization_uri="{request.base_url}/{self._config.tenant_id}", '
                'error="invalid_token", error_description="The authentication failed because of '
                "missing 'Authorization' header.\""
            )
        }
        token = bearer_token(request.headers)
        if token is None:
            return arm_error(
                401,
                "AuthenticationFailed",
                "Authentication failed. The 'Authorization' header is missing.",
                challenge,
            )
        issued = self._state.lookup_token(token)
        if issued is None:
            return arm_error(401, "InvalidAuthenticationToken", "The access token is invalid.", challenge)
        now = time.time()
        if issued.is_expired(now):
            return arm_error(
                401,
                "ExpiredAuthenticationToken",
                f"The access token expiry UTC time '{_utc(issued.expires_at)}' is earlier than current UTC time '{_utc(now)}'.",
                challenge,
            )
        if not self._config.cloud.accepts_for_arm(issued.audience):
            return arm_error(
                401,
                "InvalidAuthenticationTokenAudience",
                f"The access token has been obtained for wrong audience or resource "
                f"'{issued.audience}'. It should exactly match with one of the allowed audiences "
                f"{self._config.cloud.arm_audience_list()}.",
                challenge,
            )
        return issued.client_id

    def _check_version(self, request: Request) -> Response | None:
        api_version = request.query.get("api-version")
        if not api_version:
            return arm_error(
                400,
                "MissingApiVersionParameter",
                "The api-version query parameter (?api-version=) is required for all requests.",
            )
        if api_version not in SUPPORTED_API_VERSIONS:
            return arm_error(
                400,
                "InvalidApiVersionParameter",
                f"The api-version '{api_version}' is invalid. The supported versions are "
                f"'{','.join(reversed(SUPPORTED_API_VERSIONS))}'.",
            )
        return None

    def _check(self, request: Request, match: re.Match[str]) -> Response | None:
        """None when the caller may read the account's deployments, else ARM's refusal, in ARM's order."""
        caller = self._authenticate(request)
        if isinstance(caller, Response):
            return caller
        refused = self._check_version(request)
        if refused is not None:
            return refused
        config = self._config
        principal = self._state.principal(caller)
        if principal is None or not principal.roles & _READ_ROLES:
            object_id = principal.object_id if principal is not None else caller
            scope = request.path.rstrip("/")
            return arm_error(
                403,
                "AuthorizationFailed",
                f"The client '{caller}' with object id '{object_id}' does not have authorization to "
                f"perform action '{DEPLOYMENTS_READ}' over scope '{scope}' or the scope is invalid. "
                "If access was recently granted, please refresh your credentials.",
            )
        if match["subscription"].lower() != config.subscription_id.lower():
            return arm_error(404, "SubscriptionNotFound", f"The subscription '{match['subscription']}' could not be found.")
        if match["group"].lower() != config.resource_group.lower():
            return arm_error(404, "ResourceGroupNotFound", f"Resource group '{match['group']}' could not be found.")
        if match["account"].lower() != config.resource_name.lower():
            return arm_error(
                404,
                "ResourceNotFound",
                f"The Resource 'Microsoft.CognitiveServices/accounts/{match['account']}' under resource "
                f"group '{match['group']}' was not found. For more details please go to "
                "https://aka.ms/ARMResourceNotFoundFix",
            )
        return None

    def list_deployments(self, request: Request, match: re.Match[str]) -> Response:
        refused = self._check(request, match)
        if refused is not None:
            return refused
        api_version = request.query["api-version"]
        offset = 0
        skip_token = request.query.get("$skipToken")
        if skip_token is not None:
            decoded = decode_skip_token(skip_token)
            if decoded is None:
                return arm_error(400, "InvalidSkipToken", f"The skip token '{skip_token}' is not valid.")
            offset = decoded
        deployments = self._state.deployments()
        page_size = self._state.page_size
        page = deployments[offset : offset + page_size]
        payload: dict[str, Any] = {"value": [self._item(deployment) for deployment in page]}
        if offset + page_size < len(deployments):
            origin = self._state.next_link_origin or request.base_url
            payload["nextLink"] = (
                f"{origin}{quote(request.path)}?api-version={quote(api_version)}"
                f"&$skipToken={encode_skip_token(offset + page_size)}"
            )
        return json_response(200, payload)

    def get_deployment(self, request: Request, match: re.Match[str]) -> Response:
        refused = self._check(request, match)
        if refused is not None:
            return refused
        name = match["deployment"]
        # Resource names are case-insensitive in ARM.
        found = next((d for d in self._state.deployments() if d.name.lower() == name.lower()), None)
        if found is None:
            return arm_error(
                404,
                "ResourceNotFound",
                f"The Resource '{NAMESPACE}/accounts/{match['account']}/deployments/{name}' under resource "
                f"group '{match['group']}' was not found. For more details please go to "
                "https://aka.ms/ARMResourceNotFoundFix",
            )
        return json_response(200, self._item(found))

    def unknown(self, request: Request, match: re.Match[str]) -> Response:
        """ARM's answer for a path naming a resource type it does not know (here: does not serve)."""
        caller = self._authenticate(request)
        if isinstance(caller, Response):
            return caller
        api_version = request.query.get("api-version")
        if not api_version:
            missing = self._check_version(request)
            assert missing is not None
            return missing
        namespace, resource_type = _resource_type(request.path)
        if namespace.lower() not in (NAMESPACE.lower(), _RESOURCES_NAMESPACE.lower()):
            return arm_error(404, "InvalidResourceNamespace", f"The resource namespace '{namespace}' is invalid.")
        if namespace.lower() == NAMESPACE.lower() and resource_type.lower() in _KNOWN_TYPES:
            return arm_error(
                404,
                "ResourceNotFound",
                f"The Resource '{NAMESPACE}/{resource_type}' at '{request.path}' was not found. For more details "
                "please go to https://aka.ms/ARMResourceNotFoundFix",
            )
        return arm_error(
            404,
            "InvalidResourceType",
            f"The resource type '{resource_type}' could not be found in the namespace '{namespace}' for api version "
            f"'{api_version}'.",
        )

    def _item(self, deployment: Deployment) -> dict[str, Any]:
        config = self._config
        account_id = (
            f"/subscriptions/{config.subscription_id}/resourceGroups/{config.resource_group}"
            f"/providers/Microsoft.CognitiveServices/accounts/{config.resource_name}"
        )
        return {
            "id": f"{account_id}/deployments/{deployment.name}",
            "name": deployment.name,
            "type": "Microsoft.CognitiveServices/accounts/deployments",
            "sku": {"name": deployment.sku, "capacity": deployment.capacity},
            "systemData": {
                "createdBy": "emulator@example.com",
                "createdByType": "User",
                "createdAt": _CREATED_AT,
                "lastModifiedBy": "emulator@example.com",
                "lastModifiedByType": "User",
                "lastModifiedAt": _CREATED_AT,
            },
            "properties": {
                "model": {"format": deployment.format, "name": deployment.model, "version": deployment.model_version},
                "versionUpgradeOption": "OnceNewDefaultVersionAvailable",
                "raiPolicyName": "Microsoft.DefaultV2",
                "capabilities": deployment.effective_capabilities,
                "provisioningState": deployment.provisioning_state,
            },
        }


_ARM_METHODS = ("GET", "PUT", "PATCH", "POST", "DELETE")


def _resource_type(path: str) -> tuple[str, str]:
    """The namespace and the (nested) resource type an ARM path names: `accounts/deployments`.

    Below `/providers/{namespace}` segments alternate type and name; above it, the built-in types
    (`subscriptions`, `resourceGroups`) belong to Microsoft.Resources.
    """
    segments = [segment for segment in path.split("/") if segment]
    lowered = [segment.lower() for segment in segments]
    if "providers" in lowered:
        at = len(lowered) - 1 - lowered[::-1].index("providers")
        if at + 1 < len(segments):
            types = segments[at + 2 :: 2]
            return segments[at + 1], "/".join(types) or segments[at + 1]
    return _RESOURCES_NAMESPACE, "/".join(segments[::2])


def _utc(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%m/%d/%Y %H:%M:%S")
