"""The Azure OpenAI data plane: chat completions and embeddings, deterministic and strict.

Answers are derived from the request alone (hashes, word counts), so tests can predict them;
validation and error bodies follow what Azure sends (wire-samples.md §3-5). The HTTP routes and
the batch processor (batches.py) share one implementation: both end in :meth:`DataPlaneService.chat`
and :meth:`DataPlaneService.embed`, which turn a deployment and a JSON body into an :class:`Answer`.
"""

from __future__ import annotations

import array
import base64
import functools
import hashlib
import json
import math
import re
import secrets
import string
import time
from collections.abc import Callable
from typing import Any

import attrs

from .auth import bearer_token
from .ratelimit import OPERATIONS, estimated_tokens, shaped_headers, throttle_message
from .server import NOT_FOUND_BODY, Request, Response, Route, json_response, route
from .state import OPENAI_USER_ROLE, Deployment, EmulatorConfig, EmulatorState
from .structured import FormatError, check_response_format, json_answer

# The dated data-plane api-versions Azure OpenAI serves (inference and authoring, GA and preview),
# oldest first; the order is what "X and later" means. Anything else is refused at the gateway.
API_VERSIONS: tuple[str, ...] = (
    "2024-02-01",
    "2024-02-15-preview",
    "2024-03-01-preview",
    "2024-04-01-preview",
    "2024-05-01-preview",
    "2024-06-01",
    "2024-07-01-preview",
    "2024-08-01-preview",
    "2024-09-01-preview",
    "2024-10-01-preview",
    "2024-10-21",
    "2024-12-01-preview",
    "2025-01-01-preview",
    "2025-02-01-preview",
    "2025-03-01-preview",
    "2025-04-01-preview",
)
REASONING_MIN_API_VERSION = "2024-12-01-preview"
# Azure's v1 API (GA August 2025): no api-version, the deployment named by `model` in the body,
# every current model and feature; Foundry (non-OpenAI) models are served only here.
V1 = "v1"
V1_PREFIX = "/openai/v1/"
# Reasoning tokens a reasoning model spends per `reasoning_effort` (unset: medium). Fixed, so a
# test can pick a budget below or above the cost; real models vary around such values.
REASONING_TOKENS: dict[str, int] = {"none": 0, "minimal": 8, "low": 32, "medium": 96, "high": 256, "xhigh": 512}
_DEFAULT_REASONING_EFFORT = "medium"
# Sampling controls reasoning models refuse (wire-samples §8).
_REASONING_REFUSED = ("temperature", "top_p", "presence_penalty", "frequency_penalty", "logprobs", "top_logprobs", "logit_bias")
# Azure sells 1,000 tokens and 6 requests per minute per unit of deployment capacity.
TOKENS_PER_CAPACITY_UNIT = 1000
REQUESTS_PER_CAPACITY_UNIT = 6
BLOCK_MARKER = "EMULATOR_BLOCK"
FILTER_OUTPUT_MARKER = "EMULATOR_FILTER_OUTPUT"
# Roles whose data actions include inference.
_INFERENCE_ROLES = frozenset({OPENAI_USER_ROLE, "Cognitive Services OpenAI Contributor"})
_MESSAGE_ROLES = ("system", "user", "assistant", "developer")
_MAX_EMBEDDING_INPUTS = 2048
_DIMENSIONS_MODEL = re.compile(r"text-embedding-(?P<generation>[0-9]+)", re.IGNORECASE)
_OPERATIONS_LINK = "https://go.microsoft.com/fwlink/?linkid=2197993"
# Request fields Azure knows for each operation; anything else is "Unrecognized request argument".
_CHAT_FIELDS = frozenset(
    {
        "messages",
        "model",
        "max_tokens",
        "max_completion_tokens",
        "temperature",
        "top_p",
        "n",
        "stream",
        "stream_options",
        "stop",
        "presence_penalty",
        "frequency_penalty",
        "logit_bias",
        "user",
        "response_format",
        "seed",
        "tools",
        "tool_choice",
        "functions",
        "function_call",
        "logprobs",
        "top_logprobs",
        "parallel_tool_calls",
        "reasoning_effort",
        "store",
        "metadata",
        "data_sources",
        "prediction",
        "audio",
        "modalities",
        "user_security_context",
    }
)
_EMBEDDING_FIELDS = frozenset({"input", "model", "user", "encoding_format", "dimensions", "input_type"})
_PHRASES = (
    "the answer is seven",
    "the sky is clear today",
    "it depends on the context",
    "all systems are nominal",
    "the test passed",
    "a small step forward",
    "the tide is coming in",
    "nothing to report",
)
_SAFE = {"filtered": False, "severity": "safe"}
_NOT_DETECTED = {"filtered": False, "detected": False}
PROMPT_FILTER_RESULTS = {
    "hate": _SAFE,
    "jailbreak": _NOT_DETECTED,
    "self_harm": _SAFE,
    "sexual": _SAFE,
    "violence": _SAFE,
}
COMPLETION_FILTER_RESULTS = {
    "hate": _SAFE,
    "protected_material_code": _NOT_DETECTED,
    "protected_material_text": _NOT_DETECTED,
    "self_harm": _SAFE,
    "sexual": _SAFE,
    "violence": _SAFE,
}


