"""Token acquisition under load: 16 threads x 100 chat submits for a fresh Service Principal.

All threads start together (a barrier) on a platform whose identity has no token yet, so the
first calls race for it. The plugin must ask Entra once per scope; the reference is
azure-identity alone (a fresh ``ClientSecretCredential``, 16 threads x 100 ``get_token``), which
lets racing threads each fetch their own token.

All 1,600 calls fall inside one token lifetime (an hour). A check across lifetimes would take
minutes here: azure-identity refuses to refresh more often than every 30 s.
"""

from __future__ import annotations

from . import contenders as c
from .harness import ARM_SCOPE, CHAT_SCOPE, Target, burst, local_server, note, title

THREADS = 16
CALLS = 100


def run(quick: bool) -> list[Target]:
    from azure.identity import ClientSecretCredential

    from polysync_azure_openai.cli.host import plugin_manager

    calls = 25 if quick else CALLS
    title(f"Token acquisition under load: {THREADS} threads x {calls} calls, Service Principal, fresh identity")
    with local_server() as server:
        pm = plugin_manager()

        client_id, secret = server.add_client()
        platform = c.sp_platform(server, name="fresh-identity", client_id=client_id, client_secret=secret)
        plugin = c.plugin_call(server, "chat", pm, platform)
        plugin_seconds = burst(plugin, THREADS, calls, timeout=300)[0]
        plugin_tokens = server.token_requests(client_id, CHAT_SCOPE)
        plugin_arm = server.token_requests(client_id, ARM_SCOPE)

        bare_id, bare_secret = server.add_client()
        credential = ClientSecretCredential(
            server.tenant_id, bare_id, bare_secret, authority=server.url, disable_instance_discovery=True
        )
        bare_seconds = burst(lambda: credential.get_token(CHAT_SCOPE), THREADS, calls, timeout=300)[0]
        bare_tokens = server.token_requests(bare_id, CHAT_SCOPE)

    total = THREADS * calls
    print(f"   {'contender':<44} {'calls':>6} {'token requests':>15} {'wall s':>8}")
    print(f"   {'plugin submit (chat), shared token cache':<44} {total:>6} {plugin_tokens:>15} {plugin_seconds:>8.2f}")
    print(f"   {'azure-identity ClientSecretCredential alone':<44} {total:>6} {bare_tokens:>15} {bare_seconds:>8.2f}")
    note(f"plugin token requests for the ARM scope: {plugin_arm} (no discovery ran, so none are due)")
    note(f"plugin / azure-identity token requests: {plugin_tokens / max(bare_tokens, 1):.2f}x")
    return [Target("tokens", f"token requests per scope, {THREADS} threads x {calls} calls", plugin_tokens, 1, fmt="{:.0f}")]
