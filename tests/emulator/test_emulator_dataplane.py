"""The data plane: chat completions and embeddings, their auth, validation and wire shapes."""

from __future__ import annotations

import base64
import math
import struct
import time
import uuid
from typing import Any

import pytest
import requests

from polysync_azure_openai.emulator import Deployment, Emulator

from .emulator_helpers import (
    API_VERSION,
    ARM_SCOPE,
    DATA_SCOPE,
    REASONING_API_VERSION,
    chat_url,
    embeddings_url,
    secret_token,
)

USER_MESSAGE = [{"role": "user", "content": "Name a prime number."}]


def _chat(
    http: requests.Session,
    emu: Emulator,
    body: Any,
    deployment: str = "gpt-4o",
    api_version: str = API_VERSION,
    **headers: str,
) -> requests.Response:
    return http.post(chat_url(emu, deployment, api_version), json=body, headers={"api-key": emu.api_key, **headers})


def _reasoning_chat(http: requests.Session, emu: Emulator, body: Any, deployment: str = "o3-mini") -> requests.Response:
    return _chat(http, emu, body, deployment, REASONING_API_VERSION)


def _embed(http: requests.Session, emu: Emulator, body: Any, deployment: str = "embed-small") -> requests.Response:
    return http.post(embeddings_url(emu, deployment), json=body, headers={"api-key": emu.api_key})


