"""Secrets never leak: not in exceptions, reprs, RunIds, outputs, messages or any log record."""

from __future__ import annotations

import base64
import logging
import urllib.parse
import uuid

import pluggy
import pytest

from polysync_azure_openai.cli.host import Platform
from polysync_azure_openai.emulator import Emulator
from polysync_azure_openai.errors import ConfigurationError
from polysync_azure_openai.jobs import BATCH, CHAT, EMBEDDING
from polysync_azure_openai.platform import PlatformConfig

from .conftest import api_key_platform, job, sp_platform


def forms(secret: str) -> list[str]:
    """The secret as it could leak: plain, base64 and URL-encoded."""
    raw = secret.encode()
    return [
        secret,
        base64.b64encode(raw).decode().rstrip("="),
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
        urllib.parse.quote(secret, safe=""),
        urllib.parse.quote(secret),
        urllib.parse.quote_plus(secret),
    ]


def leaks(texts: list[str], secrets: list[str]) -> list[str]:
    found = []
    for secret in secrets:
        for form in forms(secret):
            found += [f"{form[:6]}... in {text[:120]!r}" for text in texts if form in text]
    return found


def test_the_scan_catches_a_planted_secret(caplog: pytest.LogCaptureFixture) -> None:
    """Meta-test: a scan that cannot fail proves nothing."""
    secret = "planted-" + uuid.uuid4().hex
    caplog.set_level(logging.DEBUG)
    logging.getLogger("polysync_azure_openai.test").debug("oops %s", base64.b64encode(secret.encode()).decode())
    assert leaks([r.getMessage() for r in caplog.records], [secret])
    assert leaks([urllib.parse.quote(secret + "/=")], [secret + "/="])


def test_no_secret_anywhere_in_a_full_lifecycle(
    pm: pluggy.PluginManager, emu: Emulator, debug_logs: pytest.LogCaptureFixture
) -> None:
    platform = sp_platform(emu)
    key_platform = api_key_platform(emu)
    texts: list[str] = [
        repr(platform),
        repr(key_platform),
        repr(PlatformConfig.from_host(platform)),
        repr(PlatformConfig.from_host(key_platform)),
    ]
    results = []
    for p in (platform, key_platform):
        results.append(pm.hook.submit(platform=p, job=job(CHAT, "gpt-4o"), parameters={"user_prompt": "hi"}, run_key="k"))
        results.append(pm.hook.submit(platform=p, job=job(EMBEDDING, "embed-small"), parameters={"input": "x"}, run_key="k"))
        results.append(pm.hook.submit(platform=p, job=job(CHAT, "no-such"), parameters={"user_prompt": "hi"}, run_key="k"))
    results.append(
        pm.hook.submit(
            platform=sp_platform(emu, Client_Secret="wrong-" + emu.client_secret),
            job=job(CHAT, "gpt-4o"),
            parameters={"user_prompt": "hi"},
            run_key="k",
        )
    )
    results.append(
        pm.hook.submit(
            platform=api_key_platform(emu, API_Key=emu.api_key[::-1]),
            job=job(CHAT, "gpt-4o"),
            parameters={"user_prompt": "hi"},
            run_key="k",
        )
    )
    line = '{"custom_id": "a", "method": "POST", "url": "/chat/completions", "body": {"model": "gpt-4o-batch", "messages": [{"role": "user", "content": "hi"}]}}'
    for p in (platform, key_platform):
        batch_job = job(BATCH, "gpt-4o-batch::batch")
        run = pm.hook.submit(
            platform=p, job=batch_job, parameters={"input_file_id": emu.add_file(line)}, run_key=f"secrets-{p.name}"
        )
        results += [
            run,
            pm.hook.get_status(platform=p, job=batch_job, run_id=run.run_id),
            pm.hook.cancel(platform=p, job=batch_job, run_id=run.run_id),
            pm.hook.submit(platform=p, job=batch_job, parameters={"input_file_id": "file-missing"}, run_key="x"),
        ]
    jobs = pm.hook.import_jobs(platform=platform)
    for result in results:
        texts += [repr(result), result.run_id, result.message or "", str(dict(result.outputs))]
        texts.append(pm.hook.monitor_url(platform=platform, job=job(CHAT, "gpt-4o"), run_id="gpt-4o#sync#Success"))
    texts += [repr(j) for j in jobs]
    for bad in (
        Platform(
            name="x",
            auth_method="Service Principal",
            attributes={
                "OpenAI Resource Name": "r",
                "Tenant Id": emu.tenant_id,
                "Client Id": "not-a-guid",
                "Client Secret": emu.client_secret,
            },
        ),
        Platform(
            name="x",
            auth_method="Certificate",
            attributes={
                "OpenAI Resource Name": "r",
                "Tenant Id": emu.tenant_id,
                "Client Id": emu.client_id,
                "Certificate": emu.client_secret,
            },
        ),
    ):
        with pytest.raises(ConfigurationError) as info:
            pm.hook.submit(platform=bad, job=job(CHAT, "gpt-4o"), parameters={"user_prompt": "hi"}, run_key="k")
        texts.append(str(info.value))
    tokens = [r.headers["authorization"].removeprefix("Bearer ") for r in emu.requests if "authorization" in r.headers]
    assert tokens, "no bearer token was sent: the scan would prove nothing"
    records = debug_logs.records
    assert records, "nothing was logged at DEBUG: the scan would prove nothing"
    texts += [r.getMessage() for r in records]
    texts += [str(r.args) for r in records]
    secrets = [emu.client_secret, emu.api_key, *set(tokens)]
    assert leaks(texts, secrets) == []
    assert any(r.name.startswith("urllib3") for r in records)
    assert any(r.name.startswith(("azure", "msal")) for r in records)