@attrs.frozen
class Answer:
    """An operation's outcome before it becomes HTTP: a status and a JSON payload.

    The HTTP routes send it as is; a batch writes it into an output or error line.
    """

    status: int
    payload: dict[str, Any]

    def response(self) -> Response:
        return json_response(self.status, self.payload)


def api_version_at_least(version: str, minimum: str) -> bool:
    """Whether a known api-version is `minimum` or later; the v1 API is later than every dated one."""
    return version == V1 or API_VERSIONS.index(version) >= API_VERSIONS.index(minimum)


def is_v1(request: Request) -> bool:
    """Whether the request is on the v1 API's paths (`/openai/v1/...`)."""
    return request.path.startswith(V1_PREFIX)


def ratelimit_headers(capacity: int, tokens: int) -> dict[str, str]:
    """What an unlimited deployment reports left of its minute: its capacity, never spent.

    A deployment given a rate limit (ratelimit.py) reports what its window really has left.
    """
    return {
        "x-ratelimit-remaining-requests": str(max(0, capacity * REQUESTS_PER_CAPACITY_UNIT - 1)),
        "x-ratelimit-remaining-tokens": str(max(0, capacity * TOKENS_PER_CAPACITY_UNIT - tokens)),
    }


class InvalidRequest(Exception):
    """A 400 `invalid_request_error` with OpenAI's message, param and code."""

    def __init__(self, message: str, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code

    def answer(self) -> Answer:
        return Answer(
            400,
            {
                "error": {
                    "message": self.message,
                    "type": "invalid_request_error",
                    "param": self.param,
                    "code": self.code,
                }
            },
        )

    def response(self) -> Response:
        return self.answer().response()


class BadRequest(InvalidRequest):
    """A 400 in the Azure gateway's own envelope (`code` BadRequest, no type or param)."""

    def answer(self) -> Answer:
        return Answer(400, {"error": {"code": "BadRequest", "message": self.message}})


def prompt_blocked() -> Answer:
    """Azure's 400 for a prompt the content filter blocks: `innererror`, singular `content_filter_result`."""
    return Answer(
        400,
        {
            "error": {
                "message": "The response was filtered due to the prompt triggering Azure OpenAI's content "
                "management policy. Please modify your prompt and retry. To learn more about our content "
                "filtering policies please read our documentation: https://go.microsoft.com/fwlink/?linkid=2198766",
                "type": None,
                "param": "prompt",
                "code": "content_filter",
                "status": 400,
                "innererror": {
                    "code": "ResponsibleAIPolicyViolation",
                    "content_filter_result": {
                        "hate": _SAFE,
                        "jailbreak": _NOT_DETECTED,
                        "self_harm": _SAFE,
                        "sexual": _SAFE,
                        "violence": {"filtered": True, "severity": "medium"},
                    },
                },
            }
        },
    )


def count_tokens(text: str) -> int:
    """The emulator's tokenizer: whitespace-separated words, deterministic and easy to predict."""
    return len(text.split())


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "decimal"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _a_json_type(value: object) -> str:
    kind = _json_type(value)
    return f"an {kind}" if kind[0] in "aeiou" else f"a {kind}"


def _invalid_type(param: str, expected: str, value: object) -> InvalidRequest:
    return InvalidRequest(
        f"Invalid type for '{param}': expected {expected}, but got {_a_json_type(value)} instead.",
        param,
        "invalid_type",
    )


def read_json_object(request: Request) -> dict[str, Any]:
    """The body as a JSON object, refused the way the OpenAI front end refuses it."""
    content_type = request.content_type()
    if content_type != "application/json":
        shown = request.header("content-type") or ""
        raise InvalidRequest(
            f"Unsupported content type: '{content_type}'. This API method only accepts "
            f"'application/json' requests, but you specified the header 'Content-Type: {shown}'. "
            "Please try again with a supported content type.",
            None,
            "unsupported_content_type",
        )
    try:
        body = json.loads(request.body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise InvalidRequest(
            "We could not parse the JSON body of your request. (HINT: This likely means you aren't "
            "using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was "
            "sent was not valid JSON.)"
        ) from None
    if not isinstance(body, dict):
        raise InvalidRequest(
            f"Invalid type for request body: expected an object, but got {_a_json_type(body)} instead.",
            None,
            "invalid_type",
        )
    return body


def _reject_fields(body: dict[str, Any], allowed: frozenset[str]) -> None:
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise InvalidRequest(f"Unrecognized request argument supplied: {unknown[0]}")


def _positive_int(body: dict[str, Any], name: str) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _invalid_type(name, "an integer", value)
    if value < 1:
        raise InvalidRequest(
            f"Invalid '{name}': integer below minimum value. Expected a value >= 1, but got {value} instead.",
            name,
            "integer_below_min_value",
        )
    return value


def _validate_messages(body: dict[str, Any]) -> list[dict[str, str]]:
    messages = body.get("messages")
    if messages is None:
        raise InvalidRequest("Missing required parameter: 'messages'.", "messages", "missing_required_parameter")
    if not isinstance(messages, list):
        raise _invalid_type("messages", "an array", messages)
    if not messages:
        raise InvalidRequest(
            "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.",
            "messages",
            "empty_array",
        )
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        if not isinstance(message, dict):
            raise _invalid_type(where, "an object", message)
        role = message.get("role")
        if role is None:
            raise InvalidRequest(f"Missing required parameter: '{where}.role'.", f"{where}.role", "missing_required_parameter")
        if role not in _MESSAGE_ROLES:
            raise InvalidRequest(
                f"Invalid value: '{role}'. Supported values are: 'system', 'assistant', 'user', and 'developer'.",
                f"{where}.role",
                "invalid_value",
            )
        if "content" not in message:
            raise InvalidRequest(
                f"Missing required parameter: '{where}.content'.", f"{where}.content", "missing_required_parameter"
            )
        if not isinstance(message["content"], str):
            raise _invalid_type(f"{where}.content", "a string", message["content"])
    return messages


def _validate_temperature(body: dict[str, Any]) -> None:
    value = body.get("temperature")
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _invalid_type("temperature", "a decimal", value)
    if value < 0:
        raise InvalidRequest(
            f"Invalid 'temperature': decimal below minimum value. Expected a value >= 0, but got {value} instead.",
            "temperature",
            "decimal_below_min_value",
        )
    if value > 2:
        raise InvalidRequest(
            f"Invalid 'temperature': decimal above maximum value. Expected a value <= 2, but got {value} instead.",
            "temperature",
            "decimal_above_max_value",
        )


def _reject_sampling(body: dict[str, Any]) -> None:
    if "max_tokens" in body:
        raise InvalidRequest(
            "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.",
            "max_tokens",
            "unsupported_parameter",
        )
    for param in _REASONING_REFUSED:
        if param in body:
            raise InvalidRequest(
                f"Unsupported parameter: '{param}' is not supported with this model.", param, "unsupported_parameter"
            )


def _reasoning_effort(body: dict[str, Any], deployment: Deployment) -> str | None:
    """The effort a reasoning model reasons with (None: the model does not reason)."""
    value = body.get("reasoning_effort")
    if not deployment.is_reasoning:
        if value is not None:
            raise InvalidRequest(
                "Unsupported parameter: 'reasoning_effort' is not supported with this model.",
                "reasoning_effort",
                "unsupported_parameter",
            )
        return None
    if value is None:
        return _DEFAULT_REASONING_EFFORT
    if not isinstance(value, str):
        raise _invalid_type("reasoning_effort", "a string", value)
    if value not in REASONING_TOKENS:
        supported = ", ".join(f"'{name}'" for name in REASONING_TOKENS)
        raise InvalidRequest(f"Invalid value: '{value}'. Supported values are: {supported}.", "reasoning_effort", "invalid_value")
    return value


def _response_format(body: dict[str, Any], messages: list[dict[str, str]], api_version: str | None) -> dict[str, Any] | None:
    """The JSON format the answer must take (None: text); a refused one as Azure words it."""
    try:
        return check_response_format(
            body, messages, lambda minimum: api_version is None or api_version_at_least(api_version, minimum)
        )
    except FormatError as refused:
        if refused.gateway:
            raise BadRequest(refused.message) from None
        raise InvalidRequest(refused.message, refused.param, refused.code) from None


def _takes_dimensions(model: str) -> bool:
    """Only text-embedding-3 and later shorten their vectors (ada-002 and Foundry models refuse)."""
    match = _DIMENSIONS_MODEL.match(model)
    return match is not None and int(match["generation"]) >= 3


def _model_of(body: dict[str, Any]) -> str:
    """The deployment a v1 request names in `model`."""
    model = body.get("model")
    if model is None:
        raise InvalidRequest("Missing required parameter: 'model'.", "model", "missing_required_parameter")
    if not isinstance(model, str):
        raise _invalid_type("model", "a string", model)
    return model


# Small: a vector costs ~0.2 ms to derive (its JSON costs four times that) but ~50 kB to keep.
@functools.lru_cache(maxsize=256)
def embedding_vector(text: str, dimensions: int) -> tuple[float, ...]:
    """A unit vector derived from the text alone: equal texts embed equally, different ones differ."""
    # SHAKE-256 yields as many bytes as needed in one call; 16-bit lanes centred on zero.
    raw = hashlib.shake_256(text.encode("utf-8")).digest(2 * dimensions)
    lanes = array.array("H", raw)
    centred = [lane - 32767.5 for lane in lanes]
    norm = math.sqrt(math.fsum(value * value for value in centred))
    return tuple(value / norm for value in centred)


def _random_id(prefix: str, length: int = 29) -> str:
    alphabet = string.ascii_letters + string.digits
    return prefix + "".join(secrets.choice(alphabet) for _ in range(length))


class DataPlaneService:
    def __init__(self, config: EmulatorConfig, state: EmulatorState) -> None:
        self._config = config
        self._state = state

    def routes(self) -> list[Route]:
        deployment = r"/openai/deployments/(?P<deployment>[^/]+)"
        return [
            route("POST", deployment + r"/chat/completions", "chat", self.chat_completions),
            route("POST", deployment + r"/embeddings", "embeddings", self.embeddings),
            route("POST", V1_PREFIX + "chat/completions", "chat", self.chat_completions),
            route("POST", V1_PREFIX + "embeddings", "embeddings", self.embeddings),
        ]

    def authorize(self, request: Request) -> Response | None:
        """None when the request may call the data plane, else the 400, 404 or 401 Azure would give.

        Files and batches use the same gateway, hence the same rules, as inference. The v1 API
        takes no api-version, and takes an API key as a bearer token too (the openai SDK's way).
        """
        api_version = request.query.get("api-version")
        v1 = is_v1(request)
        if v1:
            if api_version is not None:
                return BadRequest("API version not supported").response()
        elif not api_version:
            # Without an api-version the gateway selects no API: 404 before any auth.
            return Response(404, NOT_FOUND_BODY)
        elif api_version not in API_VERSIONS:
            return BadRequest("API version not supported").response()
        key = request.header("api-key")
        bearer = bearer_token(request.headers)
        if key is None and v1 and bearer is not None and self._state.has_api_key(bearer):
            key = bearer
        if key is not None:
            if self._state.has_api_key(key):
                return None
            return json_response(
                401,
                {
                    "error": {
                        "code": "401",
                        "message": "Access denied due to invalid subscription key or wrong API endpoint. Make "
                        "sure to provide a valid key for an active subscription and use a correct regional "
                        "API endpoint for your resource.",
                    }
                },
            )
        issued = None if bearer is None else self._state.lookup_token(bearer)
        cloud = self._config.cloud
        if issued is None or issued.is_expired() or not cloud.accepts_for_data_plane(issued.audience):
            return json_response(
                401,
                {
                    "statusCode": 401,
                    "message": "Unauthorized. Access token is missing, invalid, audience is incorrect "
                    f"({cloud.data_plane_audience_display}), or have expired.",
                },
            )
        principal = self._state.principal(issued.client_id)
        if principal is None or not principal.roles & _INFERENCE_ROLES:
            return json_response(
                401,
                {
                    "error": {
                        "code": "PermissionDenied",
                        "message": "Principal does not have access to API/Operation.",
                    }
                },
            )
        return None

    def callable_deployment(self, name: str, operation: str, *, in_batch: bool = False, v1: bool = True) -> Deployment | Answer:
        """The deployment if it can run `operation` (`chatCompletion`, `embeddings`), else Azure's refusal.

        Batch-only deployments (Global Batch) take batch lines but no synchronous calls. Foundry
        models are not Azure OpenAI deployments on the dated paths (`v1` False): our reading
        [unverified] is that those answer as for a deployment that does not exist.
        """
        deployment = self._state.deployment(name)
        if deployment is None or deployment.provisioning_state != "Succeeded" or not (v1 or deployment.is_openai):
            return Answer(
                404,
                {
                    "error": {
                        "code": "DeploymentNotFound",
                        "message": "The API deployment for this resource does not exist. If you created the "
                        "deployment within the last 5 minutes, please wait a moment and try again.",
                    }
                },
            )
        if (deployment.is_batch_only and not in_batch) or not deployment.supports(operation):
            return Answer(
                400,
                {
                    "error": {
                        "code": "OperationNotSupported",
                        "message": f"The {operation} operation does not work with the specified model, "
                        f"{deployment.model}. Please choose different model and try again. You can learn "
                        f"more about which models can be used with each operation here: {_OPERATIONS_LINK}.",
                    }
                },
            )
        return deployment

    def chat_completions(self, request: Request, match: re.Match[str]) -> Response:
        # Read only once authorize has passed: a dated request then has a known api-version.
        return self._operation(
            request,
            match["deployment"] if "deployment" in match.re.groupindex else None,
            "chatCompletion",
            lambda deployment, body: self.chat(
                deployment, body, api_version=V1 if is_v1(request) else request.query["api-version"]
            ),
        )

    def embeddings(self, request: Request, match: re.Match[str]) -> Response:
        return self._operation(
            request, match["deployment"] if "deployment" in match.re.groupindex else None, "embeddings", self.embed
        )

    def _operation(
        self, request: Request, name: str | None, capability: str, answer: Callable[[Deployment, dict[str, Any]], Answer]
    ) -> Response:
        """Auth, then the deployment, then the body, in the order Azure checks them.

        On the v1 API (`name` None) the body names the deployment, so it is read first.
        """
        refused = self.authorize(request)
        if refused is not None:
            return refused
        body: dict[str, Any] | None = None
        if name is None:
            try:
                body = read_json_object(request)
                name = _model_of(body)
            except InvalidRequest as invalid:
                return invalid.response()
        deployment = self.callable_deployment(name, capability, v1=is_v1(request))
        if isinstance(deployment, Answer):
            return deployment.response()
        if body is None:
            try:
                body = read_json_object(request)
            except InvalidRequest as invalid:
                return invalid.response()
        quota = self._quota(request, deployment, body, capability)
        if isinstance(quota, Response):
            return quota
        result = answer(deployment, body)
        usage = result.payload.get("usage") if result.status == 200 else None
        tokens = usage.get("total_tokens", 0) if isinstance(usage, dict) else 0
        return json_response(result.status, result.payload, {**ratelimit_headers(deployment.capacity, tokens), **quota})

    def _quota(
        self, request: Request, deployment: Deployment, body: dict[str, Any], capability: str
    ) -> Response | dict[str, str]:
        """The deployment's rate limit (ratelimit.py): Azure's 429, or what is left after this request.

        A request the limit lets through counts whatever its answer (a 400 reached the
        deployment); a throttled one costs nothing.
        """
        verdict = self._state.rate_limits.take(deployment.name, estimated_tokens(body))
        if verdict is None:
            return {}
        left = {
            name: str(max(0, value))
            for name, value in (
                ("x-ratelimit-remaining-requests", verdict.remaining_requests),
                ("x-ratelimit-remaining-tokens", verdict.remaining_tokens),
            )
            if value is not None
        }
        if verdict.allowed:
            return left
        operation = OPERATIONS["chat" if capability == "chatCompletion" else "embeddings"]
        message = throttle_message(
            math.ceil(verdict.wait), operation, request.query.get("api-version") or "v1", verdict.exhausted
        )
        headers = {**left, **shaped_headers(verdict.shape, verdict.wait)}
        return json_response(429, {"error": {"code": "429", "message": message}}, headers)

    def chat(
        self, deployment: Deployment, body: dict[str, Any], *, created: int | None = None, api_version: str | None = None
    ) -> Answer:
        """A chat completion for a validated request body (`created` defaults to real time).

        `api_version` is the one the request named; None (a batch line) skips the version rules.
        """
        try:
            if (
                api_version is not None
                and deployment.is_reasoning
                and not api_version_at_least(api_version, REASONING_MIN_API_VERSION)
            ):
                raise BadRequest(
                    f"Model {deployment.model} is enabled only for api versions {REASONING_MIN_API_VERSION} and later"
                )
            _reject_fields(body, _CHAT_FIELDS)
            if deployment.is_reasoning:
                _reject_sampling(body)
            messages = _validate_messages(body)
            max_tokens = _positive_int(body, "max_tokens")
            max_completion_tokens = _positive_int(body, "max_completion_tokens")
            _validate_temperature(body)
            effort = _reasoning_effort(body, deployment)
            response_format = _response_format(body, messages, api_version)
            if body.get("stream") not in (None, False):
                raise InvalidRequest("The emulator does not stream; leave 'stream' unset.", "stream", "unsupported_value")
        except InvalidRequest as invalid:
            return invalid.answer()

        user_texts = [message["content"] for message in messages if message["role"] == "user"]
        if any(BLOCK_MARKER in text for text in user_texts):
            return prompt_blocked()
        prompt_tokens = sum(count_tokens(message["content"]) + 4 for message in messages) + 3
        answer = self._answer(messages, user_texts, response_format)
        words = answer.split()
        limit = max_completion_tokens or max_tokens
        # Reasoning comes first and counts against the same budget as the visible answer.
        reasoning_tokens = REASONING_TOKENS[effort] if effort is not None else 0
        if limit is not None:
            reasoning_tokens = min(reasoning_tokens, limit)
        visible_limit = None if limit is None else limit - reasoning_tokens
        content: str | None = answer
        finish_reason = "stop"
        completion_tokens = reasoning_tokens + len(words)
        choice_filters: dict[str, Any] = COMPLETION_FILTER_RESULTS
        if any(FILTER_OUTPUT_MARKER in text for text in user_texts):
            content = None
            finish_reason = "content_filter"
            choice_filters = {**COMPLETION_FILTER_RESULTS, "violence": {"filtered": True, "severity": "medium"}}
        elif visible_limit is not None and visible_limit < len(words):
            # A budget spent on reasoning leaves an empty string, not null.
            content = " ".join(words[:visible_limit])
            finish_reason = "length"
            completion_tokens = reasoning_tokens + visible_limit
        fingerprint = hashlib.sha256(deployment.model_label.encode()).hexdigest()[:10]
        return Answer(
            200,
            {
                "id": _random_id("chatcmpl-"),
                "object": "chat.completion",
                "created": int(time.time()) if created is None else created,
                "model": deployment.model_label,
                "system_fingerprint": f"fp_{fingerprint}",
                "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": PROMPT_FILTER_RESULTS}],
                "choices": [
                    {
                        "index": 0,
                        "finish_reason": finish_reason,
                        "logprobs": None,
                        "message": {"role": "assistant", "content": content, "refusal": None},
                        "content_filter_results": choice_filters,
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                    "prompt_tokens_details": {"audio_tokens": 0, "cached_tokens": 0},
                    "completion_tokens_details": {
                        "accepted_prediction_tokens": 0,
                        "audio_tokens": 0,
                        "reasoning_tokens": reasoning_tokens,
                        "rejected_prediction_tokens": 0,
                    },
                },
            },
        )

    @staticmethod
    def _answer(messages: list[dict[str, str]], user_texts: list[str], response_format: dict[str, Any] | None) -> str:
        digest = hashlib.sha256(json.dumps(messages, sort_keys=True).encode("utf-8")).digest()
        phrase = _PHRASES[digest[0] % len(_PHRASES)]
        if response_format is not None:
            return json_answer(response_format, phrase)
        echo = " ".join(user_texts[-1].split()[:6]) if user_texts else ""
        return f"Emulated answer: {phrase}. You said: {echo}" if echo else f"Emulated answer: {phrase}."

    def embed(self, deployment: Deployment, body: dict[str, Any]) -> Answer:
        """Embeddings for a validated request body."""
        try:
            _reject_fields(body, _EMBEDDING_FIELDS)
            texts = self._inputs(body)
            dimensions = self._dimensions(body, deployment)
            encoding = body.get("encoding_format", "float")
            if encoding not in ("float", "base64"):
                raise InvalidRequest(
                    f"Invalid value: '{encoding}'. Supported values are: 'float' and 'base64'.",
                    "encoding_format",
                    "invalid_value",
                )
        except InvalidRequest as invalid:
            return invalid.answer()
        data = []
        for index, text in enumerate(texts):
            vector = embedding_vector(text, dimensions)
            embedding: Any = (
                base64.b64encode(array.array("f", vector).tobytes()).decode("ascii") if encoding == "base64" else vector
            )
            data.append({"object": "embedding", "index": index, "embedding": embedding})
        tokens = sum(max(1, count_tokens(text)) for text in texts)
        return Answer(
            200,
            {
                "object": "list",
                "model": deployment.model,
                "data": data,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            },
        )

    @staticmethod
    def _inputs(body: dict[str, Any]) -> list[str]:
        value = body.get("input")
        if value is None:
            raise InvalidRequest("Missing required parameter: 'input'.", "input", "missing_required_parameter")
        texts = [value] if isinstance(value, str) else value
        if not isinstance(texts, list):
            raise _invalid_type("input", "a string or an array of strings", value)
        if not texts:
            raise InvalidRequest(
                "Invalid 'input': empty array. Expected an array with minimum length 1, but got an empty array instead.",
                "input",
                "empty_array",
            )
        if len(texts) > _MAX_EMBEDDING_INPUTS:
            raise InvalidRequest(
                f"Invalid 'input': array too long. Expected an array with maximum length "
                f"{_MAX_EMBEDDING_INPUTS}, but got an array with length {len(texts)} instead.",
                "input",
                "array_above_max_length",
            )
        for index, text in enumerate(texts):
            where = "input" if isinstance(value, str) else f"input[{index}]"
            if not isinstance(text, str):
                raise _invalid_type(where, "a string", text)
            if not text:
                raise InvalidRequest(
                    f"Invalid '{where}': empty string. Expected a string with minimum length 1, but got an empty string instead.",
                    where,
                    "empty_string",
                )
        return texts

    def _dimensions(self, body: dict[str, Any], deployment: Deployment) -> int:
        # text-embedding-3-large's own vectors are twice as long (3,072 for Azure's 1,536).
        native = self._config.embedding_dimensions * (2 if "text-embedding-3-large" in deployment.model.lower() else 1)
        value = body.get("dimensions")
        if value is None:
            return native
        if not _takes_dimensions(deployment.model):
            raise InvalidRequest("This model does not support specifying dimensions.", "dimensions")
        if isinstance(value, bool) or not isinstance(value, int):
            raise _invalid_type("dimensions", "an integer", value)
        if not 1 <= value <= native:
            raise InvalidRequest(
                f"Invalid 'dimensions': expected a value between 1 and {native}, but got {value} instead.",
                "dimensions",
                "invalid_value",
            )
        return value
