"""Entra ID: discovery, the token grant, and strict client authentication."""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any

import pytest
import requests
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import CertificateCredential, ClientSecretCredential
from cryptography.hazmat.primitives.serialization import BestAvailableEncryption, pkcs12

from polysync_azure_openai.emulator import Emulator

from .emulator_helpers import (
    ARM_SCOPE,
    DATA_SCOPE,
    ClientCertificate,
    make_assertion,
    request_token,
    token_url,
)

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def _aadsts(response: requests.Response) -> int:
    body = response.json()
    code: int = body["error_codes"][0]
    assert body["error_description"].startswith(f"AADSTS{code}: ")
    return code


def test_discovery_document_points_at_the_emulator(emu: Emulator, http: requests.Session) -> None:
    response = http.get(f"{emu.url}/{emu.tenant_id}/v2.0/.well-known/openid-configuration")
    assert response.status_code == 200
    document = response.json()
    assert document["token_endpoint"] == token_url(emu)
    assert document["authorization_endpoint"] == f"{emu.url}/{emu.tenant_id}/oauth2/v2.0/authorize"
    assert document["issuer"] == f"{emu.url}/{emu.tenant_id}/v2.0"
    assert "device_authorization_endpoint" in document and "jwks_uri" in document


def test_discovery_by_domain_names_the_tenant_guid(emu: Emulator, http: requests.Session) -> None:
    response = http.get(f"{emu.url}/{emu.tenant_domain}/v2.0/.well-known/openid-configuration")
    assert response.json()["token_endpoint"] == token_url(emu)


def test_discovery_of_unknown_tenant_is_aadsts90002(emu: Emulator, http: requests.Session) -> None:
    response = http.get(f"{emu.url}/{uuid.uuid4()}/v2.0/.well-known/openid-configuration")
    assert response.status_code == 400
    assert _aadsts(response) == 90002


def test_secret_grant_issues_a_bearer_token(emu: Emulator, http: requests.Session) -> None:
    response = request_token(http, emu, client_id=emu.client_id, client_secret=emu.client_secret, scope=DATA_SCOPE)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store, no-cache"
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == body["ext_expires_in"] == 3600
    _, payload, _ = body["access_token"].split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    assert claims["aud"] == "https://cognitiveservices.azure.com"
    assert claims["appid"] == emu.client_id and claims["tid"] == emu.tenant_id


def test_wrong_secret_gets_the_aadsts7000215_envelope(emu: Emulator, http: requests.Session) -> None:
    response = request_token(http, emu, client_id=emu.client_id, client_secret="not-the-secret", scope=DATA_SCOPE)
    assert response.status_code == 401
    body = response.json()
    assert body["error"] == "invalid_client"
    assert body["error_codes"] == [7000215]
    assert body["error_description"].startswith(
        "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is "
        "the client secret value, not the client secret ID, for a secret added to app "
        f"'{emu.client_id}'.\r\nTrace ID: "
    )
    assert set(body) == {
        "error",
        "error_description",
        "error_codes",
        "timestamp",
        "trace_id",
        "correlation_id",
        "error_uri",
    }
    assert body["trace_id"] in body["error_description"]
    assert emu.requests[-1].client_id is None


# "CLIENT" and "SECRET" stand for the emulator's default client id and secret.
@pytest.mark.parametrize(
    ("form", "status", "error", "code"),
    [
        pytest.param({"client_secret": "SECRET", "scope": DATA_SCOPE}, 400, "invalid_request", 900144, id="no-client-id"),
        pytest.param(
            {"client_id": "unknown", "client_secret": "SECRET", "scope": DATA_SCOPE},
            400,
            "unauthorized_client",
            700016,
            id="unknown-client",
        ),
        pytest.param({"client_id": "CLIENT", "scope": DATA_SCOPE}, 401, "invalid_client", 7000218, id="no-credential"),
        pytest.param({"client_id": "CLIENT", "client_secret": "SECRET"}, 400, "invalid_request", 900144, id="no-scope"),
        pytest.param(
            {"client_id": "CLIENT", "client_secret": "SECRET", "scope": "https://cognitiveservices.azure.com"},
            400,
            "invalid_scope",
            70011,
            id="scope-without-default",
        ),
        pytest.param(
            {"client_id": "CLIENT", "client_secret": "SECRET", "scope": "https://cognitiveservices.azure.us/.default"},
            400,
            "invalid_scope",
            70011,
            id="other-cloud-scope",
        ),
        pytest.param(
            {"client_id": "CLIENT", "client_secret": "SECRET", "scope": "https://graph.microsoft.com/.default"},
            400,
            "invalid_scope",
            70011,
            id="foreign-scope",
        ),
        pytest.param(
            {"client_id": "CLIENT", "client_secret": "SECRET", "scope": f"{DATA_SCOPE} {ARM_SCOPE}"},
            400,
            "invalid_scope",
            70011,
            id="two-resources",
        ),
    ],
)
def test_token_requests_refused(
    emu: Emulator, http: requests.Session, form: dict[str, str], status: int, error: str, code: int
) -> None:
    placeholders = {"CLIENT": emu.client_id, "SECRET": emu.client_secret}
    response = request_token(http, emu, **{name: placeholders.get(value, value) for name, value in form.items()})
    assert (response.status_code, response.json()["error"], _aadsts(response)) == (status, error, code)
    assert emu.requests[-1].kind == "entra.token"


