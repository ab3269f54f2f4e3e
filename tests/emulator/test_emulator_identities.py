"""The keyless identities: the App Service style managed-identity endpoint and workload identity
federation (a service account token as Entra's client assertion), each refusing what Azure refuses."""

from __future__ import annotations

import json
import os
import stat
import time
import uuid
from typing import Any

import pytest
import requests
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from polysync_azure_openai.emulator import Emulator

from .emulator_helpers import (
    ARM_API_VERSION,
    ARM_SCOPE,
    DATA_SCOPE,
    ClientCertificate,
    b64url,
    chat_url,
    deployments_url,
    request_token,
)

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def msi(
    emu: Emulator, resource: str = "https://cognitiveservices.azure.com", header: str | None = "", **query: str
) -> requests.Response:
    """A token request as azure-identity's App Service credential sends it (plain HTTP, no TLS)."""
    headers = {"Metadata": "true"}
    if header is not None:
        headers["X-IDENTITY-HEADER"] = header or emu.identity_header
    params = {"api-version": "2019-08-01", "resource": resource, **query}
    return requests.get(emu.identity_endpoint, params=params, headers=headers, timeout=10)


def chat(http: requests.Session, emu: Emulator, token: str) -> requests.Response:
    return http.post(
        chat_url(emu), json={"messages": [{"role": "user", "content": "hi"}]}, headers={"Authorization": f"Bearer {token}"}
    )


def listing(http: requests.Session, emu: Emulator, token: str) -> requests.Response:
    return http.get(deployments_url(emu), params={"api-version": ARM_API_VERSION}, headers={"Authorization": f"Bearer {token}"})


# -- managed identity ---------------------------------------------------------------------------


def test_the_endpoint_is_plain_http_on_loopback_as_app_service_serves_it(emu: Emulator) -> None:
    assert emu.identity_endpoint.startswith("http://127.0.0.1:") and emu.identity_endpoint.endswith("/msi/token")
    assert emu.managed_identity_environment() == {
        "IDENTITY_ENDPOINT": emu.identity_endpoint,
        "IDENTITY_HEADER": emu.identity_header,
    }


def test_the_system_assigned_identity_gets_tokens_arm_and_the_data_plane_accept(emu: Emulator, http: requests.Session) -> None:
    data = msi(emu)
    assert data.status_code == 200, data.text
    body = data.json()
    assert set(body) == {"access_token", "expires_on", "resource", "token_type", "client_id"}
    assert body["token_type"] == "Bearer" and body["resource"] == "https://cognitiveservices.azure.com"
    assert body["client_id"] == emu.system_assigned_client_id
    # App Service sends expires_on as text of Unix seconds.
    assert isinstance(body["expires_on"], str) and int(body["expires_on"]) > time.time()
    assert chat(http, emu, body["access_token"]).status_code == 200
    arm = msi(emu, "https://management.azure.com/").json()["access_token"]
    assert listing(http, emu, arm).status_code == 200
    assert emu.requests[-1].client_id == emu.system_assigned_client_id
    assert emu.token_requests(client_id=emu.system_assigned_client_id, scope=DATA_SCOPE) == 1
    assert emu.token_requests(client_id=emu.system_assigned_client_id, scope=ARM_SCOPE) == 1


def test_a_user_assigned_identity_is_chosen_by_client_id(emu: Emulator, http: requests.Session) -> None:
    client_id = emu.add_user_assigned_identity()
    response = msi(emu, client_id=client_id.upper())  # GUIDs compare without case
    assert response.status_code == 200 and response.json()["client_id"] == client_id
    assert chat(http, emu, response.json()["access_token"]).status_code == 200
    assert emu.requests[-1].client_id == client_id


def test_a_token_of_one_audience_is_refused_by_the_other_service(emu: Emulator, http: requests.Session) -> None:
    data = msi(emu).json()["access_token"]
    assert listing(http, emu, data).json()["error"]["code"] == "InvalidAuthenticationTokenAudience"


