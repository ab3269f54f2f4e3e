"""Azure OpenAI Embedding (spec §3, second-release §D)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, ClassVar, Final, NoReturn

from ..ids import json_type
from ..platform import PlatformConfig
from . import EMBEDDING
from .base import MAX_TEXT_CHARS, JobInput, Outcome, Prepared, SynchronousService, int_or_none, unusable_answer

#: Azure's limit of texts per embeddings call; more belong in the Batch job.
MAX_INPUTS: Final = 2048
DIMENSIONS: Final = "OpenAI Dimensions"
#: text-embedding-3 and later shorten their vectors on request; ada-002 and older refuse.
_DIMENSIONS_MODEL: Final = re.compile(r"text-embedding-([0-9]+)", re.ASCII | re.IGNORECASE)
#: Each model's own vector length: the most 'OpenAI Dimensions' may ask of it.
NATIVE_DIMENSIONS: Final = {"text-embedding-3-small": 1536, "text-embedding-3-large": 3072}
_ANY_DIMENSIONS: Final = 100_000


def takes_dimensions(model_name: str | None) -> bool:
    match = _DIMENSIONS_MODEL.match(model_name or "")
    return match is not None and int(match.group(1)) >= 3


class EmbeddingService(SynchronousService):
    name: ClassVar[str] = EMBEDDING
    operation: ClassVar[str] = "embeddings"
    path_suffix: ClassVar[str] = "embeddings"

    def prepare(self, job_input: JobInput, config: PlatformConfig) -> Prepared:
        texts = _texts(job_input)
        body: dict[str, Any] = {"input": texts}
        dimensions = _dimensions(job_input)
        if dimensions is not None:
            body["dimensions"] = dimensions
        return Prepared(body, many=isinstance(texts, list))

    def read_outputs(self, payload: Mapping[str, Any], request_id: str, prepared: Prepared) -> Outcome:
        data = payload.get("data")
        usage = payload.get("usage")
        if not isinstance(data, list) or not data:
            raise unusable_answer("has no data", request_id)
        if not isinstance(usage, dict):
            raise unusable_answer("has no usage", request_id)
        # Azure may order items freely: join on index.
        by_index = {d.get("index"): d.get("embedding") for d in data if isinstance(d, dict)}
        count = len(prepared.body["input"]) if prepared.many else 1
        vectors = [by_index.get(index) for index in range(count)]
        if not prepared.many and vectors[0] is None and isinstance(data[0], dict):
            vectors = [data[0].get("embedding")]
        for index, vector in enumerate(vectors):
            if not isinstance(vector, list) or not vector or not isinstance(vector[0], (int, float)):
                where = f"for input {index} " if prepared.many else ""
                raise unusable_answer(
                    f"has no embedding array {where}(base64 encoding is not requested by this plugin)", request_id
                )
        outputs = {
            "embedding": None if prepared.many else vectors[0],
            "embeddings": vectors if prepared.many else None,
            "prompt_tokens": int_or_none(usage.get("prompt_tokens")),
            "total_tokens": int_or_none(usage.get("total_tokens")),
        }
        size = len(vectors[0]) if vectors and isinstance(vectors[0], list) else 0
        what = f"{count} embeddings of {size} dimensions" if prepared.many else f"Embedding of {size} dimensions"
        return Outcome(outputs, f"{what}; {outputs['prompt_tokens']} prompt tokens (request id {request_id}).")


def _texts(job_input: JobInput) -> str | list[str]:
    """Exactly one of 'input' (one text) and 'inputs' (a list of texts), checked (second-release §D)."""
    # An empty string is how a host passes an optional parameter nobody set.
    given = [name for name in ("input", "inputs") if job_input.parameters.get(name) not in (None, "")]
    if len(given) == 2:
        raise job_input.fail(
            "parameters 'input' and 'inputs'",
            "are both given",
            "Give 'input' for one text or 'inputs' for a list of texts, not both.",
        )
    if not given:
        _neither(job_input)
    if given == ["input"]:
        return job_input.required_text("input")
    value = job_input.parameters["inputs"]
    if not isinstance(value, list):
        raise job_input.fail(
            "parameter 'inputs'", f"is {json_type(value)}, not a list", 'Pass a JSON array of texts, such as ["first", "second"].'
        )
    if not value:
        raise job_input.fail("parameter 'inputs'", "is an empty list", "Give 1 to 2,048 texts, or use 'input' for one.")
    if len(value) > MAX_INPUTS:
        raise job_input.fail(
            "parameter 'inputs'",
            f"has {len(value):,} texts, more than the {MAX_INPUTS:,} Azure embeds in one call",
            "Embed that many with the Azure OpenAI Batch Job, or split the list.",
        )
    for index, text in enumerate(value):
        where = f"parameter 'inputs', item {index},"
        if not isinstance(text, str):
            raise job_input.fail(where, f"is {json_type(text)}, not a string", "Make every item a text.")
        if not text.strip():
            raise job_input.fail(where, "is empty", "Remove empty texts: Azure refuses them.")
        job_input.check_encodable(where, text)
        if len(text) > MAX_TEXT_CHARS:
            raise job_input.fail(where, f"has {len(text):,} characters, more than the {MAX_TEXT_CHARS:,} allowed", "Shorten it.")
    return value


def _neither(job_input: JobInput) -> NoReturn:
    raise job_input.fail(
        "parameter 'input'",
        "is missing (and so is 'inputs')",
        "Give 'input' (one text) or 'inputs' (a list of texts) in the Task's parameters, or map one from an upstream task.",
    )


def _dimensions(job_input: JobInput) -> int | None:
    """``OpenAI Dimensions`` for a model that takes it (text-embedding-3 and later), else refused."""
    if job_input.attribute(DIMENSIONS) is None:
        return None
    model_name = job_input.attribute("Model Name")
    if not takes_dimensions(model_name):
        model = f"{model_name!r}" if model_name else "a model not named (attribute 'Model Name' is blank)"
        raise job_input.fail(
            f"attribute '{DIMENSIONS}'",
            f"is set, but {model} does not take dimensions: only text-embedding-3 models and later shorten their vectors",
            f"Leave '{DIMENSIONS}' blank for this job"
            + (", or re-run Import Jobs to fill 'Model Name'." if not model_name else "."),
        )
    assert model_name is not None
    return job_input.positive_int(DIMENSIONS, NATIVE_DIMENSIONS.get(model_name.lower(), _ANY_DIMENSIONS))
