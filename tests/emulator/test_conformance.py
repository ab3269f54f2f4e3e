"""Conformance: the emulator's answers as clients nobody here wrote parse them.

The emulator and the plugin were written from the same reading of Azure, so agreeing with each
other proves little. Here the official `openai` package's typed models validate every answer
shape the plugin reads, strictly (no type coercion, no missing required field, no key they do
not know beyond Azure's own additions), the real `openai.AzureOpenAI` client talks to the
emulator over TLS, and `azure-mgmt-cognitiveservices` reads the ARM listing, on its default
api-version. Both packages are test dependencies only (the `conformance` extra).
"""

from __future__ import annotations

import itertools
import json
import ssl
from collections.abc import Iterator
from typing import Any

import openai
import pydantic
import pytest
import requests
from azure.core.credentials import AccessToken
from azure.mgmt.cognitiveservices import CognitiveServicesManagementClient
from azure.mgmt.cognitiveservices.models import Deployment as ArmDeployment
from azure.mgmt.cognitiveservices.models import DeploymentListResult
from openai.types import Batch, BatchError, CreateEmbeddingResponse, FileDeleted, FileObject
from openai.types.chat import ChatCompletion
from openai.types.shared import ErrorObject

from polysync_azure_openai.emulator import Emulator

from .emulator_helpers import (
    API_VERSION,
    ARM_API_VERSION,
    ARM_SCOPE,
    REASONING_API_VERSION,
    batch_jsonl,
    batch_line,
    batches_url,
    chat_url,
    deployments_url,
    embeddings_url,
    files_url,
    secret_token,
    v1_url,
)

USER_MESSAGE = [{"role": "user", "content": "Name a prime number."}]
# Keys Azure adds to OpenAI's shapes (wire-samples §3): content filter results.
AZURE_ADDITIONS = frozenset({"prompt_filter_results", "content_filter_results"})
# Azure's file states OpenAI's model does not know (wire-samples §6): an upload is `pending` first.
AZURE_ONLY_FILE_STATUSES = frozenset({"pending", "running", "deleted"})


def strict(model: type[pydantic.BaseModel], payload: Any, allowed_extras: frozenset[str] = frozenset()) -> Any:
    """`payload` validated by `model` in strict mode; every key it does not declare must be allowed."""
    parsed = model.model_validate(payload, strict=True)
    unknown = sorted(_extras(parsed) - allowed_extras)
    assert not unknown, f"{model.__name__} does not know {unknown}"
    return parsed


def openai_batch(payload: dict[str, Any]) -> Any:
    """A batch object validated as OpenAI's `Batch`, strictly.

    One Azure divergence is allowed: a batch that failed validation counts nothing yet and sends
    null `completed` and `failed` counts (wire-samples §7), which OpenAI's model types as integers.
    """
    counts = payload.get("request_counts")
    if isinstance(counts, dict) and None in counts.values():
        assert payload["status"] == "failed" and isinstance(counts["total"], int)
        payload = {**payload, "request_counts": {key: value or 0 for key, value in counts.items()}}
    return strict(Batch, payload)


