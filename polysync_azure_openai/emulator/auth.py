"""Reading the credential a request carries: an `api-key` header or a bearer token."""

from __future__ import annotations

from collections.abc import Mapping

from .state import EmulatorState

API_KEY_CALLER = "api-key"


def bearer_token(headers: Mapping[str, str]) -> str | None:
    """The token of an `Authorization: Bearer` header (scheme compared case-insensitively)."""
    value = headers.get("authorization")
    if value is None:
        return None
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def identify_caller(state: EmulatorState, headers: Mapping[str, str]) -> str | None:
    """Who the request's credential belongs to, for the request log.

    A token the emulator issued names its app even when expired or meant for another audience,
    so a test can see who sent a request that was rightly refused; forged credentials name nobody.
    """
    key = headers.get("api-key")
    if key is not None:
        return API_KEY_CALLER if state.has_api_key(key) else None
    token = bearer_token(headers)
    if token is None:
        return None
    issued = state.lookup_token(token)
    return None if issued is None else issued.client_id