def test_unknown_tenant_and_grant_type_are_refused(emu: Emulator, http: requests.Session) -> None:
    form = {"client_id": emu.client_id, "client_secret": emu.client_secret, "scope": DATA_SCOPE}
    wrong_tenant = http.post(f"{emu.url}/{uuid.uuid4()}/oauth2/v2.0/token", data={"grant_type": "client_credentials", **form})
    assert (wrong_tenant.status_code, _aadsts(wrong_tenant)) == (400, 90002)
    password = http.post(token_url(emu), data={"grant_type": "password", **form})
    assert (password.status_code, password.json()["error"]) == (400, "unsupported_grant_type")
    not_a_form = http.post(token_url(emu), json={"grant_type": "client_credentials", **form})
    assert (not_a_form.status_code, _aadsts(not_a_form)) == (400, 900144)


@pytest.mark.parametrize(("algorithm", "thumbprint_header"), [("RS256", "x5t"), ("PS256", "x5t#S256")])
def test_certificate_assertion_is_accepted(
    emu: Emulator, http: requests.Session, app_cert: ClientCertificate, algorithm: str, thumbprint_header: str
) -> None:
    client_id = str(uuid.uuid4())
    emu.add_certificate_client(client_id, app_cert.cert_pem)
    assertion = make_assertion(
        app_cert, client_id=client_id, audience=token_url(emu), algorithm=algorithm, thumbprint_header=thumbprint_header
    )
    response = request_token(
        http, emu, client_id=client_id, client_assertion_type=JWT_BEARER, client_assertion=assertion, scope=ARM_SCOPE
    )
    assert response.status_code == 200, response.text
    assert emu.requests[-1].client_id == client_id


def _forged(case: str, emu: Emulator, client_id: str, app: ClientCertificate, other: ClientCertificate) -> str:
    audience = token_url(emu)
    if case == "signed-by-another-key":
        return make_assertion(other, client_id=client_id, audience=audience, thumbprint_of=app)
    if case == "unregistered-certificate":
        return make_assertion(other, client_id=client_id, audience=audience)
    if case == "wrong-x5t":
        good = make_assertion(app, client_id=client_id, audience=audience)
        header, rest = good.split(".", 1)
        claims = json.loads(base64.urlsafe_b64decode(header + "=="))
        claims["x5t"] = base64.urlsafe_b64encode(b"\x00" * 20).rstrip(b"=").decode()
        return base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode() + "." + rest
    if case == "wrong-audience":
        return make_assertion(app, client_id=client_id, audience="https://login.microsoftonline.com/x/oauth2/v2.0/token")
    if case == "wrong-issuer":
        return make_assertion(app, client_id=client_id, audience=audience, issuer=str(uuid.uuid4()))
    if case == "expired":
        return make_assertion(app, client_id=client_id, audience=audience, expires_in=-3600, not_before_offset=-4000)
    if case == "not-yet-valid":
        return make_assertion(app, client_id=client_id, audience=audience, not_before_offset=3600, expires_in=4000)
    if case == "tampered-claims":
        good = make_assertion(app, client_id=client_id, audience=audience)
        header, _, signature = good.split(".")
        claims = {"aud": audience, "iss": client_id, "sub": client_id, "exp": int(time.time()) + 9999}
        payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
        return f"{header}.{payload}.{signature}"
    if case == "malformed":
        return "not-a-jwt"
    raise AssertionError(case)