def _extras(value: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(value, pydantic.BaseModel):
        found |= set(value.model_extra or {})
        for name in type(value).model_fields:
            found |= _extras(getattr(value, name))
    elif isinstance(value, (list, tuple)):
        for item in value:
            found |= _extras(item)
    elif isinstance(value, dict):
        for item in value.values():
            found |= _extras(item)
    return found


def _post(http: requests.Session, url: str, body: Any, emu: Emulator) -> dict[str, Any]:
    response = http.post(url, json=body, headers={"api-key": emu.api_key})
    assert response.status_code == 200, response.text
    payload: dict[str, Any] = response.json()
    return payload


def _get(http: requests.Session, url: str, emu: Emulator, **params: str) -> requests.Response:
    return http.get(url, params=params, headers={"api-key": emu.api_key})


# The typed models, strictly.
@pytest.mark.parametrize(
    "body",
    [
        {"messages": USER_MESSAGE},
        {"messages": USER_MESSAGE, "max_tokens": 2},
        {"messages": [{"role": "user", "content": "EMULATOR_FILTER_OUTPUT please"}]},
    ],
    ids=["stop", "length", "content-filter"],
)
def test_chat_completions_are_openai_chat_completions(emu: Emulator, http: requests.Session, body: dict[str, Any]) -> None:
    parsed = strict(ChatCompletion, _post(http, chat_url(emu), body, emu), AZURE_ADDITIONS)
    assert parsed.usage is not None and parsed.usage.completion_tokens_details is not None
    assert parsed.usage.prompt_tokens_details is not None and parsed.usage.prompt_tokens_details.cached_tokens == 0


@pytest.mark.parametrize("budget", [None, 5], ids=["answered", "budget-spent-on-reasoning"])
def test_reasoning_answers_are_openai_chat_completions(emu: Emulator, http: requests.Session, budget: int | None) -> None:
    body: dict[str, Any] = {"messages": USER_MESSAGE, "reasoning_effort": "low"}
    if budget is not None:
        body["max_completion_tokens"] = budget
    payload = _post(http, chat_url(emu, "o3-mini", REASONING_API_VERSION), body, emu)
    parsed = strict(ChatCompletion, payload, AZURE_ADDITIONS)
    assert parsed.usage is not None and parsed.usage.completion_tokens_details is not None
    reasoning = parsed.usage.completion_tokens_details.reasoning_tokens
    assert reasoning is not None and 0 < reasoning <= parsed.usage.completion_tokens
    if budget is not None:
        assert (parsed.choices[0].message.content, parsed.choices[0].finish_reason) == ("", "length")


@pytest.mark.parametrize("encoding", ["float", "base64"])
def test_embeddings_are_openai_embedding_responses(emu: Emulator, http: requests.Session, encoding: str) -> None:
    payload = _post(http, embeddings_url(emu), {"input": ["one", "two"], "encoding_format": encoding}, emu)
    if encoding == "base64":
        # OpenAI's model types the vector as floats; the SDK decodes base64 before validating.
        for item in payload["data"]:
            assert isinstance(item["embedding"], str)
            item["embedding"] = [0.0]
    parsed = strict(CreateEmbeddingResponse, payload)
    assert [item.index for item in parsed.data] == [0, 1]


def test_file_objects_and_the_file_list_page_are_openai_files(emu: Emulator, http: requests.Session) -> None:
    uploaded = http.post(
        files_url(emu), data={"purpose": "batch"}, files={"file": ("in.jsonl", batch_jsonl(2))}, headers={"api-key": emu.api_key}
    ).json()
    # Azure answers an upload `pending`, a state OpenAI's model lacks; everything else conforms.
    assert uploaded["status"] in AZURE_ONLY_FILE_STATUSES
    strict(FileObject, {**uploaded, "status": "uploaded"})
    processed = _get(http, files_url(emu, f"/{uploaded['id']}"), emu).json()
    assert strict(FileObject, processed).status == "processed"
    page = _get(http, files_url(emu), emu, limit="1").json()
    assert set(page) == {"object", "data", "first_id", "last_id", "has_more"}
    for item in page["data"]:
        strict(FileObject, item)
    deleted = http.delete(files_url(emu, f"/{uploaded['id']}"), headers={"api-key": emu.api_key}).json()
    strict(FileDeleted, deleted)


def test_batch_objects_are_openai_batches(emu: Emulator, http: requests.Session) -> None:
    good = emu.add_file(batch_jsonl(3))
    bad = emu.add_file(batch_jsonl(2) + json.dumps(batch_line(0)) + "\n")
    created = [
        _post(
            http, batches_url(emu), {"input_file_id": file_id, "endpoint": "/chat/completions", "completion_window": "24h"}, emu
        )
        for file_id in (good, bad)
    ]
    openai_batch(created[0])
    emu.advance(60)
    completed, failed = (_get(http, batches_url(emu, f"/{batch['id']}"), emu).json() for batch in created)
    assert openai_batch(completed).status == "completed"
    assert failed["request_counts"] == {"total": 3, "completed": None, "failed": None}
    parsed_failed = openai_batch(failed)
    assert parsed_failed.status == "failed"
    assert parsed_failed.errors is not None and parsed_failed.errors.data
    assert parsed_failed.errors.data[0].code == "duplicate_custom_id"
    listing = _get(http, batches_url(emu), emu).json()
    for item in listing["data"]:
        openai_batch(item)
    output = emu.file_content(completed["output_file_id"]).decode().splitlines()
    for line in output:
        strict(ChatCompletion, json.loads(line)["response"]["body"], AZURE_ADDITIONS)


def test_output_and_error_lines_hold_openai_shapes(emu: Emulator, http: requests.Session) -> None:
    """Every kind of result line a batch writes: answers, a filtered answer, refused lines, never-run lines."""
    emu.batch_timing.requests_per_second = 1
    contents = ["Question?", "EMULATOR_FILTER_OUTPUT please", "EMULATOR_BLOCK this", "Question?", "Question?"]
    lines = [batch_line(index, content=text) for index, text in enumerate(contents)]
    lines[3]["body"] = {**lines[3]["body"], "max_tokens": "three"}  # type: ignore[dict-item]
    file_id = emu.add_file("".join(json.dumps(line) + "\n" for line in lines))
    created = _post(
        http, batches_url(emu), {"input_file_id": file_id, "endpoint": "/chat/completions", "completion_window": "24h"}, emu
    )
    emu.advance(5.5)  # validated after 1 s, then four lines ran; the fifth never will
    http.post(batches_url(emu, f"/{created['id']}/cancel"), headers={"api-key": emu.api_key})
    emu.advance(60)
    batch = openai_batch(_get(http, batches_url(emu, f"/{created['id']}"), emu).json())
    assert batch.status == "cancelled" and batch.output_file_id and batch.error_file_id
    outputs = [json.loads(x) for x in emu.file_content(batch.output_file_id).decode().splitlines()]
    errors = [json.loads(x) for x in emu.file_content(batch.error_file_id).decode().splitlines()]
    for line in outputs:
        assert set(line) == {"custom_id", "response", "error"} and line["error"] is None
        strict(ChatCompletion, line["response"]["body"], AZURE_ADDITIONS)
    assert [o["response"]["body"]["choices"][0]["finish_reason"] for o in outputs] == ["stop", "content_filter"]
    refused = [e for e in errors if e["response"] is not None]
    never_ran = [e for e in errors if e["response"] is None]
    for line in refused:
        assert line["response"]["status_code"] == 400 and line["error"] is None
        # Azure's content-filter body adds `status` and `innererror` to OpenAI's error object and
        # sends `type` null (wire-samples §5), which OpenAI's model types as a string.
        error = line["response"]["body"]["error"]
        strict(ErrorObject, {**error, "type": error["type"] or "azure"}, frozenset({"status", "innererror"}))
    assert [e["response"]["body"]["error"]["code"] for e in refused] == ["content_filter", "invalid_type"]
    (cancelled,) = never_ran
    assert strict(BatchError, cancelled["error"]).code == "batch_cancelled"


def test_a_batch_refused_for_quota_is_an_openai_batch(emu: Emulator, http: requests.Session) -> None:
    emu.set_batch_token_quota("gpt-4o-batch", 1)
    created = _post(
        http,
        batches_url(emu),
        {"input_file_id": emu.add_file(batch_jsonl(2)), "endpoint": "/chat/completions", "completion_window": "24h"},
        emu,
    )
    emu.advance(60)
    refused = openai_batch(_get(http, batches_url(emu, f"/{created['id']}"), emu).json())
    assert refused.errors is not None and refused.errors.data and refused.errors.data[0].code == "token_limit_exceeded"


def test_invalid_request_errors_are_openai_error_objects(emu: Emulator, http: requests.Session) -> None:
    response = http.post(
        chat_url(emu, "o3-mini", REASONING_API_VERSION),
        json={"messages": USER_MESSAGE, "temperature": 0.2},
        headers={"api-key": emu.api_key},
    )
    assert response.status_code == 400
    error = strict(ErrorObject, response.json()["error"])
    assert (error.code, error.param, error.type) == ("unsupported_parameter", "temperature", "invalid_request_error")


# The real client, over TLS on loopback.
@pytest.fixture
def client(emu: Emulator) -> Iterator[openai.AzureOpenAI]:
    verify = ssl.create_default_context(cafile=emu.ca_path)
    http_client = openai.DefaultHttpxClient(verify=verify, trust_env=False)
    azure = openai.AzureOpenAI(
        azure_endpoint=emu.url,
        api_key=emu.api_key,
        api_version=REASONING_API_VERSION,
        http_client=http_client,
        max_retries=0,
        # The SDK validates every answer against its models instead of constructing leniently.
        _strict_response_validation=True,
    )
    yield azure
    azure.close()


def test_the_openai_client_chats_with_both_kinds_of_model(client: openai.AzureOpenAI) -> None:
    chat = client.chat.completions.create(model="gpt-4o", messages=USER_MESSAGE, temperature=0, max_tokens=50)  # type: ignore[arg-type]
    assert chat.choices[0].finish_reason == "stop" and chat.choices[0].message.content
    reasoning = client.chat.completions.create(
        model="o3-mini",
        messages=USER_MESSAGE,  # type: ignore[arg-type]
        max_completion_tokens=2000,
        reasoning_effort="high",
    )
    assert reasoning.usage is not None and reasoning.usage.completion_tokens_details is not None
    assert (reasoning.usage.completion_tokens_details.reasoning_tokens or 0) > 0


def test_the_openai_client_embeds(client: openai.AzureOpenAI, emu: Emulator) -> None:
    floats = client.embeddings.create(
        model="embed-small", input=["first text", "second text"], dimensions=8, encoding_format="float"
    )
    assert [len(item.embedding) for item in floats.data] == [8, 8]
    # Left to itself the SDK asks for base64 and decodes it after parsing (so not in strict mode).
    lenient = openai.AzureOpenAI(
        azure_endpoint=emu.url, api_key=emu.api_key, api_version=API_VERSION, http_client=client._client, max_retries=0
    )
    decoded = lenient.embeddings.create(model="embed-small", input="first text", dimensions=8)
    assert decoded.data[0].embedding == pytest.approx(floats.data[0].embedding, rel=1e-6)


def test_the_openai_client_pages_the_files_list_to_the_end(client: openai.AzureOpenAI, emu: Emulator) -> None:
    ids = {emu.add_file(batch_jsonl(1), filename=f"f{index}.jsonl") for index in range(7)}
    # Bounded: against a list without has_more the pager asks for the next page forever.
    listed = [item.id for item in itertools.islice(client.files.list(limit=3), 50)]
    assert sorted(listed) == sorted(ids) and len(listed) == 7
    pages = [r for r in emu.requests if r.kind == "files.list"]
    assert len(pages) == 3 and pages[-1].query["after"] == listed[5]


def test_the_openai_client_retrieves_batches(client: openai.AzureOpenAI, emu: Emulator, http: requests.Session) -> None:
    # Created by hand: the SDK's create sends OpenAI's `/v1/chat/completions`, which dated Azure refuses.
    body = {"input_file_id": emu.add_file(batch_jsonl(2)), "endpoint": "/chat/completions", "completion_window": "24h"}
    batch_id = _post(http, batches_url(emu), body, emu)["id"]
    assert client.batches.retrieve(batch_id).status == "validating"
    emu.advance(60)
    done = client.batches.retrieve(batch_id)
    assert done.status == "completed" and done.request_counts is not None and done.request_counts.completed == 2
    assert [batch.id for batch in client.batches.list()] == [batch_id]


def test_the_openai_client_raises_azures_refusals_as_typed_errors(client: openai.AzureOpenAI, emu: Emulator) -> None:
    with pytest.raises(openai.BadRequestError) as unsupported:
        client.chat.completions.create(model="o3-mini", messages=USER_MESSAGE, temperature=0.5)  # type: ignore[arg-type]
    assert (unsupported.value.code, unsupported.value.param) == ("unsupported_parameter", "temperature")
    old = openai.AzureOpenAI(
        azure_endpoint=emu.url, api_key=emu.api_key, api_version=API_VERSION, http_client=client._client, max_retries=0
    )
    with pytest.raises(openai.BadRequestError) as too_old:
        old.chat.completions.create(model="o3-mini", messages=USER_MESSAGE)  # type: ignore[arg-type]
    assert too_old.value.code == "BadRequest" and "2024-12-01-preview and later" in too_old.value.message
    unknown = openai.AzureOpenAI(
        azure_endpoint=emu.url, api_key=emu.api_key, api_version="2099-01-01", http_client=client._client, max_retries=0
    )
    with pytest.raises(openai.BadRequestError) as unsupported_version:
        unknown.chat.completions.create(model="gpt-4o", messages=USER_MESSAGE)  # type: ignore[arg-type]
    assert unsupported_version.value.code == "BadRequest"
    with pytest.raises(openai.NotFoundError) as missing:
        client.chat.completions.create(model="nope", messages=USER_MESSAGE)  # type: ignore[arg-type]
    assert missing.value.code == "DeploymentNotFound"


# The v1 API through the plain `openai.OpenAI` client, as Azure's v1 docs use it (second-release §B).
@pytest.fixture
def v1_client(emu: Emulator) -> Iterator[openai.OpenAI]:
    verify = ssl.create_default_context(cafile=emu.ca_path)
    client = openai.OpenAI(
        base_url=emu.url + "/openai/v1/",
        api_key=emu.api_key,  # sent as a bearer token, which the v1 API takes
        http_client=openai.DefaultHttpxClient(verify=verify, trust_env=False),
        max_retries=0,
        _strict_response_validation=True,
    )
    yield client
    client.close()


class City(pydantic.BaseModel):
    name: str
    population: int
    coastal: bool
    districts: list[str]


def test_the_v1_client_chats_with_openai_reasoning_and_foundry_models(v1_client: openai.OpenAI, emu: Emulator) -> None:
    chat = v1_client.chat.completions.create(model="gpt-4o", messages=USER_MESSAGE, max_tokens=50)  # type: ignore[arg-type]
    assert chat.choices[0].finish_reason == "stop" and chat.model == "gpt-4o-2024-08-06"
    reasoning = v1_client.chat.completions.create(
        model="o3-mini",
        messages=USER_MESSAGE,  # type: ignore[arg-type]
        reasoning_effort="low",
        max_completion_tokens=500,
    )
    assert reasoning.usage is not None and reasoning.usage.completion_tokens_details is not None
    assert reasoning.usage.completion_tokens_details.reasoning_tokens == 32
    foundry = v1_client.chat.completions.create(model="DeepSeek-R1", messages=USER_MESSAGE)  # type: ignore[arg-type]
    assert foundry.model == "DeepSeek-R1" and foundry.choices[0].message.content
    assert {r.path for r in emu.requests} == {"/openai/v1/chat/completions"}
    assert all(r.query == {} for r in emu.requests)


def test_the_v1_client_parses_structured_output_into_its_model(v1_client: openai.OpenAI) -> None:
    # The SDK turns the model into a strict json_schema and parses the answer back into it.
    parsed = v1_client.chat.completions.parse(
        model="gpt-4o",
        messages=USER_MESSAGE,  # type: ignore[arg-type]
        response_format=City,
    )
    city = parsed.choices[0].message.parsed
    assert isinstance(city, City) and city.population == 7 and city.coastal is True and len(city.districts) == 1


def test_v1_json_answers_are_openai_chat_completions(emu: Emulator, http: requests.Session) -> None:
    for response_format in (
        {"type": "json_object"},
        {
            "type": "json_schema",
            "json_schema": {
                "name": "result",
                "strict": True,
                "schema": {
                    "type": "object",
                    "properties": {"n": {"type": "integer"}},
                    "required": ["n"],
                    "additionalProperties": False,
                },
            },
        },
    ):
        body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "A json number"}], "response_format": response_format}
        parsed = strict(ChatCompletion, _post(http, v1_url(emu, "chat/completions"), body, emu), AZURE_ADDITIONS)
        assert isinstance(json.loads(parsed.choices[0].message.content or ""), dict)


