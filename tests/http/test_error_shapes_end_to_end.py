"""Azure's error shapes as an operator reads them in a failed run (spec §6, wire-samples §5).

Each answer comes from the emulator over TLS; the run message must keep the status, the code,
the message's substance and the request id Azure's support asks for, whatever the shape.
"""

from __future__ import annotations

import logging
from typing import Any

import attrs
import pluggy
import pytest

from polysync_azure_openai.emulator import Emulator, faults
from polysync_azure_openai.jobs import BATCH, CHAT, EMBEDDING

from ..conftest import api_key_platform, job, sp_platform
from ..jobs.test_batch import jsonl as batch_jsonl

FAILED = "Azure OpenAI Chat Completion on deployment 'gpt-4o' failed: "
AZURE_ID = "apim-42"  # Azure's apim-request-id for the call
CLIENT_ID = "{client}"  # the run's own x-ms-client-request-id, for answers that carry no id of Azure's
NO_IDS = {"apim-request-id": "", "x-request-id": "", "x-ms-request-id": ""}  # a proxy's page: no id of Azure's


def chat(pm: pluggy.PluginManager, emu: Emulator, retries: str = "0") -> Any:
    platform = api_key_platform(emu, Max_Retries=retries)
    return pm.hook.submit(platform=platform, job=job(CHAT, "gpt-4o"), parameters={"user_prompt": "hi"}, run_key="k")


def client_request_id(emu: Emulator) -> str:
    return next(r for r in emu.requests if r.kind == "chat").headers["x-ms-client-request-id"]


def with_azure_id(fault: faults.Status) -> faults.Status:
    """The answer with the apim-request-id Azure sends, unless the case names its own ids."""
    return attrs.evolve(fault, headers={"apim-request-id": "apim-42", **fault.headers})


SHAPES = [
    pytest.param(
        faults.Status(
            400,
            body={
                "error": {
                    "code": "content_filter",
                    "message": "The prompt was filtered.",
                    "innererror": {
                        "code": "ResponsibleAIPolicyViolation",
                        "content_filter_result": {
                            "hate": {"filtered": False, "severity": "safe"},
                            "jailbreak": {"filtered": True, "detected": True},
                            "violence": {"filtered": True, "severity": "medium"},
                        },
                    },
                }
            },
            headers={"apim-request-id": "apim-7"},
        ),
        "HTTP 400 content_filter/ResponsibleAIPolicyViolation: The prompt was filtered. "
        "[content filter: jailbreak, violence=medium] (request id apim-7)",
        id="openai-envelope-with-filtered-categories",
    ),
    pytest.param(
        faults.Status(
            400,
            body={
                "error": {
                    "innererror": {
                        "code": "ResponsibleAIPolicyViolation",
                        "content_filter_results": {"sexual": {"filtered": True, "severity": "high"}},
                    }
                }
            },
        ),
        f"HTTP 400 ResponsibleAIPolicyViolation: [content filter: sexual=high] (request id {AZURE_ID})",
        id="filter-verdict-without-outer-code-or-message",
    ),
    pytest.param(
        faults.Status(
            400,
            body={"error": {"code": "InvalidRequest", "message": "Bad input.", "inner_error": {"code": "InvalidRequest"}}},
        ),
        f"HTTP 400 InvalidRequest: Bad input. (request id {AZURE_ID})",
        id="inner-code-repeating-the-outer-one",
    ),
    pytest.param(
        faults.Status(
            401,
            body={
                "statusCode": 401,
                "message": "Access denied due to invalid subscription key or wrong API endpoint.",
            },
        ),
        f"HTTP 401: Access denied due to invalid subscription key or wrong API endpoint. (request id {AZURE_ID})",
        id="gateway-status-code-envelope",
    ),
    pytest.param(
        faults.Status(403, body={"code": "AuthenticationTypeDisabled", "message": "Key based authentication is disabled."}),
        f"HTTP 403 AuthenticationTypeDisabled: Key based authentication is disabled. (request id {AZURE_ID})",
        id="top-level-code-and-message",
    ),
    pytest.param(
        faults.Status(403, body={"Code": "IpForbidden", "Message": "Traffic from this client IP is not allowed."}),
        f"HTTP 403 IpForbidden: Traffic from this client IP is not allowed. (request id {AZURE_ID})",
        id="capitalised-code-and-message",
    ),
    pytest.param(
        faults.Status(
            400,
            body="<Error><Code>AuthenticationFailed</Code><Message>Bad signature</Message></Error>",
            headers={"Content-Type": "application/xml"},
        ),
        "HTTP 400 AuthenticationFailed: non-JSON error body (application/xml): "
        f"<Error><Code>AuthenticationFailed</Code><Message>Bad signature</Message></Error> (request id {AZURE_ID})",
        id="xml-code",
    ),
    pytest.param(
        faults.Status(400, body=b"Upstream \xff\xfe failed", headers={"Content-Type": "text/plain"}),
        f"HTTP 400: non-JSON error body (text/plain): Upstream \ufffd\ufffd failed (request id {AZURE_ID})",
        id="text-that-is-not-utf8",
    ),
    pytest.param(
        faults.Status(400, body=b"Bad Request", headers={"Content-Type": "", **NO_IDS}),
        f"HTTP 400: non-JSON error body (no content type): Bad Request (request id {CLIENT_ID})",
        id="text-without-a-content-type",
    ),
    pytest.param(
        faults.Status(400, body=b"", headers={"Content-Type": ""}),
        f"HTTP 400: empty error body (request id {AZURE_ID})",
        id="empty-body",
    ),
]