@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("signed-by-another-key", 700027),
        ("unregistered-certificate", 700027),
        ("wrong-x5t", 700027),
        ("tampered-claims", 700027),
        ("wrong-audience", 700027),
        ("wrong-issuer", 700021),
        ("expired", 700024),
        ("not-yet-valid", 700024),
        ("malformed", 50027),
    ],
)
def test_forged_certificate_assertions_are_refused(
    emu: Emulator,
    http: requests.Session,
    app_cert: ClientCertificate,
    other_cert: ClientCertificate,
    case: str,
    code: int,
) -> None:
    client_id = str(uuid.uuid4())
    emu.add_certificate_client(client_id, app_cert.cert_pem)
    assertion = _forged(case, emu, client_id, app_cert, other_cert)
    response = request_token(
        http, emu, client_id=client_id, client_assertion_type=JWT_BEARER, client_assertion=assertion, scope=DATA_SCOPE
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert _aadsts(response) == code
    assert emu.requests[-1].client_id is None


def test_secret_does_not_open_a_certificate_client(emu: Emulator, http: requests.Session, app_cert: ClientCertificate) -> None:
    client_id = str(uuid.uuid4())
    emu.add_certificate_client(client_id, app_cert.cert_pem)
    response = request_token(http, emu, client_id=client_id, client_secret="guess", scope=DATA_SCOPE)
    assert (response.status_code, _aadsts(response)) == (401, 7000215)


def _secret_credential(emu: Emulator, authority: str | None = None, **kwargs: Any) -> ClientSecretCredential:
    return ClientSecretCredential(
        emu.tenant_id,
        emu.client_id,
        emu.client_secret,
        authority=authority or emu.host,
        disable_instance_discovery=True,
        **kwargs,
    )


@pytest.mark.parametrize("authority_form", ["host", "url"])
def test_azure_identity_client_secret_credential(emu: Emulator, authority_form: str) -> None:
    authority = emu.host if authority_form == "host" else emu.url
    credential = _secret_credential(emu, authority, connection_verify=emu.ca_path)
    token = credential.get_token(DATA_SCOPE)
    assert token.expires_on > time.time() + 3000
    assert emu.token_requests(client_id=emu.client_id, scope=DATA_SCOPE) == 1
    # Discovery plus one token request; instance discovery never left for the public cloud.
    assert [request.kind for request in emu.requests] == ["entra.discovery", "entra.token"]


def test_azure_identity_rejects_localhost_with_port_as_authority(emu: Emulator) -> None:
    """azure-identity parses `localhost:PORT` as scheme `localhost`: use 127.0.0.1 or a URL."""
    port = emu.host.split(":")[1]
    with pytest.raises(ValueError, match="https"):
        _secret_credential(emu, f"localhost:{port}")


def test_azure_identity_reads_requests_ca_bundle(emu: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", emu.ca_path)
    assert _secret_credential(emu).get_token(ARM_SCOPE).token


def test_azure_identity_wrong_secret_fails(emu: Emulator) -> None:
    credential = ClientSecretCredential(
        emu.tenant_id,
        emu.client_id,
        "wrong",
        authority=emu.host,
        disable_instance_discovery=True,
        connection_verify=emu.ca_path,
    )
    with pytest.raises(ClientAuthenticationError, match="AADSTS7000215"):
        credential.get_token(DATA_SCOPE)


def test_azure_identity_certificate_credential_pem(emu: Emulator, app_cert: ClientCertificate) -> None:
    client_id = str(uuid.uuid4())
    emu.add_certificate_client(client_id, app_cert.cert_pem)
    credential = CertificateCredential(
        emu.tenant_id,
        client_id,
        certificate_data=app_cert.key_and_cert_pem,
        authority=emu.host,
        disable_instance_discovery=True,
        connection_verify=emu.ca_path,
    )
    assert credential.get_token(DATA_SCOPE).token
    assert emu.token_requests(client_id=client_id) == 1


def test_azure_identity_certificate_credential_pkcs12(emu: Emulator, app_cert: ClientCertificate) -> None:
    client_id = str(uuid.uuid4())
    emu.add_certificate_client(client_id, app_cert.cert_pem)
    p12 = pkcs12.serialize_key_and_certificates(
        b"app", app_cert.key, app_cert.certificate, None, BestAvailableEncryption(b"s3cret")
    )
    credential = CertificateCredential(
        emu.tenant_id,
        client_id,
        certificate_data=p12,
        password="s3cret",
        authority=emu.url,
        disable_instance_discovery=True,
        connection_verify=emu.ca_path,
    )
    assert credential.get_token(ARM_SCOPE).token


def test_azure_identity_certificate_not_registered_fails(
    emu: Emulator, app_cert: ClientCertificate, other_cert: ClientCertificate
) -> None:
    client_id = str(uuid.uuid4())
    emu.add_certificate_client(client_id, app_cert.cert_pem)
    credential = CertificateCredential(
        emu.tenant_id,
        client_id,
        certificate_data=other_cert.key_and_cert_pem,
        authority=emu.host,
        disable_instance_discovery=True,
        connection_verify=emu.ca_path,
    )
    with pytest.raises(ClientAuthenticationError, match="AADSTS700027"):
        credential.get_token(DATA_SCOPE)


def test_token_lifetime_drives_azure_identity_refresh(emu: Emulator) -> None:
    credential = _secret_credential(emu, connection_verify=emu.ca_path)
    credential.get_token(DATA_SCOPE)
    credential.get_token(DATA_SCOPE)
    assert emu.token_requests(scope=DATA_SCOPE) == 1  # cached: an hour is left
    emu.token_lifetime = 200  # below azure-identity's 300 s refresh margin
    fresh = _secret_credential(emu, connection_verify=emu.ca_path)
    first = fresh.get_token(DATA_SCOPE)
    assert first.expires_on <= time.time() + 200
    fresh.get_token(DATA_SCOPE)
    assert emu.token_requests(scope=DATA_SCOPE) == 3
    assert emu.token_requests(client_id=emu.client_id) == 3
    assert emu.token_requests(scope=ARM_SCOPE) == 0


def test_token_requests_are_counted_even_when_refused(emu: Emulator, http: requests.Session) -> None:
    request_token(http, emu, client_id="nobody", client_secret="x", scope=DATA_SCOPE)
    request_token(http, emu, client_id=emu.client_id, client_secret="wrong", scope=ARM_SCOPE)
    assert emu.token_requests() == 2
    assert emu.token_requests(client_id="nobody") == 1
    assert emu.token_requests(client_id=emu.client_id, scope=ARM_SCOPE) == 1
