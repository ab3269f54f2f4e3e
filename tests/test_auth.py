"""Auth: the four methods, one token per identity and scope, a 401 resend, no mixing of platforms."""

from __future__ import annotations

import base64
import logging
import re
import threading
import time
import uuid
from pathlib import Path

import pluggy
import pytest
import trustme
from azure.core.credentials import AccessToken
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from polysync_azure_openai.cli.host import Platform
from polysync_azure_openai.emulator import Emulator
from polysync_azure_openai.errors import ConfigurationError
from polysync_azure_openai.jobs import CHAT, EMBEDDING

from .conftest import api_key_platform, emulator_attributes, job, sp_platform
from .http import loopback as lb

DATA_SCOPE = "https://cognitiveservices.azure.com/.default"


def chat(pm: pluggy.PluginManager, platform: Platform, prompt: str = "hi"):
    return pm.hook.submit(platform=platform, job=job(CHAT, "gpt-4o"), parameters={"user_prompt": prompt}, run_key="k")


def test_one_token_request_for_twenty_calls(pm: pluggy.PluginManager, emu: Emulator) -> None:
    for i in range(20):
        assert chat(pm, sp_platform(emu), f"call {i}").status == "Success"
    assert emu.token_requests() == 1
    assert emu.token_requests(client_id=emu.client_id, scope=DATA_SCOPE) == 1


