"""Azure OpenAI Embedding end to end against the emulator (spec §3)."""

from __future__ import annotations

import json
import math

import pluggy

from polysync_azure_openai.emulator import Emulator
from polysync_azure_openai.jobs import EMBEDDING

from ..conftest import job, sp_platform


def test_embedding_run(pm: pluggy.PluginManager, emu: Emulator) -> None:
    result = pm.hook.submit(
        platform=sp_platform(emu), job=job(EMBEDDING, "embed-small"), parameters={"input": "hello world"}, run_key="k"
    )
    assert result.status == "Success"
    assert result.run_id == "embed-small#sync#Success"
    [request] = [r for r in emu.requests if r.kind == "embeddings"]
    assert request.path == "/openai/deployments/embed-small/embeddings"
    assert json.loads(request.body) == {"input": "hello world"}
    vector = result.outputs["embedding"]
    assert isinstance(vector, list) and len(vector) == 1536
    assert all(isinstance(v, float) for v in vector)
    assert math.isclose(math.sqrt(sum(v * v for v in vector)), 1.0, rel_tol=1e-6)
    assert set(result.outputs) == {"embedding", "prompt_tokens", "total_tokens"}
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