def test_no_secret_in_cli_output_or_written_files(emu: Emulator, tmp_path) -> None:
    """Every CLI command, both auth methods, success and failure: stdout, stderr and files."""
    from .cli.helpers import SECRET_ENV, cli, platform_file

    sp = platform_file(tmp_path, emu)
    key = platform_file(tmp_path, emu, auth_method="API Key")
    line = '{"custom_id": "a", "method": "POST", "url": "/chat/completions", "body": {"model": "gpt-4o-batch", "messages": [{"role": "user", "content": "hi"}]}}\n'
    (tmp_path / "in.jsonl").write_text(line)
    outputs: list[str] = []
    runs = [
        (sp, emu.client_secret, ["check"]),
        (sp, emu.client_secret, ["import", "--json"]),
        (sp, emu.client_secret, ["run", "chat", "gpt-4o", "--param", "user_prompt=hi", "--json"]),
        (sp, "wrong-" + emu.client_secret, ["run", "chat", "gpt-4o", "--param", "user_prompt=hi"]),
        (key, emu.api_key, ["run", "embedding", "embed-small", "--param", "input=x", "--json"]),
        (key, emu.api_key[::-1], ["check", "--deployment", "gpt-4o"]),
        (sp, emu.client_secret, ["batch", "upload", str(tmp_path / "in.jsonl")]),
    ]
    for config, secret, args in runs:
        done = cli(*args, "--config", str(config), env={SECRET_ENV: secret})
        outputs += [done.stdout, done.stderr]
    assert any("Success" in o or "OK" in o for o in outputs)
    file_id = emu.add_file(line, purpose="batch_output")
    cli(
        "batch",
        "download",
        file_id,
        "--out",
        str(tmp_path / "out.jsonl"),
        "--config",
        str(sp),
        env={SECRET_ENV: emu.client_secret},
    )
    outputs += [p.read_text(errors="replace") for p in tmp_path.iterdir() if p.is_file() and p.suffix != ".toml"]
    assert leaks(outputs, [emu.client_secret, emu.api_key]) == []


