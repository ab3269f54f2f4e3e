"""Bad input: each row names the field, says what is wrong and the fix, and sends nothing;
its valid twin (the same call with that one value corrected) does reach the emulator."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pluggy
import pytest

from polysync_azure_openai.cli.host import Job, Platform
from polysync_azure_openai.emulator import Emulator
from polysync_azure_openai.errors import ConfigurationError
from polysync_azure_openai.identity import MANAGED_IDENTITY_VARIABLES
from polysync_azure_openai.jobs import BATCH, CHAT, EMBEDDING

from .conftest import emulator_attributes, imported

KEEP = object()  # the twin keeps the emulator platform's own value


@dataclasses.dataclass(frozen=True)
class Row:
    id: str
    where: str  # "platform", "auth", "job", "param", "run_id", "run_key"
    field: str
    bad: Any
    good: Any
    expect: tuple[str, ...]
    hook: str = "submit"
    job_type: str = CHAT
    external_id: str = "gpt-4o"
    method: str = "Service Principal"  # the platform's auth method, with that method's attributes
    #: The job attributes and run parameters to start from, instead of the job type's base ones.
    attributes: dict[str, str] | None = None
    params: dict[str, Any] | None = None


ROWS = [
    # -- platform attributes --------------------------------------------------------------------
    Row("resource-missing", "platform", "OpenAI Resource Name", None, KEEP, ("'OpenAI Resource Name'", "is not set")),
    Row(
        "resource-dots",
        "platform",
        "OpenAI Resource Name",
        "my.resource",
        KEEP,
        ("'OpenAI Resource Name'", "'my.resource'", "2-64 letters"),
    ),
    Row("resource-slash", "platform", "OpenAI Resource Name", "a/b", KEEP, ("'OpenAI Resource Name'", "'a/b'")),
    Row("resource-at", "platform", "OpenAI Resource Name", "evil.com@x", KEEP, ("'OpenAI Resource Name'",)),
    Row("resource-space", "platform", "OpenAI Resource Name", "my resource", KEEP, ("'OpenAI Resource Name'",)),
    Row("resource-unicode", "platform", "OpenAI Resource Name", "rеsource", KEEP, ("'OpenAI Resource Name'",)),
    Row("resource-65", "platform", "OpenAI Resource Name", "a" * 65, KEEP, ("'OpenAI Resource Name'", "2-64")),
    Row("resource-hyphen-end", "platform", "OpenAI Resource Name", "abc-", KEEP, ("'OpenAI Resource Name'",)),
    Row(
        "subscription-not-guid",
        "platform",
        "Subscription Id",
        "my-subscription",
        KEEP,
        ("'Subscription Id'", "GUID"),
        hook="import_jobs",
    ),
    Row(
        "resource-group-slash",
        "platform",
        "Resource Group Name",
        "rg/../x",
        KEEP,
        ("'Resource Group Name'", "not ending in '.'"),
        hook="import_jobs",
    ),
    Row("resource-group-dot-end", "platform", "Resource Group Name", "rg.", KEEP, ("'Resource Group Name'",), hook="import_jobs"),
    Row("api-version", "platform", "OpenAI API Version", "latest", "2024-10-21", ("'OpenAI API Version'", "2024-10-21")),
    Row("cloud", "platform", "Azure Cloud", "AzurePublic", "AzureCloud", ("'Azure Cloud'", "AzureUSGovernment")),
    Row(
        "endpoint-http",
        "platform",
        "OpenAI Endpoint",
        "http://127.0.0.1:1",
        KEEP,
        ("'OpenAI Endpoint' is 'http://127.0.0.1:1': it must start with https://",),
    ),
    Row(
        "endpoint-encoded-dot-dot",
        "platform",
        "OpenAI Endpoint",
        "https://127.0.0.1:1/aoai%2f..%2fadmin",
        KEEP,
        ("'OpenAI Endpoint'", "'..' path segments"),
    ),
    Row(
        "endpoint-userinfo",
        "platform",
        "OpenAI Endpoint",
        "https://user:pw@127.0.0.1:1",
        KEEP,
        ("'OpenAI Endpoint'", "user info"),
    ),
    Row("endpoint-query", "platform", "OpenAI Endpoint", "https://127.0.0.1:1/?x=1", KEEP, ("'OpenAI Endpoint'", "query")),
    # A bare "?" leaves urlsplit's query empty: it is still a query string.
    Row(
        "endpoint-bare-query",
        "platform",
        "OpenAI Endpoint",
        "https://127.0.0.1:1/aoai?",
        KEEP,
        ("'OpenAI Endpoint'", "query string"),
    ),
    Row("endpoint-fragment", "platform", "OpenAI Endpoint", "https://127.0.0.1:1/#x", KEEP, ("'OpenAI Endpoint'", "fragment")),
    Row("endpoint-dotdot", "platform", "OpenAI Endpoint", "https://127.0.0.1:1/a/../b", KEEP, ("'OpenAI Endpoint'", "'..'")),
    Row(
        "endpoint-encoded-dotdot",
        "platform",
        "OpenAI Endpoint",
        "https://127.0.0.1:1/a/%2e%2e/b",
        KEEP,
        ("'OpenAI Endpoint'", "'..'"),
    ),
    Row(
        "arm-endpoint-http",
        "platform",
        "Resource Manager Endpoint",
        "http://127.0.0.1:1",
        KEEP,
        ("'Resource Manager Endpoint'", "https://"),
        hook="import_jobs",
    ),
    Row("authority-path", "platform", "Authority Host", "https://login.example/tenant", KEEP, ("'Authority Host'", "path")),
    Row(
        "authority-http",
        "platform",
        "Authority Host",
        "http://login.example",
        KEEP,
        ("'Authority Host' is 'http://login.example': it must start with https://",),
    ),
    Row(
        "authority-query",
        "platform",
        "Authority Host",
        "login.example?tenant=x",
        KEEP,
        ("'Authority Host' is 'login.example?tenant=x': it must not have a query string",),
    ),
    Row(
        "timeout-zero", "platform", "Request Timeout Seconds", "0", "30", ("'Request Timeout Seconds' is '0'", "from 0.1 to 3600")
    ),
    Row("timeout-text", "platform", "Request Timeout Seconds", "ten", "30", ("'Request Timeout Seconds'",)),
    Row("timeout-inf", "platform", "Request Timeout Seconds", "inf", "30", ("'Request Timeout Seconds'",)),
    Row("retries-negative", "platform", "Max Retries", "-1", "2", ("'Max Retries' is '-1'", "whole number")),
    Row("retries-huge", "platform", "Max Retries", "99", "2", ("'Max Retries'", "from 0 to 10")),
    Row("retries-eleven", "platform", "Max Retries", "11", "10", ("'Max Retries'", "from 0 to 10")),
    Row("retries-5000-digits", "platform", "Max Retries", "1" * 5000, "1", ("'Max Retries'", "whole number")),
    # Python's \d and float() take these; Azure and the spec do not.
    Row("retries-arabic-digit", "platform", "Max Retries", "\u0663", "3", ("'Max Retries'", "whole number")),
    Row(
        "api-version-arabic-digits",
        "platform",
        "OpenAI API Version",
        "\u0662\u0660\u0662\u0664-10-21",
        "2024-10-21",
        ("'OpenAI API Version'",),
    ),
    Row("timeout-underscore", "platform", "Request Timeout Seconds", "1_0", "10", ("'Request Timeout Seconds'", "'1_0'")),
    Row("timeout-exponent", "platform", "Request Timeout Seconds", "1e-300", "10", ("'Request Timeout Seconds'",)),
    Row("timeout-tiny", "platform", "Request Timeout Seconds", "0.0001", "0.5", ("'Request Timeout Seconds'", "from 0.1")),
    Row(
        "resource-group-91",
        "platform",
        "Resource Group Name",
        "r" * 91,
        "r" * 90,
        ("'Resource Group Name'",),
    ),
    Row("tenant", "platform", "Tenant Id", "not a tenant", KEEP, ("'Tenant Id'", "GUID or a domain")),
    Row("tenant-missing", "platform", "Tenant Id", None, KEEP, ("'Tenant Id'", "is not set", "app registration's Overview page")),
    Row("client-id", "platform", "Client Id", "my-app", KEEP, ("'Client Id'", "GUID")),
    Row("client-secret-missing", "platform", "Client Secret", None, KEEP, ("'Client Secret'", "is not set")),
    Row("client-secret-blank", "platform", "Client Secret", "   ", KEEP, ("'Client Secret'", "is not set")),
    Row(
        "auth-method",
        "auth",
        "auth_method",
        "Azure CLI",
        "Service Principal",
        ("'Azure CLI'", "Choose one of", "Service Principal", "Managed Identity", "Workload Identity"),
    ),
    # -- keyless methods (second-release §E) ------------------------------------------------------
    Row(
        "managed-client-id",
        "platform",
        "Client Id",
        "my-identity",
        KEEP,
        ("'Client Id'", "'my-identity'", "GUID", "blank for the system-assigned identity"),
        method="Managed Identity",
    ),
    Row(
        "managed-client-id-resource-id",
        "platform",
        "Client Id",
        "/subscriptions/11111111-2222-3333-4444-555555555555/resourceGroups/rg/providers/"
        "Microsoft.ManagedIdentity/userAssignedIdentities/worker",
        KEEP,
        ("'Client Id'", "GUID", "Client ID"),
        method="Managed Identity",
    ),
    Row(
        "token-file-relative",
        "platform",
        "Token File Path",
        "tokens/azure-identity-token",
        KEEP,
        ("'Token File Path'", "'tokens/azure-identity-token'", "must be an absolute path"),
        method="Workload Identity",
    ),
    Row(
        "token-file-missing",
        "platform",
        "Token File Path",
        "/var/run/secrets/azure/tokens/azure-identity-token",
        KEEP,
        ("'Token File Path'", "does not exist on this worker", "Mount the federated token"),
        method="Workload Identity",
    ),
    Row(
        "token-file-missing-long-path",
        "platform",
        "Token File Path",
        "/" + "t" * 300,
        KEEP,
        ("'Token File Path'", f"names '/{'t' * 199}...', a file that does not exist on this worker"),
        method="Workload Identity",
    ),
    Row(
        "token-file-directory",
        "platform",
        "Token File Path",
        "/",
        KEEP,
        ("'Token File Path'", "a directory"),
        method="Workload Identity",
    ),
    Row(
        "token-file-unset",
        "platform",
        "Token File Path",
        None,
        KEEP,
        ("attribute 'Token File Path' is not set and neither is the environment variable AZURE_FEDERATED_TOKEN_FILE",),
        method="Workload Identity",
    ),
    Row(
        "workload-client-id",
        "platform",
        "Client Id",
        "my-workload",
        KEEP,
        ("'Client Id'", "GUID"),
        method="Workload Identity",
    ),
    Row(
        "workload-tenant-missing",
        "platform",
        "Tenant Id",
        None,
        KEEP,
        ("'Tenant Id'", "is not set", "managed identity's Overview page"),
        method="Workload Identity",
    ),
    Row("auth-method-missing", "auth", "auth_method", "", "Service Principal", ("authentication method not set",)),
    Row(
        "api-key-missing",
        "platform",
        "API Key",
        None,
        KEEP,
        ("'API Key' is not set", "settings (Keys and Endpoint page of the resource in the Azure portal)."),
        method="API Key",
    ),
    # -- job attributes -------------------------------------------------------------------------
    Row("max-tokens-decimal", "job", "OpenAI Max Tokens", "1.0", "16", ("'OpenAI Max Tokens'", "'1.0'", "whole number")),
    Row("max-tokens-negative", "job", "OpenAI Max Tokens", "-1", "16", ("'OpenAI Max Tokens'",)),
    Row("max-tokens-zero", "job", "OpenAI Max Tokens", "0", "16", ("'OpenAI Max Tokens'",)),
    Row("max-tokens-5000-digits", "job", "OpenAI Max Tokens", "9" * 5000, "16", ("'OpenAI Max Tokens'", "whole number")),
    Row("max-tokens-text", "job", "OpenAI Max Tokens", "many", "16", ("'OpenAI Max Tokens'",)),
    Row("temperature-high", "job", "OpenAI Temperature", "2.5", "2", ("'OpenAI Temperature'", "from 0 to 2")),
    Row("temperature-negative", "job", "OpenAI Temperature", "-0.1", "0", ("'OpenAI Temperature'",)),
    Row("temperature-nan", "job", "OpenAI Temperature", "nan", "1", ("'OpenAI Temperature'",)),
    Row("temperature-inf", "job", "OpenAI Temperature", "inf", "1", ("'OpenAI Temperature'",)),
    Row("deployment-path", "job", "Deployment Name", "../x", "gpt-4o", ("'Deployment Name'", "'../x'")),
    Row("deployment-dots", "job", "Deployment Name", "..", "gpt-4o", ("'Deployment Name'",)),
    Row(
        "batch-file-missing",
        "job",
        "OpenAI Input File ID",
        None,
        "file-abc123",
        ("'OpenAI Input File ID'", "is not set"),
        job_type=BATCH,
        external_id="gpt-4o::batch",
    ),
    Row(
        "batch-file-form",
        "job",
        "OpenAI Input File ID",
        "abc123",
        "file-abc123",
        ("'OpenAI Input File ID'", "'file-'"),
        job_type=BATCH,
        external_id="gpt-4o::batch",
    ),
    Row(
        "batch-endpoint",
        "job",
        "OpenAI Batch Endpoint",
        "/completions",
        "/chat/completions",
        ("'OpenAI Batch Endpoint'", "/embeddings"),
        job_type=BATCH,
        external_id="gpt-4o::batch",
    ),
    Row(
        "batch-window",
        "job",
        "OpenAI Completion Window",
        "1 day",
        "24h",
        ("'OpenAI Completion Window'", "24h"),
        job_type=BATCH,
        external_id="gpt-4o::batch",
    ),
    # -- parameters -----------------------------------------------------------------------------
    Row("prompt-missing", "param", "user_prompt", None, "hi", ("parameter 'user_prompt'", "is missing")),
    Row("prompt-empty", "param", "user_prompt", "  ", "hi", ("parameter 'user_prompt'", "is empty")),
    Row("prompt-number", "param", "user_prompt", 5, "hi", ("parameter 'user_prompt'", "number, not a string")),
    Row("prompt-object", "param", "user_prompt", {"text": "hi"}, "hi", ("parameter 'user_prompt'", "is an object, not a string")),
    Row(
        "prompt-lone-surrogate",
        "param",
        "user_prompt",
        "broken emoji \ud83d here",
        "whole emoji \U0001f600 here",
        ("parameter 'user_prompt'", "lone surrogate (U+D83D)"),
    ),
    Row(
        "system-prompt-attribute-lone-surrogate",
        "job",
        "OpenAI System Prompt",
        "be \udc80 brief",
        "be brief",
        ("attribute 'OpenAI System Prompt'", "lone surrogate"),
    ),
    Row("prompt-oversized", "param", "user_prompt", "x" * 1_000_001, "hi", ("parameter 'user_prompt'", "1,000,001 characters")),
    Row("system-prompt-list", "param", "system_prompt", ["a"], "be brief", ("parameter 'system_prompt'", "list")),
    Row(
        "input-missing",
        "param",
        "input",
        None,
        "text",
        ("parameter 'input'", "is missing"),
        job_type=EMBEDDING,
        external_id="embed-small",
    ),
    Row(
        "input-bool",
        "param",
        "input",
        True,
        "text",
        ("parameter 'input'", "boolean"),
        job_type=EMBEDDING,
        external_id="embed-small",
    ),
    Row(
        "batch-file-param",
        "param",
        "input_file_id",
        "file/../x",
        "file-abc123",
        ("parameter 'input_file_id'",),
        job_type=BATCH,
        external_id="gpt-4o::batch",
    ),
    Row(
        "run-key-long",
        "run_key",
        "run_key",
        "k" * 513,
        "k" * 512,
        ("run_key", "512"),
        job_type=BATCH,
        external_id="gpt-4o::batch",
    ),
    Row(
        "run-key-number",
        "run_key",
        "run_key",
        5,
        "k5",
        ("run_key", "is a number, not a string"),
        job_type=BATCH,
        external_id="gpt-4o::batch",
    ),
    Row(
        "run-key-lone-surrogate",
        "run_key",
        "run_key",
        "k\udcff",
        "k\u00ff",
        ("run_key", "lone surrogate (U+DCFF)"),
        job_type=BATCH,
        external_id="gpt-4o::batch",
    ),
    # -- RunIds ---------------------------------------------------------------------------------
    Row(
        "run-id-status",
        "run_id",
        "run_id",
        "x#sync#Maybe",
        "batch_abc",
        ("RunId 'x#sync#Maybe'",),
        hook="get_status",
        job_type=BATCH,
        external_id="gpt-4o::batch",
    ),
    Row(
        "run-id-traversal",
        "run_id",
        "run_id",
        "batch_../../x",
        "batch_abc",
        ("RunId 'batch_../../x'",),
        hook="get_status",
        job_type=BATCH,
        external_id="gpt-4o::batch",
    ),
    Row(
        "run-id-empty",
        "run_id",
        "run_id",
        "",
        "batch_abc",
        ("RunId ''",),
        hook="cancel",
        job_type=BATCH,
        external_id="gpt-4o::batch",
    ),
    Row(
        "run-id-batch-success-never-issued",
        "run_id",
        "run_id",
        "gpt-4o#batch#Success",
        "batch_abc",
        ("RunId 'gpt-4o#batch#Success'", "'batch_...'", "'<deployment>#batch#Failed'"),
        hook="get_status",
        job_type=BATCH,
        external_id="gpt-4o::batch",
    ),
    Row(
        "run-id-sync-kind",
        "run_id",
        "run_id",
        "gpt-4o#sync#Success",
        "batch_abc",
        ("RunId 'gpt-4o#sync#Success'",),
        hook="get_status",
        job_type=BATCH,
        external_id="gpt-4o::batch",
    ),
]

SCHEMA = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"], "additionalProperties": False}
HUGE_SCHEMA = {**SCHEMA, "description": "x" * 110_000}
O3 = {"Model Name": "o3-mini"}
EMBED_3 = {"Model Name": "text-embedding-3-small"}
DEEPSEEK = {"Model Name": "DeepSeek-R1", "Model Format": "DeepSeek"}
# second-release §B-§D, §F: the list of bad input, plus the refusals the v1 surface adds.
ROWS += [
    Row(
        "response-format-not-json",
        "job",
        "OpenAI Response Format",
        "{not json",
        json.dumps(SCHEMA),
        ("attribute 'OpenAI Response Format'", "not JSON object text", "json_object"),
    ),
    Row(
        "response-format-json-array",
        "job",
        "OpenAI Response Format",
        "[1, 2]",
        "json_object",
        ("attribute 'OpenAI Response Format'", "not JSON object text"),
        attributes={"OpenAI System Prompt": "Answer in JSON."},
    ),
    Row(
        "response-format-over-100-kb",
        "job",
        "OpenAI Response Format",
        json.dumps(HUGE_SCHEMA),
        json.dumps(SCHEMA),
        ("attribute 'OpenAI Response Format'", "more than the 102,400"),
    ),
    Row(
        "response-schema-over-100-kb",
        "param",
        "response_schema",
        HUGE_SCHEMA,
        SCHEMA,
        ("parameter 'response_schema'", "more than the 102,400 allowed"),
    ),
    Row(
        "response-schema-a-list",
        "param",
        "response_schema",
        [SCHEMA],
        SCHEMA,
        ("parameter 'response_schema'", "is a list", "JSON Schema"),
    ),
    Row(
        "json-mode-without-json-in-the-prompts",
        "job",
        "OpenAI System Prompt",
        None,
        "Answer in JSON.",
        ("attribute 'OpenAI Response Format'", "mentions JSON", "'OpenAI System Prompt'"),
        attributes={"OpenAI Response Format": "json_object"},
    ),
    Row(
        "structured-output-on-an-old-dated-version",
        "platform",
        "OpenAI API Version",
        "2024-07-01-preview",
        "2024-08-01-preview",
        ("attribute 'OpenAI Response Format'", "2024-08-01-preview and later", "'2024-07-01-preview'"),
        attributes={"OpenAI Response Format": json.dumps(SCHEMA)},
    ),
    Row(
        "reasoning-model-on-an-old-dated-version",
        "platform",
        "OpenAI API Version",
        "2024-10-21",
        "2024-12-01-preview",
        ("'OpenAI API Version'", "v1 (or blank) or to 2024-12-01-preview or later"),
        external_id="o3-mini",
        attributes=O3,
    ),
    Row(
        "reasoning-effort-unknown",
        "job",
        "OpenAI Reasoning Effort",
        "extreme",
        "low",
        ("attribute 'OpenAI Reasoning Effort'", "'extreme'", "none, minimal, low, medium, high, xhigh"),
        external_id="o3-mini",
        attributes=O3,
    ),
    Row(
        "reasoning-effort-on-a-chat-model",
        "job",
        "OpenAI Reasoning Effort",
        "low",
        None,
        ("attribute 'OpenAI Reasoning Effort'", "'gpt-4o'", "not a reasoning model"),
        attributes={"Model Name": "gpt-4o"},
    ),
    Row(
        "temperature-on-a-reasoning-model",
        "job",
        "OpenAI Temperature",
        "0.7",
        None,
        ("attribute 'OpenAI Temperature'", "reasoning model"),
        external_id="o3-mini",
        attributes=O3,
    ),
    Row(
        "foundry-model-on-a-dated-version",
        "platform",
        "OpenAI API Version",
        "2025-04-01-preview",
        "v1",
        ("attribute 'Model Format'", "'DeepSeek'", "only on the v1 API", "to v1"),
        external_id="DeepSeek-R1",
        attributes=DEEPSEEK,
    ),
    Row(
        "api-version-v2",
        "platform",
        "OpenAI API Version",
        "v2",
        "V1",
        ("'OpenAI API Version'", "'v2'", "it must be v1"),
    ),
    Row(
        "inputs-and-input",
        "param",
        "inputs",
        ["a"],
        None,
        ("parameters 'input' and 'inputs'", "both given"),
        job_type=EMBEDDING,
        external_id="embed-small",
    ),
    Row(
        "neither-input-nor-inputs",
        "param",
        "inputs",
        None,
        ["a"],
        ("parameter 'input'", "and so is 'inputs'"),
        job_type=EMBEDDING,
        external_id="embed-small",
        params={},
    ),
    Row(
        "inputs-empty",
        "param",
        "inputs",
        [],
        ["a"],
        ("parameter 'inputs'", "empty list"),
        job_type=EMBEDDING,
        external_id="embed-small",
        params={},
    ),
    Row(
        "inputs-over-2048",
        "param",
        "inputs",
        ["x"] * 2049,
        ["x"] * 2,
        ("parameter 'inputs'", "2,049 texts", "Batch Job"),
        job_type=EMBEDDING,
        external_id="embed-small",
        params={},
    ),
    Row(
        "inputs-empty-item",
        "param",
        "inputs",
        ["a", " "],
        ["a", "b"],
        ("parameter 'inputs', item 1,", "is empty"),
        job_type=EMBEDDING,
        external_id="embed-small",
        params={},
    ),
    Row(
        "inputs-non-string-item",
        "param",
        "inputs",
        ["a", 5],
        ["a", "5"],
        ("parameter 'inputs', item 1,", "is a number, not a string"),
        job_type=EMBEDDING,
        external_id="embed-small",
        params={},
    ),
    Row(
        "inputs-not-a-list",
        "param",
        "inputs",
        "a",
        ["a"],
        ("parameter 'inputs'", "is a string, not a list"),
        job_type=EMBEDDING,
        external_id="embed-small",
        params={},
    ),
    Row(
        "dimensions-on-ada",
        "job",
        "Model Name",
        "text-embedding-ada-002",
        "text-embedding-3-small",
        ("attribute 'OpenAI Dimensions'", "'text-embedding-ada-002'", "does not take dimensions"),
        job_type=EMBEDDING,
        external_id="embed-small",
        attributes={"OpenAI Dimensions": "256"},
    ),
    Row(
        "dimensions-without-model-name",
        "job",
        "Model Name",
        None,
        "text-embedding-3-small",
        ("attribute 'OpenAI Dimensions'", "'Model Name' is blank", "re-run Import Jobs"),
        job_type=EMBEDDING,
        external_id="embed-small",
        attributes={"OpenAI Dimensions": "256"},
    ),
    Row(
        "dimensions-zero",
        "job",
        "OpenAI Dimensions",
        "0",
        "256",
        ("attribute 'OpenAI Dimensions'", "'0'", "from 1 to 1536"),
        job_type=EMBEDDING,
        external_id="embed-small",
        attributes=EMBED_3,
    ),
]

BASE_JOB = {CHAT: {}, EMBEDDING: {}, BATCH: {"OpenAI Input File ID": "file-abc123"}}
BASE_PARAMS = {CHAT: {"user_prompt": "hi"}, EMBEDDING: {"input": "hi"}, BATCH: {}}


def base_attributes(emu: Emulator, method: str) -> dict[str, str]:
    """The emulator platform's attributes for ``method`` (the keyless ones have no secret)."""
    attributes = emulator_attributes(emu)
    if method == "Managed Identity":
        for name in ("Tenant Id", "Client Id", "Client Secret", "Authority Host"):
            del attributes[name]
    elif method == "API Key":
        for name in ("Tenant Id", "Client Id", "Client Secret", "Authority Host"):
            del attributes[name]
        attributes["API Key"] = emu.api_key
    elif method == "Workload Identity":
        del attributes["Client Secret"]
        attributes |= {"Client Id": emu.workload_client_id, "Token File Path": str(emu.write_federated_token())}
    return attributes


