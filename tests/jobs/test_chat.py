"""Azure OpenAI Chat Completion end to end against the emulator (spec §2, §5, §6; second-release §B, §C).

The platforms speak the v1 API (the default): the body names the deployment in `model`. The
dated API's paths are tested explicitly; reasoning controls and structured output in
test_chat_reasoning_and_json.py.
"""

from __future__ import annotations

import json

import attrs
import pluggy
import pytest

from polysync_azure_openai.emulator import Deployment, Emulator, faults
from polysync_azure_openai.emulator.server import Exchange
from polysync_azure_openai.errors import ConfigurationError
from polysync_azure_openai.jobs import CHAT

from ..conftest import api_key_platform, job, sp_platform

ALL_OUTPUTS = {
    "response",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "finish_reason",
    "response_json",
    "model",
    "cached_tokens",
    "reasoning_tokens",
}
DATED = "2024-10-21"


def chat_bodies(emu: Emulator) -> list[dict]:
    return [json.loads(r.body) for r in emu.requests if r.kind == "chat"]


def test_chat_run_sends_the_specified_body_and_fills_outputs(pm: pluggy.PluginManager, emu: Emulator) -> None:
    platform = sp_platform(emu)
    chat_job = job(CHAT, "gpt-4o", OpenAI_System_Prompt="Be brief.", OpenAI_Max_Tokens="50", OpenAI_Temperature="0.5")
    result = pm.hook.submit(platform=platform, job=chat_job, parameters={"user_prompt": "Name a prime number."}, run_key="rk-1")
    assert result.status == "Success"
    assert result.run_id == "gpt-4o#sync#Success"
    assert chat_bodies(emu) == [
        {
            "model": "gpt-4o",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Name a prime number."},
            ],
            "max_tokens": 50,
            "temperature": 0.5,
        }
    ]
    request = next(r for r in emu.requests if r.kind == "chat")
    assert request.path == "/openai/v1/chat/completions"
    assert request.query == {}
    assert request.headers["authorization"].startswith("Bearer ")
    assert request.headers["user-agent"].startswith("polysync-azure-openai/0.1.0")
    assert len(request.headers["x-ms-client-request-id"]) == 36
    out = result.outputs
    assert set(out) == ALL_OUTPUTS
    assert isinstance(out["response"], str) and out["response"]
    assert out["model"] == "gpt-4o-2024-08-06"  # the model Azure reports, not the deployment
    assert (out["response_json"], out["cached_tokens"], out["reasoning_tokens"]) == (None, 0, 0)
    assert out["finish_reason"] == "stop"
    assert out["total_tokens"] == out["prompt_tokens"] + out["completion_tokens"] > 0
    assert result.started_at is not None and result.ended_at is not None
    assert result.started_at.tzinfo is not None and result.started_at <= result.ended_at


def test_a_non_ascii_prompt_travels_as_compact_utf_8(pm: pluggy.PluginManager, emu: Emulator) -> None:
    """The body's text is sent as its UTF-8 bytes, not as \\u escapes that take up to three times the bytes."""
    prompt = "Grüße aus 東京 🙂"
    result = pm.hook.submit(platform=sp_platform(emu), job=job(CHAT, "gpt-4o"), parameters={"user_prompt": prompt}, run_key="k")
    assert result.status == "Success", result.message
    request = next(r for r in emu.requests if r.kind == "chat")
    expected = '{"model":"gpt-4o","messages":[{"role":"user","content":"' + prompt + '"}]}'
    assert request.body == expected.encode("utf-8")


def test_system_prompt_parameter_wins_and_unset_options_are_left_out(pm: pluggy.PluginManager, emu: Emulator) -> None:
    chat_job = job(CHAT, "gpt-4o", OpenAI_System_Prompt="from attribute")
    pm.hook.submit(
        platform=sp_platform(emu),
        job=chat_job,
        parameters={"user_prompt": "hi", "system_prompt": "from parameter"},
        run_key="k",
    )
    pm.hook.submit(platform=sp_platform(emu), job=job(CHAT, "gpt-4o"), parameters={"user_prompt": "hi"}, run_key="k")
    first, second = chat_bodies(emu)
    assert first == {
        "model": "gpt-4o",
        "messages": [{"role": "system", "content": "from parameter"}, {"role": "user", "content": "hi"}],
    }
    assert second == {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}  # no system message at all


