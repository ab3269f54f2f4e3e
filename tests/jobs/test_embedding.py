"""Azure OpenAI Embedding end to end against the emulator (spec §3, second-release §D)."""

from __future__ import annotations

import json
import math

import pluggy
import pytest

from polysync_azure_openai.emulator import Deployment, Emulator, faults
from polysync_azure_openai.errors import ConfigurationError
from polysync_azure_openai.jobs import EMBEDDING

from ..conftest import job, sp_platform


def test_embedding_run(pm: pluggy.PluginManager, emu: Emulator) -> None:
    result = pm.hook.submit(
        platform=sp_platform(emu), job=job(EMBEDDING, "embed-small"), parameters={"input": "hello world"}, run_key="k"
    )
    assert result.status == "Success"
    assert result.run_id == "embed-small#sync#Success"
    [request] = [r for r in emu.requests if r.kind == "embeddings"]
    assert (request.path, request.query) == ("/openai/v1/embeddings", {})
    assert json.loads(request.body) == {"model": "embed-small", "input": "hello world"}
    vector = result.outputs["embedding"]
    assert isinstance(vector, list) and len(vector) == 1536
    assert all(isinstance(v, float) for v in vector)
    assert math.isclose(math.sqrt(sum(v * v for v in vector)), 1.0, rel_tol=1e-6)
    assert set(result.outputs) == {"embedding", "embeddings", "prompt_tokens", "total_tokens"}
    assert result.outputs["embeddings"] is None
    assert result.outputs["prompt_tokens"] == result.outputs["total_tokens"] > 0
    json.dumps(dict(result.outputs))  # JSON types only


def test_same_text_same_vector(pm: pluggy.PluginManager, emu: Emulator) -> None:
    runs = [
        pm.hook.submit(platform=sp_platform(emu), job=job(EMBEDDING, "embed-small"), parameters={"input": text}, run_key="k")
        for text in ("a", "a", "b")
    ]
    assert runs[0].outputs["embedding"] == runs[1].outputs["embedding"] != runs[2].outputs["embedding"]


def test_chat_deployment_for_embedding_gets_the_documented_advice(pm: pluggy.PluginManager, emu: Emulator) -> None:
    result = pm.hook.submit(platform=sp_platform(emu), job=job(EMBEDDING, "gpt-4o"), parameters={"input": "x"}, run_key="k")
    assert result.status == "Failed"
    assert "HTTP 400" in result.message and "OperationNotSupported" in result.message
    assert "The embeddings operation does not work with the specified model" in result.message
    assert "not an embedding model" in result.message and "contains 'embedding'" in result.message


def test_status_cancel_monitor_are_local(pm: pluggy.PluginManager, emu: Emulator) -> None:
    platform, embed_job = sp_platform(emu), job(EMBEDDING, "embed-small")
    assert pm.hook.get_status(platform=platform, job=embed_job, run_id="embed-small#sync#Success").status == "Success"
    assert pm.hook.cancel(platform=platform, job=embed_job, run_id="embed-small#sync#Failed").status == "Failed"
    assert pm.hook.monitor_url(platform=platform, job=embed_job, run_id="embed-small#sync#Success").startswith(
        "https://portal.azure.com/#@/resource/subscriptions/"
    )
    assert emu.requests == []


def embed(pm: pluggy.PluginManager, emu: Emulator, parameters: dict, external_id: str = "embed-small", **attributes: str):
    platform = sp_platform(emu, **attributes.pop("platform", {}))  # type: ignore[arg-type]
    return pm.hook.submit(platform=platform, job=job(EMBEDDING, external_id, **attributes), parameters=parameters, run_key="k")


def test_inputs_give_one_vector_per_text_in_input_order(pm: pluggy.PluginManager, emu: Emulator) -> None:
    texts = [f"text number {i}" for i in range(5)]
    many = embed(pm, emu, {"inputs": texts})
    assert many.status == "Success", many.message
    assert many.outputs["embedding"] is None and len(many.outputs["embeddings"]) == 5
    assert json.loads(next(r for r in emu.requests if r.kind == "embeddings").body)["input"] == texts
    for text, vector in zip(texts, many.outputs["embeddings"], strict=True):
        assert embed(pm, emu, {"input": text}).outputs["embedding"] == vector
    assert "5 embeddings of 1536 dimensions" in many.message


def test_inputs_take_2048_texts(pm: pluggy.PluginManager, emu: Emulator) -> None:
    # One dimension each: the test is about the count, not about 3 million numbers.
    result = embed(
        pm, emu, {"inputs": [f"t{i}" for i in range(2048)]}, Model_Name="text-embedding-3-small", OpenAI_Dimensions="1"
    )
    assert result.status == "Success" and len(result.outputs["embeddings"]) == 2048


def test_an_empty_input_string_beside_inputs_counts_as_not_given(pm: pluggy.PluginManager, emu: Emulator) -> None:
    assert embed(pm, emu, {"input": "", "inputs": ["a"]}).status == "Success"


@pytest.mark.parametrize("parameters", [{}, {"input": "", "inputs": ""}, {"input": None}], ids=["absent", "blank", "null"])
def test_neither_input_nor_inputs_is_refused_with_the_whole_sentence_and_fix(
    pm: pluggy.PluginManager, emu: Emulator, parameters: dict
) -> None:
    with pytest.raises(ConfigurationError) as info:
        embed(pm, emu, parameters)
    assert str(info.value) == (
        "Job 'embed-small': parameter 'input' is missing (and so is 'inputs'). Give 'input' (one text) or 'inputs' "
        "(a list of texts) in the Task's parameters, or map one from an upstream task."
    )
    assert emu.requests == []


