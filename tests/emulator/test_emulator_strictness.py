"""What the emulator refuses because Azure refuses it (second-release.md §I).

The emulator of 0.1.0 accepted what these tests see refused, so the plugin's suite passed where
real Azure failed; the acceptance tests beside them keep the rules from refusing too much.
"""

from __future__ import annotations

from typing import Any

import pytest
import requests

from polysync_azure_openai.emulator import Deployment, Emulator, faults
from polysync_azure_openai.emulator.arm import SUPPORTED_API_VERSIONS
from polysync_azure_openai.emulator.dataplane import API_VERSIONS, REASONING_TOKENS

from .emulator_helpers import (
    API_VERSION,
    ARM_SCOPE,
    REASONING_API_VERSION,
    batch_jsonl,
    batches_url,
    chat_url,
    deployments_url,
    files_url,
    secret_token,
)

USER_MESSAGE = [{"role": "user", "content": "Name a prime number."}]
API_VERSION_NOT_SUPPORTED = {"error": {"code": "BadRequest", "message": "API version not supported"}}
DATA_PLANE_ONLY_HEADERS = {"apim-request-id", "x-ms-region", "x-ratelimit-remaining-requests", "x-ratelimit-remaining-tokens"}
SCHEMA_FORMAT = {
    "type": "json_schema",
    "json_schema": {
        "name": "result",
        "schema": {"type": "object", "properties": {}, "required": [], "additionalProperties": False},
        "strict": True,
    },
}


def _chat(
    http: requests.Session, emu: Emulator, body: dict[str, Any], deployment: str = "gpt-4o", api_version: str = API_VERSION
) -> requests.Response:
    return http.post(chat_url(emu, deployment, api_version), json=body, headers={"api-key": emu.api_key})


def _reasoning(http: requests.Session, emu: Emulator, **fields: Any) -> requests.Response:
    return _chat(http, emu, {"messages": USER_MESSAGE, **fields}, "o3-mini", REASONING_API_VERSION)


# api-version rules.
def test_the_known_api_versions_are_azures_from_2024_02_01_on() -> None:
    assert API_VERSIONS[0] == "2024-02-01" and API_VERSIONS[-1] == "2025-04-01-preview"
    assert {"2024-06-01", "2024-10-21", "2024-08-01-preview", "2024-12-01-preview", "2025-01-01-preview"} <= set(API_VERSIONS)
    assert list(API_VERSIONS) == sorted(API_VERSIONS), "oldest first: the order is what 'and later' means"


@pytest.mark.parametrize("api_version", API_VERSIONS)
def test_every_known_api_version_is_served(emu: Emulator, http: requests.Session, api_version: str) -> None:
    assert _chat(http, emu, {"messages": USER_MESSAGE}, api_version=api_version).status_code == 200


@pytest.mark.parametrize(
    "api_version", ["2099-01-01", "2023-05-15", "2024-11-01-preview", "2024-10-21-preview", "latest", "v1", "24-10-21"]
)
def test_an_unknown_api_version_is_azures_400(emu: Emulator, http: requests.Session, api_version: str) -> None:
    response = _chat(http, emu, {"messages": USER_MESSAGE}, api_version=api_version)
    assert (response.status_code, response.json()) == (400, API_VERSION_NOT_SUPPORTED)


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("POST", "/openai/deployments/embed-small/embeddings"),
        ("GET", "/openai/files"),
        ("GET", "/openai/batches"),
        ("POST", "/openai/batches"),
    ],
)
def test_every_data_plane_route_refuses_an_unknown_api_version(
    emu: Emulator, http: requests.Session, method: str, url: str
) -> None:
    response = http.request(method, f"{emu.url}{url}?api-version=2099-01-01", json={}, headers={"api-key": emu.api_key})
    assert (response.status_code, response.json()) == (400, API_VERSION_NOT_SUPPORTED)


# Reasoning models.
@pytest.mark.parametrize("api_version", ["2024-10-21", "2024-10-01-preview", "2024-02-01"])
def test_a_reasoning_model_below_2024_12_01_preview_is_refused(emu: Emulator, http: requests.Session, api_version: str) -> None:
    response = _chat(http, emu, {"messages": USER_MESSAGE, "max_completion_tokens": 500}, "o3-mini", api_version)
    assert response.status_code == 400
    assert response.json() == {
        "error": {"code": "BadRequest", "message": "Model o3-mini is enabled only for api versions 2024-12-01-preview and later"}
    }