@pytest.mark.parametrize(
    ("attributes", "parameters", "message"),
    [
        (
            {},
            {},
            "parameter 'user_prompt' is missing. Give it a value in the Task's parameters, or map it from an upstream "
            "task's output.",
        ),
        (
            {},
            {"user_prompt": "x" * 1_000_001},
            "parameter 'user_prompt' has 1,000,001 characters, more than the 1,000,000 allowed. Shorten it, or use the "
            "Azure OpenAI Batch Job for bulk work.",
        ),
        (
            {"Deployment_Name": "a/b"},
            {"user_prompt": "hi"},
            "attribute 'Deployment Name' is 'a/b': a deployment name is 1-64 letters, digits, '.', '-' or '_' (not dots "
            "alone). Re-run Import Jobs, or set 'Deployment Name' to a deployment of the resource.",
        ),
    ],
    ids=["prompt-missing", "prompt-over-a-million-characters", "deployment-name-not-a-name"],
)
def test_a_refused_run_names_the_field_the_problem_and_the_fix_word_for_word(
    pm: pluggy.PluginManager, emu: Emulator, attributes: dict[str, str], parameters: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigurationError) as info:
        pm.hook.submit(platform=sp_platform(emu), job=job(CHAT, "gpt-4o", **attributes), parameters=parameters, run_key="k")
    assert str(info.value) == f"Job 'gpt-4o': {message}"
    assert emu.requests == []


def test_deployment_name_attribute_overrides_external_id(pm: pluggy.PluginManager, emu: Emulator) -> None:
    result = pm.hook.submit(
        platform=sp_platform(emu),
        job=job(CHAT, "renamed-job", Deployment_Name="gpt-4o"),
        parameters={"user_prompt": "hi"},
        run_key="k",
    )
    assert result.status == "Success" and result.run_id == "gpt-4o#sync#Success"
    assert [body["model"] for body in chat_bodies(emu)] == ["gpt-4o"]


def test_get_status_cancel_and_monitor_url_make_no_request(pm: pluggy.PluginManager, emu: Emulator) -> None:
    platform = sp_platform(emu)
    chat_job = job(CHAT, "gpt-4o")
    for status in ("Success", "Failed"):
        run_id = f"gpt-4o#sync#{status}"
        got = pm.hook.get_status(platform=platform, job=chat_job, run_id=run_id)
        assert (got.run_id, got.status) == (run_id, status)
        cancelled = pm.hook.cancel(platform=platform, job=chat_job, run_id=run_id)
        assert cancelled.status == status and "not supported" in cancelled.message
        assert f"finished within submit with status {status};" in cancelled.message  # the status the RunId records
    url = pm.hook.monitor_url(platform=platform, job=chat_job, run_id="gpt-4o#sync#Success")
    assert url == (
        f"https://portal.azure.com/#@/resource/subscriptions/{emu.subscription_id}/resourceGroups/"
        f"{emu.resource_group}/providers/Microsoft.CognitiveServices/accounts/{emu.resource_name}/overview"
    )
    assert emu.requests == []


def test_monitor_url_without_subscription_is_a_clear_error(pm: pluggy.PluginManager, emu: Emulator) -> None:
    with pytest.raises(ValueError, match="'Subscription Id' and 'Resource Group Name' are not set"):
        pm.hook.monitor_url(platform=api_key_platform(emu), job=job(CHAT, "gpt-4o"), run_id="gpt-4o#sync#Success")


def test_deployment_not_found_is_a_failed_run_with_the_fix(pm: pluggy.PluginManager, emu: Emulator) -> None:
    result = pm.hook.submit(
        platform=sp_platform(emu),
        job=job(CHAT, "gpt-4o", Deployment_Name="no-such"),
        parameters={"user_prompt": "hi"},
        run_key="k",
    )
    assert result.status == "Failed"
    assert result.run_id == "no-such#sync#Failed"
    assert result.outputs == {}
    message = result.message
    assert "HTTP 404" in message and "DeploymentNotFound" in message
    assert "The API deployment for this resource does not exist" in message
    assert "request id" in message and "re-run Import Jobs" in message
    request_id = next(r for r in emu.requests if r.kind == "chat")
    assert request_id is not None
    status = pm.hook.get_status(platform=sp_platform(emu), job=job(CHAT, "gpt-4o"), run_id=result.run_id)
    assert status.status == "Failed"


def test_embedding_deployment_for_chat_is_operation_not_supported(pm: pluggy.PluginManager, emu: Emulator) -> None:
    result = pm.hook.submit(
        platform=sp_platform(emu), job=job(CHAT, "embed-small"), parameters={"user_prompt": "hi"}, run_key="k"
    )
    assert result.status == "Failed" and "OperationNotSupported" in result.message