def test_chat_answer_has_the_wire_shape(emu: Emulator, http: requests.Session) -> None:
    body = {"messages": [{"role": "system", "content": "Answer in one word."}, *USER_MESSAGE], "temperature": 0}
    response = _chat(http, emu, body, **{"x-ms-client-request-id": "client-req-1"})
    assert response.status_code == 200
    answer = response.json()
    assert set(answer) == {"id", "object", "created", "model", "system_fingerprint", "prompt_filter_results", "choices", "usage"}
    assert answer["id"].startswith("chatcmpl-") and answer["object"] == "chat.completion"
    assert answer["model"] == "gpt-4o-2024-08-06"
    assert abs(answer["created"] - time.time()) < 60
    assert answer["prompt_filter_results"][0]["prompt_index"] == 0
    choice = answer["choices"][0]
    assert choice["finish_reason"] == "stop" and choice["logprobs"] is None
    assert choice["message"]["role"] == "assistant" and choice["message"]["refusal"] is None
    assert choice["message"]["content"].startswith("Emulated answer: ")
    assert "Name a prime number." in choice["message"]["content"]
    assert choice["content_filter_results"]["violence"] == {"filtered": False, "severity": "safe"}
    usage = answer["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert usage["completion_tokens"] == len(choice["message"]["content"].split())
    assert response.headers["x-ms-client-request-id"] == "client-req-1"
    assert uuid.UUID(response.headers["apim-request-id"]) and uuid.UUID(response.headers["x-request-id"])
    assert response.headers["x-ms-region"] == "Emulator"
    assert response.headers["Content-Type"].startswith("application/json")


def test_chat_answer_is_deterministic(emu: Emulator, http: requests.Session) -> None:
    first = _chat(http, emu, {"messages": USER_MESSAGE}).json()
    second = _chat(http, emu, {"messages": USER_MESSAGE}).json()
    assert first["choices"][0]["message"]["content"] == second["choices"][0]["message"]["content"]
    assert first["usage"] == second["usage"]
    assert first["id"] != second["id"]


@pytest.mark.parametrize("limit_field", ["max_tokens", "max_completion_tokens"])
def test_small_token_limit_cuts_the_answer(emu: Emulator, http: requests.Session, limit_field: str) -> None:
    answer = _chat(http, emu, {"messages": USER_MESSAGE, limit_field: 3}).json()
    choice = answer["choices"][0]
    assert choice["finish_reason"] == "length"
    assert len(choice["message"]["content"].split()) == 3
    assert answer["usage"]["completion_tokens"] == 3


def test_output_filter_gives_content_filter_finish(emu: Emulator, http: requests.Session) -> None:
    body = {"messages": [{"role": "user", "content": "please EMULATOR_FILTER_OUTPUT now"}]}
    answer = _chat(http, emu, body).json()
    choice = answer["choices"][0]
    assert choice["finish_reason"] == "content_filter"
    assert choice["message"]["content"] is None
    assert choice["content_filter_results"]["violence"] == {"filtered": True, "severity": "medium"}
    assert answer["usage"]["completion_tokens"] > 0


def test_blocked_prompt_has_the_observed_shape(emu: Emulator, http: requests.Session) -> None:
    response = _chat(http, emu, {"messages": [{"role": "user", "content": "EMULATOR_BLOCK this"}]})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "content_filter" and error["param"] == "prompt" and error["status"] == 400
    assert error["type"] is None
    assert error["message"].startswith("The response was filtered due to the prompt triggering")
    assert error["innererror"]["code"] == "ResponsibleAIPolicyViolation"
    assert error["innererror"]["content_filter_result"]["violence"]["filtered"] is True


def test_block_marker_in_system_message_does_not_block(emu: Emulator, http: requests.Session) -> None:
    body = {"messages": [{"role": "system", "content": "EMULATOR_BLOCK"}, *USER_MESSAGE]}
    assert _chat(http, emu, body).status_code == 200


def test_reasoning_model_refuses_max_tokens(emu: Emulator, http: requests.Session) -> None:
    response = _reasoning_chat(http, emu, {"messages": USER_MESSAGE, "max_tokens": 50})
    assert response.status_code == 400
    assert response.json() == {
        "error": {
            "message": "Unsupported parameter: 'max_tokens' is not supported with this model. Use "
            "'max_completion_tokens' instead.",
            "type": "invalid_request_error",
            "param": "max_tokens",
            "code": "unsupported_parameter",
        }
    }
    fine = _reasoning_chat(http, emu, {"messages": USER_MESSAGE, "max_completion_tokens": 500})
    assert fine.status_code == 200
    assert fine.json()["model"] == "o3-mini-2025-01-31"


def test_reasoning_can_be_forced_on_a_deployment(emu: Emulator, http: requests.Session) -> None:
    emu.set_deployments([Deployment("custom", "my-model", reasoning=True), Deployment("gpt5", "GPT-5-mini")])
    for deployment in ("custom", "gpt5"):
        refused = _reasoning_chat(http, emu, {"messages": USER_MESSAGE, "max_tokens": 5}, deployment)
        assert (refused.status_code, refused.json()["error"]["param"]) == (400, "max_tokens")


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        pytest.param({}, "messages", "missing_required_parameter", id="no-messages"),
        pytest.param({"messages": []}, "messages", "empty_array", id="empty-messages"),
        pytest.param({"messages": "hi"}, "messages", "invalid_type", id="messages-not-list"),
        pytest.param({"messages": ["hi"]}, "messages[0]", "invalid_type", id="message-not-object"),
        pytest.param({"messages": [{"content": "hi"}]}, "messages[0].role", "missing_required_parameter", id="no-role"),
        pytest.param({"messages": [{"role": "bot", "content": "hi"}]}, "messages[0].role", "invalid_value", id="bad-role"),
        pytest.param({"messages": [{"role": "user"}]}, "messages[0].content", "missing_required_parameter", id="no-content"),
        pytest.param(
            {"messages": [{"role": "user", "content": 7}]}, "messages[0].content", "invalid_type", id="content-not-string"
        ),
        pytest.param({"messages": USER_MESSAGE, "max_tokens": 0}, "max_tokens", "integer_below_min_value", id="zero-max-tokens"),
        pytest.param({"messages": USER_MESSAGE, "max_tokens": "10"}, "max_tokens", "invalid_type", id="string-max-tokens"),
        pytest.param({"messages": USER_MESSAGE, "max_tokens": 1.5}, "max_tokens", "invalid_type", id="float-max-tokens"),
        pytest.param(
            {"messages": USER_MESSAGE, "max_completion_tokens": -1},
            "max_completion_tokens",
            "integer_below_min_value",
            id="negative-max-completion-tokens",
        ),
        pytest.param({"messages": USER_MESSAGE, "temperature": 2.5}, "temperature", "decimal_above_max_value", id="hot"),
        pytest.param({"messages": USER_MESSAGE, "temperature": -0.1}, "temperature", "decimal_below_min_value", id="cold"),
        pytest.param({"messages": USER_MESSAGE, "temperature": True}, "temperature", "invalid_type", id="bool-temperature"),
        pytest.param({"messages": USER_MESSAGE, "bogus": 1}, None, None, id="unknown-field"),
        pytest.param([1, 2], None, "invalid_type", id="body-not-object"),
    ],
)
def test_invalid_chat_bodies_are_400(
    emu: Emulator, http: requests.Session, body: Any, param: str | None, code: str | None
) -> None:
    response = _chat(http, emu, body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["type"], error["param"], error["code"]) == ("invalid_request_error", param, code)
    assert error["message"]