@pytest.mark.parametrize("api_version", ["2024-12-01-preview", "2025-01-01-preview", "2025-04-01-preview"])
def test_a_reasoning_model_from_2024_12_01_preview_on_is_served(emu: Emulator, http: requests.Session, api_version: str) -> None:
    response = _chat(http, emu, {"messages": USER_MESSAGE}, "o3-mini", api_version)
    assert response.status_code == 200


@pytest.mark.parametrize("param", ["temperature", "top_p", "presence_penalty", "frequency_penalty", "logit_bias"])
def test_sampling_parameters_to_a_reasoning_model_are_unsupported(emu: Emulator, http: requests.Session, param: str) -> None:
    value: Any = {} if param == "logit_bias" else 0.5
    response = _reasoning(http, emu, **{param: value})
    assert response.status_code == 400
    assert response.json() == {
        "error": {
            "message": f"Unsupported parameter: '{param}' is not supported with this model.",
            "type": "invalid_request_error",
            "param": param,
            "code": "unsupported_parameter",
        }
    }


@pytest.mark.parametrize("model", ["o1", "o1-mini", "O3", "o4-mini", "gpt-5", "gpt-5-mini", "GPT-5-nano"])
def test_reasoning_families_refuse_temperature(emu: Emulator, http: requests.Session, model: str) -> None:
    emu.set_deployments([Deployment("reasoner", model)])
    response = _chat(http, emu, {"messages": USER_MESSAGE, "temperature": 1}, "reasoner", REASONING_API_VERSION)
    assert (response.status_code, response.json()["error"]["code"]) == (400, "unsupported_parameter")
    old = _chat(http, emu, {"messages": USER_MESSAGE}, "reasoner", "2024-10-21")
    assert (old.status_code, old.json()["error"]["code"]) == (400, "BadRequest")


def test_gpt_5_chat_is_not_a_reasoning_model(emu: Emulator, http: requests.Session) -> None:
    emu.set_deployments([Deployment("chat5", "gpt-5-chat", model_version="2025-08-07")])
    response = _chat(http, emu, {"messages": USER_MESSAGE, "temperature": 0.2, "max_tokens": 50}, "chat5", "2024-10-21")
    assert response.status_code == 200
    assert response.json()["usage"]["completion_tokens_details"]["reasoning_tokens"] == 0


def test_a_reasoning_answer_spends_reasoning_tokens_inside_completion_tokens(emu: Emulator, http: requests.Session) -> None:
    answer = _reasoning(http, emu).json()
    content = answer["choices"][0]["message"]["content"]
    usage = answer["usage"]
    reasoning = usage["completion_tokens_details"]["reasoning_tokens"]
    assert reasoning == REASONING_TOKENS["medium"] > 0
    assert usage["completion_tokens"] == reasoning + len(content.split())
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert answer["choices"][0]["finish_reason"] == "stop"


def test_reasoning_effort_sets_the_reasoning_cost(emu: Emulator, http: requests.Session) -> None:
    spent = {
        effort: _reasoning(http, emu, reasoning_effort=effort).json()["usage"]["completion_tokens_details"]["reasoning_tokens"]
        for effort in ("low", "medium", "high")
    }
    assert 0 < spent["low"] < spent["medium"] < spent["high"]
    bad = _reasoning(http, emu, reasoning_effort="extreme")
    assert (bad.status_code, bad.json()["error"]["param"]) == (400, "reasoning_effort")
    not_reasoning = _chat(http, emu, {"messages": USER_MESSAGE, "reasoning_effort": "low"})
    assert (not_reasoning.status_code, not_reasoning.json()["error"]["code"]) == (400, "unsupported_parameter")


def test_a_budget_below_the_reasoning_cost_gives_empty_content_and_length(emu: Emulator, http: requests.Session) -> None:
    budget = REASONING_TOKENS["medium"] - 10
    answer = _reasoning(http, emu, max_completion_tokens=budget).json()
    choice = answer["choices"][0]
    assert (choice["message"]["content"], choice["finish_reason"]) == ("", "length")
    assert answer["usage"]["completion_tokens"] == budget
    assert answer["usage"]["completion_tokens_details"]["reasoning_tokens"] == budget


def test_a_budget_just_above_the_reasoning_cost_cuts_the_visible_answer(emu: Emulator, http: requests.Session) -> None:
    answer = _reasoning(http, emu, max_completion_tokens=REASONING_TOKENS["medium"] + 2).json()
    choice = answer["choices"][0]
    assert choice["finish_reason"] == "length" and len(choice["message"]["content"].split()) == 2


