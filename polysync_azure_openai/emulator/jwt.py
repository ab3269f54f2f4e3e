"""JSON Web Tokens as Entra reads client assertions: base64url, the three parts, and its refusals."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime
from typing import Any

import attrs

# Clock skew tolerated on an assertion's exp and nbf.
ASSERTION_SKEW_SECONDS = 120


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode((text + "=" * (-len(text) % 4)).encode("ascii"))


class AssertionRejected(Exception):
    """A client assertion Entra would refuse, with the AADSTS code and message it would give."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@attrs.frozen
class Jwt:
    """A compact JWS split into its parts; nothing about it is trusted yet."""

    header: dict[str, Any]
    claims: dict[str, Any]
    signature: bytes = attrs.field(repr=False)
    signing_input: bytes = attrs.field(repr=False)


def parse_jwt(token: str) -> Jwt:
    """The token's parts, or Entra's AADSTS50027 when it is not a JWT at all."""
    malformed = AssertionRejected(50027, "JWT token is invalid or malformed.")
    parts = token.split(".")
    if len(parts) != 3:
        raise malformed
    try:
        header = json.loads(b64url_decode(parts[0]))
        claims = json.loads(b64url_decode(parts[1]))
        signature = b64url_decode(parts[2])
    except (ValueError, binascii.Error):
        raise malformed from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise malformed
    return Jwt(header, claims, signature, f"{parts[0]}.{parts[1]}".encode("ascii"))


def encode_jwt(header: dict[str, Any], claims: dict[str, Any], sign: Any) -> str:
    """``header.claims.signature``; ``sign`` turns the signing input into signature bytes."""
    signing_input = ".".join(b64url_encode(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims))
    return f"{signing_input}.{b64url_encode(sign(signing_input.encode('ascii')))}"


def check_lifetime(claims: dict[str, Any], now: float) -> None:
    """An assertion's `exp` and `nbf` as Entra checks them (AADSTS700024), with clock skew."""
    expires = claims.get("exp")
    not_before = claims.get("nbf")
    current = _iso(now)
    if isinstance(expires, bool) or not isinstance(expires, (int, float)):
        raise AssertionRejected(700024, "Client assertion is missing a numeric 'exp' claim.")
    if expires + ASSERTION_SKEW_SECONDS <= now:
        raise AssertionRejected(
            700024,
            f"Client assertion is not within its valid time range. Current time: {current}, "
            f"expiry time of assertion {_iso(expires)}.",
        )
    if not_before is not None:
        if isinstance(not_before, bool) or not isinstance(not_before, (int, float)):
            raise AssertionRejected(700024, "Client assertion has a non-numeric 'nbf' claim.")
        if not_before - ASSERTION_SKEW_SECONDS > now:
            raise AssertionRejected(
                700024,
                f"Client assertion is not within its valid time range. Current time: {current}, "
                f"assertion valid from {_iso(not_before)}.",
            )


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.0000000Z")