@pytest.mark.parametrize(
    ("data", "content_type"),
    [
        (b"{not json", "application/json"),
        (b"\xff\xfe", "application/json"),
        (b'{"messages": []}', "text/plain"),
        (b"", "application/json"),
    ],
)
def test_malformed_requests_are_400_not_a_crash(emu: Emulator, http: requests.Session, data: bytes, content_type: str) -> None:
    response = http.post(chat_url(emu), data=data, headers={"api-key": emu.api_key, "Content-Type": content_type})
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
    # The server still answers on the same connection.
    assert _chat(http, emu, {"messages": USER_MESSAGE}).status_code == 200


@pytest.mark.parametrize("deployment", ["no-such-deployment", "gpt-35-old"])
def test_unknown_or_unready_deployment_is_404(emu: Emulator, http: requests.Session, deployment: str) -> None:
    response = _chat(http, emu, {"messages": USER_MESSAGE}, deployment=deployment)
    assert response.status_code == 404
    assert response.json() == {
        "error": {
            "code": "DeploymentNotFound",
            "message": "The API deployment for this resource does not exist. If you created the deployment "
            "within the last 5 minutes, please wait a moment and try again.",
        }
    }


def test_chat_on_embedding_deployment_is_operation_not_supported(emu: Emulator, http: requests.Session) -> None:
    response = _chat(http, emu, {"messages": USER_MESSAGE}, deployment="embed-small")
    assert response.status_code == 400
    assert response.json()["error"] == {
        "code": "OperationNotSupported",
        "message": "The chatCompletion operation does not work with the specified model, "
        "text-embedding-3-small. Please choose different model and try again. You can learn more about "
        "which models can be used with each operation here: https://go.microsoft.com/fwlink/?linkid=2197993.",
    }


@pytest.mark.parametrize("deployment", ["dalle", "gpt-4o-batch"])
def test_chat_on_non_chat_deployments_is_refused(emu: Emulator, http: requests.Session, deployment: str) -> None:
    response = _chat(http, emu, {"messages": USER_MESSAGE}, deployment=deployment)
    assert (response.status_code, response.json()["error"]["code"]) == (400, "OperationNotSupported")


@pytest.mark.parametrize("api_version", [None, ""])
def test_missing_api_version_is_resource_not_found(emu: Emulator, http: requests.Session, api_version: str | None) -> None:
    response = http.post(
        chat_url(emu, api_version=api_version), json={"messages": USER_MESSAGE}, headers={"api-key": emu.api_key}
    )
    assert response.status_code == 404
    assert response.content == b'{"error":{"code":"404","message": "Resource not found"}}'


def test_preview_api_version_is_accepted(emu: Emulator, http: requests.Session) -> None:
    response = http.post(
        chat_url(emu, api_version="2025-04-01-preview"), json={"messages": USER_MESSAGE}, headers={"api-key": emu.api_key}
    )
    assert response.status_code == 200