def test_every_chat_usage_carries_the_token_details(emu: Emulator, http: requests.Session) -> None:
    usage = _chat(http, emu, {"messages": USER_MESSAGE}).json()["usage"]
    assert usage["prompt_tokens_details"]["cached_tokens"] == 0
    assert usage["completion_tokens_details"]["reasoning_tokens"] == 0


# Structured output.
@pytest.mark.parametrize("api_version", ["2024-02-01", "2024-06-01", "2024-07-01-preview"])
def test_json_schema_below_2024_08_01_preview_is_refused(emu: Emulator, http: requests.Session, api_version: str) -> None:
    response = _chat(http, emu, {"messages": USER_MESSAGE, "response_format": SCHEMA_FORMAT}, api_version=api_version)
    assert response.status_code == 400
    assert response.json() == {
        "error": {
            "code": "BadRequest",
            "message": "response_format value as json_schema is enabled only for api versions 2024-08-01-preview and later",
        }
    }
    # JSON mode is older than structured output (it wants "json" in the messages).
    json_message = [{"role": "user", "content": "Name a prime number as JSON."}]
    older_format = _chat(
        http, emu, {"messages": json_message, "response_format": {"type": "json_object"}}, api_version=api_version
    )
    assert older_format.status_code == 200


@pytest.mark.parametrize("api_version", ["2024-08-01-preview", "2024-10-21", "2025-01-01-preview"])
def test_json_schema_from_2024_08_01_preview_on_is_served(emu: Emulator, http: requests.Session, api_version: str) -> None:
    response = _chat(http, emu, {"messages": USER_MESSAGE, "response_format": SCHEMA_FORMAT}, api_version=api_version)
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("response_format", "param"),
    [
        ("json", "response_format"),
        ({"type": "yaml"}, "response_format.type"),
        ({"type": "json_schema"}, "response_format.json_schema"),
        ({"type": "json_schema", "json_schema": {"schema": {}}}, "response_format.json_schema.name"),
    ],
)
def test_malformed_response_formats_are_refused(emu: Emulator, http: requests.Session, response_format: Any, param: str) -> None:
    response = _chat(http, emu, {"messages": USER_MESSAGE, "response_format": response_format})
    assert (response.status_code, response.json()["error"]["param"]) == (400, param)


# Rate-limit headers and 429s.
def test_every_data_plane_answer_carries_remaining_requests_and_tokens(emu: Emulator, http: requests.Session) -> None:
    key = {"api-key": emu.api_key}
    answers = [
        _chat(http, emu, {"messages": USER_MESSAGE}),
        http.post(
            f"{emu.url}/openai/deployments/embed-small/embeddings?api-version={API_VERSION}", json={"input": "x"}, headers=key
        ),
        http.get(files_url(emu), headers=key),
        http.get(batches_url(emu), headers=key),
        http.get(batches_url(emu, "/batch_nope"), headers=key),
        http.post(chat_url(emu, "missing"), json={"messages": USER_MESSAGE}, headers=key),
        http.post(chat_url(emu), json={"messages": USER_MESSAGE}, headers={"api-key": "wrong"}),
        _chat(http, emu, {"messages": USER_MESSAGE}, api_version="2099-01-01"),
    ]
    for answer in answers:
        assert int(answer.headers["x-ratelimit-remaining-requests"]) >= 0, answer.url
        assert int(answer.headers["x-ratelimit-remaining-tokens"]) >= 0, answer.url
    chat = answers[0]
    # gpt-4o has 50 capacity units: 300 requests and 50,000 tokens a minute.
    assert chat.headers["x-ratelimit-remaining-requests"] == "299"
    assert int(chat.headers["x-ratelimit-remaining-tokens"]) == 50_000 - chat.json()["usage"]["total_tokens"]


def test_a_429_with_retry_after_ms_also_sends_retry_after(emu: Emulator, http: requests.Session) -> None:
    emu.inject(faults.throttled(retry_after_ms=2500, shape="retry-after-ms"), kind="chat")
    response = _chat(http, emu, {"messages": USER_MESSAGE}, api_version="2025-01-01-preview")
    assert response.status_code == 429
    assert (response.headers["retry-after-ms"], response.headers["retry-after"]) == ("2500", "3")
    assert "x-ratelimit-reset-tokens" not in response.headers
    assert response.headers["x-ratelimit-remaining-tokens"] == "0"
    assert response.json() == {
        "error": {
            "code": "429",
            "message": "Requests to the ChatCompletions_Create Operation under Azure OpenAI API version 2025-01-01-preview "
            "have exceeded token rate limit of your current OpenAI S0 pricing tier. Please retry after 3 seconds. "
            "Please go here: https://aka.ms/oai/quotaincrease if you would like to further increase the default rate limit.",
        }
    }