def call(pm: pluggy.PluginManager, emu: Emulator, row: Row, value: Any) -> Any:
    attributes = base_attributes(emu, row.method)
    auth_method = row.method
    job_attributes = dict(BASE_JOB[row.job_type] if row.attributes is None else row.attributes)
    params = dict(BASE_PARAMS[row.job_type] if row.params is None else row.params)
    run_id = "gpt-4o#sync#Success"
    run_key = "run-key-1"
    if row.where == "platform" and value is not KEEP:
        attributes.pop(row.field, None)
        if value is not None:
            attributes[row.field] = value
    elif row.where == "auth":
        auth_method = value
    elif row.where == "job":
        job_attributes.pop(row.field, None)
        if value is not None:
            job_attributes[row.field] = value
    elif row.where == "param":
        params.pop(row.field, None)
        if value is not None:
            params[row.field] = value
    elif row.where == "run_id":
        run_id = value
    elif row.where == "run_key":
        run_key = value
    platform = Platform(name="validation", auth_method=auth_method, attributes=attributes)
    job = Job(job_type=row.job_type, external_id=row.external_id, name="validation job", attributes=job_attributes)
    if row.hook == "import_jobs":
        return imported(pm, platform)
    if row.hook == "submit":
        return pm.hook.submit(platform=platform, job=job, parameters=params, run_key=run_key)
    return getattr(pm.hook, row.hook)(platform=platform, job=job, run_id=run_id)