# Auth.
MISSING_TOKEN = {
    "statusCode": 401,
    "message": "Unauthorized. Access token is missing, invalid, audience is incorrect "
    "(https://cognitiveservices.azure.com), or have expired.",
}


def _chat_with(http: requests.Session, emu: Emulator, headers: dict[str, str]) -> requests.Response:
    return http.post(chat_url(emu), json={"messages": USER_MESSAGE}, headers=headers)


def test_wrong_api_key_is_401(emu: Emulator, http: requests.Session) -> None:
    response = _chat_with(http, emu, {"api-key": "0" * 32})
    assert response.status_code == 401
    assert response.json() == {
        "error": {
            "code": "401",
            "message": "Access denied due to invalid subscription key or wrong API endpoint. Make sure to "
            "provide a valid key for an active subscription and use a correct regional API endpoint for your "
            "resource.",
        }
    }
    assert emu.requests[-1].client_id is None


def test_added_api_key_works(emu: Emulator, http: requests.Session) -> None:
    emu.add_api_key("k" * 32)
    assert _chat_with(http, emu, {"api-key": "k" * 32}).status_code == 200


@pytest.mark.parametrize("authorization", [None, "Bearer forged.token.value", "Bearer "])
def test_missing_or_unknown_token_is_401(emu: Emulator, http: requests.Session, authorization: str | None) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    response = _chat_with(http, emu, headers)
    assert (response.status_code, response.json()) == (401, MISSING_TOKEN)


def test_arm_token_on_data_plane_is_401(emu: Emulator, http: requests.Session) -> None:
    token = secret_token(http, emu, ARM_SCOPE)
    response = _chat_with(http, emu, {"Authorization": f"Bearer {token}"})
    assert (response.status_code, response.json()) == (401, MISSING_TOKEN)
    assert emu.requests[-1].client_id == emu.client_id


def test_expired_token_is_401(emu: Emulator, http: requests.Session) -> None:
    emu.token_lifetime = 1
    token = secret_token(http, emu, DATA_SCOPE)
    assert _chat_with(http, emu, {"Authorization": f"Bearer {token}"}).status_code == 200
    time.sleep(1.05)
    response = _chat_with(http, emu, {"Authorization": f"Bearer {token}"})
    assert (response.status_code, response.json()) == (401, MISSING_TOKEN)


def test_revoked_tokens_are_refused(emu: Emulator, http: requests.Session) -> None:
    token = secret_token(http, emu, DATA_SCOPE)
    assert emu.revoke_tokens(client_id="someone-else") == 0
    assert _chat_with(http, emu, {"Authorization": f"Bearer {token}"}).status_code == 200
    assert emu.revoke_tokens() == 1
    response = _chat_with(http, emu, {"Authorization": f"Bearer {token}"})
    assert (response.status_code, response.json()) == (401, MISSING_TOKEN)
    assert emu.requests[-1].client_id is None


