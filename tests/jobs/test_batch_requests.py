"""Bad ``requests`` (second-release §G): each row names the item or attribute, says what is wrong and
the fix, and sends nothing; its valid twin, one value corrected, reaches the emulator."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from typing import Any

import pluggy
import pytest

from polysync_azure_openai.cli.host import Job, Platform
from polysync_azure_openai.emulator import Emulator
from polysync_azure_openai.errors import ConfigurationError
from polysync_azure_openai.jobs import BATCH
from polysync_azure_openai.platform import PlatformConfig

from ..conftest import emulator_attributes, sp_platform

OK = ["Question?"]


@dataclasses.dataclass(frozen=True)
class Row:
    id: str
    bad: Any  # the requests value
    good: Any
    expect: tuple[str, ...]
    attributes: dict[str, str] = dataclasses.field(default_factory=dict)
    good_attributes: dict[str, str] | None = None  # None: the same attributes


def item(index: int) -> str:
    return f"parameter 'requests' item {index}"


ROWS = [
    Row("not-an-array", "Question?", OK, ("parameter 'requests'", "is a string, not a JSON array")),
    Row("an-object", {"user_prompt": "hi"}, OK, ("parameter 'requests'", "an object, not a JSON array")),
    Row("empty", [], OK, ("parameter 'requests'", "is an empty array", "Give at least one request, or do not run the job.")),
    Row("too-many", ["x"] * 2_000_001, OK, ("parameter 'requests'", "2,000,001 items", "2,000,000")),
    Row("empty-string-item", ["ok", ""], ["ok", "x"], (item(1), "empty 'user_prompt'")),
    Row("blank-string-item", ["ok", " \u3000\n"], ["ok", " x "], (item(1), "empty 'user_prompt'")),
    Row("blank-prompt", [{"user_prompt": "  "}], OK, (item(0), "empty 'user_prompt'")),
    Row("no-prompt", ["a", {"system_prompt": "x"}], ["a", {"user_prompt": "x"}], (item(1), "neither 'user_prompt' nor 'body'")),
    Row("number-item", ["a", "b", 5], ["a", "b", "5"], (item(2), "is a number")),
    Row("prompt-list", [{"user_prompt": ["a"]}], OK, (item(0), "'user_prompt' that is a list")),
    Row("body-text", [{"body": "hi"}], [{"body": {"messages": [{"role": "user", "content": "hi"}]}}], (item(0), "'body' that is a string")),
    Row("body-no-messages", [{"body": {"messages": []}}], [{"body": {"messages": [{"role": "user", "content": "hi"}]}}], (item(0), "body.messages")),
    Row("body-stream", [{"body": {"messages": [{"role": "user", "content": "hi"}], "stream": True}}], [{"body": {"messages": [{"role": "user", "content": "hi"}]}}], (item(0), "stream")),
    Row("prompt-and-body", [{"user_prompt": "a", "body": {}}], [{"user_prompt": "a"}], (item(0), "which 'body' items do not take")),
    Row("unknown-key", [{"user_prompt": "a", "temprature": 1}], [{"user_prompt": "a", "temperature": 1}], (item(0), "'temprature'", "Use only")),
    Row("unknown-long-key", [{"user_prompt": "a", "k" * 50: 1}], [{"user_prompt": "a"}], (item(0), f"has '{'k' * 40}...', which 'user_prompt' items do not take",)),
    Row("duplicate-id", [{"user_prompt": "a", "custom_id": "x"}, {"user_prompt": "b", "custom_id": "x"}], [{"user_prompt": "a", "custom_id": "x"}, {"user_prompt": "b", "custom_id": "y"}], (item(1), "custom_id 'x', as item 0 has", "Make every custom_id unique.")),
    Row("default-id-clash", [{"user_prompt": "a", "custom_id": "row-1"}, "b"], [{"user_prompt": "a", "custom_id": "row-0"}, "b"], (item(0), "the default of item 1")),
    Row("default-id-clash-object", [{"user_prompt": "a", "custom_id": "row-1"}, {"user_prompt": "b"}], [{"user_prompt": "a", "custom_id": "row-0"}, {"user_prompt": "b"}], (item(0), "the default of item 1")),
    Row("prompt-too-long", [{"user_prompt": "x" * 1_000_001}], [{"user_prompt": "x" * 1_000_000}], (item(0), "'user_prompt' of 1,000,001 characters", "more than 1,000,000")),
    Row("string-prompt-too-long", ["x" * 1_000_001], ["x" * 1_000_000], (item(0), "is 1,000,001 characters, more than 1,000,000")),
    Row("long-id", [{"user_prompt": "a", "custom_id": "i" * 65}], [{"user_prompt": "a", "custom_id": "i" * 64}], (item(0), "65 characters", "64")),
    Row("empty-id", [{"user_prompt": "a", "custom_id": ""}], [{"user_prompt": "a"}], (item(0), "empty custom_id", "'row-0'")),
    Row("number-id", [{"user_prompt": "a", "custom_id": 7}], [{"user_prompt": "a", "custom_id": "7"}], (item(0), "custom_id that is a number", "Give a text custom_id.")),
    Row("max-tokens-zero", [{"user_prompt": "a", "max_tokens": 0}], [{"user_prompt": "a", "max_tokens": 1}], (item(0), "max_tokens 0")),
    Row("max-tokens-bool", [{"user_prompt": "a", "max_tokens": True}], [{"user_prompt": "a", "max_tokens": 1}], (item(0), "max_tokens true")),
    Row("temperature-high", [{"user_prompt": "a", "temperature": 2.5}], [{"user_prompt": "a", "temperature": 2}], (item(0), "temperature 2.5", "0 to 2")),
    Row("temperature-nan", [{"user_prompt": "a", "temperature": float("nan")}], [{"user_prompt": "a", "temperature": 0}], (item(0), "temperature")),
    Row("effort-unknown", [{"user_prompt": "a", "reasoning_effort": "extreme"}], [{"user_prompt": "a", "reasoning_effort": "low"}], (item(0), "reasoning_effort", "xhigh"), {"Model Name": "o3-mini", "Deployment Name": "o3-mini"}),
    Row("effort-not-reasoning", [{"user_prompt": "a", "reasoning_effort": "low"}], [{"user_prompt": "a"}], (item(0), "only reasoning models take"), {"Model Name": "gpt-4o"}),
    Row("temperature-reasoning", [{"user_prompt": "a", "temperature": 1}], [{"user_prompt": "a"}], (item(0), "a reasoning model refuses"), {"Model Name": "o3-mini", "Deployment Name": "o3-mini"}),
    Row("body-max-tokens-reasoning", [{"body": {"messages": [{"role": "user", "content": "a"}], "max_tokens": 5}}], [{"body": {"messages": [{"role": "user", "content": "a"}], "max_completion_tokens": 5}}], (item(0), "body.max_tokens", "max_completion_tokens"), {"Model Name": "o3-mini", "Deployment Name": "o3-mini"}),
    Row("response-format-xml", [{"user_prompt": "a", "response_format": "xml"}], [{"user_prompt": "a in JSON", "response_format": "json_object"}], (item(0), "response_format", "json_object")),
    Row("json-mode-without-json", ["a", {"user_prompt": "Question?", "response_format": "json_object"}], ["a", {"user_prompt": "Answer in JSON.", "response_format": "json_object"}], (item(1), "no message mentions JSON")),
    Row("json-mode-attribute-without-json", ["Question?"], ["Answer in json."], (item(0), "no message mentions JSON"), {"OpenAI Response Format": "json_object"}),
    Row("response-format-list", [{"user_prompt": "a", "response_format": ["json"]}], [{"user_prompt": "a", "response_format": {"type": "object"}}], (item(0), "response_format")),
    Row("lone-surrogate", ["fine", "broken \ud83d"], ["fine", "whole \U0001f600"], (item(1), "lone surrogate")),
    Row("embedding-empty-input", [{"input": ""}], [{"input": "text"}], (item(0), "empty 'input'"), {"OpenAI Batch Endpoint": "/embeddings", "Deployment Name": "embed-small"}),
    Row("embedding-no-input", ["ok", {"custom_id": "x"}], ["ok", {"input": "x"}], (item(1), "has no 'input'"), {"OpenAI Batch Endpoint": "/embeddings", "Deployment Name": "embed-small"}),
    Row("embedding-prompt-key", [{"user_prompt": "x"}], [{"input": "x"}], (item(0), "'user_prompt'", "embeddings items"), {"OpenAI Batch Endpoint": "/embeddings", "Deployment Name": "embed-small"}),
    # -- attributes that shape the run ------------------------------------------------------------
    Row("over-20-shards", ["q"] * 21, ["q"] * 20, ("parameter 'requests'", "more than 20 shards", "'OpenAI Max Requests Per Batch'"), {"OpenAI Max Requests Per Batch": "1"}),
    Row("per-batch-zero", OK, OK, ("'OpenAI Max Requests Per Batch'", "'0'", "from 1 to 100000"), {"OpenAI Max Requests Per Batch": "0"}, {"OpenAI Max Requests Per Batch": "300"}),
    Row("per-batch-decimal", OK, OK, ("'OpenAI Max Requests Per Batch'", "'1.5'"), {"OpenAI Max Requests Per Batch": "1.5"}, {"OpenAI Max Requests Per Batch": "2"}),
    Row("per-batch-over-azure", OK, OK, ("'OpenAI Max Requests Per Batch'", "'100001'"), {"OpenAI Max Requests Per Batch": "100001"}, {"OpenAI Max Requests Per Batch": "100000"}),
    Row("results-mb-zero", OK, OK, ("'OpenAI Max Results MB'", "'0'"), {"OpenAI Max Results MB": "0"}, {"OpenAI Max Results MB": "1"}),
    Row("results-mb-text", OK, OK, ("'OpenAI Max Results MB'", "'sixteen'"), {"OpenAI Max Results MB": "sixteen"}, {"OpenAI Max Results MB": "16"}),
    Row("effort-attribute", OK, OK, ("'OpenAI Reasoning Effort'", "xhigh"), {"OpenAI Reasoning Effort": "max", "Model Name": "o3-mini", "Deployment Name": "o3-mini"}, {"Model Name": "o3-mini", "Deployment Name": "o3-mini", "OpenAI Reasoning Effort": "high"}),
    Row("format-attribute", OK, OK, ("'OpenAI Response Format'", "JSON Schema"), {"OpenAI Response Format": "[1]"}, {"OpenAI Response Format": '{"type": "object"}'}),
    Row("temperature-attribute-reasoning", OK, OK, ("'OpenAI Temperature'", "reasoning model"), {"OpenAI Temperature": "1", "Model Name": "o3-mini", "Deployment Name": "o3-mini"}, {"Model Name": "o3-mini", "Deployment Name": "o3-mini"}),
    Row("endpoint-model-mismatch", OK, OK, ("'OpenAI Batch Endpoint'", "needs an embedding model", "'gpt-4o'", "Set 'OpenAI Batch Endpoint' to match the deployment's model, or use another deployment."), {"OpenAI Batch Endpoint": "/embeddings", "Model Name": "gpt-4o"}, {"Model Name": "gpt-4o"}),
    Row("endpoint-chat-model-mismatch", OK, OK, ("'OpenAI Batch Endpoint'", "needs a chat model", "'text-embedding-3-small'"), {"Model Name": "text-embedding-3-small"}, {"Model Name": "gpt-4o"}),
]  # fmt: skip


def call(pm: pluggy.PluginManager, emu: Emulator, requests: Any, attributes: dict[str, str]) -> Any:
    job = Job(job_type=BATCH, external_id="gpt-4o-batch::batch", name="validation job", attributes=attributes)
    return pm.hook.submit(platform=sp_platform(emu), job=job, parameters={"requests": requests}, run_key="run-key-1")


def test_every_kind_of_bad_item_has_a_row() -> None:
    assert len(ROWS) >= 40
    assert len({r.id for r in ROWS}) == len(ROWS)


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_bad_requests_are_refused_before_any_request(pm: pluggy.PluginManager, emu: Emulator, row: Row) -> None:
    with pytest.raises(ConfigurationError) as info:
        call(pm, emu, row.bad, row.attributes)
    message = str(info.value)
    for fragment in row.expect:
        assert fragment in message, message
    assert message.startswith("Job 'validation job'"), message
    assert "." in message.rstrip(".")  # a sentence of problem, then a fix
    assert emu.requests == []

    result = call(pm, emu, row.good, row.attributes if row.good_attributes is None else row.good_attributes)
    assert result.status == "Running", result.message
    assert emu.requests, "the valid twin sent nothing: the row proves nothing"


O3 = {"Model Name": "o3-mini", "Deployment Name": "o3-mini"}
NOT_A_FORMAT = "has a response_format that is neither 'text', 'json_object' nor a JSON Schema"


@pytest.mark.parametrize(
    ("bad", "attributes", "message"),
    [
        ({"response_format": "xml"}, {}, f"{NOT_A_FORMAT} as JSON object text. Use text, json_object or a JSON Schema object."),
        ({"response_format": ["json"]}, {}, f"{NOT_A_FORMAT} object. Use text, json_object or a JSON Schema object."),
        (
            {"reasoning_effort": "extreme"},
            O3,
            'has a reasoning_effort that is "extreme": use one of none, minimal, low, medium, high, xhigh. Or leave it out.',
        ),
        (  # a long value is shown cut to 80 characters of its JSON
            {"reasoning_effort": "e" * 200},
            O3,
            f'has a reasoning_effort that is "{"e" * 79}: use one of none, minimal, low, medium, high, xhigh. Or leave it out.',
        ),
    ],
    ids=["format-text-not-json", "format-not-an-object", "effort-unknown", "effort-long"],
)
def test_an_items_bad_option_is_refused_word_for_word(
    pm: pluggy.PluginManager, emu: Emulator, bad: dict[str, Any], attributes: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigurationError) as info:
        call(pm, emu, [{"user_prompt": "a", **bad}], attributes)
    assert str(info.value) == f"Job 'validation job': {item(0)} {message}"
    assert emu.requests == []


@pytest.mark.parametrize(
    "attributes",
    [
        {},
        {"OpenAI System Prompt": 'Say "hi" \\ then\nstop', "OpenAI Max Tokens": "64", "OpenAI Temperature": "0.5"},
        {"OpenAI Response Format": '{"type": "object", "properties": {"a": {"type": "string"}}}'},
        {"Model Name": "o3-mini", "OpenAI Reasoning Effort": "low", "OpenAI Max Tokens": "9"},
        {"OpenAI Batch Endpoint": "/embeddings"},
        # Texts equal to the template's own placeholders, before and after the prompt.
        {"OpenAI System Prompt": "\ue000text\ue001"},
        {"OpenAI System Prompt": "\ue000id\ue001"},
        {"OpenAI Response Format": '{"type": "object", "properties": {"a": {"enum": ["\ue000text\ue001", "\ue000id\ue001"]}}}'},
    ],
)
def test_a_string_item_is_written_as_its_object_form_would_be(attributes: dict[str, str]) -> None:
    from polysync_azure_openai.jobs.base import JobInput
    from polysync_azure_openai.jobs.batch_items import LineBuilder, encode

    job = Job(job_type=BATCH, external_id="d::batch", name="j", attributes=attributes)
    endpoint = attributes.get("OpenAI Batch Endpoint", "/chat/completions")
    config = PlatformConfig.from_host(
        Platform(name="p", auth_method="API Key", attributes={"OpenAI Resource Name": "res", "API Key": "k" * 32})
    )
    builder = LineBuilder(JobInput(job), config, "d", config.surface.batch_endpoint(endpoint), endpoint)
    key = "user_prompt" if endpoint == "/chat/completions" else "input"
    for index, text in enumerate(
        [
            "plain",
            'a "quoted" \\ back\nslash\t',
            "ünï 🙂 \u2028 </script>",
            "\x00\x1f",
            "\x7f ÿ",
            "é\\",
            ' \t"',
            "\ue000text\ue001",
        ]
    ):
        general = encode(builder, index, builder.line(index, {key: text})[1])
        assert builder.plain_line(index, text) == general


REASONING = {"Model Name": "o3-mini", "Deployment Name": "o3-mini"}
ONE_MESSAGE = [{"role": "user", "content": "a"}]

#: (id, the item, the job's attributes, the whole message after "Job 'validation job': parameter 'requests' item 0 ").
EXACT = [
    ("max-tokens-text", {"user_prompt": "a", "max_tokens": "é"}, {}, 'has max_tokens "é". Use a whole number from 1 to 10000000.'),
    ("max-tokens-80-chars-shown-whole", {"user_prompt": "a", "max_tokens": "a" * 78}, {}, f'has max_tokens "{"a" * 78}". Use a whole number from 1 to 10000000.'),
    ("max-tokens-81-chars-cut-at-80", {"user_prompt": "a", "max_tokens": "a" * 79}, {}, f'has max_tokens "{"a" * 79}.... Use a whole number from 1 to 10000000.'),
    ("max-tokens-past-ten-million", {"user_prompt": "a", "max_tokens": 10_000_001}, {}, "has max_tokens 10000001. Use a whole number from 1 to 10000000."),
    ("temperature-high", {"user_prompt": "a", "temperature": 2.5}, {}, "has temperature 2.5. Use a number from 0 to 2."),
    ("temperature-reasoning", {"user_prompt": "a", "temperature": 1}, REASONING, "has a temperature, which a reasoning model refuses. Leave temperature out."),
    ("effort-unknown", {"user_prompt": "a", "reasoning_effort": "extreme"}, REASONING, 'has a reasoning_effort that is "extreme": use one of none, minimal, low, medium, high, xhigh. Or leave it out.'),
    ("effort-not-reasoning", {"user_prompt": "a", "reasoning_effort": "low"}, {"Model Name": "gpt-4o"}, "has a reasoning_effort, which only reasoning models take. Leave it out."),
    ("no-prompt", {"system_prompt": "x"}, {}, "has neither 'user_prompt' nor 'body'. Give the user prompt as 'user_prompt'."),
    ("body-text", {"body": "hi"}, {}, "has a 'body' that is a string, not an object. Give the complete request body."),
    ("body-no-messages", {"body": {"messages": []}}, {}, "has a 'body' without a non-empty list of message objects. Set body.messages."),
    ("body-stream", {"body": {"messages": ONE_MESSAGE, "stream": True}}, {}, "has a 'body' that asks to stream, which batches cannot. Leave body.stream out."),
    ("body-top-p-reasoning", {"body": {"messages": ONE_MESSAGE, "top_p": 1}}, REASONING, "has body.top_p, which a reasoning model refuses. Use max_completion_tokens instead of max_tokens, and leave sampling settings out."),
]  # fmt: skip


@pytest.mark.parametrize(("item", "attributes", "expected"), [e[1:] for e in EXACT], ids=[e[0] for e in EXACT])
def test_a_bad_item_s_message_is_exactly_its_problem_and_fix(
    pm: pluggy.PluginManager, emu: Emulator, item: Any, attributes: dict[str, str], expected: str
) -> None:
    """The whole message: the value in JSON's notation (UTF-8 as is, cut after 80 characters), the
    problem, then the fix as a sentence of its own."""
    with pytest.raises(ConfigurationError) as info:
        call(pm, emu, [item], attributes)
    assert str(info.value) == f"Job 'validation job': parameter 'requests' item 0 {expected}"
    assert emu.requests == []


#: (id, the requests value, the whole message after "Job 'validation job': parameter 'requests' ").
REQUESTS_EXACT = [
    ("empty", [], "is an empty array. Give at least one request, or do not run the job."),
    ("number-item", [5], "item 0 is a number. Give the user prompt as a string, or an object with 'user_prompt' (or a complete 'body')."),
    ("two-unknown-keys", [{"user_prompt": "a", "temprature": 1, "top_k": 2}], "item 0 has 'temprature', 'top_k', which 'user_prompt' items do not take. Use only custom_id, max_tokens, reasoning_effort, response_format, system_prompt, temperature, user_prompt."),
    # An item's own custom_id of another form ('mine') does not end the look for default clashes.
    ("default-id-clash-after-an-own-id", ["b", {"user_prompt": "a", "custom_id": "mine"}, {"user_prompt": "c", "custom_id": "row-0"}], "item 2 has custom_id 'row-0', the default of item 0, which sets none. Make every custom_id unique: give item 0 its own, or rename this one."),
    ("string-prompt-too-long", ["x" * 1_000_001], "item 0 is 1,000,001 characters, more than 1,000,000. Shorten it."),
]  # fmt: skip


@pytest.mark.parametrize(("requests", "expected"), [e[1:] for e in REQUESTS_EXACT], ids=[e[0] for e in REQUESTS_EXACT])
def test_a_refused_requests_value_s_message_is_exactly_its_problem_and_fix(
    pm: pluggy.PluginManager, emu: Emulator, requests: Any, expected: str
) -> None:
    """The whole message of a refusal of the array or of an item's form: the problem, then the fix."""
    with pytest.raises(ConfigurationError) as info:
        call(pm, emu, requests, {})
    assert str(info.value) == f"Job 'validation job': parameter 'requests' {expected}"
    assert emu.requests == []