def test_an_identity_without_roles_is_refused_by_the_data_plane(emu: Emulator, http: requests.Session) -> None:
    client_id = emu.add_user_assigned_identity(roles=())
    token = msi(emu, client_id=client_id).json()["access_token"]
    refused = chat(http, emu, token)
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "PermissionDenied"


@pytest.mark.parametrize(
    ("header", "query", "status", "message"),
    [
        pytest.param(None, {}, 401, "X-IDENTITY-HEADER", id="no-header"),
        pytest.param("wrong-header", {}, 401, "X-IDENTITY-HEADER", id="wrong-header"),
        pytest.param(
            "", {"client_id": str(uuid.uuid4())}, 400, "Unable to load the proper Managed Identity.", id="unknown-client-id"
        ),
        pytest.param("", {"object_id": str(uuid.uuid4())}, 400, "Unable to load the proper Managed Identity.", id="object-id"),
        pytest.param("", {"api-version": "2017-09-01"}, 400, "2019-08-01", id="old-api-version"),
        pytest.param("", {"resource": ""}, 400, "'resource'", id="no-resource"),
        pytest.param("", {"resource": "https://cognitiveservices.azure.us"}, 500, "unexpected error", id="other-cloud"),
    ],
)
def test_the_endpoint_refuses_what_app_service_refuses(
    emu: Emulator, header: str | None, query: dict[str, str], status: int, message: str
) -> None:
    response = msi(emu, header=header, **query)
    assert response.status_code == status
    body = response.json()
    assert body["statusCode"] == status and message in body["message"] and body["correlationId"]
    assert "access_token" not in body
    assert emu.requests[-1].kind == "msi.token" and emu.requests[-1].client_id is None


def test_the_tls_port_does_not_serve_the_identity_endpoint(emu: Emulator, http: requests.Session) -> None:
    response = http.get(
        f"{emu.url}/msi/token", params={"api-version": "2019-08-01", "resource": "https://cognitiveservices.azure.com"}
    )
    assert response.status_code == 404


def test_faults_reach_the_identity_endpoint(emu: Emulator) -> None:
    from polysync_azure_openai.emulator.faults import Status

    emu.inject(Status(503), kind="msi.token")
    assert msi(emu).status_code == 503
    assert msi(emu).status_code == 200


# -- workload identity --------------------------------------------------------------------------


def exchange(
    http: requests.Session, emu: Emulator, assertion: str, client_id: str | None = None, scope: str = DATA_SCOPE
) -> requests.Response:
    return request_token(
        http,
        emu,
        client_id=client_id or emu.workload_client_id,
        client_assertion_type=JWT_BEARER,
        client_assertion=assertion,
        scope=scope,
    )


def aadsts(response: requests.Response) -> int:
    body = response.json()
    code: int = body["error_codes"][0]
    assert body["error_description"].startswith(f"AADSTS{code}: ") and body["error"] == "invalid_client"
    return code


def test_a_federated_token_is_exchanged_for_tokens_arm_and_the_data_plane_accept(emu: Emulator, http: requests.Session) -> None:
    assertion = emu.federated_token()
    data = exchange(http, emu, assertion)
    assert data.status_code == 200, data.text
    assert chat(http, emu, data.json()["access_token"]).status_code == 200
    assert emu.requests[-1].client_id == emu.workload_client_id
    arm = exchange(http, emu, assertion, scope=ARM_SCOPE).json()["access_token"]
    assert listing(http, emu, arm).status_code == 200


def test_the_federated_token_looks_like_a_projected_service_account_token(emu: Emulator) -> None:
    header, claims, _ = emu.federated_token().split(".")
    decoded = json.loads(_b64decode(claims))
    assert json.loads(_b64decode(header))["alg"] == "RS256"
    assert decoded["iss"] == emu.oidc_issuer and decoded["aud"] == ["api://AzureADTokenExchange"]
    assert decoded["sub"] == "system:serviceaccount:polysync:polysync-worker"
    assert decoded["kubernetes.io"]["namespace"] == "polysync"


