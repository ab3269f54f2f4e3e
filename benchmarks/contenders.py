"""The three ways to make one Azure OpenAI call, each pointed at the same server.

- ``plugin``: ``pm.hook.submit(...)`` of a real ``plugin_manager()`` with a Service Principal
  platform: validation, platform config, token cache, retry loop, output mapping and RunId
  included, exactly as the host calls it.
- ``requests``: a default ``requests.Session`` POSTing the same JSON bytes with a bearer token,
  then ``response.json()`` and picking the output, the least a hand-written client does.
- ``openai``: ``openai.AzureOpenAI(...).chat.completions.create`` /
  ``.embeddings.create(encoding_format="float")`` with the same token.

Every contender sends the same request body (the openai SDK adds ``"model"``, which selects the
deployment in its URL) and checks that the answer carries what the job needs.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Callable
from typing import Any

from .harness import API_VERSION, CHAT_SCOPE, trust

DEPLOYMENT = "gpt-4o"
EMBEDDING_DEPLOYMENT = "embed-small"
SYSTEM_PROMPT = "Answer in one word."
USER_PROMPT = "Name a prime number."
EMBEDDING_INPUT = "The quick brown fox jumps over the lazy dog."
MAX_TOKENS = 50
TEMPERATURE = 0.0

CHAT_BODY: dict[str, Any] = {
    "messages": [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": USER_PROMPT}],
    "max_tokens": MAX_TOKENS,
    "temperature": TEMPERATURE,
}
EMBEDDING_BODY: dict[str, Any] = {"input": EMBEDDING_INPUT}


def body_bytes(body: dict[str, Any]) -> bytes:
    """The bytes the plugin sends for ``body`` (compact separators, UTF-8)."""
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def platform_attributes(server: Any, client_id: str | None = None, client_secret: str | None = None) -> dict[str, str]:
    """A Service Principal platform on ``server``, as tests/conftest.py points one at the emulator."""
    return {
        # The contenders (raw requests, the openai SDK's AzureOpenAI) call the dated paths; so does
        # the plugin here, so that all of them send the same request to the same route.
        "OpenAI API Version": API_VERSION,
        "Subscription Id": server.subscription_id,
        "Resource Group Name": server.resource_group,
        "OpenAI Resource Name": server.resource_name,
        "OpenAI Endpoint": server.url,
        "Resource Manager Endpoint": server.url,
        "Authority Host": server.url,
        "Tenant Id": server.tenant_id,
        "Client Id": client_id or server.client_id,
        "Client Secret": client_secret or server.client_secret,
    }


def sp_platform(server: Any, name: str = "bench", **identity: str) -> Any:
    from polysync_azure_openai.cli.host import Platform

    return Platform(name=name, auth_method="Service Principal", attributes=platform_attributes(server, **identity))


def chat_job() -> Any:
    from polysync_azure_openai.cli.host import Job
    from polysync_azure_openai.jobs import CHAT

    return Job(
        job_type=CHAT,
        external_id=DEPLOYMENT,
        name=DEPLOYMENT,
        attributes={
            "Deployment Name": DEPLOYMENT,
            "Model Name": "gpt-4o",
            "OpenAI System Prompt": SYSTEM_PROMPT,
            "OpenAI Max Tokens": str(MAX_TOKENS),
            "OpenAI Temperature": "0",
        },
    )


def embedding_job() -> Any:
    from polysync_azure_openai.cli.host import Job
    from polysync_azure_openai.jobs import EMBEDDING

    return Job(
        job_type=EMBEDDING,
        external_id=EMBEDDING_DEPLOYMENT,
        name=EMBEDDING_DEPLOYMENT,
        attributes={"Deployment Name": EMBEDDING_DEPLOYMENT, "Model Name": "text-embedding-3-small"},
    )


def fetch_token(server: Any, scope: str = CHAT_SCOPE) -> str:
    """A data-plane token for the raw and SDK contenders (fetched once, outside the timing)."""
    import requests

    response = requests.post(
        f"{server.url}/{server.tenant_id}/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": server.client_id,
            "client_secret": server.client_secret,
            "scope": scope,
        },
        verify=trust().ca_path,
        timeout=30,
    )
    response.raise_for_status()
    token: str = response.json()["access_token"]
    return token


# -- contenders -----------------------------------------------------------------------------------


def plugin_call(server: Any, kind: str, pm: Any = None, platform: Any = None) -> Callable[[], object]:
    """One host ``submit`` of the chat or embedding job; checks the run succeeded."""
    from polysync_azure_openai.cli.host import plugin_manager

    pm = pm or plugin_manager()
    platform = platform or sp_platform(server)
    job = chat_job() if kind == "chat" else embedding_job()
    parameters = {"user_prompt": USER_PROMPT} if kind == "chat" else {"input": EMBEDDING_INPUT}
    output = "response" if kind == "chat" else "embedding"
    submit = pm.hook.submit

    def call() -> object:
        result = submit(platform=platform, job=job, parameters=parameters, run_key="bench-run-key")
        if result.status != "Success" or not result.outputs[output]:
            raise RuntimeError(f"plugin run failed: {result.message}")
        return result

    return call


def requests_call(server: Any, kind: str, token: str, *, trust_env: bool = True, pool: int | None = None) -> Callable[[], object]:
    """A ``requests.Session`` POST of the plugin's exact body bytes, then ``.json()``."""
    import requests

    session = requests.Session()
    session.trust_env = trust_env
    if not trust_env:
        session.verify = trust().ca_path
    if pool is not None:
        adapter = requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=pool)
        session.mount("https://", adapter)
    deployment = DEPLOYMENT if kind == "chat" else EMBEDDING_DEPLOYMENT
    url = f"{server.url}/openai/deployments/{deployment}/{'chat/completions' if kind == 'chat' else 'embeddings'}"
    params = {"api-version": API_VERSION}
    data = body_bytes(CHAT_BODY if kind == "chat" else EMBEDDING_BODY)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    post = session.post

    def chat() -> object:
        response = post(url, params=params, data=data, headers=headers, timeout=(10, 120))
        response.raise_for_status()
        return response.json()["choices"][0]["message"]["content"]

    def embeddings() -> object:
        response = post(url, params=params, data=data, headers=headers, timeout=(10, 120))
        response.raise_for_status()
        return response.json()["data"][0]["embedding"]

    return chat if kind == "chat" else embeddings