class CachedPromptWithoutFinishReason:
    """The real chat answer with 1,024 prompt tokens served from Azure's prompt cache and no
    finish_reason (as a gateway or a Foundry model may leave it out)."""

    name = "cached_prompt_without_finish_reason"

    def apply(self, exchange: Exchange) -> None:
        response = exchange.respond()
        payload = json.loads(response.body)
        payload["usage"]["prompt_tokens_details"] = {"cached_tokens": 1024, "audio_tokens": 0}
        del payload["choices"][0]["finish_reason"]
        exchange.send(attrs.evolve(response, body=json.dumps(payload).encode()))


def test_cached_prompt_tokens_are_an_output_and_a_missing_finish_reason_is_named(pm: pluggy.PluginManager, emu: Emulator) -> None:
    emu.inject(CachedPromptWithoutFinishReason(), kind="chat")
    result = pm.hook.submit(platform=sp_platform(emu), job=job(CHAT, "gpt-4o"), parameters={"user_prompt": "hi"}, run_key="k")
    assert result.status == "Success", result.message
    assert result.outputs["cached_tokens"] == 1024 and result.outputs["finish_reason"] is None
    assert result.message.startswith("Chat completion finished (no finish_reason); "), result.message


def test_prompt_blocked_by_content_filter_is_failed(pm: pluggy.PluginManager, emu: Emulator) -> None:
    result = pm.hook.submit(
        platform=sp_platform(emu), job=job(CHAT, "gpt-4o"), parameters={"user_prompt": "EMULATOR_BLOCK this"}, run_key="k"
    )
    assert result.status == "Failed"
    assert "HTTP 400" in result.message and "content_filter" in result.message
    assert "violence=medium" in result.message and "content filter" in result.message.lower()
    assert len([r for r in emu.requests if r.kind == "chat"]) == 1  # never retried


def test_filtered_or_truncated_answers_are_success_with_their_finish_reason(pm: pluggy.PluginManager, emu: Emulator) -> None:
    filtered = pm.hook.submit(
        platform=sp_platform(emu), job=job(CHAT, "gpt-4o"), parameters={"user_prompt": "EMULATOR_FILTER_OUTPUT"}, run_key="k"
    )
    assert filtered.status == "Success" and filtered.outputs["finish_reason"] == "content_filter"
    assert filtered.outputs["response"] is None and "content filter" in filtered.message
    cut = pm.hook.submit(
        platform=sp_platform(emu),
        job=job(CHAT, "gpt-4o", OpenAI_Max_Tokens="1"),
        parameters={"user_prompt": "Tell me a long story about primes"},
        run_key="k",
    )
    assert cut.status == "Success" and cut.outputs["finish_reason"] == "length"
    assert "token limit" in cut.message


def test_reasoning_model_gets_max_completion_tokens_from_model_name(pm: pluggy.PluginManager, emu: Emulator) -> None:
    result = pm.hook.submit(
        platform=sp_platform(emu),
        job=job(CHAT, "o3-mini", Model_Name="o3-mini", OpenAI_Max_Tokens="100"),
        parameters={"user_prompt": "hi"},
        run_key="k",
    )
    assert result.status == "Success"
    assert chat_bodies(emu) == [
        {"model": "o3-mini", "messages": [{"role": "user", "content": "hi"}], "max_completion_tokens": 100}
    ]


def test_reasoning_model_without_model_name_is_resent_once(pm: pluggy.PluginManager, emu: Emulator) -> None:
    result = pm.hook.submit(
        platform=sp_platform(emu),
        job=job(CHAT, "o3-mini", OpenAI_Max_Tokens="100"),
        parameters={"user_prompt": "hi"},
        run_key="k",
    )
    assert result.status == "Success"
    bodies = chat_bodies(emu)
    assert [sorted(b) for b in bodies] == [["max_tokens", "messages", "model"], ["max_completion_tokens", "messages", "model"]]