def test_the_v1_client_embeds_with_dimensions(v1_client: openai.OpenAI) -> None:
    result = v1_client.embeddings.create(
        model="embed-small", input=["one", "two", "three"], dimensions=16, encoding_format="float"
    )
    assert [item.index for item in result.data] == [0, 1, 2]
    assert {len(item.embedding) for item in result.data} == {16}
    with pytest.raises(openai.BadRequestError) as refused:
        v1_client.embeddings.create(model="embed-small", input="one", dimensions=0, encoding_format="float")
    assert refused.value.param == "dimensions"


def test_the_v1_client_pages_the_files_list_to_the_end(v1_client: openai.OpenAI, emu: Emulator) -> None:
    ids = {emu.add_file(batch_jsonl(1), filename=f"f{index}.jsonl") for index in range(5)}
    listed = [item.id for item in itertools.islice(v1_client.files.list(limit=2), 50)]
    assert sorted(listed) == sorted(ids)
    pages = [r for r in emu.requests if r.kind == "files.list"]
    assert len(pages) == 3 and all(r.path == "/openai/v1/files" for r in pages)


def test_the_v1_client_creates_retrieves_and_lists_batches(v1_client: openai.OpenAI, emu: Emulator) -> None:
    # Uploaded through a lenient client: Azure answers an upload `pending`, which OpenAI's model lacks.
    lenient = v1_client.with_options()
    lenient._strict_response_validation = False
    uploaded = lenient.files.create(file=("in.jsonl", batch_jsonl(2, url="/v1/chat/completions").encode()), purpose="batch")
    # The SDK sends OpenAI's `/v1/chat/completions`, which is the v1 API's own form.
    batch = v1_client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h")
    assert batch.status == "validating" and batch.endpoint == "/v1/chat/completions"
    emu.advance(60)
    done = v1_client.batches.retrieve(batch.id)
    assert done.status == "completed" and done.request_counts is not None and done.request_counts.completed == 2
    assert [item.id for item in v1_client.batches.list()] == [batch.id]
    assert done.output_file_id is not None
    for line in v1_client.files.content(done.output_file_id).text.splitlines():
        strict(ChatCompletion, json.loads(line)["response"]["body"], AZURE_ADDITIONS)