def httpclient_call(server: Any, kind: str, token: str) -> Callable[[], object]:
    """``http.client`` with a plain stack of idle connections: about the least a client can cost.

    Not a contender anyone would ship (no retries, no timeouts policy); it shows how far the
    machine and the server let any client scale.
    """
    import http.client
    import queue

    context = ssl.create_default_context(cafile=trust().ca_path)
    host, port = server.url.removeprefix("https://").rsplit(":", 1)
    deployment = DEPLOYMENT if kind == "chat" else EMBEDDING_DEPLOYMENT
    operation = "chat/completions" if kind == "chat" else "embeddings"
    path = f"/openai/deployments/{deployment}/{operation}?api-version={API_VERSION}"
    data = body_bytes(CHAT_BODY if kind == "chat" else EMBEDDING_BODY)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    idle: queue.LifoQueue[http.client.HTTPSConnection] = queue.LifoQueue()

    def call() -> object:
        try:
            connection = idle.get_nowait()
        except queue.Empty:
            connection = http.client.HTTPSConnection(host, int(port), context=context, timeout=120)
        connection.request("POST", path, body=data, headers=headers)
        response = connection.getresponse()
        payload = json.loads(response.read())
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status}")
        idle.put(connection)
        return payload

    return call


def openai_client(server: Any, token: str) -> Any:
    import openai

    return openai.AzureOpenAI(
        azure_endpoint=server.url,
        api_version=API_VERSION,
        azure_ad_token=token,
        # The SDK's own defaults (timeouts, connection limits), trusting the run's CA.
        http_client=openai.DefaultHttpxClient(verify=ssl.create_default_context(cafile=trust().ca_path)),
    )


def openai_call(server: Any, kind: str, token: str, client: Any = None) -> Callable[[], object]:
    client = client or openai_client(server, token)
    messages = CHAT_BODY["messages"]

    def chat() -> object:
        completion = client.chat.completions.create(
            model=DEPLOYMENT, messages=messages, max_tokens=MAX_TOKENS, temperature=TEMPERATURE
        )
        return completion.choices[0].message.content

    def embeddings() -> object:
        answer = client.embeddings.create(model=EMBEDDING_DEPLOYMENT, input=EMBEDDING_INPUT, encoding_format="float")
        return answer.data[0].embedding

    return chat if kind == "chat" else embeddings


def same_bodies(server: Any, route: str) -> str:
    """Whether every contender sent the same JSON (ignoring the SDK's ``model`` field)."""
    seen = server.bodies(route)
    ignored = ("model", "encoding_format") if route == "embeddings" else ("model",)
    parsed = []
    for raw in seen:
        payload = json.loads(raw)
        for key in ignored:
            payload.pop(key, None)
        parsed.append(json.dumps(payload, sort_keys=True))
    distinct = len(set(parsed))
    return (
        f"request bodies: {len(seen)} distinct byte strings, {distinct} distinct JSON document(s) "
        "once the SDK's 'model' (and 'encoding_format' = the default 'float') are set aside"
    )