@pytest.mark.parametrize("api_version", ["2024-10-21", "2024-10-01-preview"], ids=["ga", "preview"])
def test_reasoning_model_on_an_older_api_version_is_refused_before_any_call(
    pm: pluggy.PluginManager, emu: Emulator, api_version: str
) -> None:
    # 0.1.0 sent it, and Azure answers 400 "Model o3-mini is enabled only for api versions
    # 2024-12-01-preview and later" -- on 0.1.0's default api-version, to every o-series job.
    with pytest.raises(ConfigurationError) as info:
        pm.hook.submit(
            platform=sp_platform(emu, OpenAI_API_Version=api_version),
            job=job(CHAT, "o3-mini", Model_Name="o3-mini"),
            parameters={"user_prompt": "hi"},
            run_key="k",
        )
    message = str(info.value)
    assert message.startswith("Job 'o3-mini': model 'o3-mini' (attribute 'Model Name') is a reasoning model"), message
    assert "'OpenAI API Version'" in message and "to v1 (or blank) or to 2024-12-01-preview or later" in message
    assert f"'{api_version}'" in message
    assert emu.requests == []


@pytest.mark.parametrize("api_version", ["2024-12-01-preview", "2025-04-01-preview", "v1", None])
def test_reasoning_model_from_2024_12_01_preview_on_is_served(pm: pluggy.PluginManager, emu: Emulator, api_version: str) -> None:
    result = pm.hook.submit(
        platform=sp_platform(emu, OpenAI_API_Version=api_version),
        job=job(CHAT, "o3-mini", Model_Name="o3-mini", OpenAI_Max_Tokens="5000"),
        parameters={"user_prompt": "hi"},
        run_key="k",
    )
    assert result.status == "Success", result.message
    assert result.outputs["finish_reason"] == "stop"


def test_temperature_on_a_reasoning_model_is_refused_before_any_call(pm: pluggy.PluginManager, emu: Emulator) -> None:
    # 0.1.0 sent it, and Azure answers 400 unsupported_parameter.
    with pytest.raises(ConfigurationError) as info:
        pm.hook.submit(
            platform=sp_platform(emu),
            job=job(CHAT, "o3-mini", Model_Name="o3-mini", OpenAI_Temperature="0.7"),
            parameters={"user_prompt": "hi"},
            run_key="k",
        )
    assert "'OpenAI Temperature'" in str(info.value) and "reasoning model" in str(info.value)
    assert emu.requests == []


def test_gpt_5_chat_is_not_a_reasoning_model(pm: pluggy.PluginManager, emu: Emulator) -> None:
    emu.set_deployments([Deployment("chat5", "gpt-5-chat", model_version="2025-08-07")])
    result = pm.hook.submit(
        platform=sp_platform(emu, OpenAI_API_Version="2024-10-21"),
        job=job(CHAT, "chat5", Model_Name="gpt-5-chat", OpenAI_Temperature="0.3", OpenAI_Max_Tokens="50"),
        parameters={"user_prompt": "hi"},
        run_key="k",
    )
    assert result.status == "Success", result.message
    assert chat_bodies(emu) == [{"messages": [{"role": "user", "content": "hi"}], "max_tokens": 50, "temperature": 0.3}]


def test_api_key_platform_runs_chat_with_the_api_key_header(pm: pluggy.PluginManager, emu: Emulator) -> None:
    result = pm.hook.submit(
        platform=api_key_platform(emu), job=job(CHAT, "gpt-4o"), parameters={"user_prompt": "hi"}, run_key="k"
    )
    assert result.status == "Success"
    request = next(r for r in emu.requests if r.kind == "chat")
    assert request.headers["api-key"] == emu.api_key and "authorization" not in request.headers
    assert emu.token_requests() == 0


def test_wrong_api_key_is_failed_with_advice(pm: pluggy.PluginManager, emu: Emulator) -> None:
    result = pm.hook.submit(
        platform=api_key_platform(emu, API_Key="0" * 32), job=job(CHAT, "gpt-4o"), parameters={"user_prompt": "hi"}, run_key="k"
    )
    assert result.status == "Failed"
    assert "HTTP 401" in result.message and "invalid subscription key" in result.message and "'API Key'" in result.message
    assert "0" * 32 not in result.message


def test_missing_data_plane_role_is_failed_with_the_role_to_grant(pm: pluggy.PluginManager, emu: Emulator) -> None:
    client_id = "1a2b3c4d-0000-4000-8000-00000000abcd"
    emu.add_secret_client(client_id, "reader-only-secret", roles=("Reader",))
    result = pm.hook.submit(
        platform=sp_platform(emu, Client_Id=client_id, Client_Secret="reader-only-secret"),
        job=job(CHAT, "gpt-4o"),
        parameters={"user_prompt": "hi"},
        run_key="k",
    )
    assert result.status == "Failed"
    assert "PermissionDenied" in result.message and "Cognitive Services OpenAI User" in result.message