def test_sixteen_racing_threads_fetch_one_token(pm: pluggy.PluginManager, emu: Emulator) -> None:
    barrier = threading.Barrier(16)
    statuses: list[str] = []

    def run() -> None:
        barrier.wait()
        for _ in range(3):
            statuses.append(chat(pm, sp_platform(emu)).status)

    threads = [threading.Thread(target=run) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses == ["Success"] * 48
    assert emu.token_requests() == 1


def test_a_new_token_is_logged_by_scope_and_lifetime_never_by_value(
    pm: pluggy.PluginManager, emu: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="polysync_azure_openai")
    chat(pm, sp_platform(emu))
    token = [r for r in emu.requests if r.kind == "chat"][-1].headers["authorization"].removeprefix("Bearer ")
    got = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Got a token for scope ")]
    assert len(got) == 1 and re.fullmatch(r"Got a token for scope https://\S+/\.default \(expires in \d+ s\)", got[0]), got
    assert not [r for r in caplog.records if token in r.getMessage()]


def test_token_is_renewed_shortly_before_it_expires(pm: pluggy.PluginManager, emu: Emulator) -> None:
    emu.token_lifetime = 200  # inside the 300 s refresh margin from the start: every call renews
    chat(pm, sp_platform(emu))
    chat(pm, sp_platform(emu))
    assert emu.token_requests() == 2
    emu.token_lifetime = 3600
    chat(pm, sp_platform(emu))
    chat(pm, sp_platform(emu))
    assert emu.token_requests() == 3


def test_401_gets_one_resend_with_a_new_token(pm: pluggy.PluginManager, emu: Emulator) -> None:
    assert chat(pm, sp_platform(emu)).status == "Success"
    emu.revoke_tokens()  # Azure no longer accepts the cached token
    assert chat(pm, sp_platform(emu)).status == "Success"
    chats = [r for r in emu.requests if r.kind == "chat"]
    assert len(chats) == 3  # ok, 401, resent ok
    assert chats[1].headers["authorization"] != chats[2].headers["authorization"]
    assert emu.token_requests() == 2


def test_scopes_are_cached_separately(pm: pluggy.PluginManager, emu: Emulator) -> None:
    platform = sp_platform(emu)
    pm.hook.import_jobs(platform=platform)
    chat(pm, platform)
    pm.hook.import_jobs(platform=platform)
    chat(pm, platform)
    assert emu.token_requests(scope=DATA_SCOPE) == 1
    assert emu.token_requests(scope="https://management.azure.com/.default") == 1


def test_two_platforms_never_mix_credentials(pm: pluggy.PluginManager, emu: Emulator) -> None:
    other_id = str(uuid.uuid4())
    emu.add_secret_client(other_id, "second-secret-value")
    a = sp_platform(emu, name="a")
    b = sp_platform(emu, name="b", Client_Id=other_id, Client_Secret="second-secret-value")
    barrier = threading.Barrier(8)

    def run(platform: Platform, prompt: str) -> None:
        barrier.wait()
        for _ in range(5):
            chat(pm, platform, prompt)

    threads = [threading.Thread(target=run, args=(p, p.name)) for p in (a, b) * 4]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    chats = [r for r in emu.requests if r.kind == "chat"]
    assert len(chats) == 40
    for request in chats:
        sent_by = request.body.decode()
        expected = emu.client_id if '"a"' in sent_by else other_id
        assert request.client_id == expected
    assert emu.token_requests(client_id=emu.client_id) == 1
    assert emu.token_requests(client_id=other_id) == 1


def test_changed_configuration_under_the_same_name_takes_effect(pm: pluggy.PluginManager, emu: Emulator) -> None:
    assert chat(pm, sp_platform(emu)).status == "Success"
    broken = chat(pm, sp_platform(emu, Client_Secret="rotated-wrong-secret"))
    assert broken.status == "Failed"
    assert "AADSTS7000215" in broken.message and "Client Secret" in broken.message
    assert "rotated-wrong-secret" not in broken.message


def test_wrong_secret_is_a_failed_run_with_the_entra_error(pm: pluggy.PluginManager, emu: Emulator) -> None:
    result = chat(pm, sp_platform(emu, Client_Secret="definitely-wrong"))
    assert result.status == "Failed"
    assert "invalid_client" in result.message or "AADSTS7000215" in result.message
    # Entra's Trace ID is the request id a support case asks for.
    assert re.search(r"\(request id [0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}\)", result.message), result.message
    assert not [r for r in emu.requests if r.kind == "chat"]


@pytest.mark.parametrize(
    "description,shown,cut",
    [
        ("AADSTS7000215: Invalid client secret provided.", "AADSTS7000215: Invalid client secret provided. Fix: ", None),
        ("AADSTS50000: " + "word " * 200 + "the end.", "AADSTS50000: word word", "the end"),
        (
            "AADSTS7000215: Invalid client secret provided.\r\nTimestamp: 2026-01-01 00:00:00Z",
            "AADSTS7000215: Invalid client secret provided. Timestamp: 2026-01-01 00:00:00Z. Fix: ",
            None,
        ),
    ],
    ids=["full-stop-not-doubled", "long-text-cut", "lines-joined-by-a-space"],
)
def test_entras_words_are_quoted_once_closed_and_cut_when_long(
    pm: pluggy.PluginManager, emu: Emulator, description: str, shown: str, cut: str | None
) -> None:
    """Entra's error_description reads as one sentence of the message (its full stop not doubled
    before the fix, its lines joined by a space), and a long one is cut to about 600 characters."""
    from polysync_azure_openai.emulator.faults import Status

    emu.inject(Status(400, body={"error": "invalid_client", "error_description": description}), kind="entra.token")
    result = chat(pm, sp_platform(emu, Max_Retries="0"))
    assert result.status == "Failed" and shown in result.message and ".." not in result.message.replace("...", ""), result.message
    quoted = result.message.split(f"token for {DATA_SCOPE} failed: ")[1].split(" Fix: ")[0]
    assert len(quoted) <= 620, result.message
    assert cut is None or cut not in result.message


def test_a_cut_of_entras_words_is_marked(pm: pluggy.PluginManager, emu: Emulator) -> None:
    """The "..." of a cut survives the closing full stop's removal: the operator sees words are missing."""
    from polysync_azure_openai.emulator.faults import Status

    description = "AADSTS50000: " + "word " * 200 + "the end."
    emu.inject(Status(400, body={"error": "invalid_client", "error_description": description}), kind="entra.token")
    result = chat(pm, sp_platform(emu, Max_Retries="0"))
    assert result.status == "Failed" and re.search(r"word w?o?r?d?\.\.\.", result.message), result.message


def test_polysync_service_principal_uses_the_hosts_credential(pm: pluggy.PluginManager, emu: Emulator) -> None:
    from azure.identity import ClientSecretCredential

    host_credential = ClientSecretCredential(
        emu.tenant_id, emu.client_id, emu.client_secret, authority=emu.url, disable_instance_discovery=True
    )
    attributes = {k: v for k, v in emulator_attributes(emu).items() if k not in ("Tenant Id", "Client Id", "Client Secret")}
    platform = Platform(
        name="host-identity", auth_method="Polysync Service Principal", attributes=attributes, credential=host_credential
    )
    for _ in range(3):
        assert chat(pm, platform).status == "Success"
    assert emu.token_requests() == 1
    jobs = pm.hook.import_jobs(platform=platform)
    assert any(jobs)


def test_a_host_credential_chain_meeting_a_sign_in_page_says_no_json_came(pm: pluggy.PluginManager, emu: Emulator) -> None:
    """A ChainedTokenCredential (as DefaultAzureCredential) quotes its members' failures in a new
    error that keeps no cause: the JSON error is known only by its words, which tell an operator nothing."""
    from azure.identity import ChainedTokenCredential, ClientSecretCredential

    from polysync_azure_openai.emulator.faults import HtmlPage

    member = ClientSecretCredential(
        emu.tenant_id, emu.client_id, emu.client_secret, authority=emu.url, disable_instance_discovery=True
    )
    attributes = {k: v for k, v in emulator_attributes(emu).items() if k not in ("Tenant Id", "Client Id", "Client Secret")}
    attributes["Max Retries"] = "0"
    platform = Platform(
        name="host-chain",
        auth_method="Polysync Service Principal",
        attributes=attributes,
        credential=ChainedTokenCredential(member),
    )
    emu.inject(HtmlPage(200), kind="entra.token")
    result = chat(pm, platform)
    assert result.status == "Failed"
    assert "did not answer with JSON" in result.message and "Expecting value" not in result.message, result.message


# An authority whose accept queue is full never completes the TCP handshake: only the
# credential's connect timeout, min(10 s, 'Request Timeout Seconds'), ends the wait (azure-core's
# own default is 300 s, Linux gives up on the SYNs after about 2 min).
@pytest.mark.timeout(30)
def test_request_timeout_bounds_connecting_to_the_authority(pm: pluggy.PluginManager, emu: Emulator) -> None:
    with lb.full_backlog() as origin:
        platform = sp_platform(emu, Authority_Host=origin, Max_Retries="0", Request_Timeout_Seconds="1")
        result = chat(pm, platform)
    assert result.status == "Failed"
    message = result.message or ""
    assert "Getting a Microsoft Entra token" in message and "timed out" in message.lower(), message
    assert emu.requests == []


def test_polysync_service_principal_without_credential_is_a_clear_error(pm: pluggy.PluginManager, emu: Emulator) -> None:
    platform = Platform(name="p", auth_method="Polysync Service Principal", attributes=emulator_attributes(emu))
    with pytest.raises(ConfigurationError, match="host passed no credential"):
        chat(pm, platform)
    assert emu.requests == []


# -- Certificate ----------------------------------------------------------------------------------


@pytest.fixture
def certificate(emu: Emulator) -> tuple[str, trustme.LeafCert]:
    """An app registration with a certificate, registered in the emulator."""
    # Entra signs certificate assertions with RS256: app certificates have RSA keys.
    issuer = trustme.CA(key_type=trustme.KeyType.RSA)
    leaf = issuer.issue_cert("polysync-test-app", key_type=trustme.KeyType.RSA)
    client_id = str(uuid.uuid4())
    emu.add_certificate_client(client_id, leaf.cert_chain_pems[0].bytes())
    return client_id, leaf


def cert_platform(emu: Emulator, client_id: str, certificate: str, **extra: str) -> Platform:
    attributes = {k: v for k, v in emulator_attributes(emu).items() if k != "Client Secret"}
    attributes.update({"Client Id": client_id, "Certificate": certificate, **extra})
    return Platform(name="cert", auth_method="Certificate", attributes=attributes)


def pem_of(leaf: trustme.LeafCert) -> bytes:
    return leaf.private_key_pem.bytes() + leaf.cert_chain_pems[0].bytes()


def pkcs12_of(leaf: trustme.LeafCert, password: bytes) -> bytes:
    key = serialization.load_pem_private_key(leaf.private_key_pem.bytes(), None)
    cert = x509.load_pem_x509_certificate(leaf.cert_chain_pems[0].bytes())
    return pkcs12.serialize_key_and_certificates(b"app", key, cert, None, serialization.BestAvailableEncryption(password))  # type: ignore[arg-type]


def thumbprint_of(leaf: trustme.LeafCert) -> str:
    cert = x509.load_pem_x509_certificate(leaf.cert_chain_pems[0].bytes())
    return cert.fingerprint(hashes.SHA1()).hex()


@pytest.mark.parametrize(
    "form", ["pem-text", "pem-base64", "pkcs12-base64", "pem-path", "pem-path-blank-first-line", "pkcs12-path"]
)
def test_certificate_forms(pm: pluggy.PluginManager, emu: Emulator, certificate, form: str, tmp_path: Path) -> None:
    client_id, leaf = certificate
    extra: dict[str, str] = {}
    if form == "pem-text":
        value = pem_of(leaf).decode()
    elif form == "pem-base64":
        value = base64.b64encode(pem_of(leaf)).decode()
    elif form == "pkcs12-base64":
        value = base64.b64encode(pkcs12_of(leaf, b"p12-pass")).decode()
        extra["Certificate Password"] = "p12-pass"
    elif form.startswith("pem-path"):
        # A PEM file may start with a blank line (files concatenated by hand): still PEM.
        (tmp_path / "app.pem").write_bytes((b"\n" if form.endswith("blank-first-line") else b"") + pem_of(leaf))
        value = str(tmp_path / "app.pem")
    else:
        (tmp_path / "app.p12").write_bytes(pkcs12_of(leaf, b"p12-pass"))
        value = str(tmp_path / "app.p12")
        extra["Certificate Password"] = "p12-pass"
    # Thumbprint as the portal shows it, with colons and lower case: both are ignored.
    tp = thumbprint_of(leaf)
    extra["Thumbprint"] = ":".join(tp[i : i + 2] for i in range(0, len(tp), 2)).lower()
    result = chat(pm, cert_platform(emu, client_id, value, **extra))
    assert result.status == "Success", result.message
    assert emu.token_requests(client_id=client_id) == 1


def test_thumbprint_mismatch_fails_before_entra(pm: pluggy.PluginManager, emu: Emulator, certificate) -> None:
    client_id, leaf = certificate
    with pytest.raises(ConfigurationError) as info:
        chat(pm, cert_platform(emu, client_id, pem_of(leaf).decode(), Thumbprint="AB" * 20))
    assert "'Thumbprint' is " + "AB" * 20 in str(info.value) and thumbprint_of(leaf).upper() in str(info.value)
    assert emu.requests == []


def test_wrong_pkcs12_password_is_a_clear_error(pm: pluggy.PluginManager, emu: Emulator, certificate) -> None:
    client_id, leaf = certificate
    value = base64.b64encode(pkcs12_of(leaf, b"right")).decode()
    with pytest.raises(ConfigurationError) as info:
        chat(pm, cert_platform(emu, client_id, value, **{"Certificate Password": "wrong-password"}))
    assert "'Certificate'" in str(info.value) and "Certificate Password" in str(info.value)
    assert "wrong-password" not in str(info.value)
    assert emu.requests == []


def test_a_missing_certificate_is_refused_with_the_forms_it_may_take(
    pm: pluggy.PluginManager, emu: Emulator, certificate
) -> None:
    client_id, _ = certificate
    platform = cert_platform(emu, client_id, "")
    del platform.attributes["Certificate"]
    with pytest.raises(ConfigurationError) as info:
        chat(pm, platform)
    assert str(info.value) == (
        "Platform 'cert': attribute 'Certificate' is not set. Set it in the platform's settings "
        "(PEM text, base64 of a PEM or PKCS#12 file, or its path)."
    )
    assert emu.requests == []


def test_certificate_with_an_ec_key_is_a_clear_error(pm: pluggy.PluginManager, emu: Emulator, certificate) -> None:
    client_id, _ = certificate
    ec_leaf = trustme.CA(key_type=trustme.KeyType.ECDSA).issue_cert("ec-app")
    with pytest.raises(ConfigurationError, match=r"has a key of type (EC|EllipticCurve)PrivateKey, but .* need an RSA key"):
        chat(pm, cert_platform(emu, client_id, pem_of(ec_leaf).decode()))
    assert emu.requests == []


# cryptography's reason for refusing a certificate is quoted in the error: never its bytes, never at length.
@pytest.mark.parametrize(
    ("reason", "quoted"),
    [
        (
            "Could not deserialize key data: reason_text=b'error:0x1E08010C:DECODER routines'",
            "Could not deserialize key data: reason_text=<bytes>",
        ),
        ("two b'\\x30\\x82' and b'' values", "two <bytes> and <bytes> values"),
        ("B'upper case is no bytes literal'", "B'upper case is no bytes literal'"),
        ("x" * 300, "x" * 200),
    ],
    ids=["openssl-bytes", "two-bytes-literals", "not-bytes", "long"],
)
def test_a_certificate_loading_reason_is_quoted_without_bytes_and_at_most_200_characters(reason: str, quoted: str) -> None:
    from polysync_azure_openai.auth import _scrub

    assert _scrub(reason) == quoted


def test_certificate_path_that_does_not_exist(pm: pluggy.PluginManager, emu: Emulator, certificate) -> None:
    client_id, _ = certificate
    with pytest.raises(ConfigurationError, match="cannot be read"):
        chat(pm, cert_platform(emu, client_id, "/nonexistent/app.pem"))
    assert emu.requests == []


def test_unregistered_certificate_is_rejected_by_entra(pm: pluggy.PluginManager, emu: Emulator, certificate) -> None:
    client_id, _ = certificate
    stranger = trustme.CA(key_type=trustme.KeyType.RSA).issue_cert("someone-else", key_type=trustme.KeyType.RSA)
    result = chat(pm, cert_platform(emu, client_id, pem_of(stranger).decode()))
    assert result.status == "Failed" and "AADSTS" in result.message
    assert not [r for r in emu.requests if r.kind == "chat"]


def test_embedding_and_chat_share_the_identity_token(pm: pluggy.PluginManager, emu: Emulator) -> None:
    chat(pm, sp_platform(emu))
    pm.hook.submit(platform=sp_platform(emu), job=job(EMBEDDING, "embed-small"), parameters={"input": "x"}, run_key="k")
    assert emu.token_requests() == 1


@pytest.mark.parametrize(
    "key", ["k1-0123456789abcdef\r\nk2-fedcba9876543210", "k1-0123456789abcdef k2-fedcba9876543210", "kéy-0123456789"]
)
def test_an_api_key_that_cannot_be_a_header_is_refused_before_any_request(
    pm: pluggy.PluginManager, emu: Emulator, key: str
) -> None:
    with pytest.raises(ConfigurationError) as info:
        pm.hook.submit(
            platform=api_key_platform(emu, API_Key=key),
            job=job(CHAT, "gpt-4o"),
            parameters={"user_prompt": "hi"},
            run_key="r1",
        )
    message = str(info.value)
    assert message == (
        "Platform 'emulator-key': attribute 'API Key' contains spaces, line breaks, control or non-ASCII characters, "
        "so it cannot be sent as the api-key header (Key 1 and Key 2 pasted together?). "
        "Paste exactly one key from the resource's Keys and Endpoint page."
    )
    assert "0123456789" not in message and "fedcba" not in message  # never quotes the secret
    assert emu.requests == []
    # The valid twin: the emulator's own key reaches it.
    result = pm.hook.submit(
        platform=api_key_platform(emu), job=job(CHAT, "gpt-4o"), parameters={"user_prompt": "hi"}, run_key="r1"
    )
    assert result.status == "Success" and emu.requests


class _HostCredential:
    """The host's TokenCredential, returning whatever token it is given."""

    def __init__(self, token: object) -> None:
        self.value = token

    def get_token(self, *scopes: str, **kwargs: object) -> AccessToken:
        return AccessToken(self.value, int(time.time()) + 3600)  # type: ignore[arg-type]


@pytest.mark.parametrize("token", [None, "", "eyJ0eXAi.a\r\nb", "eyJ0eXAi.é"], ids=["none", "empty", "crlf", "non-ascii"])
def test_a_malformed_host_token_is_a_clear_error_before_any_request(
    pm: pluggy.PluginManager, emu: Emulator, token: object
) -> None:
    platform = Platform(
        name="host-identity",
        auth_method="Polysync Service Principal",
        attributes=emulator_attributes(emu),
        credential=_HostCredential(token),
    )
    with pytest.raises(ConfigurationError, match="the host's credential returned a malformed token") as info:
        pm.hook.submit(platform=platform, job=job(CHAT, "gpt-4o"), parameters={"user_prompt": "hi"}, run_key="r1")
    assert "eyJ0eXAi" not in str(info.value)
    assert emu.requests == []


# -- the plugin's own token cache ------------------------------------------------------------------


class _MintingHostCredential:
    """A host credential with no cache of its own: every get_token mints a new Entra token.

    azure-identity's credentials cache their tokens, which would hide a plugin that asks on
    every call; with this one, each ask the plugin makes is a counted token request.
    """

    def __init__(self, emu: Emulator) -> None:
        self._emu = emu
        self._lock = threading.Lock()
        self.calls: dict[str, int] = {}

    def get_token(self, *scopes: str, **kwargs: object) -> AccessToken:
        from azure.identity import ClientSecretCredential

        with self._lock:
            for scope in scopes:
                self.calls[scope] = self.calls.get(scope, 0) + 1
        fresh = ClientSecretCredential(
            self._emu.tenant_id,
            self._emu.client_id,
            self._emu.client_secret,
            authority=self._emu.url,
            disable_instance_discovery=True,
        )
        return fresh.get_token(*scopes)


class _ValueEqualHostCredential(_MintingHostCredential):
    """A host credential that compares by value (as a dataclass does), so Python makes it unhashable."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _MintingHostCredential) and other._emu is self._emu

    __hash__ = None  # type: ignore[assignment]


def minting_platform(emu: Emulator, credential: _MintingHostCredential) -> Platform:
    attributes = {k: v for k, v in emulator_attributes(emu).items() if k not in ("Tenant Id", "Client Id", "Client Secret")}
    return Platform(name="host-identity", auth_method="Polysync Service Principal", attributes=attributes, credential=credential)


def test_the_minting_host_credential_really_mints_a_new_token_each_call(emu: Emulator) -> None:
    credential = _MintingHostCredential(emu)
    first, second = credential.get_token(DATA_SCOPE), credential.get_token(DATA_SCOPE)
    assert first.token != second.token
    assert emu.token_requests() == 2


@pytest.mark.parametrize("kind", [_MintingHostCredential, _ValueEqualHostCredential], ids=["hashable", "unhashable"])
def test_the_plugin_caches_the_host_credentials_token_per_scope(
    pm: pluggy.PluginManager, emu: Emulator, kind: type[_MintingHostCredential]
) -> None:
    credential = kind(emu)
    for i in range(5):
        platform = minting_platform(emu, credential)  # a new platform object per run, as the host passes them
        assert chat(pm, platform, f"call {i}").status == "Success"
        assert any(pm.hook.import_jobs(platform=platform))
    assert credential.calls == {DATA_SCOPE: 1, "https://management.azure.com/.default": 1}
    assert emu.token_requests() == 2


def test_racing_threads_ask_the_host_credential_once(pm: pluggy.PluginManager, emu: Emulator) -> None:
    credential = _MintingHostCredential(emu)
    barrier = threading.Barrier(16)
    statuses: list[str] = []

    def run() -> None:
        barrier.wait()
        for _ in range(3):
            statuses.append(chat(pm, minting_platform(emu, credential)).status)

    threads = [threading.Thread(target=run) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses == ["Success"] * 48
    assert credential.calls == {DATA_SCOPE: 1}
