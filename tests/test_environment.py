"""Sessions read the CA bundle and proxy variables once, when built, and still honour them."""

from __future__ import annotations

import select
import socket
import socketserver
import threading
from collections.abc import Iterator
from pathlib import Path

import attrs
import pluggy
import pytest

from polysync_azure_openai.cli.host import Platform
from polysync_azure_openai.emulator import Emulator
from polysync_azure_openai.errors import ConfigurationError
from polysync_azure_openai.jobs import BATCH, CHAT

from .conftest import api_key_platform, job, sp_platform

# The API Key tests below are the ones that test the plugin's own session: on a Service
# Principal platform azure-identity connects first, so a session that ignored the CA bundle or
# the proxy variables would never be reached by a CA or proxy test.


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


class _HostPlatform:
    """A platform object with only what the host contract names: no ``ca_bundle`` (the CLI's own extra)."""

    def __init__(self, platform: Platform) -> None:
        self.name = platform.name
        self.auth_method = platform.auth_method
        self.attributes = platform.attributes
        self.platform_type = platform.platform_type
        self.credential = platform.credential
        self.enabled_job_types = platform.enabled_job_types


def test_a_host_platform_without_a_ca_bundle_attribute_uses_the_environment_s_cas(
    pm: pluggy.PluginManager, emu: Emulator
) -> None:
    platform = _HostPlatform(api_key_platform(emu))
    assert not hasattr(platform, "ca_bundle")
    result = pm.hook.submit(platform=platform, job=job(CHAT, "gpt-4o"), parameters={"user_prompt": "hi"}, run_key="k")
    assert result.status == "Success", result.message


def test_a_platform_ca_bundle_naming_a_missing_file_is_a_clear_error(
    pm: pluggy.PluginManager, emu: Emulator, tmp_path: Path
) -> None:
    missing = str(tmp_path / "moved" / "ca.pem")
    platform = attrs.evolve(api_key_platform(emu), ca_bundle=missing)
    with pytest.raises(ConfigurationError) as info:
        pm.hook.submit(platform=platform, job=job(CHAT, "gpt-4o"), parameters={"user_prompt": "hi"}, run_key="k")
    assert f"the platform's ca_bundle names {missing!r}, which does not exist" in str(info.value)
    assert emu.requests == []


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


@pytest.mark.parametrize(
    ("variable", "timeout"),
    # requests reads CURL_CA_BUNDLE when REQUESTS_CA_BUNDLE is unset; so does the plugin.
    [("REQUESTS_CA_BUNDLE", "47.5"), ("CURL_CA_BUNDLE", "47.25")],
)
@pytest.mark.parametrize("auth", ["API Key", "Service Principal"])
def test_a_ca_bundle_variable_naming_a_missing_file_is_a_clear_error(
    pm: pluggy.PluginManager,
    emu: Emulator,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    auth: str,
    variable: str,
    timeout: str,
) -> None:
    missing = str(tmp_path / "moved" / "ca.pem")
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.setenv(variable, missing)
    # A timeout no other test uses: a fresh client and credential read the variable now.
    overrides = {"Request_Timeout_Seconds": timeout}
    platform = api_key_platform(emu, **overrides) if auth == "API Key" else sp_platform(emu, **overrides)
    for call in (
        lambda: pm.hook.submit(platform=platform, job=job(CHAT, "gpt-4o"), parameters={"user_prompt": "hi"}, run_key="k"),
        lambda: pm.hook.get_status(platform=platform, job=job(BATCH, "gpt-4o::batch"), run_id="batch_abc"),
    ):
        with pytest.raises(ConfigurationError) as info:
            call()
        assert variable in str(info.value) and missing in str(info.value), info.value
        assert "does not exist" in str(info.value)
    assert emu.requests == []


class _Tunnel(socketserver.BaseRequestHandler):
    """An HTTP CONNECT proxy, as corporate egress proxies are: records the target, then relays bytes."""

    server: _ProxyServer

    def handle(self) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.request.recv(4096)
            if not chunk:
                return
            head += chunk
        method, target, _ = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)
        with self.server.lock:
            self.server.seen.append(f"{method} {target}")
        if method != "CONNECT":
            self.request.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
            return
        host, _, port = target.rpartition(":")
        with socket.create_connection((host, int(port)), timeout=10) as upstream:
            self.request.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            ends = [self.request, upstream]
            while True:
                readable, _, _ = select.select(ends, [], [], 10)
                if not readable:
                    return
                for end in readable:
                    data = end.recv(65536)
                    if not data:
                        return
                    (upstream if end is self.request else self.request).sendall(data)


class _ProxyServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Tunnel)
        self.lock = threading.Lock()
        self.seen: list[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def proxy() -> Iterator[_ProxyServer]:
    server = _ProxyServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


def key_chat(pm: pluggy.PluginManager, emu: Emulator):
    platform = api_key_platform(emu, Max_Retries="0")
    return pm.hook.submit(platform=platform, job=job(CHAT, "gpt-4o"), parameters={"user_prompt": "hi"}, run_key="k")


def use_proxy(monkeypatch: pytest.MonkeyPatch, url: str, no_proxy: str | None) -> None:
    for name in ("HTTPS_PROXY", "https_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", url)
    if no_proxy is not None:
        monkeypatch.setenv("NO_PROXY", no_proxy)


def test_the_plugins_session_refuses_a_certificate_from_an_untrusted_ca(
    pm: pluggy.PluginManager, emu: Emulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import trustme

    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(other))
    result = key_chat(pm, emu)
    assert result.status == "Failed", result.message
    assert "UntrustedCertificate" in result.message and "REQUESTS_CA_BUNDLE" in result.message
    assert not [r for r in emu.requests if r.kind == "chat"]


def test_the_plugins_session_goes_through_the_configured_proxy(
    pm: pluggy.PluginManager, emu: Emulator, monkeypatch: pytest.MonkeyPatch, proxy: _ProxyServer
) -> None:
    use_proxy(monkeypatch, proxy.url, no_proxy=None)
    for _ in range(2):
        result = key_chat(pm, emu)
        assert result.status == "Success", result.message
    # One tunnel: the second call rides the first one's kept-alive connection.
    assert proxy.seen == [f"CONNECT {emu.host}"]
    assert len([r for r in emu.requests if r.kind == "chat"]) == 2


def test_the_plugins_session_fails_at_a_dead_proxy(
    pm: pluggy.PluginManager, emu: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_proxy(monkeypatch, f"http://127.0.0.1:{dead_port()}", no_proxy=None)
    result = key_chat(pm, emu)
    assert result.status == "Failed"
    assert emu.requests == []


def test_no_proxy_takes_the_plugins_session_around_the_proxy(
    pm: pluggy.PluginManager, emu: Emulator, monkeypatch: pytest.MonkeyPatch, proxy: _ProxyServer
) -> None:
    use_proxy(monkeypatch, proxy.url, no_proxy="localhost,127.0.0.1")
    result = key_chat(pm, emu)
    assert result.status == "Success", result.message
    assert proxy.seen == []
    assert len([r for r in emu.requests if r.kind == "chat"]) == 1