def test_an_item_s_own_limits_and_effort_reach_its_line(pm: pluggy.PluginManager, emu: Emulator) -> None:
    """max_tokens up to 10,000,000 is taken, and an item's reasoning_effort is sent as given."""
    requests = [
        {"user_prompt": "a", "max_tokens": 10_000_000, "reasoning_effort": "low"},
        {"user_prompt": "b", "reasoning_effort": "high"},
    ]
    result = call(pm, emu, requests, REASONING)
    assert result.status == "Running", result.message
    (upload,) = [f for f in emu.file_listing() if f["filename"].endswith("-1.jsonl")]
    bodies = [json.loads(line)["body"] for line in emu.file_content(upload["id"]).decode().splitlines()]
    assert [(b.get("max_completion_tokens"), b["reasoning_effort"]) for b in bodies] == [(10_000_000, "low"), (None, "high")]


def test_an_item_s_empty_or_null_system_prompt_drops_the_job_s_default(pm: pluggy.PluginManager, emu: Emulator) -> None:
    """README: each item key overrides the job attribute, and "system_prompt": "" drops the default."""
    requests = [
        {"user_prompt": "a"},
        {"user_prompt": "b", "system_prompt": ""},
        {"user_prompt": "c", "system_prompt": None},
        {"user_prompt": "d", "system_prompt": "Be brief."},
    ]
    result = call(pm, emu, requests, {"OpenAI System Prompt": "Be kind."})
    assert result.status == "Running", result.message
    (upload,) = [f for f in emu.file_listing() if f["filename"].endswith("-1.jsonl")]
    bodies = [json.loads(line)["body"] for line in emu.file_content(upload["id"]).decode().splitlines()]
    assert [[(m["role"], m["content"]) for m in b["messages"]] for b in bodies] == [
        [("system", "Be kind."), ("user", "a")],
        [("user", "b")],
        [("user", "c")],
        [("system", "Be brief."), ("user", "d")],
    ]


