"""The App Service managed-identity endpoint, as azure-identity (through MSAL) calls it.

App Service, Azure Functions and Container Apps give a process ``IDENTITY_ENDPOINT`` (a plain
``http://`` URL on the machine, such as ``http://localhost:42356/msi/token``) and
``IDENTITY_HEADER`` (a secret). azure-identity's ManagedIdentityCredential then sends::

    GET {IDENTITY_ENDPOINT}?api-version=2019-08-01&resource=https://cognitiveservices.azure.com[&client_id=GUID]
    X-IDENTITY-HEADER: {IDENTITY_HEADER}

and reads ``{"access_token", "expires_on" (Unix seconds, as text), "resource", "token_type",
"client_id"}``. Failures are ``{"statusCode", "message", "correlationId"}``: 400 "Unable to load
the proper Managed Identity." for a client id not attached to the app [observed]; a missing or
wrong header is refused with 401 [unverified wording]; a resource Entra does not issue for
gives a vague 500, as MSAL's source notes.
"""

from __future__ import annotations

import hmac
import re
import uuid

from .entra import mint_access_token
from .server import Request, Response, Route, json_response, route
from .state import EmulatorConfig, EmulatorState

API_VERSION = "2019-08-01"
PATH = "/msi/token"


def msi_headers(request: Request) -> dict[str, str]:
    return {"Content-Type": "application/json; charset=utf-8", "X-CORRELATION-ID": request.request_id}


def _error(request: Request, status: int, message: str) -> Response:
    return json_response(status, {"statusCode": status, "message": message, "correlationId": request.request_id})


class ManagedIdentityService:
    """The token endpoint of the emulated Azure host; `header` is its ``IDENTITY_HEADER``."""

    def __init__(self, config: EmulatorConfig, state: EmulatorState, header: str) -> None:
        self._config = config
        self._state = state
        self._header = header

    def routes(self) -> list[Route]:
        return [route("GET", re.escape(PATH) + "/?", "msi.token", self.token, msi_headers)]

    def token(self, request: Request, match: re.Match[str]) -> Response:
        sent = request.header("x-identity-header")
        if sent is None or not hmac.compare_digest(sent.encode("utf-8", "replace"), self._header.encode("utf-8")):
            return _error(request, 401, "The X-IDENTITY-HEADER header is missing or does not match IDENTITY_HEADER.")
        if request.query.get("api-version") != API_VERSION:
            return _error(request, 400, f"The api-version must be {API_VERSION}.")
        resource = request.query.get("resource")
        if not resource:
            return _error(request, 400, "The 'resource' query parameter is required.")
        client_id = request.query.get("client_id") or None
        if any(request.query.get(name) for name in ("object_id", "mi_res_id", "principal_id")):
            # Only client ids are modelled; refusing beats answering for another identity.
            return _error(request, 400, "Unable to load the proper Managed Identity.")
        identity = self._state.managed_identity(client_id)
        # Counted under the scope a client asked for (the resource's /.default), as Entra counts.
        self._state.count_token_request(identity.client_id if identity else client_id, resource.rstrip("/") + "/.default")
        if identity is None:
            return _error(request, 400, "Unable to load the proper Managed Identity.")
        if not self._config.cloud.issues_for(resource):
            return _error(request, 500, "An unexpected error occurred while fetching the AAD Token.")
        lifetime = self._state.token_lifetime
        issued = mint_access_token(self._config, identity, resource, lifetime, assertion=True)
        self._state.store_token(issued)
        request.client_id = identity.client_id
        return json_response(
            200,
            {
                "access_token": issued.token,
                "expires_on": str(int(issued.expires_at)),
                "resource": resource,
                "token_type": "Bearer",
                "client_id": identity.client_id,
            },
        )


def new_identity_header() -> str:
    """A fresh ``IDENTITY_HEADER`` value (App Service's are GUID-like)."""
    return str(uuid.uuid4()).upper()
