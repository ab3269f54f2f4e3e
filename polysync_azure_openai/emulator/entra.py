"""Microsoft Entra ID v2.0 as MSAL uses it: OIDC discovery and the client-credentials token grant.

Clients authenticate with a secret, with a certificate-signed JWT assertion, or with a federated
token (workload identity, federation.py) as the assertion. Assertions are verified for real
(signature, thumbprint or federated credential, audience, issuer, lifetime), so a credential the
plugin builds wrongly fails here the way it would fail against Entra.
"""

from __future__ import annotations

import binascii
import hmac
import re
import secrets
import time
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from .federation import OidcIssuer, is_federated, verify_federated_assertion
from .jwt import AssertionRejected, b64url_decode, check_lifetime, encode_jwt, parse_jwt
from .server import Request, Response, Route, entra_headers, json_response, route
from .state import EmulatorConfig, EmulatorState, IssuedToken, Principal

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
# OIDC scopes MSAL may add next to the resource scope; they name no audience.
_OIDC_SCOPES = frozenset({"openid", "profile", "offline_access"})


def entra_error(request: Request, status: int, error: str, code: int, description: str) -> Response:
    """Entra's error envelope: `error_description` starts `AADSTS<n>:` and ends with the ids."""
    timestamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    trace_id = request.request_id
    correlation_id = request.header("client-request-id") or str(uuid.uuid4())
    return json_response(
        status,
        {
            "error": error,
            "error_description": (
                f"AADSTS{code}: {description}\r\nTrace ID: {trace_id}\r\n"
                f"Correlation ID: {correlation_id}\r\nTimestamp: {timestamp}"
            ),
            "error_codes": [code],
            "timestamp": timestamp,
            "trace_id": trace_id,
            "correlation_id": correlation_id,
            "error_uri": f"{request.base_url}/error?code={code}",
        },
    )


def verify_client_assertion(assertion: str, principal: Principal, audiences: set[str], now: float) -> None:
    """Check a certificate assertion as Entra does; raise :class:`AssertionRejected` if bad."""
    jwt = parse_jwt(assertion)
    header, claims = jwt.header, jwt.claims
    algorithm = header.get("alg")
    if algorithm not in ("RS256", "PS256"):
        raise AssertionRejected(
            700027,
            f"Client assertion failed signature validation. [Reason - The algorithm '{algorithm}' "
            "is not supported; use RS256 or PS256.]",
        )
    public_key = _registered_key(header, principal).public_key()
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise AssertionRejected(700027, "Client assertion failed signature validation. [Reason - Not an RSA key.]")
    scheme: padding.AsymmetricPadding = (
        padding.PKCS1v15()
        if algorithm == "RS256"
        else padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.AUTO)
    )
    try:
        public_key.verify(jwt.signature, jwt.signing_input, scheme, hashes.SHA256())
    except InvalidSignature:
        raise AssertionRejected(700027, "Client assertion failed signature validation.") from None

    _check_claims(claims, principal.client_id, audiences, now)


def _registered_key(header: dict[str, Any], principal: Principal) -> Any:
    """The registered certificate named by the `x5t#S256` and/or `x5t` header."""
    found = []
    for name, algorithm in (("x5t#S256", "sha256"), ("x5t", "sha1")):
        value = header.get(name)
        if value is None:
            continue
        try:
            thumbprint = b64url_decode(value) if isinstance(value, str) else b""
        except (ValueError, binascii.Error):
            thumbprint = b""
        certificate = principal.certificate_by_thumbprint(algorithm, thumbprint)
        if certificate is None:
            raise AssertionRejected(
                700027,
                "The certificate with identifier used to sign the client assertion is not "
                f"registered on application. [Reason - The key was not found., Thumbprint of key "
                f"used by client: '{thumbprint.hex().upper()}', Please visit the Azure Portal, "
                "Graph Explorer or directly use MS Graph to see configured keys for app Id "
                f"'{principal.client_id}'.]",
            )
        found.append(certificate)
    if not found:
        raise AssertionRejected(
            700027,
            "Client assertion contains no certificate thumbprint: send the 'x5t' or 'x5t#S256' header.",
        )
    if len(found) == 2 and found[0] != found[1]:
        raise AssertionRejected(700027, "The 'x5t' and 'x5t#S256' headers name different certificates.")
    return found[0]