@pytest.mark.parametrize("per_batch,rows,limit", [(1, 21, "1 request"), (2, 41, "2 requests")])
def test_more_than_20_shards_names_both_shard_limits_and_the_fix(
    pm: pluggy.PluginManager, emu: Emulator, per_batch: int, rows: int, limit: str
) -> None:
    with pytest.raises(ConfigurationError) as info:
        call(pm, emu, ["q"] * rows, {"OpenAI Max Requests Per Batch": str(per_batch)})
    assert str(info.value) == (
        f"Job 'validation job': parameter 'requests' needs more than 20 shards (at most {limit} and 200 MB per shard)."
        " Split the rows over several runs, or raise 'OpenAI Max Requests Per Batch'."
    )
    assert emu.requests == []


def test_exactly_2_000_000_items_are_not_refused_for_their_number(pm: pluggy.PluginManager, emu: Emulator) -> None:
    """The item limit is inclusive: 2,000,000 items pass the count check and go on to be written
    (one request per batch stops them cheaply at the 21st shard), one more is refused for its count."""
    with pytest.raises(ConfigurationError) as info:
        call(pm, emu, ["q"] * 2_000_000, {"OpenAI Max Requests Per Batch": "1"})
    assert "needs more than 20 shards" in str(info.value) and "items, more than" not in str(info.value)
    assert emu.requests == []