def keyless_environment(monkeypatch: pytest.MonkeyPatch, emu: Emulator) -> None:
    """The keyless methods' environment, as App Service and the AKS webhook would set it (but no
    AZURE_FEDERATED_TOKEN_FILE: the rows test 'Token File Path' alone)."""
    for name in MANAGED_IDENTITY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in emu.managed_identity_environment().items():
        monkeypatch.setenv(name, value)


def refusal(pm: pluggy.PluginManager, emu: Emulator, row: Row, monkeypatch: pytest.MonkeyPatch) -> str:
    """The message of the ConfigurationError that ``row.bad`` gets, with the keyless variables set."""
    keyless_environment(monkeypatch, emu)
    with pytest.raises(ConfigurationError) as info:
        call(pm, emu, row, row.bad)
    return str(info.value)


def test_at_least_forty_rows() -> None:
    assert len(ROWS) >= 40
    assert len({r.id for r in ROWS}) == len(ROWS)


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_bad_input_is_refused_before_any_request(
    pm: pluggy.PluginManager, emu: Emulator, row: Row, monkeypatch: pytest.MonkeyPatch
) -> None:
    message = refusal(pm, emu, row, monkeypatch)
    for fragment in row.expect:
        assert fragment in message, message
    assert message.startswith(("Platform 'validation'", "Job 'validation job'", "RunId")), message
    assert "." in message.rstrip(".")  # a sentence of problem, then a fix
    assert emu.requests == []

    call(pm, emu, row, row.good)  # the valid twin: not refused, and it reaches the emulator
    assert emu.requests, "the valid twin sent nothing: the row proves nothing"


