"""The platform file of the operator commands: the emulator's format, secrets only from the environment."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from polysync_azure_openai.cli import main
from polysync_azure_openai.cli.config_file import ConfigFileError, load_platform
from polysync_azure_openai.emulator import Emulator
from polysync_azure_openai.emulator.cli import SECRET_ENV, platform_toml
from polysync_azure_openai.jobs import CHAT
from polysync_azure_openai.platform import PlatformConfig

SECRET = "s3cr3t-value-never-shown-anywhere"
HEAD = 'name = "P"\nplatform_type = "Azure OpenAI"\nauth_method = "Service Principal"\n'
SP_ATTRIBUTES = (
    '[attributes]\n"OpenAI Resource Name" = "contoso-aoai"\n"Tenant Id" = "contoso.onmicrosoft.com"\n'
    '"Client Id" = "11111111-2222-3333-4444-555555555555"\n'
)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "platform.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_file_the_emulator_writes_loads(tmp_path: Path, emu: Emulator) -> None:
    path = write(tmp_path, platform_toml(emu))
    platform = load_platform(path, {SECRET_ENV: emu.client_secret})
    assert platform.name == "Azure OpenAI Emulator" and platform.auth_method == "Service Principal"
    assert platform.attributes["Client Secret"] == emu.client_secret
    assert platform.attributes["OpenAI Endpoint"] == emu.url
    assert emu.client_secret not in repr(platform)
    assert PlatformConfig.from_host(platform).resource_name == emu.resource_name


def test_the_keyless_files_the_emulator_writes_load_without_any_secret(
    tmp_path: Path, emu: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    from polysync_azure_openai.emulator.cli import keyless_platform_toml

    monkeypatch.delenv("AZURE_FEDERATED_TOKEN_FILE", raising=False)
    token = emu.write_federated_token(tmp_path / "token")
    managed = load_platform(write(tmp_path, keyless_platform_toml(emu, "Managed Identity")), {})
    assert managed.auth_method == "Managed Identity" and "Client Id" not in managed.attributes
    (tmp_path / "platform.toml").unlink()
    workload = load_platform(write(tmp_path, keyless_platform_toml(emu, "Workload Identity", token)), {})
    # A path, not a secret: written into the file as it is.
    assert workload.attributes["Token File Path"] == str(token)
    assert PlatformConfig.from_host(workload).auth.token_file_path == str(token)


def test_a_relative_token_file_path_is_refused_naming_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AZURE_FEDERATED_TOKEN_FILE", raising=False)
    text = 'name = "P"\nauth_method = "Workload Identity"\n' + SP_ATTRIBUTES + '"Token File Path" = "token"\n'
    with pytest.raises(ConfigFileError) as info:
        load_platform(write(tmp_path, text), {})
    assert str(tmp_path / "platform.toml") in str(info.value) and "'Token File Path'" in str(info.value)
    assert "absolute path" in str(info.value)


def test_any_attribute_may_come_from_the_environment_and_numbers_become_text(tmp_path: Path) -> None:
    text = (
        HEAD
        + 'enabled_job_types = ["Azure OpenAI Chat Completion"]\n'
        + SP_ATTRIBUTES
        + '"Client Secret" = { env = "SECRET_VAR" }\n"Subscription Id" = { env = "SUB" }\n"Max Retries" = 0\n'
        + '"API Key" = { env = "UNSET_BECAUSE_UNUSED" }\n'
    )
    platform = load_platform(write(tmp_path, text), {"SECRET_VAR": SECRET, "SUB": "11111111-2222-3333-4444-555555555555"})
    assert platform.attributes["Subscription Id"] == "11111111-2222-3333-4444-555555555555"
    assert platform.attributes["Max Retries"] == "0"
    assert "API Key" not in platform.attributes  # not used by Service Principal, so its variable need not exist
    assert platform.enabled_job_types == (CHAT,)


BAD_FILES = [
    pytest.param("name = [", "is not valid TOML", id="toml-syntax"),
    pytest.param(
        HEAD + SP_ATTRIBUTES + f'"Client Secret" = "{SECRET}"\n',
        'is a secret written into the file. Secrets come only from environment variables: write "Client Secret" = { env = "AZURE_OPENAI_CLIENT_SECRET" }',
        id="inline-secret",
    ),
    pytest.param(
        HEAD.replace("Service Principal", "API Key") + f'[attributes]\n"OpenAI Resource Name" = "r"\n"API Key" = "{SECRET}"\n',
        "attribute 'API Key' is a secret written into the file",
        id="inline-api-key",
    ),
    pytest.param(
        HEAD + SP_ATTRIBUTES + f'"API Key" = "{SECRET}"\n',
        "attribute 'API Key' is a secret written into the file",
        id="inline-unused-secret",
    ),
    pytest.param(
        HEAD + SP_ATTRIBUTES + '"Client Secret" = { env = "NOT_SET_ANYWHERE" }\n',
        "comes from the environment variable NOT_SET_ANYWHERE, which is not set. Set NOT_SET_ANYWHERE",
        id="env-unset",
    ),
    pytest.param(HEAD + SP_ATTRIBUTES + '"Client Secret" = { env = "EMPTY" }\n', "EMPTY, which is empty", id="env-empty"),
    pytest.param(
        HEAD + SP_ATTRIBUTES + '"Client Secret" = { file = "x" }\n',
        'is a table other than { env = "VARIABLE" }',
        id="not-env-table",
    ),
    pytest.param(HEAD + SP_ATTRIBUTES + '"Client Secret" = { env = "A-B" }\n', "is a table other than", id="bad-env-name"),
    pytest.param(
        HEAD + '[attributes]\n"OpenAI Resource" = "r"\n',
        "attribute 'OpenAI Resource' is not an attribute of the Azure OpenAI platform. Use the names the admin UI shows (did you mean 'OpenAI Resource Name'?)",
        id="unknown-attribute",
    ),
    pytest.param(
        HEAD + '[attributes]\n"OpenAI Resource Name" = true\n', "attribute 'OpenAI Resource Name' is a TOML bool", id="bool-value"
    ),
    pytest.param(HEAD + "atributes = {}\n", "has an unknown key 'atributes'", id="unknown-key"),
    pytest.param('auth_method = "API Key"\n', "has no 'name'", id="no-name"),
    pytest.param(
        'name = "P"\nplatform_type = "AWS Bedrock"\nauth_method = "API Key"\n',
        "has platform_type 'AWS Bedrock'",
        id="platform-type",
    ),
    pytest.param(
        'name = "P"\nauth_method = "Password"\n', "has auth_method 'Password'. Set auth_method to one of", id="auth-method"
    ),
    pytest.param(
        'name = "P"\nauth_method = "Polysync Service Principal"\n', "borrows the Polysync host's own identity", id="host-identity"
    ),
    pytest.param(HEAD + 'enabled_job_types = ["chat"]\n', "has enabled_job_types entry 'chat'", id="enabled-job-types"),
    pytest.param(
        HEAD + SP_ATTRIBUTES + '"Client Secret" = { env = "SECRET_VAR" }\n"OpenAI Endpoint" = "http://x"\n',
        "attribute 'OpenAI Endpoint' is 'http://x': it must start with https://",
        id="platform-rule",
    ),
    pytest.param(HEAD + SP_ATTRIBUTES, "attribute 'Client Secret' is not set", id="secret-missing"),
]


@pytest.mark.parametrize(("text", "fragment"), BAD_FILES)
def test_bad_files_name_the_file_the_problem_and_the_fix(tmp_path: Path, text: str, fragment: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigFileError) as raised:
        load_platform(path, {"SECRET_VAR": SECRET, "EMPTY": " "})
    message = str(raised.value)
    assert str(path) in message
    assert fragment in message
    assert SECRET not in message and SECRET not in repr(raised.value)


def test_a_missing_file_says_how_to_get_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigFileError, match=r"does not exist\. Check the path given to --config"):
        load_platform(tmp_path / "nope.toml", {})


# -- Certificate: a path is not a secret, its content is -----------------------------------------

PEM = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n"
CERTIFICATE_HEAD = (
    'name = "P"\nauth_method = "Certificate"\n[attributes]\n"OpenAI Resource Name" = "contoso-aoai"\n'
    '"Tenant Id" = "contoso.onmicrosoft.com"\n"Client Id" = "11111111-2222-3333-4444-555555555555"\n'
    '"Subscription Id" = "11111111-2222-3333-4444-555555555555"\n"Resource Group Name" = "rg-ai"\n'
)


def monitor_url(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """``monitor-url`` reads the platform and sends nothing: the file's rules alone decide."""
    code = main(["monitor-url", "--config", str(path)])
    out, err = capsys.readouterr()
    return code, out, err


def test_a_certificate_path_in_the_file_is_accepted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, CERTIFICATE_HEAD + '"Certificate" = "/etc/polysync/contoso-app.pem"\n')
    code, out, err = monitor_url(path, capsys)
    assert code == 0, err
    assert "portal.azure.com" in out and "rg-ai" in out
    assert load_platform(path, {}).attributes["Certificate"] == "/etc/polysync/contoso-app.pem"


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        pytest.param(json.dumps(PEM), "MIIEvQ", id="pem"),
        pytest.param(json.dumps(base64.b64encode(PEM.encode()).decode()), "LS0tLS1", id="base64"),
        pytest.param('"certs/app.pem"', "certs/app.pem", id="relative-path"),
    ],
)
def test_a_certificate_written_into_the_file_is_still_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], value: str, shown: str
) -> None:
    path = write(tmp_path, CERTIFICATE_HEAD + f'"Certificate" = {value}\n')
    code, out, err = monitor_url(path, capsys)
    assert code == 2
    assert "attribute 'Certificate' is a secret written into the file" in err
    assert "absolute path of the certificate file" in err
    assert shown not in err and shown not in out