def test_client_without_openai_user_role_is_permission_denied(emu: Emulator, http: requests.Session) -> None:
    client_id = str(uuid.uuid4())
    emu.add_secret_client(client_id, "reader-secret", roles=["Reader"])
    token = secret_token(http, emu, DATA_SCOPE, client_id=client_id, secret="reader-secret")
    response = _chat_with(http, emu, {"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert response.json() == {
        "error": {
            "code": "PermissionDenied",
            "message": "Principal does not have access to API/Operation.",
        }
    }
    assert emu.requests[-1].client_id == client_id


def test_bearer_token_with_role_works(emu: Emulator, http: requests.Session) -> None:
    token = secret_token(http, emu, DATA_SCOPE)
    response = _chat_with(http, emu, {"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert emu.requests[-1].client_id == emu.client_id


# Embeddings.
def test_embeddings_are_deterministic_unit_vectors(emu: Emulator, http: requests.Session) -> None:
    response = _embed(http, emu, {"input": ["first text", "second text", "first text"]})
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "list" and body["model"] == "text-embedding-3-small"
    assert [item["index"] for item in body["data"]] == [0, 1, 2]
    assert all(item["object"] == "embedding" for item in body["data"])
    vectors = [item["embedding"] for item in body["data"]]
    assert all(len(vector) == 1536 for vector in vectors)
    assert all(math.isclose(math.fsum(x * x for x in vector), 1.0, rel_tol=1e-9) for vector in vectors)
    assert vectors[0] == vectors[2] and vectors[0] != vectors[1]
    assert body["usage"] == {"prompt_tokens": 6, "total_tokens": 6}
    again = _embed(http, emu, {"input": "first text"}).json()
    assert again["data"][0]["embedding"] == vectors[0]


def test_embedding_dimensions(shared_ca: Any, emu: Emulator, http: requests.Session) -> None:
    short = _embed(http, emu, {"input": "hello", "dimensions": 256}).json()["data"][0]["embedding"]
    assert len(short) == 256
    assert math.isclose(math.fsum(x * x for x in short), 1.0, rel_tol=1e-9)
    assert _embed(http, emu, {"input": "hello", "dimensions": 4096}).status_code == 400
    with Emulator(ca=shared_ca, embedding_dimensions=64) as small:
        session = requests.Session()
        session.trust_env = False
        response = session.post(
            f"{small.url}/openai/deployments/embed-small/embeddings?api-version={API_VERSION}",
            json={"input": "hello"},
            headers={"api-key": small.api_key},
            verify=small.ca_path,
        )
        assert len(response.json()["data"][0]["embedding"]) == 64
        session.close()


def test_embeddings_base64_encoding(emu: Emulator, http: requests.Session) -> None:
    floats = _embed(http, emu, {"input": "hello"}).json()["data"][0]["embedding"]
    encoded = _embed(http, emu, {"input": "hello", "encoding_format": "base64"}).json()["data"][0]["embedding"]
    decoded = struct.unpack(f"<{len(floats)}f", base64.b64decode(encoded))
    assert all(math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-7) for a, b in zip(decoded, floats, strict=True))


@pytest.mark.parametrize(
    ("body", "param"),
    [
        pytest.param({}, "input", id="no-input"),
        pytest.param({"input": ""}, "input", id="empty-string"),
        pytest.param({"input": []}, "input", id="empty-list"),
        pytest.param({"input": ["ok", ""]}, "input[1]", id="empty-item"),
        pytest.param({"input": ["ok", 3]}, "input[1]", id="non-string-item"),
        pytest.param({"input": 42}, "input", id="number"),
        pytest.param({"input": ["x"] * 2049}, "input", id="too-many"),
        pytest.param({"input": "x", "dimensions": 0}, "dimensions", id="zero-dimensions"),
        pytest.param({"input": "x", "encoding_format": "int8"}, "encoding_format", id="bad-encoding"),
        pytest.param({"input": "x", "messages": []}, None, id="chat-field"),
    ],
)
def test_invalid_embedding_bodies_are_400(emu: Emulator, http: requests.Session, body: dict[str, Any], param: str | None) -> None:
    response = _embed(http, emu, body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["type"], error["param"]) == ("invalid_request_error", param)


def test_embeddings_accept_2048_inputs(emu: Emulator, http: requests.Session) -> None:
    response = _embed(http, emu, {"input": [f"text {i}" for i in range(2048)], "dimensions": 8})
    assert response.status_code == 200
    assert len(response.json()["data"]) == 2048


def test_embeddings_on_chat_deployment_is_operation_not_supported(emu: Emulator, http: requests.Session) -> None:
    response = _embed(http, emu, {"input": "hello"}, deployment="gpt-4o")
    assert response.status_code == 400
    assert response.json()["error"] == {
        "code": "OperationNotSupported",
        "message": "The embeddings operation does not work with the specified model, gpt-4o. Please choose "
        "different model and try again. You can learn more about which models can be used with each "
        "operation here: https://go.microsoft.com/fwlink/?linkid=2197993.",
    }
