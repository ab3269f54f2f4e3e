"""Sessions read the CA bundle and proxy variables once, when built, and still honour them."""

from __future__ import annotations

import socket
from pathlib import Path

import pluggy
import pytest

from polysync_azure_openai.emulator import Emulator
from polysync_azure_openai.errors import ConfigurationError
from polysync_azure_openai.jobs import BATCH, CHAT

from .conftest import api_key_platform, job, sp_platform


def dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def chat(pm: pluggy.PluginManager, emu: Emulator):
    # No retries: the failures here are not transient, and backoff would only slow the suite.
    platform = sp_platform(emu, Max_Retries="0")
    return pm.hook.submit(platform=platform, job=job(CHAT, "gpt-4o"), parameters={"user_prompt": "hi"}, run_key="k")


def test_private_ca_from_requests_ca_bundle(pm: pluggy.PluginManager, emu: Emulator) -> None:
    """The whole suite trusts the emulator only through REQUESTS_CA_BUNDLE; this makes it explicit."""
    assert chat(pm, emu).status == "Success"


def test_untrusted_ca_fails_with_the_fix(
    pm: pluggy.PluginManager, emu: Emulator, monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    import trustme

    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(other))
    result = chat(pm, emu)
    assert result.status == "Failed"
    assert "REQUESTS_CA_BUNDLE" in result.message and "certificate" in result.message.lower()


def test_no_proxy_bypasses_a_configured_proxy(pm: pluggy.PluginManager, emu: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{dead_port()}")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    assert chat(pm, emu).status == "Success"


def test_a_configured_proxy_is_used(pm: pluggy.PluginManager, emu: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    """No NO_PROXY: the request goes to the (dead) proxy, so the run fails at the proxy."""
    port = dead_port()
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{port}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    result = chat(pm, emu)
    assert result.status == "Failed"
    assert not [r for r in emu.requests if r.kind == "chat"]


@pytest.mark.parametrize("auth", ["API Key", "Service Principal"])
def test_a_ca_bundle_variable_naming_a_missing_file_is_a_clear_error(
    pm: pluggy.PluginManager, emu: Emulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, auth: str
) -> None:
    missing = str(tmp_path / "moved" / "ca.pem")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", missing)
    # A timeout no other test uses: a fresh client and credential read the variable now.
    overrides = {"Request_Timeout_Seconds": "47.5"}
    platform = api_key_platform(emu, **overrides) if auth == "API Key" else sp_platform(emu, **overrides)
    for call in (
        lambda: pm.hook.submit(platform=platform, job=job(CHAT, "gpt-4o"), parameters={"user_prompt": "hi"}, run_key="k"),
        lambda: pm.hook.get_status(platform=platform, job=job(BATCH, "gpt-4o::batch"), run_id="batch_abc"),
    ):
        with pytest.raises(ConfigurationError) as info:
            call()
        assert "REQUESTS_CA_BUNDLE" in str(info.value) and missing in str(info.value), info.value
        assert "does not exist" in str(info.value)
    assert emu.requests == []