def test_an_error_body_echoing_the_key_is_redacted(pm: pluggy.PluginManager, emu: Emulator) -> None:
    from polysync_azure_openai.emulator.faults import Status

    emu.inject(Status(401, body={"error": {"code": "401", "message": f"Access denied for key {emu.api_key}."}}), kind="chat")
    result = pm.hook.submit(
        platform=api_key_platform(emu), job=job(CHAT, "gpt-4o"), parameters={"user_prompt": "hi"}, run_key="k"
    )
    assert result.status == "Failed" and "Access denied for key ***" in result.message
    assert leaks([result.message], [emu.api_key]) == []


def test_an_identity_endpoint_echoing_identity_header_is_redacted(
    pm: pluggy.PluginManager, emu: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    from polysync_azure_openai.emulator.faults import Status
    from polysync_azure_openai.identity import MANAGED_IDENTITY_VARIABLES

    from .test_keyless_auth import mi_platform

    for name in MANAGED_IDENTITY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in emu.managed_identity_environment().items():
        monkeypatch.setenv(name, value)
    echo = {"statusCode": 400, "message": f"Header {emu.identity_header} is not valid here."}
    emu.inject(Status(400, body=echo), kind="msi.token")
    result = pm.hook.submit(platform=mi_platform(emu), job=job(CHAT, "gpt-4o"), parameters={"user_prompt": "hi"}, run_key="k")
    assert result.status == "Failed" and "Header *** is not valid here" in (result.message or "")
    assert leaks([result.message or ""], [emu.identity_header]) == []


def test_certificate_and_its_password_never_leak(
    pm: pluggy.PluginManager, emu: Emulator, debug_logs: pytest.LogCaptureFixture
) -> None:
    import trustme

    from .test_auth import cert_platform, pkcs12_of

    leaf = trustme.CA(key_type=trustme.KeyType.RSA).issue_cert("app", key_type=trustme.KeyType.RSA)
    client_id = str(uuid.uuid4())
    emu.add_certificate_client(client_id, leaf.cert_chain_pems[0].bytes())
    password = "p12-" + uuid.uuid4().hex
    certificate = base64.b64encode(pkcs12_of(leaf, password.encode())).decode()
    key_pem = leaf.private_key_pem.bytes().decode()
    key_body = "".join(key_pem.splitlines()[1:-1])[:60]  # the base64 of the private key itself
    good = cert_platform(emu, client_id, certificate, **{"Certificate Password": password})
    texts = [repr(good), repr(PlatformConfig.from_host(good))]
    result = pm.hook.submit(platform=good, job=job(CHAT, "gpt-4o"), parameters={"user_prompt": "hi"}, run_key="k")
    assert result.status == "Success", result.message
    texts += [repr(result), result.message or ""]
    with pytest.raises(ConfigurationError) as info:
        pm.hook.submit(
            platform=cert_platform(emu, client_id, certificate, **{"Certificate Password": "wrong-" + password}),
            job=job(CHAT, "gpt-4o"),
            parameters={"user_prompt": "hi"},
            run_key="k",
        )
    texts.append(str(info.value))
    texts += [r.getMessage() for r in debug_logs.records] + [str(r.args) for r in debug_logs.records]
    assert debug_logs.records
    assert leaks(texts, [password, key_body, certificate[:60]]) == []


def test_federated_tokens_and_the_identity_header_never_leak(
    pm: pluggy.PluginManager,
    emu: Emulator,
    debug_logs: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path,
) -> None:
    """Workload and managed identity, success and every kind of refusal, a 401 renewal, DEBUG logs."""
    from polysync_azure_openai.auth import token_provider
    from polysync_azure_openai.errors import RemoteError
    from polysync_azure_openai.identity import MANAGED_IDENTITY_VARIABLES

    from .test_keyless_auth import mi_platform, wi_platform

    for name in MANAGED_IDENTITY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in emu.managed_identity_environment().items():
        monkeypatch.setenv(name, value)
    files = {
        "good": emu.write_federated_token(tmp_path / "good"),
        "wrong-audience": emu.write_federated_token(tmp_path / "wrong-audience", audience="api://wrong"),
        "unknown-subject": emu.write_federated_token(tmp_path / "unknown-subject", "system:serviceaccount:x:y"),
        "expired": emu.write_federated_token(tmp_path / "expired", lifetime=-600),
    }
    federated = [path.read_text() for path in files.values()]
    platforms = [wi_platform(emu, path, name=f"workload-{label}") for label, path in files.items()]
    platforms += [mi_platform(emu), mi_platform(emu, name="unattached", Client_Id=str(uuid.uuid4()))]
    texts: list[str] = []
    for platform in platforms:
        config = PlatformConfig.from_host(platform)
        texts += [repr(platform), repr(config), repr(config.auth), repr(token_provider(config))]
        for chat_job, parameters in (
            (job(CHAT, "gpt-4o"), {"user_prompt": "hi"}),
            (job(EMBEDDING, "embed-small"), {"input": "x"}),
        ):
            result = pm.hook.submit(platform=platform, job=chat_job, parameters=parameters, run_key="k")
            texts += [repr(result), result.run_id, result.message or "", str(dict(result.outputs))]
        try:
            texts += [repr(j) for j in pm.hook.import_jobs(platform=platform)[0] or []]
        except RemoteError as exc:
            texts += [str(exc), repr(exc)]
    emu.revoke_tokens()  # every good platform renews once
    for platform in (platforms[0], platforms[4]):
        result = pm.hook.submit(platform=platform, job=job(CHAT, "gpt-4o"), parameters={"user_prompt": "hi"}, run_key="k")
        assert result.status == "Success", result.message
        texts.append(result.message or "")
    monkeypatch.setenv("IDENTITY_HEADER", "stale-" + emu.identity_header)
    stale = pm.hook.submit(platform=platforms[4], job=job(CHAT, "gpt-4o"), parameters={"user_prompt": "hi"}, run_key="k")
    assert stale.status == "Failed" and "restart the worker" in (stale.message or "")
    texts.append(stale.message or "")
    failed = [t for t in texts if "AADSTS70021" in t or "AADSTS700213" in t or "AADSTS700024" in t]
    assert failed, "no federated refusal was seen: the scan would prove less"
    tokens = {r.headers["authorization"].removeprefix("Bearer ") for r in emu.requests if "authorization" in r.headers}
    assert len(tokens) >= 4
    records = debug_logs.records
    assert any(r.name.startswith(("azure", "msal")) for r in records)
    texts += [r.getMessage() for r in records] + [str(r.args) for r in records]
    assert leaks(texts, [*federated, emu.identity_header, "stale-" + emu.identity_header, *tokens]) == []


def embedded_base64(secret: str) -> list[str]:
    """The secret's base64 as it stands inside a longer encoded text, at each byte alignment."""
    return [
        base64.b64encode(b"x" * pad + secret.encode()).decode()[2 * pad : -4] for pad in range(3)
    ]  # a prefix of 0-2 bytes changes the first characters; the tail is cut to stay inside


def echoes(key: str) -> dict[str, object]:
    """Where a misbehaving gateway puts what it was sent."""
    from polysync_azure_openai.emulator.faults import Status

    xml = {"Content-Type": "application/xml"}
    return {
        "error-code": Status(401, body={"error": {"code": f"key:{key}", "message": "denied"}}),
        "inner-code": Status(400, body={"error": {"code": "x", "message": "m", "innererror": {"code": key}}}),
        "xml-code": Status(403, body=f"<Error><Code>{key}</Code><Message>no</Message></Error>", headers=xml),
        "plain-snippet": Status(502, body=f"upstream said: api-key={key}", headers={"Content-Type": "text/plain"}),
        "location": Status(302, body=b"", headers={"Location": f"https://{key}.example/?api-key={key}"}),
        "base64": Status(
            400, body={"error": {"code": "x", "message": base64.b64encode(f"api-key: {key}\r\n".encode()).decode()}}
        ),
        "url-encoded": Status(400, body={"error": {"code": "x", "message": urllib.parse.quote(f"{key}/+=", safe="")}}),
    }


@pytest.mark.parametrize("where", list(echoes("k")))
def test_a_server_echoing_the_key_anywhere_is_scrubbed(
    pm: pluggy.PluginManager, emu: Emulator, debug_logs: pytest.LogCaptureFixture, where: str
) -> None:
    emu.inject(echoes(emu.api_key)[where], kind="chat")
    result = pm.hook.submit(
        platform=api_key_platform(emu, Max_Retries="0"), job=job(CHAT, "gpt-4o"), parameters={"user_prompt": "hi"}, run_key="k"
    )
    assert result.status == "Failed" and "***" in result.message, result.message
    texts = [result.message, repr(result)] + [r.getMessage() for r in debug_logs.records if r.name.startswith("polysync")]
    assert leaks(texts, [emu.api_key]) == []
    assert not any(form in text for form in embedded_base64(emu.api_key) for text in texts)


def test_an_authority_echoing_the_client_secret_is_scrubbed(
    pm: pluggy.PluginManager, emu: Emulator, debug_logs: pytest.LogCaptureFixture
) -> None:
    from polysync_azure_openai.emulator.faults import Status

    form_body = f"client_id={emu.client_id}&client_secret={urllib.parse.quote(emu.client_secret)}&grant_type=client_credentials"
    emu.inject(
        Status(
            400,
            body={
                "error": "invalid_request",
                "error_description": f"AADSTS900144: bad request body {form_body} "
                f"(base64 {base64.b64encode(form_body.encode()).decode()})",
            },
        ),
        kind="entra.token",
    )
    result = pm.hook.submit(
        platform=sp_platform(emu, Max_Retries="0"), job=job(CHAT, "gpt-4o"), parameters={"user_prompt": "hi"}, run_key="k"
    )
    assert result.status == "Failed" and "AADSTS900144" in result.message and "***" in result.message, result.message
    texts = [result.message] + [r.getMessage() for r in debug_logs.records if r.name.startswith("polysync")]
    assert leaks(texts, [emu.client_secret]) == []
    assert not any(form in text for form in embedded_base64(emu.client_secret) for text in texts)


def test_a_batch_whose_errors_echo_the_key_is_scrubbed(pm: pluggy.PluginManager, emu: Emulator) -> None:
    from polysync_azure_openai.emulator.faults import Status

    failed = {
        "id": "batch_echo",
        "object": "batch",
        "endpoint": "/chat/completions",
        "status": "failed",
        "input_file_id": "file-abc",
        "completion_window": "24h",
        "created_at": 1700000000,
        "errors": {
            "object": "list",
            "data": [{"code": f"bad_{emu.api_key}", "message": f"line 1 sent {emu.api_key}", "line": 1}],
        },
    }
    emu.inject(Status(200, body=failed), kind="batches.get")
    result = pm.hook.get_status(platform=api_key_platform(emu), job=job(BATCH, "gpt-4o::batch"), run_id="batch_echo")
    assert result.status == "Failed" and "***" in result.message, result.message
    assert leaks([result.message, repr(result.outputs)], [emu.api_key]) == []


def test_the_redirect_of_a_token_endpoint_is_named_not_a_json_error(pm: pluggy.PluginManager, emu: Emulator) -> None:
    from polysync_azure_openai.emulator.faults import Status

    emu.inject(Status(302, body=b"", headers={"Location": "https://sign-in.proxy.example/"}), kind="entra.token")
    result = pm.hook.submit(
        platform=sp_platform(emu, Max_Retries="0"), job=job(CHAT, "gpt-4o"), parameters={"user_prompt": "hi"}, run_key="k"
    )
    assert result.status == "Failed"
    assert "did not answer with JSON" in result.message and "Expecting value" not in result.message, result.message
    assert "Fix: check 'Authority Host'" in result.message