# ARM, read by azure-mgmt-cognitiveservices.
def test_arm_listing_items_are_cognitiveservices_deployments(emu: Emulator, http: requests.Session) -> None:
    token = secret_token(http, emu, ARM_SCOPE)
    listing = http.get(
        deployments_url(emu), params={"api-version": ARM_API_VERSION}, headers={"Authorization": f"Bearer {token}"}
    ).json()
    result = DeploymentListResult.deserialize(listing)
    assert [item.name for item in result.value] == [item["name"] for item in listing["value"]]
    for raw, item in zip(listing["value"], result.value, strict=True):
        parsed = ArmDeployment.deserialize(raw)
        assert (parsed.id, parsed.type, parsed.sku.name) == (raw["id"], raw["type"], raw["sku"]["name"])
        assert parsed.properties.model.name == raw["properties"]["model"]["name"]
        assert parsed.properties.provisioning_state == raw["properties"]["provisioningState"]
        assert parsed.properties.capabilities == raw["properties"]["capabilities"]
        assert parsed.system_data.created_at is not None
        # Every key the emulator sends is one the SDK's model declares (nothing it would drop);
        # the SDK keeps ARM's 7-digit fractions of a second to 6.
        again = parsed.serialize(keep_readonly=True)
        assert {**again, "systemData": None} == {**raw, "systemData": None}
        assert set(again["systemData"]) == set(raw["systemData"])
        assert item.name == raw["name"]


class _StaticToken:
    """An azure-core credential holding one ARM token from the emulator."""

    def __init__(self, token: str) -> None:
        self._token = token

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken(self._token, 4102444800)


def test_the_management_client_lists_and_gets_deployments_on_its_default_version(emu: Emulator, http: requests.Session) -> None:
    emu.page_size = 2
    credential = _StaticToken(secret_token(http, emu, ARM_SCOPE))
    with CognitiveServicesManagementClient(
        credential,  # type: ignore[arg-type]
        emu.subscription_id,
        base_url=emu.url,
        credential_scopes=[ARM_SCOPE],
        connection_verify=emu.ca_path,
    ) as client:
        names = [d.name for d in client.deployments.list(emu.resource_group, emu.resource_name)]
        one = client.deployments.get(emu.resource_group, emu.resource_name, "o3-mini")
    assert names == [d.name for d in emu.deployments]
    assert one.properties.model.name == "o3-mini"
    versions = {r.query.get("api-version") for r in emu.requests if r.kind.startswith("arm.")}
    assert versions == {"2025-09-01"}
