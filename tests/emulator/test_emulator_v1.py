"""The v1 API, Foundry models, structured output and embedding dimensions (second-release §B-§D, §F, §I).

The v1 paths take no api-version and name the deployment in the body's `model`; files and
batches are one store seen through both surfaces. A Foundry model is served on v1 only.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests

from polysync_azure_openai.emulator import Deployment, Emulator

from .emulator_helpers import (
    API_VERSION,
    ARM_API_VERSION,
    ARM_SCOPE,
    batch_jsonl,
    batches_url,
    chat_url,
    deployments_url,
    embeddings_url,
    files_url,
    secret_token,
    v1_url,
)

USER_MESSAGE = [{"role": "user", "content": "Name a prime number."}]
JSON_MESSAGE = [{"role": "user", "content": "Name a prime number, as JSON."}]
CITY_SCHEMA = {
    "type": "object",
    "properties": {
        "city": {"type": "string"},
        "population": {"type": "integer"},
        "area_km2": {"type": "number"},
        "capital": {"type": "boolean"},
        "tags": {"type": "array", "items": {"type": "string", "enum": ["coastal", "inland"]}},
        "mayor": {
            "type": "object",
            "properties": {"name": {"type": ["string", "null"]}},
            "required": ["name"],
            "additionalProperties": False,
        },
    },
    "required": ["city", "population", "area_km2", "capital", "tags", "mayor"],
    "additionalProperties": False,
}


def _schema_format(schema: dict[str, Any], strict: bool = True) -> dict[str, Any]:
    return {"type": "json_schema", "json_schema": {"name": "result", "schema": schema, "strict": strict}}


def _v1(http: requests.Session, emu: Emulator, path: str, body: Any, **headers: str) -> requests.Response:
    return http.post(v1_url(emu, path), json=body, headers=headers or {"api-key": emu.api_key})


def _content(response: requests.Response) -> str:
    assert response.status_code == 200, response.text
    content: str = response.json()["choices"][0]["message"]["content"]
    return content


# The v1 routes.
def test_v1_chat_names_the_deployment_in_the_body(emu: Emulator, http: requests.Session) -> None:
    response = _v1(http, emu, "chat/completions", {"model": "gpt-4o", "messages": USER_MESSAGE})
    assert response.status_code == 200
    assert response.json()["model"] == "gpt-4o-2024-08-06"
    request = emu.requests[-1]
    assert (request.kind, request.path, request.query) == ("chat", "/openai/v1/chat/completions", {})


def test_v1_embeddings_name_the_deployment_in_the_body(emu: Emulator, http: requests.Session) -> None:
    response = _v1(http, emu, "embeddings", {"model": "embed-small", "input": ["a", "b"]})
    assert response.status_code == 200
    assert [item["index"] for item in response.json()["data"]] == [0, 1]
    assert emu.requests[-1].kind == "embeddings"


def test_v1_without_model_is_a_missing_parameter(emu: Emulator, http: requests.Session) -> None:
    response = _v1(http, emu, "chat/completions", {"messages": USER_MESSAGE})
    assert response.status_code == 400
    assert (response.json()["error"]["param"], response.json()["error"]["code"]) == ("model", "missing_required_parameter")


def test_v1_with_an_unknown_model_is_deployment_not_found(emu: Emulator, http: requests.Session) -> None:
    response = _v1(http, emu, "chat/completions", {"model": "nope", "messages": USER_MESSAGE})
    assert response.status_code == 404 and response.json()["error"]["code"] == "DeploymentNotFound"


@pytest.mark.parametrize("api_version", [API_VERSION, "v1", "preview"])
def test_v1_refuses_an_api_version(emu: Emulator, http: requests.Session, api_version: str) -> None:
    response = http.post(
        v1_url(emu, "chat/completions") + f"?api-version={api_version}",
        json={"model": "gpt-4o", "messages": USER_MESSAGE},
        headers={"api-key": emu.api_key},
    )
    assert response.status_code == 400 and response.json()["error"]["code"] == "BadRequest"


def test_v1_takes_the_api_key_as_a_bearer_token_and_the_dated_api_does_not(emu: Emulator, http: requests.Session) -> None:
    bearer = {"Authorization": f"Bearer {emu.api_key}"}
    assert _v1(http, emu, "chat/completions", {"model": "gpt-4o", "messages": USER_MESSAGE}, **bearer).status_code == 200
    dated = http.post(chat_url(emu), json={"messages": USER_MESSAGE}, headers=bearer)
    assert dated.status_code == 401 and "Access token is missing" in dated.json()["message"]
    unknown = _v1(http, emu, "chat/completions", {"model": "gpt-4o", "messages": USER_MESSAGE}, Authorization="Bearer nope")
    assert unknown.status_code == 401


def test_v1_serves_reasoning_models_and_json_schema(emu: Emulator, http: requests.Session) -> None:
    body = {
        "model": "o3-mini",
        "messages": USER_MESSAGE,
        "reasoning_effort": "low",
        "response_format": _schema_format(CITY_SCHEMA),
    }
    response = _v1(http, emu, "chat/completions", body)
    assert response.status_code == 200, response.text
    assert response.json()["usage"]["completion_tokens_details"]["reasoning_tokens"] == 32


# Foundry models.
def test_arm_lists_each_deployments_model_format(emu: Emulator, http: requests.Session) -> None:
    token = secret_token(http, emu, ARM_SCOPE)
    listing = http.get(
        deployments_url(emu), params={"api-version": ARM_API_VERSION}, headers={"Authorization": f"Bearer {token}"}
    ).json()
    formats = {item["name"]: item["properties"]["model"]["format"] for item in listing["value"]}
    assert formats["DeepSeek-R1"] == "DeepSeek" and formats["gpt-4o"] == "OpenAI"


def test_a_foundry_model_answers_on_v1_only(emu: Emulator, http: requests.Session) -> None:
    answer = _v1(http, emu, "chat/completions", {"model": "DeepSeek-R1", "messages": USER_MESSAGE, "max_tokens": 50})
    assert answer.status_code == 200 and answer.json()["model"] == "DeepSeek-R1"
    dated = http.post(chat_url(emu, "DeepSeek-R1"), json={"messages": USER_MESSAGE}, headers={"api-key": emu.api_key})
    assert dated.status_code == 404 and dated.json()["error"]["code"] == "DeploymentNotFound"


def test_a_foundry_model_refuses_reasoning_effort(emu: Emulator, http: requests.Session) -> None:
    response = _v1(http, emu, "chat/completions", {"model": "DeepSeek-R1", "messages": USER_MESSAGE, "reasoning_effort": "low"})
    assert response.status_code == 400 and response.json()["error"]["param"] == "reasoning_effort"


# Structured output.
def test_json_object_answers_a_json_object(emu: Emulator, http: requests.Session) -> None:
    body = {"model": "gpt-4o", "messages": JSON_MESSAGE, "response_format": {"type": "json_object"}}
    assert isinstance(json.loads(_content(_v1(http, emu, "chat/completions", body))), dict)


def test_json_object_needs_the_word_json_in_the_messages(emu: Emulator, http: requests.Session) -> None:
    body = {"model": "gpt-4o", "messages": USER_MESSAGE, "response_format": {"type": "json_object"}}
    response = _v1(http, emu, "chat/completions", body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["param"] == "messages" and "must contain the word 'json'" in error["message"]


def test_json_schema_answers_an_object_that_fits_the_schema(emu: Emulator, http: requests.Session) -> None:
    body = {"model": "gpt-4o", "messages": USER_MESSAGE, "response_format": _schema_format(CITY_SCHEMA)}
    answer = json.loads(_content(_v1(http, emu, "chat/completions", body)))
    assert set(answer) == set(CITY_SCHEMA["required"])
    assert isinstance(answer["city"], str) and answer["city"]
    assert isinstance(answer["population"], int) and not isinstance(answer["population"], bool)
    assert isinstance(answer["area_km2"], float) and answer["capital"] is True
    assert answer["tags"] == ["coastal"] and answer["mayor"] == {"name": answer["mayor"]["name"]}


def test_json_schema_answers_follow_refs_and_any_of(emu: Emulator, http: requests.Session) -> None:
    schema = {
        "type": "object",
        "properties": {"item": {"$ref": "#/$defs/item"}, "either": {"anyOf": [{"type": "integer"}, {"type": "string"}]}},
        "required": ["item", "either"],
        "additionalProperties": False,
        "$defs": {
            "item": {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"], "additionalProperties": False}
        },
    }
    body = {"model": "gpt-4o", "messages": USER_MESSAGE, "response_format": _schema_format(schema)}
    assert json.loads(_content(_v1(http, emu, "chat/completions", body))) == {"item": {"n": 7}, "either": 7}


@pytest.mark.parametrize(
    ("schema", "fragment"),
    [
        ({"type": "array", "items": {"type": "string"}}, "schema must be a JSON Schema of 'type: \"object\"'"),
        ({"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}, "'additionalProperties' is required"),
        (
            {"type": "object", "properties": {"a": {"type": "string"}}, "required": [], "additionalProperties": False},
            "Missing 'a'",
        ),
        (
            {
                "type": "object",
                "properties": {"inner": {"type": "object", "properties": {}, "required": []}},
                "required": ["inner"],
                "additionalProperties": False,
            },
            "In context=('properties', 'inner'), 'additionalProperties'",
        ),
    ],
    ids=["array-root", "open-object", "optional-property", "open-inner-object"],
)
def test_a_strict_schema_outside_the_strict_subset_is_refused(
    emu: Emulator, http: requests.Session, schema: dict[str, Any], fragment: str
) -> None:
    body = {"model": "gpt-4o", "messages": USER_MESSAGE, "response_format": _schema_format(schema)}
    response = _v1(http, emu, "chat/completions", body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and fragment in error["message"]
    non_strict = {**body, "response_format": _schema_format(schema, strict=False)}
    assert _v1(http, emu, "chat/completions", non_strict).status_code == 200


def test_a_small_budget_cuts_a_json_answer_into_text_that_does_not_parse(emu: Emulator, http: requests.Session) -> None:
    body = {"model": "gpt-4o", "messages": USER_MESSAGE, "response_format": _schema_format(CITY_SCHEMA), "max_tokens": 3}
    response = _v1(http, emu, "chat/completions", body)
    assert response.json()["choices"][0]["finish_reason"] == "length"
    with pytest.raises(ValueError):
        json.loads(_content(response))


# Embedding dimensions.
@pytest.mark.parametrize("model", ["text-embedding-3-small", "text-embedding-3-large"])
def test_dimensions_shorten_the_vectors_of_text_embedding_3(emu: Emulator, http: requests.Session, model: str) -> None:
    emu.set_deployments([Deployment("embed", model)])
    response = _v1(http, emu, "embeddings", {"model": "embed", "input": ["a", "b"], "dimensions": 256})
    assert [len(item["embedding"]) for item in response.json()["data"]] == [256, 256]


@pytest.mark.parametrize("model", ["text-embedding-ada-002", "Cohere-embed-v3-english"])
def test_dimensions_are_refused_by_models_that_do_not_take_them(emu: Emulator, http: requests.Session, model: str) -> None:
    emu.set_deployments([Deployment("embed", model, capabilities={"embeddings": "true"})])
    response = _v1(http, emu, "embeddings", {"model": "embed", "input": "a", "dimensions": 256})
    assert response.status_code == 400
    assert response.json()["error"] == {
        "message": "This model does not support specifying dimensions.",
        "type": "invalid_request_error",
        "param": "dimensions",
        "code": None,
    }
    assert _v1(http, emu, "embeddings", {"model": "embed", "input": "a"}).status_code == 200


# Files and batches, one store seen through both surfaces.
def test_v1_files_page_with_after_and_has_more(emu: Emulator, http: requests.Session) -> None:
    ids = [emu.add_file(batch_jsonl(1), filename=f"f{index}.jsonl") for index in range(5)]
    first = http.get(v1_url(emu, "files"), params={"limit": "2"}, headers={"api-key": emu.api_key}).json()
    assert (len(first["data"]), first["has_more"]) == (2, True)
    rest = http.get(
        v1_url(emu, "files"), params={"limit": "10", "after": first["last_id"]}, headers={"api-key": emu.api_key}
    ).json()
    assert rest["has_more"] is False
    assert sorted(item["id"] for item in first["data"] + rest["data"]) == sorted(ids)


def test_a_v1_upload_points_its_location_at_the_v1_path(emu: Emulator, http: requests.Session) -> None:
    response = http.post(
        v1_url(emu, "files"),
        data={"purpose": "batch"},
        files={"file": ("in.jsonl", batch_jsonl(1, url="/v1/chat/completions"))},
        headers={"api-key": emu.api_key},
    )
    assert response.status_code == 201
    assert response.headers["Location"] == f"{emu.url}/openai/v1/files/{response.json()['id']}"
    dated = http.get(files_url(emu, f"/{response.json()['id']}"), headers={"api-key": emu.api_key})
    assert dated.status_code == 200


def test_a_v1_batch_runs_v1_lines_and_is_readable_on_both_surfaces(emu: Emulator, http: requests.Session) -> None:
    file_id = emu.add_file(batch_jsonl(3, url="/v1/chat/completions"))
    body = {"input_file_id": file_id, "endpoint": "/v1/chat/completions", "completion_window": "24h"}
    created = http.post(v1_url(emu, "batches"), json=body, headers={"api-key": emu.api_key})
    assert created.status_code == 200 and created.json()["endpoint"] == "/v1/chat/completions"
    emu.advance(60)
    batch_id = created.json()["id"]
    on_v1 = http.get(v1_url(emu, f"batches/{batch_id}"), headers={"api-key": emu.api_key}).json()
    on_dated = http.get(batches_url(emu, f"/{batch_id}"), headers={"api-key": emu.api_key}).json()
    assert on_v1["status"] == on_dated["status"] == "completed"
    assert on_v1["request_counts"] == {"total": 3, "completed": 3, "failed": 0}


@pytest.mark.parametrize(
    ("surface", "endpoint"),
    [("v1", "/chat/completions"), ("v1", "/embeddings"), ("dated", "/v1/chat/completions"), ("dated", "/v1/embeddings")],
)
def test_each_surface_takes_its_own_batch_endpoints(emu: Emulator, http: requests.Session, surface: str, endpoint: str) -> None:
    body = {"input_file_id": emu.add_file(batch_jsonl(1)), "endpoint": endpoint, "completion_window": "24h"}
    url = v1_url(emu, "batches") if surface == "v1" else batches_url(emu)
    response = http.post(url, json=body, headers={"api-key": emu.api_key})
    assert response.status_code == 400
    assert (response.json()["error"]["code"], response.json()["error"]["target"]) == ("invalidPayload", "endpoint")


def test_a_v1_batch_whose_lines_use_the_dated_url_fails_validation(emu: Emulator, http: requests.Session) -> None:
    body = {"input_file_id": emu.add_file(batch_jsonl(2)), "endpoint": "/v1/chat/completions", "completion_window": "24h"}
    batch_id = http.post(v1_url(emu, "batches"), json=body, headers={"api-key": emu.api_key}).json()["id"]
    emu.advance(60)
    batch = emu.batch(batch_id)
    assert batch["status"] == "failed" and batch["errors"]["data"][0]["code"] == "url_mismatch"


def test_the_dated_embeddings_path_still_takes_no_model(emu: Emulator, http: requests.Session) -> None:
    response = http.post(embeddings_url(emu), json={"input": "a"}, headers={"api-key": emu.api_key})
    assert response.status_code == 200