@pytest.mark.parametrize(
    ("requests", "ids"),
    [
        ([{"user_prompt": "a", "custom_id": "row-2"}, "b"], ["row-2", "row-1"]),
        ([{"user_prompt": "a", "custom_id": "row-1"}, {"user_prompt": "b", "custom_id": "mine"}], ["row-1", "mine"]),
    ],
    ids=["past-the-last-item", "item-sets-its-own"],
)
def test_a_custom_id_of_the_default_form_clashes_only_with_an_item_that_takes_that_default(
    pm: pluggy.PluginManager, emu: Emulator, requests: list[Any], ids: list[str]
) -> None:
    """'row-2' in a run of two items is no item's default, and 'row-1' is not item 1's when item 1
    sets a custom_id of its own: either is sent as given."""
    result = call(pm, emu, requests, {})
    assert result.status == "Running", result.message
    (upload,) = [f for f in emu.file_listing() if f["filename"].endswith("-1.jsonl")]
    sent = [json.loads(line)["custom_id"] for line in emu.file_content(upload["id"]).decode().splitlines()]
    assert sent == ids


#: (id, the job's attributes, the whole message after "Job 'validation job': ").
ATTRIBUTE_EXACT = [
    ("endpoint-needs-an-embedding-model", {"OpenAI Batch Endpoint": "/embeddings", "Model Name": "gpt-4o"}, "attribute 'OpenAI Batch Endpoint' is '/embeddings', which needs an embedding model, but 'Model Name' is 'gpt-4o'. Set 'OpenAI Batch Endpoint' to match the deployment's model, or use another deployment."),
    ("effort-on-a-non-reasoning-model", {"Model Name": "gpt-4o", "OpenAI Reasoning Effort": "low"}, "attribute 'OpenAI Reasoning Effort' is set, but 'gpt-4o' (attribute 'Model Name') is not a reasoning model (o1, o3, o4, gpt-5). Leave 'OpenAI Reasoning Effort' blank for this job."),
    ("max-tokens-not-a-number", {"OpenAI Max Tokens": "many"}, "attribute 'OpenAI Max Tokens' is 'many'. Use a whole number from 1 to 10000000 (no sign, no decimals), or leave it blank."),
]  # fmt: skip