@pytest.mark.parametrize(("model", "dimensions"), [("text-embedding-3-small", 256), ("text-embedding-3-large", 3072)])
def test_dimensions_are_sent_and_shorten_the_vector(pm: pluggy.PluginManager, emu: Emulator, model: str, dimensions: int) -> None:
    emu.set_deployments([Deployment("embed", model)])
    result = embed(pm, emu, {"inputs": ["a", "b"]}, "embed", Model_Name=model, OpenAI_Dimensions=str(dimensions))
    assert result.status == "Success", result.message
    assert json.loads(emu.requests[-1].body)["dimensions"] == dimensions
    assert [len(v) for v in result.outputs["embeddings"]] == [dimensions, dimensions]


def test_dimensions_above_the_models_own_are_refused_before_any_call(pm: pluggy.PluginManager, emu: Emulator) -> None:
    with pytest.raises(ConfigurationError, match=r"'OpenAI Dimensions' is '1537'.*from 1 to 1536"):
        embed(pm, emu, {"input": "a"}, Model_Name="text-embedding-3-small", OpenAI_Dimensions="1537")
    assert emu.requests == []


def test_a_foundry_embedding_model_runs_on_v1_only(pm: pluggy.PluginManager, emu: Emulator) -> None:
    emu.set_deployments([Deployment("cohere", "Cohere-embed-v3-english", format="Cohere", capabilities={"embeddings": "true"})])
    attributes = {"Model_Name": "Cohere-embed-v3-english", "Model_Format": "Cohere"}
    assert embed(pm, emu, {"input": "a"}, "cohere", **attributes).status == "Success"
    with pytest.raises(ConfigurationError, match=r"'Model Format'.*only on the v1 API"):
        embed(pm, emu, {"input": "a"}, "cohere", platform={"OpenAI_API_Version": "2024-10-21"}, **attributes)


def test_a_dated_embedding_keeps_the_0_1_0_path_and_body(pm: pluggy.PluginManager, emu: Emulator) -> None:
    result = embed(pm, emu, {"input": "a"}, platform={"OpenAI_API_Version": "2024-10-21"})
    assert result.status == "Success"
    request = next(r for r in emu.requests if r.kind == "embeddings")
    assert (request.path, json.loads(request.body)) == ("/openai/deployments/embed-small/embeddings", {"input": "a"})


def test_embeddings_are_joined_on_index_whatever_the_answers_order(pm: pluggy.PluginManager, emu: Emulator) -> None:
    shuffled = {
        "object": "list",
        "model": "text-embedding-3-small",
        "data": [
            {"object": "embedding", "index": 2, "embedding": [0.3]},
            {"object": "embedding", "index": 0, "embedding": [0.1]},
            {"object": "embedding", "index": 1, "embedding": [0.2]},
        ],
        "usage": {"prompt_tokens": 3, "total_tokens": 3},
    }
    emu.inject(faults.Status(200, body=shuffled), kind="embeddings")
    result = embed(pm, emu, {"inputs": ["a", "b", "c"]})
    assert result.outputs["embeddings"] == [[0.1], [0.2], [0.3]]


def test_an_answer_missing_one_input_is_failed(pm: pluggy.PluginManager, emu: Emulator) -> None:
    partial = {"object": "list", "data": [{"index": 0, "embedding": [0.1]}], "usage": {"prompt_tokens": 2, "total_tokens": 2}}
    emu.inject(faults.Status(200, body=partial), kind="embeddings")
    result = embed(pm, emu, {"inputs": ["a", "b"]})
    assert result.status == "Failed" and "has no embedding array for input 1" in result.message


@pytest.mark.parametrize("embedding", ["AAAAPw==", [], ["0.5"]], ids=["base64", "empty", "not-numbers"])
def test_a_single_inputs_answer_without_a_vector_names_no_input_number(
    pm: pluggy.PluginManager, emu: Emulator, embedding: object
) -> None:
    answer = {"object": "list", "data": [{"index": 0, "embedding": embedding}], "usage": {"prompt_tokens": 1, "total_tokens": 1}}
    emu.inject(faults.Status(200, body=answer), kind="embeddings")
    result = embed(pm, emu, {"input": "a"})
    assert result.status == "Failed"
    assert "has no embedding array (base64 encoding is not requested by this plugin)" in result.message


def test_an_item_of_inputs_may_be_exactly_a_million_characters(pm: pluggy.PluginManager, emu: Emulator) -> None:
    """The limit is inclusive: a text of 1,000,000 characters goes to Azure; one more is refused before any call."""
    at_limit = embed(pm, emu, {"inputs": ["a", "b " * 500_000]}, Model_Name="text-embedding-3-small", OpenAI_Dimensions="1")
    assert [r.kind for r in emu.requests].count("embeddings") == 1, at_limit.message
    emu.clear_requests()
    with pytest.raises(ConfigurationError) as info:
        embed(pm, emu, {"inputs": ["a", "b " * 500_000 + "c"]})
    assert "parameter 'inputs', item 1, has 1,000,001 characters, more than the 1,000,000 allowed" in str(info.value)
    assert emu.requests == []