@pytest.mark.parametrize(("fault", "substance"), SHAPES)
def test_every_error_shape_reaches_the_run_with_status_code_message_and_request_id(
    pm: pluggy.PluginManager, emu: Emulator, fault: faults.Status, substance: str
) -> None:
    emu.inject(with_azure_id(fault), kind="chat")
    result = chat(pm, emu)
    assert result.status == "Failed"
    expected = substance.replace(CLIENT_ID, client_request_id(emu))
    assert result.message.startswith(FAILED + expected), result.message


# -- redirects: named, never followed -------------------------------------------------------


@pytest.mark.parametrize("status", [300, 301, 302, 307, 308])
def test_a_redirect_is_named_with_its_origin_and_never_followed(pm: pluggy.PluginManager, emu: Emulator, status: int) -> None:
    emu.inject(
        faults.Status(
            status, body=b"", headers={"Location": "https://elsewhere.example/openai?x=1", "apim-request-id": "apim-r"}
        ),
        kind="chat",
    )
    result = chat(pm, emu)
    assert result.status == "Failed"
    assert result.message.startswith(
        f"{FAILED}HTTP {status} Redirect: Azure answered with a redirect to https://elsewhere.example, which is never followed"
    ), result.message
    assert "Check 'OpenAI Endpoint'" in result.message and "(request id apim-r)" in result.message
    assert len([r for r in emu.requests if r.kind == "chat"]) == 1


def test_a_redirect_without_a_location_names_no_place_and_keeps_our_request_id(pm: pluggy.PluginManager, emu: Emulator) -> None:
    emu.inject(faults.Status(307, body=b"", headers=NO_IDS), kind="chat")
    result = chat(pm, emu)
    assert result.message.startswith(f"{FAILED}HTTP 307 Redirect: Azure answered with a redirect to an unnamed location,")
    assert f"(request id {client_request_id(emu)})" in result.message


def test_a_redirect_after_a_retried_answer_counts_every_attempt(pm: pluggy.PluginManager, emu: Emulator) -> None:
    emu.inject(faults.Status(503, headers={"retry-after-ms": "10"}), kind="chat", times=1)
    emu.inject(faults.Redirect("https://elsewhere.example/"), kind="chat", times=1)
    result = chat(pm, emu, retries="1")
    assert result.status == "Failed" and "HTTP 307 Redirect" in result.message
    assert "after 2 attempts" in result.message, result.message


# -- what an error body echoes back is scrubbed ---------------------------------------------


def test_an_error_body_echoing_the_bearer_token_or_the_client_secret_is_scrubbed(pm: pluggy.PluginManager, emu: Emulator) -> None:
    platform = sp_platform(emu, Max_Retries="0")
    submit = {"platform": platform, "job": job(CHAT, "gpt-4o"), "parameters": {"user_prompt": "hi"}, "run_key": "k"}
    assert pm.hook.submit(**submit).status == "Success"
    token = next(r for r in emu.requests if r.kind == "chat").headers["authorization"].removeprefix("Bearer ")
    echo = f"gateway saw token {token} and form secret {emu.client_secret}"
    emu.inject(faults.Status(400, body={"error": {"code": "BadRequest", "message": echo}}), kind="chat")
    result = pm.hook.submit(**submit)
    assert result.status == "Failed" and "HTTP 400 BadRequest: gateway saw token" in result.message, result.message
    assert token not in result.message and emu.client_secret not in result.message
    assert result.message.count("***") >= 2


