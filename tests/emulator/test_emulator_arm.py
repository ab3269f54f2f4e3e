"""Resource Manager: the deployments listing, its paging, and its refusals."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import requests

from polysync_azure_openai.emulator import DEFAULT_DEPLOYMENTS, Deployment, Emulator

from .emulator_helpers import (
    ARM_API_VERSION,
    ARM_SCOPE,
    DATA_SCOPE,
    deployments_url,
    secret_token,
)

WIRE_ITEM_KEYS = {"id", "name", "type", "sku", "systemData", "properties"}


def _list(http: requests.Session, url: str, token: str, api_version: str | None = ARM_API_VERSION) -> requests.Response:
    params = {} if api_version is None else {"api-version": api_version}
    return http.get(url, params=params, headers={"Authorization": f"Bearer {token}"})


def test_listing_items_have_the_wire_shape(emu: Emulator, http: requests.Session) -> None:
    response = _list(http, deployments_url(emu), secret_token(http, emu, ARM_SCOPE))
    assert response.status_code == 200
    body = response.json()
    assert "nextLink" not in body
    assert [item["name"] for item in body["value"]] == [d.name for d in DEFAULT_DEPLOYMENTS]
    first = body["value"][0]
    assert set(first) == WIRE_ITEM_KEYS
    assert first["id"] == (
        f"/subscriptions/{emu.subscription_id}/resourceGroups/{emu.resource_group}/providers/"
        f"Microsoft.CognitiveServices/accounts/{emu.resource_name}/deployments/gpt-4o"
    )
    assert first["type"] == "Microsoft.CognitiveServices/accounts/deployments"
    assert first["sku"] == {"name": "GlobalStandard", "capacity": 50}
    assert first["properties"]["model"] == {"format": "OpenAI", "name": "gpt-4o", "version": "2024-08-06"}
    assert first["properties"]["capabilities"] == {"chatCompletion": "true"}
    assert first["properties"]["provisioningState"] == "Succeeded"
    assert {"raiPolicyName", "versionUpgradeOption"} <= set(first["properties"])
    by_name = {item["name"]: item for item in body["value"]}
    assert by_name["embed-small"]["properties"]["capabilities"] == {"embeddings": "true"}
    assert by_name["dalle"]["properties"]["capabilities"] == {"imageGenerations": "true"}
    assert by_name["gpt-4o-batch"]["sku"]["name"] == "GlobalBatch"
    assert by_name["gpt-35-old"]["properties"]["provisioningState"] == "Creating"
    assert response.headers["x-ms-request-id"] and response.headers["x-ms-correlation-request-id"]
    # ARM is not behind the data plane's gateway: none of its headers.
    assert not {"apim-request-id", "x-ms-region", "x-ratelimit-remaining-requests"} & {h.lower() for h in response.headers}


def test_paging_follows_next_links_to_the_end(emu: Emulator, http: requests.Session) -> None:
    emu.page_size = 2
    token = secret_token(http, emu, ARM_SCOPE)
    pages: list[list[str]] = []
    url: str | None = f"{deployments_url(emu)}?api-version={ARM_API_VERSION}"
    while url is not None:
        response = http.get(url, headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200
        body = response.json()
        pages.append([item["name"] for item in body["value"]])
        url = body.get("nextLink")
        if url is not None:
            assert url.startswith(f"{deployments_url(emu)}?api-version={ARM_API_VERSION}&$skipToken=")
    assert pages == [["gpt-4o", "embed-small"], ["gpt-4o-batch", "o3-mini"], ["dalle", "gpt-35-old"], ["DeepSeek-R1"]]


def test_next_link_origin_can_point_elsewhere(emu: Emulator, http: requests.Session) -> None:
    emu.page_size = 5
    emu.next_link_origin = "https://evil.example"
    body = _list(http, deployments_url(emu), secret_token(http, emu, ARM_SCOPE)).json()
    assert body["nextLink"].startswith(f"https://evil.example/subscriptions/{emu.subscription_id}/resourceGroups/")


def test_set_deployments_replaces_the_listing(emu: Emulator, http: requests.Session) -> None:
    emu.set_deployments([Deployment("only", "gpt-4o-mini", sku="Standard")])
    body = _list(http, deployments_url(emu), secret_token(http, emu, ARM_SCOPE)).json()
    assert [item["name"] for item in body["value"]] == ["only"]
    assert body["value"][0]["properties"]["model"]["version"] == "1"


def test_bad_skip_token_is_refused(emu: Emulator, http: requests.Session) -> None:
    url = f"{deployments_url(emu)}?api-version={ARM_API_VERSION}&$skipToken=%%%"
    response = http.get(url, headers={"Authorization": f"Bearer {secret_token(http, emu, ARM_SCOPE)}"})
    assert response.status_code == 400


def test_data_plane_token_gets_wrong_audience(emu: Emulator, http: requests.Session) -> None:
    response = _list(http, deployments_url(emu), secret_token(http, emu, DATA_SCOPE))
    assert response.status_code == 401
    error = response.json()["error"]
    assert error["code"] == "InvalidAuthenticationTokenAudience"
    assert error["message"].startswith(
        "The access token has been obtained for wrong audience or resource "
        "'https://cognitiveservices.azure.com'. It should exactly match with one of the allowed "
        "audiences 'https://management.core.windows.net/'"
    )
    assert "'https://management.azure.com'" in error["message"]
    assert "WWW-Authenticate" in response.headers
    assert emu.requests[-1].client_id == emu.client_id


def test_management_core_audience_is_accepted(emu: Emulator, http: requests.Session) -> None:
    token = secret_token(http, emu, "https://management.core.windows.net//.default")
    assert _list(http, deployments_url(emu), token).status_code == 200


@pytest.mark.parametrize(
    ("authorization", "code"),
    [
        (None, "AuthenticationFailed"),
        ("Bearer not-a-token", "InvalidAuthenticationToken"),
        ("Basic dXNlcjpwYXNz", "AuthenticationFailed"),
    ],
)
def test_missing_or_unknown_tokens_are_refused(
    emu: Emulator, http: requests.Session, authorization: str | None, code: str
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    response = http.get(deployments_url(emu), params={"api-version": ARM_API_VERSION}, headers=headers)
    assert (response.status_code, response.json()["error"]["code"]) == (401, code)
    assert emu.requests[-1].client_id is None


def test_api_key_does_not_work_on_arm(emu: Emulator, http: requests.Session) -> None:
    response = http.get(deployments_url(emu), params={"api-version": ARM_API_VERSION}, headers={"api-key": emu.api_key})
    assert (response.status_code, response.json()["error"]["code"]) == (401, "AuthenticationFailed")


def test_client_without_reader_role_is_forbidden(emu: Emulator, http: requests.Session) -> None:
    client_id = str(uuid.uuid4())
    emu.add_secret_client(client_id, "s3cret-value", roles=["Cognitive Services OpenAI User"])
    token = secret_token(http, emu, ARM_SCOPE, client_id=client_id, secret="s3cret-value")
    response = _list(http, deployments_url(emu), token)
    assert response.status_code == 403
    error = response.json()["error"]
    assert error["code"] == "AuthorizationFailed"
    assert error["message"].startswith(f"The client '{client_id}' with object id '")
    assert (
        "does not have authorization to perform action 'Microsoft.CognitiveServices/accounts/deployments/read' "
        "over scope '/subscriptions/"
    ) in error["message"]
    assert error["message"].endswith("or the scope is invalid. If access was recently granted, please refresh your credentials.")


@pytest.mark.parametrize(
    ("where", "status", "code"),
    [
        ({"subscription": str(uuid.uuid4())}, 404, "SubscriptionNotFound"),
        ({"group": "rg-other"}, 404, "ResourceGroupNotFound"),
        ({"account": "other-aoai"}, 404, "ResourceNotFound"),
    ],
)
def test_wrong_resource_is_not_found(
    emu: Emulator, http: requests.Session, where: dict[str, str], status: int, code: str
) -> None:
    response = _list(http, deployments_url(emu, **where), secret_token(http, emu, ARM_SCOPE))
    assert (response.status_code, response.json()["error"]["code"]) == (status, code)


@pytest.mark.parametrize(
    ("api_version", "code"),
    [(None, "MissingApiVersionParameter"), ("2099-01-01", "InvalidApiVersionParameter"), ("", "MissingApiVersionParameter")],
)
def test_api_version_is_required(emu: Emulator, http: requests.Session, api_version: str | None, code: str) -> None:
    response = _list(http, deployments_url(emu), secret_token(http, emu, ARM_SCOPE), api_version)
    assert (response.status_code, response.json()["error"]["code"]) == (400, code)


def test_sovereign_cloud_audiences(shared_ca: Any) -> None:
    with Emulator(ca=shared_ca, cloud="AzureUSGovernment") as gov:
        session = requests.Session()
        session.trust_env = False
        session.verify = gov.ca_path
        public = session.post(
            f"{gov.url}/{gov.tenant_id}/oauth2/v2.0/token",
            data={
                "grant_type": "client_credentials",
                "client_id": gov.client_id,
                "client_secret": gov.client_secret,
                "scope": ARM_SCOPE,
            },
        )
        assert public.json()["error"] == "invalid_scope"
        token = secret_token(session, gov, "https://management.core.usgovcloudapi.net/.default")
        assert _list(session, deployments_url(gov), token).status_code == 200
        data_token = secret_token(session, gov, "https://cognitiveservices.azure.us/.default")
        response = session.post(
            f"{gov.url}/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21",
            json={"messages": [{"role": "user", "content": "hi"}]},
            headers={"Authorization": f"Bearer {data_token}"},
        )
        assert response.status_code == 200
        arm_on_data = session.post(
            f"{gov.url}/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21",
            json={"messages": [{"role": "user", "content": "hi"}]},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert "(https://cognitiveservices.azure.us/)" in arm_on_data.json()["message"]
        session.close()
