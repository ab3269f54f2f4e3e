"""Managed Identity and Workload Identity (second-release §E) through the hooks, against the
emulator's App Service style identity endpoint and its Entra over TLS.

The environment reaches azure-identity as it does on Azure: App Service's IDENTITY_ENDPOINT and
IDENTITY_HEADER, the AKS webhook's AZURE_FEDERATED_TOKEN_FILE, set with monkeypatch.setenv.
"""

from __future__ import annotations

import socket
import threading
import uuid
from collections.abc import Callable
from pathlib import Path

import pluggy
import pytest

from polysync_azure_openai.cli.host import Platform
from polysync_azure_openai.emulator import Emulator
from polysync_azure_openai.emulator.cli import platform_attributes
from polysync_azure_openai.emulator.faults import Delay, HtmlPage, Status
from polysync_azure_openai.errors import ConfigurationError, RemoteError
from polysync_azure_openai.identity import MANAGED_IDENTITY_VARIABLES
from polysync_azure_openai.jobs import CHAT, EMBEDDING
from polysync_azure_openai.results import RunResult

from .conftest import imported, job, with_overrides

DATA_SCOPE = "https://cognitiveservices.azure.com/.default"
ARM_SCOPE = "https://management.azure.com/.default"
ENTRA_ATTRIBUTES = ("Tenant Id", "Client Id", "Authority Host")


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No identity variable of the machine running the tests leaks in."""
    for name in MANAGED_IDENTITY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.fixture
def on_app_service(emu: Emulator, clean_env: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """The worker runs where App Service set IDENTITY_ENDPOINT and IDENTITY_HEADER (the emulator's)."""
    for name, value in emu.managed_identity_environment().items():
        clean_env.setenv(name, value)
    return clean_env


def mi_platform(emu: Emulator, name: str = "managed", **overrides: str | None) -> Platform:
    attributes = {k: v for k, v in platform_attributes(emu).items() if k not in ENTRA_ATTRIBUTES}
    return Platform(name=name, auth_method="Managed Identity", attributes=with_overrides(attributes, overrides))


def wi_platform(emu: Emulator, token_file: Path | None, name: str = "workload", **overrides: str | None) -> Platform:
    attributes = {**platform_attributes(emu), "Client Id": emu.workload_client_id}
    if token_file is not None:
        attributes["Token File Path"] = str(token_file)
    return Platform(name=name, auth_method="Workload Identity", attributes=with_overrides(attributes, overrides))


def chat(pm: pluggy.PluginManager, platform: Platform, prompt: str = "hi") -> RunResult:
    result: RunResult = pm.hook.submit(
        platform=platform, job=job(CHAT, "gpt-4o"), parameters={"user_prompt": prompt}, run_key="k"
    )
    return result


def callers(emu: Emulator, kind: str) -> list[str | None]:
    return [r.client_id for r in emu.requests if r.kind == kind]


# A platform of each method on the emulator, with the identity the emulator's services see.
Setup = Callable[[Emulator, pytest.MonkeyPatch], tuple[Platform, str]]


def system_assigned(emu: Emulator, env: pytest.MonkeyPatch) -> tuple[Platform, str]:
    return mi_platform(emu), emu.system_assigned_client_id


def user_assigned(emu: Emulator, env: pytest.MonkeyPatch) -> tuple[Platform, str]:
    client_id = emu.add_user_assigned_identity()
    return mi_platform(emu, Client_Id=client_id), client_id


def workload(emu: Emulator, env: pytest.MonkeyPatch) -> tuple[Platform, str]:
    return wi_platform(emu, emu.write_federated_token()), emu.workload_client_id


def workload_from_env(emu: Emulator, env: pytest.MonkeyPatch) -> tuple[Platform, str]:
    env.setenv("AZURE_FEDERATED_TOKEN_FILE", str(emu.write_federated_token()))
    return wi_platform(emu, None), emu.workload_client_id


SETUPS = [
    pytest.param(system_assigned, id="managed-system-assigned"),
    pytest.param(user_assigned, id="managed-user-assigned"),
    pytest.param(workload, id="workload-token-file-path"),
    pytest.param(workload_from_env, id="workload-AZURE_FEDERATED_TOKEN_FILE"),
]


@pytest.mark.parametrize("setup", SETUPS)
def test_chat_embeddings_and_import_run_as_the_identity(
    pm: pluggy.PluginManager, emu: Emulator, on_app_service: pytest.MonkeyPatch, setup: Setup
) -> None:
    platform, identity = setup(emu, on_app_service)
    assert chat(pm, platform).status == "Success"
    embedded = pm.hook.submit(platform=platform, job=job(EMBEDDING, "embed-small"), parameters={"input": "x"}, run_key="k")
    assert embedded.status == "Success"
    jobs = imported(pm, platform)
    assert {j.external_id for j in jobs} >= {"gpt-4o", "embed-small", "gpt-4o-batch::batch"}
    assert callers(emu, "chat") == [identity] and callers(emu, "embeddings") == [identity]
    assert callers(emu, "arm.deployments") == [identity]


@pytest.mark.parametrize("setup", SETUPS)
def test_one_token_request_per_scope_for_many_runs(
    pm: pluggy.PluginManager, emu: Emulator, on_app_service: pytest.MonkeyPatch, setup: Setup
) -> None:
    platform, identity = setup(emu, on_app_service)
    for i in range(8):
        assert chat(pm, platform, f"call {i}").status == "Success"
        if i % 3 == 0:
            imported(pm, platform)
    assert emu.token_requests(client_id=identity, scope=DATA_SCOPE) == 1
    assert emu.token_requests(client_id=identity, scope=ARM_SCOPE) == 1
    assert emu.token_requests() == 2


@pytest.mark.parametrize("setup", SETUPS)
def test_racing_threads_share_one_token(
    pm: pluggy.PluginManager, emu: Emulator, on_app_service: pytest.MonkeyPatch, setup: Setup
) -> None:
    platform, identity = setup(emu, on_app_service)
    barrier = threading.Barrier(8)
    statuses: list[str] = []

    def run() -> None:
        barrier.wait()
        statuses.extend(chat(pm, platform).status for _ in range(2))

    threads = [threading.Thread(target=run) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == ["Success"] * 16
    assert emu.token_requests(client_id=identity) == 1


@pytest.mark.parametrize("setup", SETUPS)
def test_a_401_is_resent_once_with_a_token_from_a_rebuilt_credential(
    pm: pluggy.PluginManager, emu: Emulator, on_app_service: pytest.MonkeyPatch, setup: Setup
) -> None:
    platform, identity = setup(emu, on_app_service)
    assert chat(pm, platform).status == "Success"
    emu.revoke_tokens()  # Azure no longer accepts the cached token
    assert chat(pm, platform).status == "Success"
    chats = [r for r in emu.requests if r.kind == "chat"]
    assert [r.status for r in chats] == [200, 401, 200]
    assert chats[1].headers["authorization"] != chats[2].headers["authorization"]
    # azure-identity would have handed back its own cached token: a new credential asked again.
    assert emu.token_requests(client_id=identity, scope=DATA_SCOPE) == 2


@pytest.mark.parametrize("setup", SETUPS)
def test_a_second_401_is_not_resent(
    pm: pluggy.PluginManager, emu: Emulator, on_app_service: pytest.MonkeyPatch, setup: Setup
) -> None:
    platform, _ = setup(emu, on_app_service)
    emu.inject(Status(401), kind="chat", times=2)
    result = chat(pm, platform)
    assert result.status == "Failed" and "HTTP 401" in (result.message or "")
    assert [r.status for r in emu.requests if r.kind == "chat"] == [401, 401]


def test_a_user_assigned_client_id_reaches_the_identity_endpoint(
    pm: pluggy.PluginManager, emu: Emulator, on_app_service: pytest.MonkeyPatch
) -> None:
    client_id = emu.add_user_assigned_identity()
    assert chat(pm, mi_platform(emu, Client_Id=client_id)).status == "Success"
    (request,) = [r for r in emu.requests if r.kind == "msi.token"]
    assert request.query == {
        "api-version": "2019-08-01",
        "resource": "https://cognitiveservices.azure.com",
        "client_id": client_id,
    }
    assert request.headers["x-identity-header"] == emu.identity_header
    # The system-assigned identity's request names no client id.
    assert chat(pm, mi_platform(emu, name="system")).status == "Success"
    assert "client_id" not in [r for r in emu.requests if r.kind == "msi.token"][-1].query


def test_identities_of_one_host_never_mix(pm: pluggy.PluginManager, emu: Emulator, on_app_service: pytest.MonkeyPatch) -> None:
    user = emu.add_user_assigned_identity()
    platforms = {"system": mi_platform(emu, name="system"), "user": mi_platform(emu, name="user", Client_Id=user)}
    barrier = threading.Barrier(6)

    def run(label: str) -> None:
        barrier.wait()
        for _ in range(3):
            chat(pm, platforms[label], f"asked as {label}")

    threads = [threading.Thread(target=run, args=(label,)) for label in ("system", "user") * 3]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    chats = [r for r in emu.requests if r.kind == "chat"]
    assert len(chats) == 18
    for request in chats:
        expected = user if "asked as user" in request.body.decode() else emu.system_assigned_client_id
        assert request.client_id == expected
    assert emu.token_requests(client_id=user) == 1 and emu.token_requests(client_id=emu.system_assigned_client_id) == 1


def test_a_changed_identity_endpoint_takes_effect_on_the_next_call(
    pm: pluggy.PluginManager, emu: Emulator, on_app_service: pytest.MonkeyPatch, ca: object
) -> None:
    assert chat(pm, mi_platform(emu)).status == "Success"
    with Emulator(ca=ca) as other:  # type: ignore[arg-type]
        for name, value in other.managed_identity_environment().items():
            on_app_service.setenv(name, value)
        assert chat(pm, mi_platform(other)).status == "Success"
        assert other.token_requests(client_id=other.system_assigned_client_id) == 1
        # Not the first endpoint's token, refused and renewed: a credential of the new environment.
        assert [r.status for r in other.requests if r.kind == "chat"] == [200]


# -- Max Retries and Request Timeout Seconds reach the credentials ------------------------------


@pytest.mark.parametrize(("retries", "status", "attempts"), [("0", "Failed", 1), ("1", "Success", 2)])
def test_max_retries_bounds_the_identity_endpoint_requests(
    pm: pluggy.PluginManager, emu: Emulator, on_app_service: pytest.MonkeyPatch, retries: str, status: str, attempts: int
) -> None:
    emu.inject(Status(503, body={"statusCode": 503, "message": "busy"}), kind="msi.token")
    result = chat(pm, mi_platform(emu, Max_Retries=retries))
    assert result.status == status, result.message
    assert len([r for r in emu.requests if r.kind == "msi.token"]) == attempts


@pytest.mark.parametrize(("retries", "status", "attempts"), [("0", "Failed", 1), ("1", "Success", 2)])
def test_max_retries_bounds_the_workload_identity_token_requests(
    pm: pluggy.PluginManager, emu: Emulator, clean_env: pytest.MonkeyPatch, retries: str, status: str, attempts: int
) -> None:
    emu.inject(Status(503), kind="entra.token")
    result = chat(pm, wi_platform(emu, emu.write_federated_token(), Max_Retries=retries))
    assert result.status == status, result.message
    if status == "Failed":  # Entra's status is kept: an outage, not a refusal of the identity
        assert "HTTP 503 ServiceUnavailable" in (result.message or ""), result.message
    assert len([r for r in emu.requests if r.kind == "entra.token"]) == attempts


def test_request_timeout_bounds_the_identity_endpoint(
    pm: pluggy.PluginManager, emu: Emulator, on_app_service: pytest.MonkeyPatch
) -> None:
    emu.inject(Delay(30), kind="msi.token")
    result = chat(pm, mi_platform(emu, Max_Retries="0", Request_Timeout_Seconds="0.3"))
    assert result.status == "Failed"
    assert "timed out" in (result.message or "").lower()
    assert not [r for r in emu.requests if r.kind == "chat"]


# -- what goes wrong on a worker, with the fix ---------------------------------------------------


def test_an_unattached_user_assigned_identity_is_named_with_the_fix(
    pm: pluggy.PluginManager, emu: Emulator, on_app_service: pytest.MonkeyPatch
) -> None:
    client_id = str(uuid.uuid4())
    result = chat(pm, mi_platform(emu, Client_Id=client_id))
    assert result.status == "Failed"
    message = result.message or ""
    assert "HTTP 400" in message and "Unable to load the proper Managed Identity" in message
    assert f"no user-assigned identity with client id {client_id} is attached" in message
    assert not [r for r in emu.requests if r.kind == "chat"]


def test_a_wrong_identity_header_gets_the_restart_advice(
    pm: pluggy.PluginManager, emu: Emulator, on_app_service: pytest.MonkeyPatch
) -> None:
    on_app_service.setenv("IDENTITY_HEADER", "stale-" + emu.identity_header)
    result = chat(pm, mi_platform(emu))
    assert result.status == "Failed"
    assert "HTTP 401" in (result.message or "") and "restart the worker" in (result.message or "")


def test_a_worker_without_a_managed_identity_endpoint_is_told_so(
    pm: pluggy.PluginManager, emu: Emulator, clean_env: pytest.MonkeyPatch
) -> None:
    # No IDENTITY_ENDPOINT: azure-identity asks IMDS, here a loopback port bound but not
    # listening, so every connection is refused.
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        clean_env.setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", f"http://127.0.0.1:{closed.getsockname()[1]}")
        result = chat(pm, mi_platform(emu, Max_Retries="0"))
        assert result.status == "Failed"
        assert "no managed identity endpoint answered" in (result.message or "")
        with pytest.raises(RemoteError) as info:
            imported(pm, mi_platform(emu, Max_Retries="0"))
    assert "IDENTITY_ENDPOINT" in str(info.value)


@pytest.mark.parametrize(
    ("fault", "says", "fix"),
    [
        pytest.param(Status(500, body={"statusCode": 500, "message": "boom"}), "HTTP 500", "answered with an error", id="500"),
        pytest.param(HtmlPage(200), "the managed identity endpoint did not answer with JSON", "NO_PROXY", id="html-page"),
    ],
)
def test_an_identity_endpoint_that_fails_is_not_called_absent(
    pm: pluggy.PluginManager, emu: Emulator, on_app_service: pytest.MonkeyPatch, fault: object, says: str, fix: str
) -> None:
    emu.inject(fault, kind="msi.token")  # type: ignore[arg-type]
    result = chat(pm, mi_platform(emu, Max_Retries="0"))
    message = result.message or ""
    assert result.status == "Failed" and says in message and fix in message
    assert "no managed identity endpoint answered" not in message


@pytest.mark.parametrize(
    ("claims", "code"),
    [
        pytest.param({"audience": "api://wrong-audience"}, "AADSTS70021", id="wrong-audience"),
        pytest.param({"subject": "system:serviceaccount:polysync:other"}, "AADSTS700213", id="unknown-subject"),
        pytest.param({"issuer": "https://oidc.other.invalid/"}, "AADSTS700211", id="unknown-issuer"),
    ],
)
def test_a_token_no_federated_credential_matches_gets_the_fix(
    pm: pluggy.PluginManager, emu: Emulator, clean_env: pytest.MonkeyPatch, claims: dict[str, str], code: str
) -> None:
    result = chat(pm, wi_platform(emu, emu.write_federated_token(**claims)))
    assert result.status == "Failed"
    message = result.message or ""
    assert code in message and "no federated identity credential of 'Client Id' matches" in message
    assert not [r for r in emu.requests if r.kind == "chat"]


def test_an_expired_federated_token_gets_its_own_fix(
    pm: pluggy.PluginManager, emu: Emulator, clean_env: pytest.MonkeyPatch
) -> None:
    result = chat(pm, wi_platform(emu, emu.write_federated_token(lifetime=-600)))
    assert result.status == "Failed"
    assert "AADSTS700024" in (result.message or "") and "projected volume" in (result.message or "")
    assert "upload this certificate" not in (result.message or "")


def test_entras_error_is_quoted_once_without_the_raw_body_azure_core_appends(
    pm: pluggy.PluginManager, emu: Emulator, clean_env: pytest.MonkeyPatch
) -> None:
    """Workload Identity's error keeps Entra's answer, whose str() adds "Content: <the raw JSON>":
    the message quotes the error's own words once, not the body a second time."""
    emu.inject(Status(503, body={"error": "temporarily_unavailable", "error_description": "AADSTS9: busy."}), kind="entra.token")
    result = chat(pm, wi_platform(emu, emu.write_federated_token(), Max_Retries="0"))
    assert result.status == "Failed"
    assert (
        f"HTTP 503 AADSTS9: Getting a Microsoft Entra token for {DATA_SCOPE} failed: "
        "Microsoft Entra ID error '(temporarily_unavailable) AADSTS9: busy.'. Fix: "
    ) in (result.message or ""), result.message
    assert "Content:" not in (result.message or "") and "error_description" not in (result.message or "")


def test_a_token_file_removed_after_the_check_is_a_clear_error(
    pm: pluggy.PluginManager, emu: Emulator, clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    token_file = emu.write_federated_token(tmp_path / "token")
    platform = wi_platform(emu, token_file)
    from polysync_azure_openai.platform import PlatformConfig

    PlatformConfig.from_host(platform)  # checked while the file is there
    token_file.unlink()
    with pytest.raises(ConfigurationError) as info:
        chat(pm, platform)
    assert str(token_file) in str(info.value) and "cannot be read" in str(info.value)
    assert emu.requests == []


def test_a_rotated_token_file_is_read_again_after_a_401(
    pm: pluggy.PluginManager, emu: Emulator, clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    token_file = emu.write_federated_token(tmp_path / "token")
    platform = wi_platform(emu, token_file)
    assert chat(pm, platform).status == "Success"
    emu.write_federated_token(token_file)  # Kubernetes refreshed the projected token
    emu.revoke_tokens()
    assert chat(pm, platform).status == "Success"
    exchanges = [r for r in emu.requests if r.kind == "entra.token"]
    assertions = [dict(p.split("=", 1) for p in r.body.decode().split("&"))["client_assertion"] for r in exchanges]
    assert len(assertions) == 2 and assertions[0] != assertions[1]


@pytest.mark.parametrize(
    ("value", "fragment"),
    [("relative/azure-identity-token", "must be an absolute path"), ("/no/such/azure-identity-token", "does not exist")],
)
def test_a_bad_AZURE_FEDERATED_TOKEN_FILE_is_named_before_any_request(
    pm: pluggy.PluginManager, emu: Emulator, clean_env: pytest.MonkeyPatch, value: str, fragment: str
) -> None:
    clean_env.setenv("AZURE_FEDERATED_TOKEN_FILE", value)
    with pytest.raises(ConfigurationError) as info:
        chat(pm, wi_platform(emu, None))
    message = str(info.value)
    assert "'Token File Path' is blank and the environment variable AZURE_FEDERATED_TOKEN_FILE" in message
    assert value in message and fragment in message
    assert emu.requests == []


@pytest.mark.parametrize("where", ["managed", "workload"])
def test_a_token_answer_cut_off_mid_json_says_no_json_came(
    pm: pluggy.PluginManager, emu: Emulator, on_app_service: pytest.MonkeyPatch, where: str
) -> None:
    """A token answer that breaks off mid-object (a parser error past column 1, wrapped by
    azure-core) is no JSON: the operator is told so, not given the parser's words."""
    cut = Status(200, body=b'{"token_type": "Bearer", "access_token": ')
    if where == "managed":
        emu.inject(cut, kind="msi.token")
        platform = mi_platform(emu, Max_Retries="0")
    else:
        for name in MANAGED_IDENTITY_VARIABLES:
            on_app_service.delenv(name, raising=False)
        emu.inject(cut, kind="entra.token")
        platform = wi_platform(emu, emu.write_federated_token(), Max_Retries="0")
    result = chat(pm, platform)
    message = result.message or ""
    assert result.status == "Failed" and "NonJsonTokenAnswer" in message and "did not answer with JSON" in message, message
    assert "Expecting value" not in message and not [r for r in emu.requests if r.kind == "chat"]
