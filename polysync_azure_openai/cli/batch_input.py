"""Checks a batch input file (JSONL) before it is uploaded, one line at a time.

Azure validates an uploaded batch file only after the batch starts, and then reports one
opaque failure for the whole batch. These checks find the same mistakes locally, each with its
line number: invalid JSON or UTF-8 (a byte order mark included), duplicate ``custom_id``s, a
``method`` other than POST, a ``url`` that differs from the batch endpoint (``/chat/completions``
or ``/embeddings``, with ``/v1`` in front for the v1 API), a ``body`` without a
``model`` or with a second one, and Azure's limits of 100,000 requests and 200 MB per file
(wire-samples.md §7). Pure: no network, and memory grows only with the number of ``custom_id``s.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable
from typing import Any, Final

import attrs

from ..errors import ConfigurationError
from ..ids import DEPLOYMENT_NAME
from ..jobs import BATCH_ENDPOINTS

log = logging.getLogger(__name__)

MAX_REQUESTS: Final = 100_000
#: Azure's "200 MB" per input file, read as MiB (the larger reading would let a file through that Azure refuses).
MAX_BYTES: Final = 200 * 1024 * 1024
DEFAULT_MAX_PROBLEMS: Final = 20
#: Each endpoint in the dated API's form and in the v1 API's (second-release §B).
URLS: Final = (*BATCH_ENDPOINTS, *(f"/v1{endpoint}" for endpoint in BATCH_ENDPOINTS))
BOM: Final = b"\xef\xbb\xbf"
_SHOWN: Final = 60


@attrs.frozen
class Problem:
    """One thing Azure would refuse; ``line`` is None for a problem of the whole file."""

    line: int | None
    message: str

    def describe(self) -> str:
        return f"line {self.line}: {self.message}" if self.line is not None else self.message


@attrs.frozen
class InputReport:
    """What the check found: the requests, their endpoint and deployment, and the problems."""

    source: str
    requests: int
    size: int
    endpoint: str | None
    model: str | None
    problems: tuple[Problem, ...]
    #: Problems found beyond the ones kept in ``problems``.
    more_problems: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


def validate_file(
    path: str | os.PathLike[str],
    *,
    endpoint: str | None = None,
    deployment: str | None = None,
    max_problems: int = DEFAULT_MAX_PROBLEMS,
) -> InputReport:
    """Check the file at ``path``; an unreadable file raises ConfigurationError."""
    try:
        with open(path, "rb") as handle:
            return validate_lines(
                handle, source=os.fspath(path), endpoint=endpoint, deployment=deployment, max_problems=max_problems
            )
    except OSError as exc:
        raise ConfigurationError(f"Batch input file {os.fspath(path)} cannot be read ({exc.strerror}). Check the path.") from None


def validate_lines(
    lines: Iterable[bytes],
    *,
    source: str,
    endpoint: str | None = None,
    deployment: str | None = None,
    max_problems: int = DEFAULT_MAX_PROBLEMS,
) -> InputReport:
    """Check raw JSONL lines (as a binary file yields them).

    ``endpoint`` is the batch endpoint every ``url`` must equal (default: the first line's);
    ``deployment``, when given, is the deployment every ``model`` must name (default: one model,
    the first line's).
    """
    if endpoint is not None and endpoint not in URLS:
        raise ConfigurationError(f"Batch endpoint {endpoint[:_SHOWN]!r} is not one Azure batches serve. Use {', '.join(URLS)}.")
    if deployment is not None and not DEPLOYMENT_NAME.fullmatch(deployment):
        raise ConfigurationError(
            f"Deployment {deployment[:_SHOWN]!r} is not a deployment name (1-64 letters, digits, '.', '-' or '_'). "
            "Give the name of the batch deployment the file is meant for."
        )
    checker = _Checker(endpoint, deployment, max_problems)
    for number, raw in enumerate(lines, start=1):
        checker.line(number, raw)
    report = checker.finish(source)
    log.info("Checked %s: %d requests, %d problems", source, report.requests, len(report.problems) + report.more_problems)
    return report


class _Checker:
    def __init__(self, endpoint: str | None, deployment: str | None, max_problems: int) -> None:
        self.endpoint = endpoint
        self.endpoint_from = "the batch endpoint given"
        self.model = deployment
        self.model_from = "the deployment given"
        self.max_problems = max_problems
        self.problems: list[Problem] = []
        self.more = 0
        self.requests = 0
        self.size = 0
        self.oversize_reported = False
        self.custom_ids: dict[str, int] = {}

    def problem(self, line: int | None, message: str) -> None:
        if len(self.problems) < self.max_problems:
            self.problems.append(Problem(line, message))
        else:
            self.more += 1

    def line(self, number: int, raw: bytes) -> None:
        self.size += len(raw)
        if self.size > MAX_BYTES and not self.oversize_reported:
            self.oversize_reported = True
            self.problem(number, f"passes Azure's limit of {MAX_BYTES // (1024 * 1024)} MB per input file; split the file")
        if number == 1 and raw.startswith(BOM):
            self.problem(
                1,
                "the file starts with a UTF-8 byte order mark (BOM), which Azure refuses; save it as UTF-8 without BOM",
            )
            raw = raw[len(BOM) :]
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            self.problem(
                number, f"is not valid UTF-8 (byte {raw[exc.start]:#04x} at byte {exc.start + 1}); save the file as UTF-8"
            )
            return
        if not text.strip():
            self.problem(number, "is empty; every line must be one request (remove blank lines)")
            return
        try:
            request = json.loads(text, parse_constant=_reject_constant)
        except RecursionError:
            self.problem(number, "nests JSON too deeply to read (about 1,000 levels or more); flatten the request")
            return
        except ValueError as exc:
            reason = f"{exc.msg} at column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else str(exc)
            self.problem(number, f"is not valid JSON ({reason})")
            return
        if not isinstance(request, dict):
            self.problem(number, f"is a JSON {_json_type(request)}, not an object with custom_id, method, url and body")
            return
        self.requests += 1
        if self.requests == MAX_REQUESTS + 1:
            self.problem(number, f"is request {self.requests:,}: Azure takes at most {MAX_REQUESTS:,} per file; split the file")
        self.check_custom_id(number, request.get("custom_id"))
        method = request.get("method")
        if method != "POST":
            self.problem(number, f'method is {_as_json(method)}; batch requests must have "method": "POST"')
        url = self.check_url(number, request.get("url"))
        self.check_body(number, request.get("body"), url)

    def check_custom_id(self, number: int, custom_id: Any) -> None:
        if not isinstance(custom_id, str) or not custom_id:
            self.problem(number, f"custom_id is {_as_json(custom_id)}; give every request a unique, non-empty text custom_id")
            return
        first = self.custom_ids.setdefault(custom_id, number)
        if first != number:
            self.problem(number, f"custom_id {_as_json(custom_id)} is already used on line {first}; custom_ids must be unique")

    def check_url(self, number: int, url: Any) -> str | None:
        if not isinstance(url, str) or url not in URLS:
            self.problem(number, f"url is {_as_json(url)}; use {' or '.join(BATCH_ENDPOINTS)} (with /v1 in front for the v1 API)")
            return None
        if self.endpoint is None:
            self.endpoint, self.endpoint_from = url, f"line {number}"
        elif url != self.endpoint:
            self.problem(
                number, f"url {url!r} differs from {self.endpoint!r} ({self.endpoint_from}); one batch serves one endpoint"
            )
            return None  # the body's shape is judged only against the batch's endpoint
        return url

    def check_body(self, number: int, body: Any, url: str | None) -> None:
        if not isinstance(body, dict):
            self.problem(number, f"body is {_as_json(body)}; it must be a JSON object with the request, model included")
            return
        model = body.get("model")
        if not isinstance(model, str) or not DEPLOYMENT_NAME.fullmatch(model):
            self.problem(number, f"body.model is {_as_json(model)}; set it to the name of the batch deployment")
        elif self.model is None:
            self.model, self.model_from = model, f"line {number}"
        elif model != self.model:
            self.problem(
                number, f"body.model {model!r} differs from {self.model!r} ({self.model_from}); a file serves one deployment"
            )
        operation = url.removeprefix("/v1") if url else None
        if operation == "/chat/completions" and not (isinstance(body.get("messages"), list) and body["messages"]):
            self.problem(number, "body.messages is missing or empty; a chat request needs a list of messages")
        if operation == "/embeddings" and body.get("input") in (None, "", []):
            self.problem(number, "body.input is missing or empty; an embeddings request needs the text to embed")

    def finish(self, source: str) -> InputReport:
        if self.requests == 0 and not self.problems:
            self.problem(None, "the file has no requests; write one JSON request per line")
        return InputReport(
            source=source,
            requests=self.requests,
            size=self.size,
            endpoint=self.endpoint,
            model=self.model,
            problems=tuple(self.problems),
            more_problems=self.more,
        )


def _reject_constant(name: str) -> Any:
    # Python's json accepts NaN and Infinity; Azure's parser does not.
    raise ValueError(f"{name} is not valid JSON")


def _json_type(value: Any) -> str:
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool) or value is None:
        return "literal"
    return "number"


def _as_json(value: Any) -> str:
    """A value from the file as JSON text, cut short: the file's own notation, not Python's."""
    if value is None:
        return "missing"
    try:
        text = json.dumps(value, ensure_ascii=False)
    except RecursionError:
        return "a deeply nested value"
    return text if len(text) <= _SHOWN else text[:_SHOWN] + "..."