def test_new_deployments_on_an_imported_platform(pm: pluggy.PluginManager, emu: Emulator) -> None:
    emu.set_deployments([Deployment(name="mini", model="gpt-4o-mini")])
    result = pm.hook.submit(platform=sp_platform(emu), job=job(CHAT, "mini"), parameters={"user_prompt": "hi"}, run_key="k")
    assert result.status == "Success"


# The API surface (second-release §B).
def test_a_dated_api_version_keeps_the_0_1_0_paths(pm: pluggy.PluginManager, emu: Emulator) -> None:
    result = pm.hook.submit(
        platform=sp_platform(emu, OpenAI_API_Version=DATED),
        job=job(CHAT, "gpt-4o"),
        parameters={"user_prompt": "hi"},
        run_key="k",
    )
    assert result.status == "Success"
    [request] = [r for r in emu.requests if r.kind == "chat"]
    assert (request.path, request.query) == ("/openai/deployments/gpt-4o/chat/completions", {"api-version": DATED})
    assert json.loads(request.body) == {"messages": [{"role": "user", "content": "hi"}]}  # no model


@pytest.mark.parametrize("api_version", [None, "", "v1", "V1"], ids=["missing", "blank", "v1", "V1"])
def test_blank_or_v1_means_the_v1_api(pm: pluggy.PluginManager, emu: Emulator, api_version: str | None) -> None:
    platform = sp_platform(emu, OpenAI_API_Version=api_version)
    result = pm.hook.submit(platform=platform, job=job(CHAT, "gpt-4o"), parameters={"user_prompt": "hi"}, run_key="k")
    assert result.status == "Success"
    assert [(r.path, r.query) for r in emu.requests if r.kind == "chat"] == [("/openai/v1/chat/completions", {})]


def test_an_api_key_platform_speaks_v1_with_the_api_key_header(pm: pluggy.PluginManager, emu: Emulator) -> None:
    result = pm.hook.submit(
        platform=api_key_platform(emu),
        job=job(CHAT, "o3-mini", Model_Name="o3-mini"),
        parameters={"user_prompt": "hi"},
        run_key="k",
    )
    assert result.status == "Success", result.message
    request = next(r for r in emu.requests if r.kind == "chat")
    assert request.path == "/openai/v1/chat/completions" and request.headers["api-key"] == emu.api_key


def test_a_404_on_a_v1_path_gets_the_dated_version_advice(pm: pluggy.PluginManager, emu: Emulator) -> None:
    # A gateway (or an endpoint) that does not route /openai/v1 answers a plain 404.
    emu.inject(faults.Status(404), kind="chat")
    result = pm.hook.submit(platform=sp_platform(emu), job=job(CHAT, "gpt-4o"), parameters={"user_prompt": "hi"}, run_key="k")
    assert result.status == "Failed" and "HTTP 404" in result.message
    assert "Fix: this endpoint or gateway may not offer the v1 API: set a dated OpenAI API Version" in result.message


def test_deployment_not_found_on_v1_keeps_the_deployment_advice(pm: pluggy.PluginManager, emu: Emulator) -> None:
    result = pm.hook.submit(platform=sp_platform(emu), job=job(CHAT, "nope"), parameters={"user_prompt": "hi"}, run_key="k")
    assert "DeploymentNotFound" in result.message and "re-run Import Jobs" in result.message
    assert "v1 API" not in result.message


def test_a_plain_404_on_a_dated_path_gets_no_v1_advice(pm: pluggy.PluginManager, emu: Emulator) -> None:
    emu.inject(faults.Status(404), kind="chat")
    platform = sp_platform(emu, OpenAI_API_Version=DATED)
    result = pm.hook.submit(platform=platform, job=job(CHAT, "gpt-4o"), parameters={"user_prompt": "hi"}, run_key="k")
    assert "check 'OpenAI API Version'" in result.message and "v1 API" not in result.message


# Foundry models (second-release §F).
def test_a_foundry_model_runs_on_v1(pm: pluggy.PluginManager, emu: Emulator) -> None:
    foundry = job(CHAT, "DeepSeek-R1", Model_Name="DeepSeek-R1", Model_Format="DeepSeek", OpenAI_Max_Tokens="64")
    result = pm.hook.submit(platform=sp_platform(emu), job=foundry, parameters={"user_prompt": "hi"}, run_key="k")
    assert result.status == "Success", result.message
    assert result.outputs["model"] == "DeepSeek-R1"
    assert chat_bodies(emu) == [{"model": "DeepSeek-R1", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 64}]