def test_a_429_echoing_a_since_renewed_token_is_scrubbed_from_the_calls_its_pause_refuses(
    pm: pluggy.PluginManager, emu: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    """A 429 pauses its deployment with Azure's words, which a call the pause refuses unsent quotes.
    The token the throttled request carried is scrubbed from them when the 429 comes, since it
    may be renewed (no longer held, so no longer scrubbed at the hooks) before the refusal."""
    caplog.set_level(logging.DEBUG)
    platform = sp_platform(emu)
    submit = {"platform": platform, "job": job(CHAT, "gpt-4o"), "parameters": {"user_prompt": "hi"}, "run_key": "k"}
    assert pm.hook.submit(**submit).status == "Success"
    token = next(r for r in emu.requests if r.kind == "chat").headers["authorization"].removeprefix("Bearer ")
    echo = {"error": {"code": "429", "message": f"gateway saw token {token}; retry after a day"}}
    emu.inject(faults.Status(429, body=echo, headers={"retry-after": "86400"}), kind="chat", times=1)
    throttled = pm.hook.submit(**submit)
    emu.revoke_tokens()  # an embedding call meets a 401 and renews the data plane's token
    embedded = pm.hook.submit(platform=platform, job=job(EMBEDDING, "embed-small"), parameters={"input": "x"}, run_key="k")
    assert embedded.status == "Success", embedded.message
    refused = pm.hook.submit(**submit)
    assert [r.status for r in emu.requests if r.kind == "chat"] == [200, 429]  # the refused call was not sent
    assert throttled.status == refused.status == "Failed"
    assert "gateway saw token ***" in refused.message and "[not sent:" in refused.message, refused.message
    assert token not in throttled.message and token not in refused.message
    assert not [r for r in caplog.records if token in r.getMessage()]


# -- a 200 that is no JSON object -----------------------------------------------------------


@pytest.mark.parametrize(
    "fault,substance",
    [
        (faults.MalformedJson(), "HTTP 200 MalformedJSON: The chat answer: the body is not valid JSON ("),
        (faults.Status(200, body=[1, 2]), "HTTP 200 MalformedJSON: The chat answer: expected a JSON object, got list"),
        (
            faults.ContentType("text/plain"),
            "HTTP 200 UnexpectedContentType: The chat answer: expected JSON but got text/plain: '{",
        ),
    ],
    ids=["malformed", "a-list", "text-plain"],
)
def test_a_200_that_is_no_json_object_is_failed_with_its_code(
    pm: pluggy.PluginManager, emu: Emulator, fault: Any, substance: str
) -> None:
    emu.inject(fault, kind="chat")
    result = chat(pm, emu)
    assert result.status == "Failed" and result.message.startswith(FAILED + substance), result.message


def test_a_create_answer_echoing_the_bearer_token_is_scrubbed_from_the_look_up_warning(
    pm: pluggy.PluginManager, emu: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    """A 5xx on a batch create is logged at WARNING before the look-up, outside any run result:
    the token the request carried is scrubbed there too."""
    caplog.set_level(logging.DEBUG)
    platform = sp_platform(emu)
    chatted = pm.hook.submit(platform=platform, job=job(CHAT, "gpt-4o"), parameters={"user_prompt": "hi"}, run_key="k")
    assert chatted.status == "Success"  # the data plane's token, cached for the batch calls too
    token = [r for r in emu.requests if r.kind == "chat"][-1].headers["authorization"].removeprefix("Bearer ")
    echo = {"error": {"code": "ServiceUnavailable", "message": f"gateway saw token {token}"}}
    emu.inject(faults.Status(503, body=echo, handled=True), kind="batches.create", times=1)  # created, then the 503
    file_id = emu.add_file(batch_jsonl(2))
    result = pm.hook.submit(
        platform=platform, job=job(BATCH, "gpt-4o-batch::batch"), parameters={"input_file_id": file_id}, run_key="r"
    )
    assert result.status == "Running", result.message
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("gateway saw token ***" in m and "looking for it before creating again" in m for m in warnings), warnings
    assert not [r for r in caplog.records if token in r.getMessage()]