def _check_claims(claims: dict[str, Any], client_id: str, audiences: set[str], now: float) -> None:
    audience = claims.get("aud")
    claimed = [audience] if isinstance(audience, str) else audience if isinstance(audience, list) else []
    if not any(isinstance(item, str) and item in audiences for item in claimed):
        raise AssertionRejected(
            700027,
            f"Client assertion audience claim does not match the token endpoint. [Reason - The "
            f"audience '{audience}' is not one of {sorted(audiences)}.]",
        )
    if claims.get("iss") != client_id or claims.get("sub") != client_id:
        raise AssertionRejected(
            700021,
            "Client assertion application identifier doesn't match 'client_id' parameter. Review "
            "the documentation at https://docs.microsoft.com/en-us/azure/active-directory/develop/"
            "active-directory-certificate-credentials .",
        )
    check_lifetime(claims, now)


class EntraService:
    """The Entra endpoints of the emulator's single tenant."""

    def __init__(self, config: EmulatorConfig, state: EmulatorState, issuer: OidcIssuer) -> None:
        self._config = config
        self._state = state
        self._issuer = issuer

    def routes(self) -> list[Route]:
        tenant = r"/(?P<tenant>[^/]+)"
        return [
            route("GET", tenant + r"/v2\.0/\.well-known/openid-configuration", "entra.discovery", self.discovery, entra_headers),
            route("GET", tenant + r"/discovery/v2\.0/keys", "entra.discovery", self.keys, entra_headers),
            route("POST", tenant + r"/oauth2/v2\.0/token", "entra.token", self.token, entra_headers),
        ]

    def _unknown_tenant(self, request: Request, tenant: str, error: str) -> Response:
        return entra_error(
            request,
            400,
            error,
            90002,
            f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are "
            "signing into the correct cloud. Check with your subscription administrator, this may "
            "happen if there are no active subscriptions for the tenant.",
        )

    def discovery(self, request: Request, match: re.Match[str]) -> Response:
        tenant = match["tenant"]
        if not self._config.is_tenant(tenant):
            return self._unknown_tenant(request, tenant, "invalid_tenant")
        # Endpoints name the tenant by GUID whatever alias was asked, as Entra does; MSAL takes
        # the tenant from the token endpoint's first path segment.
        base = f"{request.base_url}/{self._config.tenant_id}"
        cloud = self._config.cloud
        return json_response(
            200,
            {
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
                "jwks_uri": f"{base}/discovery/v2.0/keys",
                "response_modes_supported": ["query", "fragment", "form_post"],
                "subject_types_supported": ["pairwise"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
                "scopes_supported": ["openid", "profile", "email", "offline_access"],
                "issuer": f"{base}/v2.0",
                "request_uri_parameter_supported": False,
                "userinfo_endpoint": f"https://{cloud.msgraph_host}/oidc/userinfo",
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
                "http_logout_supported": True,
                "frontchannel_logout_supported": True,
                "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
                "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nbf", "tid", "ver"],
                "kerberos_endpoint": f"{base}/kerberos",
                "tenant_region_scope": "WW",
                "cloud_instance_name": cloud.cloud_instance_name,
                "cloud_graph_host_name": "graph.windows.net",
                "msgraph_host": cloud.msgraph_host,
                "rbac_url": "https://pas.windows.net",
            },
        )

    def keys(self, request: Request, match: re.Match[str]) -> Response:
        tenant = match["tenant"]
        if not self._config.is_tenant(tenant):
            return self._unknown_tenant(request, tenant, "invalid_tenant")
        # The emulator's tokens are checked by lookup, not by signature, so it publishes no keys.
        return json_response(200, {"keys": []})

    def token(self, request: Request, match: re.Match[str]) -> Response:
        tenant = match["tenant"]
        form: dict[str, str] = {}
        if request.content_type() == "application/x-www-form-urlencoded":
            for name, value in parse_qsl(request.body.decode("utf-8", "replace"), keep_blank_values=True):
                form.setdefault(name, value)
        client_id = form.get("client_id") or None
        scope = form.get("scope") or None
        self._state.count_token_request(client_id, scope)

        if not self._config.is_tenant(tenant):
            return self._unknown_tenant(request, tenant, "invalid_request")
        grant_type = form.get("grant_type")
        if not grant_type:
            return _missing_parameter(request, "grant_type")
        if grant_type != "client_credentials":
            return entra_error(
                request,
                400,
                "unsupported_grant_type",
                70003,
                f"The app requested an unsupported grant type '{grant_type}'.",
            )
        if client_id is None:
            return _missing_parameter(request, "client_id")
        principal = self._state.principal(client_id)
        if principal is None:
            return entra_error(
                request,
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the directory "
                f"'{tenant}'. This can happen if the application has not been installed by the "
                "administrator of the tenant or consented to by any user in the tenant. You may "
                "have sent your authentication request to the wrong tenant.",
            )
        refused = self._authenticate(request, tenant, principal, form)
        if refused is not None:
            return refused
        if scope is None:
            return _missing_parameter(request, "scope")
        audience = self._audience(scope)
        if audience is None:
            return entra_error(
                request,
                400,
                "invalid_scope",
                70011,
                f"The provided request must include a 'scope' input parameter. The provided value "
                f"for the input parameter 'scope' is not valid. The scope {scope} is not valid.",
            )

        lifetime = self._state.token_lifetime
        issued = mint_access_token(self._config, principal, audience, lifetime, assertion="client_assertion" in form)
        self._state.store_token(issued)
        request.client_id = principal.client_id
        return json_response(
            200,
            {"token_type": "Bearer", "expires_in": lifetime, "ext_expires_in": lifetime, "access_token": issued.token},
            {"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"},
        )

    def _authenticate(self, request: Request, tenant: str, principal: Principal, form: dict[str, str]) -> Response | None:
        secret = form.get("client_secret")
        assertion = form.get("client_assertion")
        if secret and assertion:
            return entra_error(
                request,
                401,
                "invalid_client",
                7000218,
                "Send either 'client_assertion' or 'client_secret', not both.",
            )
        if secret:
            if principal.secret is None or not hmac.compare_digest(secret.encode("utf-8"), principal.secret.encode("utf-8")):
                return entra_error(
                    request,
                    401,
                    "invalid_client",
                    7000215,
                    "Invalid client secret provided. Ensure the secret being sent in the request is "
                    "the client secret value, not the client secret ID, for a secret added to app "
                    f"'{principal.client_id}'.",
                )
            return None
        if assertion:
            if form.get("client_assertion_type") != JWT_BEARER:
                return entra_error(
                    request,
                    401,
                    "invalid_client",
                    7000218,
                    f"The 'client_assertion_type' must be '{JWT_BEARER}'.",
                )
            audiences = {
                f"{request.base_url}/{tenant}/oauth2/v2.0/token",
                f"{request.base_url}/{self._config.tenant_id}/oauth2/v2.0/token",
            }
            try:
                if is_federated(assertion, principal.client_id):
                    verify_federated_assertion(assertion, principal, self._issuer, time.time())
                else:
                    verify_client_assertion(assertion, principal, audiences, time.time())
            except AssertionRejected as rejected:
                return entra_error(request, 401, "invalid_client", rejected.code, rejected.message)
            return None
        return entra_error(
            request,
            401,
            "invalid_client",
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        )

    def _audience(self, scope: str) -> str | None:
        """The audience of the one resource scope (`X/.default`), if the cloud issues for it."""
        resources = [item for item in scope.split() if item not in _OIDC_SCOPES]
        if len(resources) != 1 or not resources[0].endswith("/.default"):
            return None
        audience = resources[0][: -len("/.default")]
        return audience if self._config.cloud.issues_for(audience) else None


