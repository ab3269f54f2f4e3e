"""Reasoning controls, usage details and structured output through the hooks (second-release §C)."""

from __future__ import annotations

import json
from typing import Any

import attrs
import pluggy
import pytest

from polysync_azure_openai.emulator import Emulator
from polysync_azure_openai.emulator.server import Exchange
from polysync_azure_openai.errors import ConfigurationError
from polysync_azure_openai.jobs import CHAT

from ..conftest import job, sp_platform

CITY_SCHEMA = {
    "type": "object",
    "properties": {
        "city": {"type": "string"},
        "population": {"type": "integer"},
        "districts": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["city", "population", "districts"],
    "additionalProperties": False,
}
WIRE_SCHEMA_FORMAT = {"type": "json_schema", "json_schema": {"name": "result", "schema": CITY_SCHEMA, "strict": True}}


def chat_bodies(emu: Emulator) -> list[dict[str, Any]]:
    return [json.loads(r.body) for r in emu.requests if r.kind == "chat"]


def run(
    pm: pluggy.PluginManager, emu: Emulator, external_id: str = "gpt-4o", params: dict[str, Any] | None = None, **attributes: str
):
    return pm.hook.submit(
        platform=sp_platform(emu, **attributes.pop("platform", {})),  # type: ignore[arg-type]
        job=job(CHAT, external_id, **attributes),
        parameters={"user_prompt": "Name a city.", **(params or {})},
        run_key="k",
    )


# Reasoning controls and usage details.
@pytest.mark.parametrize(("effort", "tokens"), [("low", 32), ("HIGH", 256)])
def test_reasoning_effort_is_sent_and_reasoning_tokens_are_an_output(
    pm: pluggy.PluginManager, emu: Emulator, effort: str, tokens: int
) -> None:
    result = run(pm, emu, "o3-mini", Model_Name="o3-mini", OpenAI_Reasoning_Effort=effort, OpenAI_Max_Tokens="2000")
    assert result.status == "Success", result.message
    assert chat_bodies(emu)[0]["reasoning_effort"] == effort.lower()
    assert result.outputs["reasoning_tokens"] == tokens and result.outputs["cached_tokens"] == 0
    assert result.outputs["completion_tokens"] > tokens
    assert f"{tokens} of them reasoning" in result.message


def test_reasoning_effort_is_not_sent_when_blank(pm: pluggy.PluginManager, emu: Emulator) -> None:
    assert run(pm, emu, "o3-mini", Model_Name="o3-mini").status == "Success"
    assert "reasoning_effort" not in chat_bodies(emu)[0]
    assert "temperature" not in chat_bodies(emu)[0] and "top_p" not in chat_bodies(emu)[0]


def test_an_empty_answer_cut_at_length_by_reasoning_is_failed_with_the_fix(pm: pluggy.PluginManager, emu: Emulator) -> None:
    result = run(pm, emu, "o3-mini", Model_Name="o3-mini", OpenAI_Reasoning_Effort="low", OpenAI_Max_Tokens="20")
    assert result.status == "Failed" and result.run_id == "o3-mini#sync#Failed"
    assert result.outputs["response"] == "" and result.outputs["finish_reason"] == "length"
    assert result.outputs["reasoning_tokens"] == 20 == result.outputs["completion_tokens"]
    assert "empty answer" in result.message and "Fix: raise 'OpenAI Max Tokens'" in result.message
    assert "reasoning tokens count against it" in result.message
    status = pm.hook.get_status(platform=sp_platform(emu), job=job(CHAT, "o3-mini"), run_id=result.run_id)
    assert status.status == "Failed"


def test_a_reasoning_answer_cut_after_some_text_is_a_success(pm: pluggy.PluginManager, emu: Emulator) -> None:
    result = run(pm, emu, "o3-mini", Model_Name="o3-mini", OpenAI_Reasoning_Effort="low", OpenAI_Max_Tokens="34")
    assert result.status == "Success" and result.outputs["finish_reason"] == "length"
    assert result.outputs["response"] == "Emulated answer:"


def test_a_non_reasoning_answer_cut_at_length_stays_a_success(pm: pluggy.PluginManager, emu: Emulator) -> None:
    result = run(pm, emu, OpenAI_Max_Tokens="1")
    assert result.status == "Success" and result.outputs["finish_reason"] == "length"


def test_reasoning_effort_without_model_name_is_left_to_azure(pm: pluggy.PluginManager, emu: Emulator) -> None:
    # Without 'Model Name' the plugin cannot tell; Azure refuses it for gpt-4o and says so.
    result = run(pm, emu, OpenAI_Reasoning_Effort="low")
    assert result.status == "Failed"
    assert "unsupported_parameter" in result.message and "reasoning_effort" in result.message


# Structured output.
def test_json_object_fills_response_json(pm: pluggy.PluginManager, emu: Emulator) -> None:
    result = run(pm, emu, OpenAI_Response_Format="json_object", OpenAI_System_Prompt="Answer in JSON.")
    assert result.status == "Success", result.message
    assert chat_bodies(emu)[0]["response_format"] == {"type": "json_object"}
    assert isinstance(result.outputs["response_json"], dict)
    assert json.loads(result.outputs["response"]) == result.outputs["response_json"]


def test_a_schema_attribute_is_sent_as_strict_structured_output(pm: pluggy.PluginManager, emu: Emulator) -> None:
    result = run(pm, emu, OpenAI_Response_Format=json.dumps(CITY_SCHEMA))
    assert result.status == "Success", result.message
    assert chat_bodies(emu)[0]["response_format"] == WIRE_SCHEMA_FORMAT
    answer = result.outputs["response_json"]
    assert set(answer) == {"city", "population", "districts"} and answer["population"] == 7


@pytest.mark.parametrize("value", [CITY_SCHEMA, json.dumps(CITY_SCHEMA)], ids=["object", "json-text"])
def test_the_response_schema_parameter_overrides_the_attribute(pm: pluggy.PluginManager, emu: Emulator, value: Any) -> None:
    result = run(pm, emu, params={"response_schema": value}, OpenAI_Response_Format="text")
    assert result.status == "Success", result.message
    assert chat_bodies(emu)[0]["response_format"] == WIRE_SCHEMA_FORMAT


@pytest.mark.parametrize("value", [None, ""], ids=["blank", "text"])
def test_text_or_blank_sends_no_response_format(pm: pluggy.PluginManager, emu: Emulator, value: str | None) -> None:
    attributes = {} if value is None else {"OpenAI_Response_Format": "text"}
    result = run(pm, emu, **attributes)
    assert "response_format" not in chat_bodies(emu)[0] and result.outputs["response_json"] is None


def test_an_answer_that_does_not_parse_is_failed_and_keeps_the_text(pm: pluggy.PluginManager, emu: Emulator) -> None:
    result = run(pm, emu, OpenAI_Response_Format=json.dumps(CITY_SCHEMA), OpenAI_Max_Tokens="3")
    assert result.status == "Failed" and result.run_id == "gpt-4o#sync#Failed"
    assert result.outputs["response"].startswith('{"city":') and result.outputs["response_json"] is None
    assert "not the JSON the response format asks for" in result.message
    assert "Fix: raise 'OpenAI Max Tokens'" in result.message


class NoFinishReason:
    """The real chat answer without its finish_reason (as a gateway or a Foundry model may send it)."""

    name = "no_finish_reason"

    def apply(self, exchange: Exchange) -> None:
        response = exchange.respond()
        payload = json.loads(response.body)
        del payload["choices"][0]["finish_reason"]
        exchange.send(attrs.evolve(response, body=json.dumps(payload).encode()))


def test_an_answer_that_does_not_parse_and_has_no_finish_reason_says_none(pm: pluggy.PluginManager, emu: Emulator) -> None:
    emu.inject(NoFinishReason(), kind="chat")
    result = run(pm, emu, OpenAI_Response_Format=json.dumps(CITY_SCHEMA), OpenAI_Max_Tokens="3")
    assert result.status == "Failed" and result.outputs["finish_reason"] is None
    assert "not the JSON the response format asks for (finish_reason none; the text is in 'response')" in result.message


def test_an_empty_response_schema_parameter_leaves_the_attribute_in_force(pm: pluggy.PluginManager, emu: Emulator) -> None:
    result = run(pm, emu, params={"response_schema": ""}, OpenAI_Response_Format=json.dumps(CITY_SCHEMA))
    assert result.status == "Success", result.message
    assert chat_bodies(emu)[0]["response_format"] == WIRE_SCHEMA_FORMAT


def test_a_schema_outside_the_strict_subset_is_failed_with_azures_message_and_the_fix(
    pm: pluggy.PluginManager, emu: Emulator
) -> None:
    open_schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    result = run(pm, emu, OpenAI_Response_Format=json.dumps(open_schema))
    assert result.status == "Failed"
    assert "HTTP 400" in result.message and "'additionalProperties' is required to be supplied" in result.message
    assert "Fix: Azure's strict structured output takes a schema" in result.message


def test_a_content_filtered_json_answer_is_a_success_without_json(pm: pluggy.PluginManager, emu: Emulator) -> None:
    result = run(pm, emu, params={"user_prompt": "EMULATOR_FILTER_OUTPUT as JSON"}, OpenAI_Response_Format="json_object")
    assert result.status == "Success" and result.outputs["finish_reason"] == "content_filter"
    assert result.outputs["response"] is None and result.outputs["response_json"] is None


@pytest.mark.parametrize("api_version", ["2024-08-01-preview", "2025-04-01-preview", "v1"])
def test_structured_output_runs_from_2024_08_01_preview_on(pm: pluggy.PluginManager, emu: Emulator, api_version: str) -> None:
    result = run(pm, emu, OpenAI_Response_Format=json.dumps(CITY_SCHEMA), platform={"OpenAI_API_Version": api_version})
    assert result.status == "Success", result.message


def test_json_mode_runs_on_older_dated_versions(pm: pluggy.PluginManager, emu: Emulator) -> None:
    result = run(
        pm,
        emu,
        OpenAI_Response_Format="json_object",
        OpenAI_System_Prompt="Answer in JSON.",
        platform={"OpenAI_API_Version": "2024-06-01"},
    )
    assert result.status == "Success", result.message


def test_reasoning_and_structured_output_together(pm: pluggy.PluginManager, emu: Emulator) -> None:
    result = run(
        pm,
        emu,
        "o3-mini",
        Model_Name="o3-mini",
        OpenAI_Reasoning_Effort="low",
        OpenAI_Response_Format=json.dumps(CITY_SCHEMA),
    )
    assert result.status == "Success", result.message
    assert result.outputs["reasoning_tokens"] == 32 and result.outputs["response_json"]["population"] == 7


def test_refusals_name_the_parameter_when_the_schema_comes_from_the_run(pm: pluggy.PluginManager, emu: Emulator) -> None:
    with pytest.raises(ConfigurationError, match="parameter 'response_schema'"):
        run(pm, emu, params={"response_schema": ["not", "an", "object"]})
    assert emu.requests == []


def schema_text_of(size: int) -> str:
    """CITY_SCHEMA as JSON text of exactly ``size`` UTF-8 bytes (padded in its description)."""
    text = json.dumps({**CITY_SCHEMA, "description": ""})
    return json.dumps({**CITY_SCHEMA, "description": "x" * (size - len(text))})


def test_a_schema_text_of_exactly_100_kib_is_sent(pm: pluggy.PluginManager, emu: Emulator) -> None:
    text = schema_text_of(100 * 1024)
    assert len(text.encode("utf-8")) == 102_400
    result = run(pm, emu, OpenAI_Response_Format=text)
    assert result.status == "Success", result.message
    assert chat_bodies(emu)[0]["response_format"]["json_schema"]["schema"] == json.loads(text)


OVERSIZED = schema_text_of(100 * 1024 + 1)
FORMS = 'text, json_object, or a JSON Schema written as a JSON object such as {"type": "object", ...}'


@pytest.mark.parametrize(
    ("attributes", "message"),
    [
        (
            {"OpenAI_Response_Format": "json_object"},
            "attribute 'OpenAI Response Format' is json_object, but neither the system prompt nor the user prompt "
            "mentions JSON, which Azure requires. Say in 'OpenAI System Prompt' what JSON to answer with (for example: "
            "Answer in JSON with the keys ...).",
        ),
        (
            {"OpenAI_Response_Format": OVERSIZED},
            "attribute 'OpenAI Response Format' has 102,401 bytes, more than the 102,400 a schema may have. "
            "Shorten the schema (share repeated parts through $defs), or leave it blank for a text answer.",
        ),
        (
            {"OpenAI_Response_Format": "{not json"},
            f"attribute 'OpenAI Response Format' is '{{not json', which is not JSON object text. Give {FORMS}.",
        ),
    ],
    ids=["json-mode-without-json", "schema-text-over-100-kib", "not-json"],
)
def test_response_format_refusals_say_what_is_wrong_and_the_fix_word_for_word(
    pm: pluggy.PluginManager, emu: Emulator, attributes: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigurationError) as info:
        run(pm, emu, **attributes)
    assert str(info.value) == f"Job 'gpt-4o': {message}"
    assert emu.requests == []