def test_write_federated_token_writes_an_owner_only_file_deleted_with_the_emulator(emu: Emulator, tmp_path: Any) -> None:
    own = emu.write_federated_token()
    chosen = emu.write_federated_token(tmp_path / "token", lifetime=60)
    for path in (own, chosen):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert path.read_text().count(".") == 2 and not path.read_text().endswith("\n")
    emu.stop()
    assert not own.exists() and chosen.exists()


def test_another_app_can_trust_another_service_account(emu: Emulator, http: requests.Session) -> None:
    client_id = str(uuid.uuid4())
    emu.add_federated_credential(client_id, "system:serviceaccount:jobs:runner")
    assert exchange(http, emu, emu.federated_token("system:serviceaccount:jobs:runner"), client_id).status_code == 200
    # The default app does not trust that subject.
    assert aadsts(exchange(http, emu, emu.federated_token("system:serviceaccount:jobs:runner"))) == 700213


def _b64decode(part: str) -> bytes:
    import base64

    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _resigned(emu: Emulator, other: ClientCertificate, **changes: Any) -> str:
    """The emulator's token with changed claims, signed with someone else's key."""
    header, claims, _ = emu.federated_token().split(".")
    payload = {**json.loads(_b64decode(claims)), **changes}
    signing_input = f"{header}.{b64url(json.dumps(payload).encode())}"
    signature = other.key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{b64url(signature)}"


def _tampered(emu: Emulator, **changes: Any) -> str:
    """The emulator's token with changed claims and its original signature."""
    header, claims, signature = emu.federated_token().split(".")
    payload = {**json.loads(_b64decode(claims)), **changes}
    return f"{header}.{b64url(json.dumps(payload).encode())}.{signature}"


@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("wrong-audience", 70021),
        ("unknown-subject", 700213),
        ("subject-in-other-case", 700213),
        ("unknown-issuer", 700211),
        ("expired", 700024),
        ("signed-by-another-key", 700027),
        ("tampered-subject", 700027),
        ("app-without-federated-credential", 700211),
        ("not-a-jwt", 50027),
    ],
)
def test_federated_tokens_entra_refuses(
    emu: Emulator, http: requests.Session, other_cert: ClientCertificate, case: str, code: int
) -> None:
    client_id = None
    if case == "wrong-audience":
        assertion = emu.federated_token(audience="api://AzureADTokenExchange/other")
    elif case == "unknown-subject":
        assertion = emu.federated_token("system:serviceaccount:polysync:someone-else")
    elif case == "subject-in-other-case":
        assertion = emu.federated_token("system:serviceaccount:polysync:Polysync-Worker")
    elif case == "unknown-issuer":
        assertion = emu.federated_token(issuer="https://token.actions.githubusercontent.com")
    elif case == "expired":
        assertion = emu.federated_token(lifetime=-600)
    elif case == "signed-by-another-key":
        assertion = _resigned(emu, other_cert)
    elif case == "tampered-subject":
        assertion = _tampered(emu, sub="system:serviceaccount:polysync:admin")
        emu.add_federated_credential(emu.workload_client_id, "system:serviceaccount:polysync:admin")
    elif case == "app-without-federated-credential":
        assertion, client_id = emu.federated_token(), emu.client_id
    else:
        assertion = "not-a-jwt"
    response = exchange(http, emu, assertion, client_id)
    assert response.status_code == 401
    assert aadsts(response) == code
    assert emu.requests[-1].client_id is None


def test_refusals_name_what_the_token_presented(emu: Emulator, http: requests.Session) -> None:
    response = exchange(http, emu, emu.federated_token(audience="api://wrong"))
    description = response.json()["error_description"]
    assert f"Assertion Issuer: '{emu.oidc_issuer}'" in description
    assert "Assertion Subject: 'system:serviceaccount:polysync:polysync-worker'" in description
    assert "Assertion Audience: 'api://wrong'" in description