def mint_access_token(
    config: EmulatorConfig, principal: Principal, audience: str, lifetime: int, *, assertion: bool
) -> IssuedToken:
    """An access token for `principal` (an app, or a managed identity through the MSI endpoint).

    Shaped like an Entra v1 access token so that clients that peek at claims see the usual ones;
    the signature is random because validation is a table lookup.
    """
    issued_at = time.time()
    now = int(issued_at)
    claims = {
        "aud": audience,
        "iss": f"https://sts.windows.net/{config.tenant_id}/",
        "iat": now,
        "nbf": now,
        "exp": now + lifetime,
        "appid": principal.client_id,
        # 2: the app proved itself with a certificate or an assertion (managed identities too).
        "appidacr": "2" if assertion or principal.managed else "1",
        "idp": f"https://sts.windows.net/{config.tenant_id}/",
        "oid": principal.object_id,
        "sub": principal.object_id,
        "tid": config.tenant_id,
        "ver": "1.0",
        "jti": str(uuid.uuid4()),
    }
    header = {"typ": "JWT", "alg": "RS256", "kid": "emulator"}
    token = encode_jwt(header, claims, lambda _: secrets.token_bytes(32))
    return IssuedToken(
        token=token,
        client_id=principal.client_id,
        tenant_id=config.tenant_id,
        audience=audience,
        expires_at=issued_at + lifetime,
    )


def _missing_parameter(request: Request, name: str) -> Response:
    return entra_error(
        request,
        400,
        "invalid_request",
        900144,
        f"The request body must contain the following parameter: '{name}'.",
    )