def test_a_429_with_retry_after_only(emu: Emulator, http: requests.Session) -> None:
    emu.inject(faults.throttled(7, shape="retry-after", limit="call"), kind="embeddings")
    response = http.post(
        f"{emu.url}/openai/deployments/embed-small/embeddings?api-version=2024-06-01",
        json={"input": "x"},
        headers={"api-key": emu.api_key},
    )
    assert response.status_code == 429
    assert response.headers["retry-after"] == "7" and "retry-after-ms" not in response.headers
    assert response.headers["x-ratelimit-remaining-requests"] == "0"
    message = response.json()["error"]["message"]
    assert message.startswith("Requests to the Embeddings_Create Operation under Azure OpenAI API version 2024-06-01 ")
    assert "exceeded call rate limit" in message and "Please retry after 7 seconds." in message


def test_a_429_without_retry_headers_sends_the_reset_headers(emu: Emulator, http: requests.Session) -> None:
    emu.inject(faults.throttled(4, shape="none"), kind="batches.create")
    response = http.post(batches_url(emu, api_version="2024-10-21"), json={}, headers={"api-key": emu.api_key})
    assert response.status_code == 429
    assert not {"retry-after", "retry-after-ms", "x-ms-retry-after-ms"} & {h.lower() for h in response.headers}
    assert (response.headers["x-ratelimit-reset-requests"], response.headers["x-ratelimit-reset-tokens"]) == ("4s", "4s")
    assert "Batches_Create Operation under Azure OpenAI API version 2024-10-21" in response.json()["error"]["message"]