@pytest.mark.parametrize(("value", "seconds"), [("0.1", 0.1), ("3600", 3600.0)], ids=["minimum", "maximum"])
def test_the_request_timeout_s_bounds_are_accepted(emu: Emulator, value: str, seconds: float) -> None:
    from polysync_azure_openai.platform import PlatformConfig

    config = PlatformConfig.from_host(
        Platform(
            name="bounds", auth_method="Service Principal", attributes=emulator_attributes(emu, Request_Timeout_Seconds=value)
        )
    )
    assert config.request_timeout == seconds


def test_a_platform_without_a_name_is_called_unnamed_in_its_refusal(pm: pluggy.PluginManager, emu: Emulator) -> None:
    attributes = emulator_attributes(emu, OpenAI_Resource_Name=None)
    platform = Platform(name="", auth_method="Service Principal", attributes=attributes)
    job = Job(job_type=CHAT, external_id="gpt-4o", name="a job", attributes={})
    with pytest.raises(ConfigurationError, match=r"^Platform '\(unnamed\)': attribute 'OpenAI Resource Name' is not set"):
        pm.hook.submit(platform=platform, job=job, parameters={"user_prompt": "hi"}, run_key="k")
    assert emu.requests == []


@pytest.mark.parametrize(
    ("unset", "said"),
    [
        (("Subscription_Id", "Resource_Group_Name"), "'Subscription Id' and 'Resource Group Name' are not set; set them"),
        (("Subscription_Id",), "'Subscription Id' is not set; set it"),
        (("Resource_Group_Name",), "'Resource Group Name' is not set; set it"),
    ],
    ids=["both", "subscription", "resource-group"],
)
def test_a_platform_without_subscription_or_resource_group_names_each_missing_one_in_its_refusal(
    pm: pluggy.PluginManager, emu: Emulator, unset: tuple[str, ...], said: str
) -> None:
    """Import Jobs lists deployments through ARM, which needs both: the refusal names each missing one and the fix."""
    attributes = emulator_attributes(emu, **dict.fromkeys(unset))
    platform = Platform(name="scope", auth_method="Service Principal", attributes=attributes)
    with pytest.raises(ConfigurationError) as info:
        imported(pm, platform)
    assert str(info.value) == (
        f"Platform 'scope': {said} in the platform's settings (the Azure portal shows both on the resource's Overview page)."
    )
    assert emu.requests == []