def test_a_foundry_model_on_a_dated_version_is_refused_before_any_call(pm: pluggy.PluginManager, emu: Emulator) -> None:
    foundry = job(CHAT, "DeepSeek-R1", Model_Name="DeepSeek-R1", Model_Format="DeepSeek")
    with pytest.raises(ConfigurationError) as info:
        pm.hook.submit(
            platform=sp_platform(emu, OpenAI_API_Version="2025-04-01-preview"),
            job=foundry,
            parameters={"user_prompt": "hi"},
            run_key="k",
        )
    message = str(info.value)
    assert "'Model Format'" in message and "'DeepSeek'" in message and "only on the v1 API" in message
    assert "Set the platform's 'OpenAI API Version' to v1" in message
    assert emu.requests == []


@pytest.mark.parametrize("value", ["0", "0.0"])
def test_temperature_zero_is_sent(pm: pluggy.PluginManager, emu: Emulator, value: str) -> None:
    # 0 is the most deterministic setting, not "unset": leaving it out would sample at Azure's default 1.
    result = pm.hook.submit(
        platform=sp_platform(emu),
        job=job(CHAT, "gpt-4o", OpenAI_Temperature=value),
        parameters={"user_prompt": "hi"},
        run_key="k",
    )
    assert result.status == "Success", result.message
    assert chat_bodies(emu) == [{"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}], "temperature": 0}]


REASONING_MODELS = ["o1", "o3-mini", "o4-mini", "gpt-5", "gpt-5-mini", "gpt-5-nano", "GPT-5"]
CHAT_MODELS = ["gpt-5-chat", "gpt-4o", "gpt-4.1-mini"]


@pytest.mark.parametrize("model", REASONING_MODELS + CHAT_MODELS)
def test_the_token_limit_field_follows_the_model_name(pm: pluggy.PluginManager, emu: Emulator, model: str) -> None:
    emu.set_deployments([Deployment("dep", model, model_version="2025-08-07")])
    result = pm.hook.submit(
        platform=sp_platform(emu),
        job=job(CHAT, "dep", Model_Name=model, OpenAI_Max_Tokens="2000"),
        parameters={"user_prompt": "hi"},
        run_key="k",
    )
    assert result.status == "Success", result.message
    field = "max_completion_tokens" if model in REASONING_MODELS else "max_tokens"
    # One request: a wrong guess would still succeed, after a 400 and a resend.
    assert chat_bodies(emu) == [{"model": "dep", "messages": [{"role": "user", "content": "hi"}], field: 2000}]


@pytest.mark.parametrize("model", ["gpt-5", "gpt-5-mini"])
def test_temperature_on_gpt_5_is_refused_before_any_call(pm: pluggy.PluginManager, emu: Emulator, model: str) -> None:
    emu.set_deployments([Deployment("dep", model, model_version="2025-08-07")])
    with pytest.raises(ConfigurationError) as info:
        pm.hook.submit(
            platform=sp_platform(emu),
            job=job(CHAT, "dep", Model_Name=model, OpenAI_Temperature="0"),
            parameters={"user_prompt": "hi"},
            run_key="k",
        )
    assert "'OpenAI Temperature'" in str(info.value) and "reasoning model" in str(info.value)
    assert emu.requests == []


@attrs.frozen
class JobWithoutExternalId:
    """A host's job object that carries no ``external_id`` at all."""

    job_type: str
    name: str
    attributes: dict[str, str] = attrs.field(factory=dict)


@pytest.mark.parametrize(("name", "shown"), [("bare", "bare"), ("", "(unnamed)")], ids=["named", "unnamed"])
def test_a_job_without_an_external_id_or_deployment_name_is_refused_naming_the_fix(
    pm: pluggy.PluginManager, emu: Emulator, name: str, shown: str
) -> None:
    """The refusal names the job by its name, or "(unnamed)" when it has neither name nor external_id."""
    with pytest.raises(ConfigurationError) as info:
        pm.hook.submit(
            platform=sp_platform(emu), job=JobWithoutExternalId(CHAT, name), parameters={"user_prompt": "hi"}, run_key="k"
        )
    assert str(info.value).startswith(f"Job '{shown}': ")
    assert "External Id is '': a deployment name is 1-64 letters" in str(info.value)
    assert "set 'Deployment Name' to a deployment of the resource" in str(info.value)
    assert emu.requests == []