@pytest.mark.parametrize(("attributes", "expected"), [e[1:] for e in ATTRIBUTE_EXACT], ids=[e[0] for e in ATTRIBUTE_EXACT])
def test_a_bad_job_attribute_s_message_is_exactly_its_problem_and_fix(
    pm: pluggy.PluginManager, emu: Emulator, attributes: dict[str, str], expected: str
) -> None:
    """The job attributes that are every item's defaults are checked before any call, as the Chat
    Completion job checks them."""
    with pytest.raises(ConfigurationError) as info:
        call(pm, emu, OK, attributes)
    assert str(info.value) == f"Job 'validation job': {expected}"
    assert emu.requests == []


@pytest.mark.parametrize(
    ("attributes", "key"), [({}, "max_tokens"), (REASONING, "max_completion_tokens")], ids=["chat-model", "reasoning-model"]
)
def test_the_job_s_max_tokens_is_every_item_s_default(
    pm: pluggy.PluginManager, emu: Emulator, attributes: dict[str, str], key: str
) -> None:
    """'OpenAI Max Tokens' reaches the line of a string item and of an object item without its own;
    an item's max_tokens overrides it (sent as max_completion_tokens to a reasoning model)."""
    requests = ["a", {"user_prompt": "b"}, {"user_prompt": "c", "max_tokens": 5}]
    result = call(pm, emu, requests, {**attributes, "OpenAI Max Tokens": "64"})
    assert result.status == "Running", result.message
    (upload,) = [f for f in emu.file_listing() if f["filename"].endswith("-1.jsonl")]
    bodies = [json.loads(line)["body"] for line in emu.file_content(upload["id"]).decode().splitlines()]
    assert [b.get(key) for b in bodies] == [64, 64, 5]
    assert all({"max_tokens", "max_completion_tokens"} & set(b) == {key} for b in bodies)