def test_throttle_shapes_are_checked_when_armed() -> None:
    with pytest.raises(ValueError, match="shape"):
        faults.throttled(shape="sometimes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="limit"):
        faults.throttled(limit="daily")  # type: ignore[arg-type]


# ARM.
def _arm(http: requests.Session, emu: Emulator, url: str, api_version: str | None = "2023-05-01") -> requests.Response:
    params = {} if api_version is None else {"api-version": api_version}
    token = secret_token(http, emu, ARM_SCOPE)
    return http.get(url, params=params, headers={"Authorization": f"Bearer {token}"})


def test_arm_serves_its_versions_from_2023_05_01_to_2025_10_01_preview(emu: Emulator, http: requests.Session) -> None:
    assert SUPPORTED_API_VERSIONS[0] == "2023-05-01" and SUPPORTED_API_VERSIONS[-1] == "2025-10-01-preview"
    for api_version in SUPPORTED_API_VERSIONS:
        assert _arm(http, emu, deployments_url(emu), api_version).status_code == 200, api_version
    assert "2025-09-01" in SUPPORTED_API_VERSIONS


@pytest.mark.parametrize("api_version", ["2022-12-01", "2017-04-18", "2099-01-01", "2025-09-01-preview"])
def test_arm_refuses_other_versions_in_its_own_shape(emu: Emulator, http: requests.Session, api_version: str) -> None:
    response = _arm(http, emu, deployments_url(emu), api_version)
    assert response.status_code == 400
    error = response.json()["error"]
    assert set(error) == {"code", "message"} and error["code"] == "InvalidApiVersionParameter"
    assert f"The api-version '{api_version}' is invalid." in error["message"] and "2025-09-01" in error["message"]


def test_arm_serves_one_deployment_by_name(emu: Emulator, http: requests.Session) -> None:
    listed = {item["name"]: item for item in _arm(http, emu, deployments_url(emu)).json()["value"]}
    response = _arm(http, emu, f"{deployments_url(emu)}/o3-mini", "2025-09-01")
    assert response.status_code == 200
    assert response.json() == listed["o3-mini"]
    missing = _arm(http, emu, f"{deployments_url(emu)}/nope")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "ResourceNotFound" and "deployments/nope" in missing.json()["error"]["message"]


def test_arm_deployment_by_name_checks_auth_and_version(emu: Emulator, http: requests.Session) -> None:
    assert http.get(f"{deployments_url(emu)}/gpt-4o", params={"api-version": "2023-05-01"}).status_code == 401
    assert _arm(http, emu, f"{deployments_url(emu)}/gpt-4o", "2099-01-01").status_code == 400


@pytest.mark.parametrize(
    ("suffix", "status", "code", "named"),
    [
        ("/providers/Microsoft.CognitiveServices/accounts/{account}/widgets", 404, "InvalidResourceType", "accounts/widgets"),
        ("/providers/Microsoft.CognitiveServices/gadgets/x", 404, "InvalidResourceType", "gadgets"),
        ("/providers/Microsoft.Nope/things/x", 404, "InvalidResourceNamespace", "Microsoft.Nope"),
        ("/providers/Microsoft.CognitiveServices/accounts/{account}", 404, "ResourceNotFound", "accounts"),
    ],
)
def test_an_unknown_arm_path_gets_arms_error_body(
    emu: Emulator, http: requests.Session, suffix: str, status: int, code: str, named: str
) -> None:
    group = f"{emu.url}/subscriptions/{emu.subscription_id}/resourceGroups/{emu.resource_group}"
    response = _arm(http, emu, group + suffix.format(account=emu.resource_name))
    assert response.status_code == status
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    assert body["error"]["code"] == code and named in body["error"]["message"]
    assert response.content != b'{"error":{"code":"404","message": "Resource not found"}}'
    assert response.headers["x-ms-request-id"] and response.headers["x-ms-correlation-request-id"]
    assert not DATA_PLANE_ONLY_HEADERS & {h.lower() for h in response.headers}


def test_an_unknown_arm_path_still_wants_a_token_and_an_api_version(emu: Emulator, http: requests.Session) -> None:
    url = f"{emu.url}/subscriptions/{emu.subscription_id}/resourcegroups/{emu.resource_group}/providers/Foo.Bar/x/y"
    anonymous = http.get(url, params={"api-version": "2023-05-01"})
    assert (anonymous.status_code, anonymous.json()["error"]["code"]) == (401, "AuthenticationFailed")
    unversioned = _arm(http, emu, url, None)
    assert (unversioned.status_code, unversioned.json()["error"]["code"]) == (400, "MissingApiVersionParameter")


def test_arm_answers_carry_no_data_plane_headers(emu: Emulator, http: requests.Session) -> None:
    token = secret_token(http, emu, ARM_SCOPE)
    answers = [
        _arm(http, emu, deployments_url(emu)),
        _arm(http, emu, f"{deployments_url(emu)}/gpt-4o"),
        _arm(http, emu, deployments_url(emu), "2099-01-01"),
        http.get(deployments_url(emu), params={"api-version": "2023-05-01"}),
        http.get(deployments_url(emu), params={"api-version": "2023-05-01"}, headers={"Authorization": f"Bearer {token}x"}),
    ]
    for answer in answers:
        names = {h.lower() for h in answer.headers}
        assert not DATA_PLANE_ONLY_HEADERS & names, (answer.status_code, names)
        assert {"x-ms-request-id", "x-ms-correlation-request-id"} <= names
    echoed = http.get(
        deployments_url(emu),
        params={"api-version": "2023-05-01"},
        headers={"Authorization": f"Bearer {token}", "x-ms-correlation-request-id": "corr-1"},
    )
    assert echoed.headers["x-ms-correlation-request-id"] == "corr-1"


# Files list pages.
def _files_page(http: requests.Session, emu: Emulator, **params: str) -> dict[str, Any]:
    response = http.get(files_url(emu), params=params, headers={"api-key": emu.api_key})
    assert response.status_code == 200, response.text
    page: dict[str, Any] = response.json()
    return page


def test_the_files_list_pages_with_limit_after_and_has_more(emu: Emulator, http: requests.Session) -> None:
    # Same clock tick: the order must still be stable for a cursor.
    ids = [emu.add_file(batch_jsonl(1), filename=f"f{index}.jsonl") for index in range(5)]
    seen: list[str] = []
    after: str | None = None
    pages = 0
    while True:
        page = _files_page(http, emu, limit="2", **({"after": after} if after else {}))
        pages += 1
        assert page["object"] == "list" and len(page["data"]) <= 2
        assert (page["first_id"], page["last_id"]) == (page["data"][0]["id"], page["data"][-1]["id"])
        seen += [item["id"] for item in page["data"]]
        if not page["has_more"]:
            break
        after = page["last_id"]
    assert pages == 3 and seen == ids[::-1]
    ascending = _files_page(http, emu, order="asc", limit="10")
    assert [item["id"] for item in ascending["data"]] == ids and ascending["has_more"] is False
    assert _files_page(http, emu, after=ids[0])["data"] == []


@pytest.mark.parametrize(
    ("param", "value"), [("limit", "0"), ("limit", "10001"), ("limit", "x"), ("order", "up"), ("after", "file-nope")]
)
def test_bad_files_list_parameters_are_refused(emu: Emulator, http: requests.Session, param: str, value: str) -> None:
    response = http.get(files_url(emu), params={param: value}, headers={"api-key": emu.api_key})
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error["target"]) == ("invalidPayload", param)
