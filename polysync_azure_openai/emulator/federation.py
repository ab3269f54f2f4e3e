"""Workload identity federation: an emulated Kubernetes cluster's OIDC issuer, and Entra's check of
the service account tokens it signs when they arrive as client assertions.

On AKS the workload identity webhook projects a service account token into the pod and names its
file in ``AZURE_FEDERATED_TOKEN_FILE``; azure-identity sends the file's JWT as ``client_assertion``.
Entra takes it for an app only through a federated identity credential on that app whose issuer,
subject and audience match the token, signed by the issuer's key and within its lifetime. Each
refusal carries the AADSTS code Entra gives for it.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
import uuid

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from .jwt import AssertionRejected, Jwt, b64url_encode, check_lifetime, encode_jwt, parse_jwt
from .state import TOKEN_EXCHANGE_AUDIENCE, Principal

FEDERATION_DOCS = "https://learn.microsoft.com/entra/workload-id/workload-identity-federation"
_SERVICE_ACCOUNT = re.compile(r"system:serviceaccount:(?P<namespace>[^:]+):(?P<name>[^:]+)")


class OidcIssuer:
    """A cluster's OIDC issuer: one URL and one RSA signing key.

    The URL is never fetched (`.invalid`): the emulator's Entra holds the key itself, where real
    Entra reads it from the issuer's published keys. The key is made on first use, because making
    an RSA key costs tens of milliseconds and most emulators never federate.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self._key: rsa.RSAPrivateKey | None = None
        self._lock = threading.Lock()

    def _private_key(self) -> rsa.RSAPrivateKey:
        with self._lock:
            if self._key is None:
                self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            return self._key

    @property
    def key_id(self) -> str:
        numbers = self._private_key().public_key().public_numbers()
        return b64url_encode(hashlib.sha256(numbers.n.to_bytes(256, "big")).digest()[:16])

    def mint(
        self, subject: str, *, audience: str = TOKEN_EXCHANGE_AUDIENCE, lifetime: int = 3600, issuer: str | None = None
    ) -> str:
        """A service account token as Kubernetes projects it (RS256, `aud` a list, `kubernetes.io` claims).

        `issuer` replaces the `iss` claim only; the token is still signed with this issuer's key.
        """
        now = int(time.time())
        claims: dict[str, object] = {
            "aud": [audience],
            "exp": now + lifetime,
            "iat": now,
            "nbf": now,
            "iss": issuer if issuer is not None else self.url,
            "jti": str(uuid.uuid4()),
            "sub": subject,
        }
        account = _SERVICE_ACCOUNT.fullmatch(subject)
        if account is not None:
            claims["kubernetes.io"] = {
                "namespace": account["namespace"],
                "serviceaccount": {"name": account["name"], "uid": "00000000-0000-0000-0000-00000000a11c"},
            }
        key = self._private_key()
        return encode_jwt(
            {"alg": "RS256", "kid": self.key_id},
            claims,
            lambda data: key.sign(data, padding.PKCS1v15(), hashes.SHA256()),
        )

    def signed(self, jwt: Jwt) -> bool:
        """Whether this issuer's key made the token's signature."""
        if jwt.header.get("alg") != "RS256":
            return False
        try:
            self._private_key().public_key().verify(jwt.signature, jwt.signing_input, padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            return False
        return True


def is_federated(assertion: str, client_id: str) -> bool:
    """A federated token names its issuer as `iss` and its key by `kid`; a certificate assertion
    names the app itself and its certificate by `x5t`."""
    try:
        jwt = parse_jwt(assertion)
    except AssertionRejected:
        return False
    certificate = "x5t" in jwt.header or "x5t#S256" in jwt.header
    return not certificate and jwt.claims.get("iss") != client_id


def verify_federated_assertion(assertion: str, principal: Principal, issuer: OidcIssuer, now: float) -> None:
    """Check a federated token for `principal` as Entra does; raise :class:`AssertionRejected` if bad.

    The order is Entra's: a credential for the token's issuer, the issuer's signature, the
    lifetime, then the subject and the audience (compared case-sensitively, as Entra does since 2025).
    """
    jwt = parse_jwt(assertion)
    claims = jwt.claims
    token_issuer, subject, audience = claims.get("iss"), claims.get("sub"), claims.get("aud")
    by_issuer = [credential for credential in principal.federated if credential.issuer == token_issuer]
    if not by_issuer:
        raise AssertionRejected(
            700211,
            f"No matching federated identity record found for presented assertion issuer '{token_issuer}'. "
            f"Please check your federated identity credential Subject, Audience and Issuer against the "
            f"presented assertion. {FEDERATION_DOCS}",
        )
    if token_issuer != issuer.url or not issuer.signed(jwt):
        raise AssertionRejected(
            700027,
            f"Client assertion failed signature validation. [Reason - The key was not found., Key ID: "
            f"'{jwt.header.get('kid')}', issuer '{token_issuer}']",
        )
    check_lifetime(claims, now)
    by_subject = [credential for credential in by_issuer if credential.subject == subject]
    if not by_subject:
        raise AssertionRejected(
            700213,
            f"No matching federated identity record found for presented assertion subject '{subject}'. "
            f"Check your federated identity credential Subject, Audience and Issuer against the "
            f"presented assertion. {FEDERATION_DOCS}",
        )
    presented = [audience] if isinstance(audience, str) else audience if isinstance(audience, list) else []
    if not any(item in credential.audiences for credential in by_subject for item in presented if isinstance(item, str)):
        shown = presented[0] if len(presented) == 1 else presented
        raise AssertionRejected(
            70021,
            f"No matching federated identity record found for presented assertion. Assertion Issuer: "
            f"'{token_issuer}'. Assertion Subject: '{subject}'. Assertion Audience: '{shown}'. {FEDERATION_DOCS}",
        )