SCHEMA_ITEM = {"type": "object", "properties": {"a": {"type": "string"}}}


def test_an_item_s_json_schema_on_a_dated_version_before_structured_output_is_refused_by_index(
    pm: pluggy.PluginManager, emu: Emulator
) -> None:
    """Azure serves a JSON Schema response_format from 2024-08-01-preview: on an older dated
    version the item that asks for one is refused before any call, named by its index."""
    job = Job(job_type=BATCH, external_id="gpt-4o-batch::batch", name="validation job")
    requests = ["JSON please", {"user_prompt": "JSON please", "response_format": SCHEMA_ITEM}]
    with pytest.raises(ConfigurationError) as info:
        pm.hook.submit(
            platform=sp_platform(emu, OpenAI_API_Version="2024-07-01-preview"),
            job=job,
            parameters={"requests": requests},
            run_key="run-key-1",
        )
    assert str(info.value) == (
        "Job 'validation job': parameter 'requests' item 1 asks for structured output (a JSON Schema), which Azure "
        "serves only on api-version 2024-08-01-preview and later, not on '2024-07-01-preview'. "
        "Set the platform's 'OpenAI API Version' to v1 (or blank), or use json_object."
    )
    assert emu.requests == []


@pytest.mark.parametrize(
    ("api_version", "response_format", "sent"),
    [
        ("2024-07-01-preview", "json_object", {"type": "json_object"}),
        ("2024-07-01-preview", "text", None),
        ("2024-08-01-preview", SCHEMA_ITEM, "json_schema"),
    ],
    ids=["json-object-before-structured-output", "text-before-structured-output", "schema-from-its-first-version"],
)
def test_an_item_s_response_format_that_its_dated_version_serves_is_sent(
    pm: pluggy.PluginManager, emu: Emulator, api_version: str, response_format: Any, sent: Any
) -> None:
    """json_object (and text) are served on every dated version; a JSON Schema from 2024-08-01-preview."""
    job = Job(job_type=BATCH, external_id="gpt-4o-batch::batch", name="validation job")
    result = pm.hook.submit(
        platform=sp_platform(emu, OpenAI_API_Version=api_version),
        job=job,
        parameters={"requests": [{"user_prompt": "Answer in JSON.", "response_format": response_format}]},
        run_key="run-key-1",
    )
    assert result.status == "Running", result.message
    (upload,) = [f for f in emu.file_listing() if f["filename"].endswith("-1.jsonl")]
    (line,) = [json.loads(x) for x in emu.file_content(upload["id"]).decode().splitlines()]
    got = line["body"].get("response_format")
    assert (got["type"] if isinstance(got, dict) and sent == "json_schema" else got) == sent


