"""Azure's answers: error shapes (spec §6, wire-samples §5), request ids, retry headers."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from polysync_azure_openai.http import error_detail, retry_after, retry_hint

CRID = "00000000-1111-2222-3333-444444444444"


def detail(status: int, body: object, headers: dict[str, str] | None = None):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return error_detail(status, headers or {}, raw, CRID)


def test_inference_envelope_with_content_filter() -> None:
    body = {
        "error": {
            "message": "The response was filtered due to the prompt triggering Azure OpenAI's content management policy.",
            "type": None,
            "param": "prompt",
            "code": "content_filter",
            "status": 400,
            "innererror": {
                "code": "ResponsibleAIPolicyViolation",
                "content_filter_result": {
                    "hate": {"filtered": False, "severity": "safe"},
                    "violence": {"filtered": True, "severity": "medium"},
                },
            },
        }
    }
    d = detail(400, body, {"apim-request-id": "apim-1", "x-request-id": "xr-1"})
    assert (d.status, d.code, d.request_id) == (400, "content_filter/ResponsibleAIPolicyViolation", "apim-1")
    assert d.message.startswith("The response was filtered") and "violence=medium" in d.message


def test_spec_spelling_inner_error_and_results() -> None:
    body = {
        "error": {
            "code": "content_filter",
            "message": "m",
            "inner_error": {
                "code": "ResponsibleAIPolicyViolation",
                "content_filter_results": {"sexual": {"filtered": True, "severity": "high"}},
            },
        }
    }
    assert "sexual=high" in detail(400, body).message


def test_deployment_not_found_and_string_404() -> None:
    d = detail(404, {"error": {"code": "DeploymentNotFound", "message": "The API deployment for this resource does not exist."}})
    assert (d.code, d.request_id) == ("DeploymentNotFound", CRID)
    d = detail(404, b'{"error":{"code":"404","message": "Resource not found"}}')
    assert (d.code, d.message) == ("404", "Resource not found")


def test_status_code_envelope_of_a_bad_token() -> None:
    d = detail(
        401,
        {
            "statusCode": 401,
            "message": "Unauthorized. Access token is missing, invalid, audience is incorrect (https://cognitiveservices.azure.com), or have expired.",
        },
    )
    assert d.status == 401 and d.code is None and "audience is incorrect" in d.message


def test_entra_oauth_envelope() -> None:
    d = detail(401, {"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret provided."})
    assert (d.code, d.message) == ("invalid_client", "AADSTS7000215: Invalid client secret provided.")


def test_batch_envelope_and_arm_envelope() -> None:
    d = detail(
        400, {"error": {"code": "invalidPayload", "message": "bad", "target": "input_file_id", "details": [], "innererror": None}}
    )
    assert (d.code, d.message) == ("invalidPayload", "bad")
    d = detail(
        403,
        {"error": {"code": "AuthorizationFailed", "message": "The client 'x' does not have authorization"}},
        {"x-ms-request-id": "arm-1"},
    )
    assert (d.code, d.request_id) == ("AuthorizationFailed", "arm-1")


@pytest.mark.parametrize(
    "body,content_type,expect_code,expect_text",
    [
        (b"<html><body><h1>502 Bad Gateway</h1></body></html>", "text/html", None, "502 Bad Gateway"),
        (
            b"<Error><Code>AuthenticationFailed</Code><Message>Bad</Message></Error>",
            "application/xml",
            "AuthenticationFailed",
            "<Message>Bad",
        ),
        (b"", "", None, "empty error body"),
        (b"x" * 2000, "text/plain", None, "x" * 500),
    ],
)
def test_non_json_bodies_keep_status_and_500_characters(
    body: bytes, content_type: str, expect_code: str | None, expect_text: str
) -> None:
    d = detail(502, body, {"Content-Type": content_type} if content_type else {})
    assert d.status == 502 and d.code == expect_code and expect_text in d.message
    assert "x" * 501 not in d.message


def test_request_id_preference_order() -> None:
    headers = {"x-ms-request-id": "c", "x-request-id": "b", "apim-request-id": "a"}
    assert detail(500, b"", headers).request_id == "a"
    assert detail(500, b"", {"x-ms-request-id": "c", "x-request-id": "b"}).request_id == "b"
    assert detail(500, b"", {"x-ms-request-id": "c"}).request_id == "c"


def test_echoed_secrets_are_redacted() -> None:
    body = {"error": {"code": "401", "message": "Access denied for key 0123456789abcdef0123456789abcdef"}}
    d = error_detail(401, {}, json.dumps(body).encode(), CRID, 1, ("0123456789abcdef0123456789abcdef",))
    assert "0123456789abcdef" not in d.message and "***" in d.message


def test_describe_has_everything_an_operator_needs() -> None:
    d = error_detail(429, {"apim-request-id": "r-1"}, b'{"error":{"code":"429","message":"Rate limit"}}', CRID, 4)
    assert d.describe() == "HTTP 429 429: Rate limit (request id r-1) after 4 attempts"


def test_retry_after_headers() -> None:
    assert retry_after({"retry-after-ms": "250"}) == 0.25
    assert retry_after({"x-ms-retry-after-ms": "1500"}) == 1.5
    assert retry_after({"retry-after": "6"}) == 6.0
    assert retry_after({"retry-after": "600"}) == 600.0  # decide weighs it against the budget
    assert retry_after({"retry-after-ms": "-1", "retry-after": "2"}) == 2.0
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 25 <= (retry_after({"retry-after": when}) or 0) <= 30
    assert retry_after({"retry-after": "soon"}) is None
    assert retry_after({}) is None


@pytest.mark.parametrize(
    "headers,seconds,exact,sent",
    [
        ({"retry-after-ms": "5500", "retry-after": "6"}, 5.5, True, "retry-after-ms: '5500', retry-after: '6'"),
        ({"retry-after": "6"}, 6.0, False, "retry-after: '6'"),
        # Neither: OpenAI's reset durations (the longer one), or Azure's plain seconds.
        ({"x-ratelimit-reset-requests": "850ms", "x-ratelimit-reset-tokens": "4s"}, 4.0, False, None),
        ({"x-ratelimit-reset-tokens": "1.25s"}, 1.25, True, None),
        ({"x-ratelimit-reset-tokens": "6m0s"}, 360.0, False, None),
        ({"x-ratelimit-reset-tokens": "1h2m3.5s"}, 3723.5, True, None),
        ({"x-rate-limit-reset-tokens": "55"}, 55.0, False, "x-rate-limit-reset-tokens: '55'"),
        # Malformed: shown as sent, never waited for.
        ({"retry-after": "-5"}, None, False, "retry-after: '-5'"),
        ({"retry-after-ms": "abc", "retry-after": "soon"}, None, False, "retry-after-ms: 'abc', retry-after: 'soon'"),
        ({"retry-after-ms": "inf"}, None, False, "retry-after-ms: 'inf'"),
        ({"retry-after": "1e400"}, None, False, "retry-after: '1e400'"),
        ({"x-ratelimit-reset-tokens": "-1"}, None, False, "x-ratelimit-reset-tokens: '-1'"),
        ({"x-ratelimit-reset-tokens": "soon"}, None, False, "x-ratelimit-reset-tokens: 'soon'"),
        ({"retry-after": "9" * 200}, 10.0**200 - 1, False, "retry-after: '" + "9" * 40 + "'"),
        ({}, None, False, ""),
    ],
)
def test_retry_hint_reads_every_shape_and_shows_what_was_sent(
    headers: dict[str, str], seconds: float | None, exact: bool, sent: str | None
) -> None:
    hint = retry_hint(headers)
    assert hint.seconds == (pytest.approx(seconds) if seconds is not None else None)
    assert hint.exact is exact
    if sent is not None:
        assert hint.sent == sent


def test_retry_hint_scrubs_what_it_shows() -> None:
    secret = "0123456789abcdef0123456789abcdef"
    hint = retry_hint({"retry-after": f"{secret}"}, (secret,))
    assert secret not in hint.sent and "***" in hint.sent