SPOOL = """
import json, os, resource, sys, tempfile
from polysync_azure_openai.cli.host import Job, Platform, plugin_manager

spec = json.load(sys.stdin)
if spec["disk"] == "full":
    # A file size limit fails a write mid-file as a full disk does (Python ignores SIGXFSZ).
    resource.setrlimit(resource.RLIMIT_FSIZE, (1024 * 1024, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
elif spec["disk"] == "gone":
    tempfile.gettempdir()  # known, then removed under the worker, as a temp cleaner may
    os.rmdir(os.environ["TMPDIR"])
platform = Platform(name="emulator", auth_method="Service Principal", attributes=spec["attributes"])
job = Job(job_type=spec["job_type"], external_id="gpt-4o-batch::batch", name="spool job")
try:
    result = plugin_manager().hook.submit(platform=platform, job=job, parameters={"requests": spec["requests"]}, run_key="k")
except Exception as exc:
    json.dump({"raised": type(exc).__name__, "message": str(exc)}, sys.stdout)
else:
    json.dump({"status": result.status}, sys.stdout)
"""


@pytest.mark.parametrize("disk", ["full", "gone", "fine"])
def test_a_worker_disk_that_cannot_take_the_jsonl_is_a_clear_error_before_any_call(
    emu: Emulator, tmp_path: Any, disk: str
) -> None:
    """Submit writes the JSONL to the temporary directory before the first upload: a write that fails
    there names the parameter, the directory and TMPDIR, sends nothing and leaves no file behind."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    spec = {
        "attributes": emulator_attributes(emu),  # the secret goes through stdin, never argv
        "job_type": BATCH,
        "disk": disk,
        "requests": [f"Question {i}: " + "x" * 1000 for i in range(2000)],  # about 2.3 MB of JSONL
    }
    child = subprocess.run(
        [sys.executable, "-c", SPOOL],
        input=json.dumps(spec),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "TMPDIR": str(scratch)},
    )
    assert child.returncode == 0, child.stderr
    answer = json.loads(child.stdout)
    if disk == "fine":  # the same child, with room: it uploads, so the refusals above are the disk's
        assert answer == {"status": "Running"}
        assert emu.requests
        return
    assert answer["raised"] == "ConfigurationError"
    message = answer["message"]
    assert message.startswith("Job 'spool job': parameter 'requests' could not be written as batch JSONL: ")
    if disk == "full":
        assert f"writing to the temporary directory {scratch}/polysync-requests-" in message
        assert "failed (File too large) after 1.0 MB." in message
        assert list(scratch.iterdir()) == []  # the partial shard is removed
    else:
        assert "no temporary directory could be made (No such file or directory)." in message
    assert message.endswith(
        "Submit writes every shard's JSONL there (up to 200 MB a shard) before the first upload: "
        "free space there, or set TMPDIR to a disk with room for it."
    )
    assert emu.requests == []
