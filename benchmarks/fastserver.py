"""A minimal threaded raw-socket TLS HTTP/1.1 keep-alive server with canned Azure answers.

Why not the emulator: the emulator is built on ``http.server`` and derives every answer from
the request (validation, hashes, a fresh JSON dump), which costs about 120 µs of server CPU per
request; that would sit inside every client measurement. This server parses only the request
line and the headers it needs, answers from bytes prepared in advance and writes each answer with
one ``sendall``, so its own cost stays small; it measures that cost (CPU seconds of its
connection threads per request) and reports it with every benchmark.

It serves, in the wire shapes of ``/work/shared/spec/wire-samples.md``:

- Entra ID v2.0: OIDC discovery and the client-credentials token grant (secret), counting token
  requests per client and scope (azure-identity/MSAL work against it with instance discovery
  off, as the plugin configures for a non-Microsoft ``Authority Host``);
- ARM: the deployments listing of one account, paged with ``nextLink``/``$skipToken``;
- the data plane: chat completions (§3) and 1536-dim float embeddings (§4), with an optional
  per-request latency (slept, not spent) for the concurrency benchmark.

Bearer tokens are checked by lookup (data plane needs the Cognitive Services audience, ARM the
management audience), so a client that skipped auth would fail, not look fast.

Run in-process (``FastServer(...).start()``) or in its own process::

    python -m benchmarks.fastserver --cert-chain server.pem [--latency 0.05]

which prints one JSON line (url and credentials) and serves until its stdin closes. The control
routes ``GET /_stats`` and ``POST /_reset`` are excluded from the counts.
"""

from __future__ import annotations

import argparse
import base64
import json
import random
import secrets
import socket
import ssl
import sys
import threading
import time
import uuid
from collections import Counter
from typing import Any
from urllib.parse import parse_qsl, quote

DATA_PLANE_AUDIENCE = "https://cognitiveservices.azure.com"
ARM_AUDIENCES = ("https://management.azure.com", "https://management.core.windows.net")
EMBEDDING_DIMENSIONS = 1536
MAX_HEADER_BYTES = 64 * 1024
MAX_BODY_BYTES = 16 * 1024 * 1024
IDLE_TIMEOUT = 120.0

CHAT_ANSWER: dict[str, Any] = {
    "id": "chatcmpl-Apn3aJ0BPybkQFIi3YO2XHweNLS8W",
    "object": "chat.completion",
    "created": 1736906666,
    "model": "gpt-4o-2024-08-06",
    "system_fingerprint": "fp_04751d0b65",
    "prompt_filter_results": [
        {
            "prompt_index": 0,
            "content_filter_results": {
                "hate": {"filtered": False, "severity": "safe"},
                "jailbreak": {"filtered": False, "detected": False},
                "self_harm": {"filtered": False, "severity": "safe"},
                "sexual": {"filtered": False, "severity": "safe"},
                "violence": {"filtered": False, "severity": "safe"},
            },
        }
    ],
    "choices": [
        {
            "index": 0,
            "finish_reason": "stop",
            "logprobs": None,
            "message": {"role": "assistant", "content": "Seven.", "refusal": None},
            "content_filter_results": {
                "hate": {"filtered": False, "severity": "safe"},
                "protected_material_code": {"filtered": False, "detected": False},
                "protected_material_text": {"filtered": False, "detected": False},
                "self_harm": {"filtered": False, "severity": "safe"},
                "sexual": {"filtered": False, "severity": "safe"},
                "violence": {"filtered": False, "severity": "safe"},
            },
        }
    ],
    "usage": {
        "prompt_tokens": 22,
        "completion_tokens": 2,
        "total_tokens": 24,
        "completion_tokens_details": {"reasoning_tokens": 0},
    },
}


def embedding_answer(dimensions: int = EMBEDDING_DIMENSIONS) -> dict[str, Any]:
    """A §4 answer with one unit-scale vector; 9-digit floats as Azure sends them."""
    rng = random.Random(1536)
    vector = [round(rng.uniform(-0.08, 0.08), 9) for _ in range(dimensions)]
    return {
        "object": "list",
        "model": "text-embedding-3-small",
        "data": [{"object": "embedding", "index": 0, "embedding": vector}],
        "usage": {"prompt_tokens": 6, "total_tokens": 6},
    }


def _dumps(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


_REASONS = {200: b"OK", 400: b"Bad Request", 401: b"Unauthorized", 404: b"Not Found", 405: b"Method Not Allowed"}


def _answer(status: int, body: bytes, extra: bytes = b"", *, close: bool = False) -> bytes:
    head = b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n" % (
        status,
        _REASONS.get(status, b"Status"),
        len(body),
    )
    return head + extra + (b"Connection: close\r\n" if close else b"") + b"\r\n" + body


# Ids Azure OpenAI puts on every answer (fixed: the plugin quotes them, nobody checks them).
_AZURE_HEADERS = (
    b"apim-request-id: bb943c68-99ed-46ab-bda9-a5efbdf5897a\r\n"
    b"x-request-id: 3a8b1a44-a02c-4a07-b51d-1c88acec4c4f\r\n"
    b"x-ms-region: Local Bench\r\n"
    b"x-ratelimit-remaining-requests: 79\r\n"
    b"x-ratelimit-remaining-tokens: 61353\r\n"
)
_ARM_HEADERS = b"x-ms-request-id: 5f3e7d0c-3c9c-4c55-9d3a-8b3f0a1d2e4f\r\n"
_NOT_FOUND = _answer(404, b'{"error":{"code":"404","message": "Resource not found"}}', _AZURE_HEADERS)
_DATA_PLANE_401 = _answer(
    401,
    _dumps(
        {
            "statusCode": 401,
            "message": "Unauthorized. Access token is missing, invalid, audience is incorrect "
            "(https://cognitiveservices.azure.com), or have expired.",
        }
    ),
    _AZURE_HEADERS,
)
_ARM_401 = _answer(401, _dumps({"error": {"code": "InvalidAuthenticationToken", "message": "The access token is invalid."}}))


class FastServer:
    """One emulated tenant, account and resource over TLS on 127.0.0.1; thread-safe counters."""

    def __init__(
        self,
        context: ssl.SSLContext,
        *,
        latency: float = 0.0,
        token_lifetime: int = 3599,
        deployments: int = 10,
        page_size: int = 100,
        port: int = 0,
    ) -> None:
        self._context = context
        self.latency = latency
        self.token_lifetime = token_lifetime
        self.tenant_id = str(uuid.uuid4())
        self.subscription_id = str(uuid.uuid4())
        self.resource_group = "rg-bench"
        self.resource_name = "bench-aoai"
        self.client_id = str(uuid.uuid4())
        self.client_secret = secrets.token_urlsafe(30)
        self._clients = {self.client_id: self.client_secret}
        self._tokens: dict[str, str] = {}  # token -> audience
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._token_requests: Counter[tuple[str, str]] = Counter()
        self._bodies: dict[str, list[bytes]] = {}
        self._meters: list[_Meter] = []
        self._connections: set[socket.socket] = set()
        self._stopping = threading.Event()
        self._chat = _answer(200, _dumps(CHAT_ANSWER), _AZURE_HEADERS)
        self._embedding = _answer(200, _dumps(embedding_answer()), _AZURE_HEADERS)
        self._listener = socket.create_server(("127.0.0.1", port), backlog=256)
        self.port = self._listener.getsockname()[1]
        self.url = f"https://127.0.0.1:{self.port}"
        self._arm_path = (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
            f"/providers/Microsoft.CognitiveServices/accounts/{self.resource_name}/deployments"
        )
        self._pages: dict[int, bytes] = {}
        self.set_deployments(deployments, page_size)
        self._oidc = _answer(200, _dumps(self._oidc_document()))
        self._accept_thread: threading.Thread | None = None

    # -- configuration -------------------------------------------------------------------------

    def add_client(self) -> tuple[str, str]:
        """A new service principal (a fresh identity nobody has a token for yet)."""
        client_id, secret = str(uuid.uuid4()), secrets.token_urlsafe(30)
        with self._lock:
            self._clients[client_id] = secret
        return client_id, secret

    def set_deployments(self, count: int, page_size: int) -> None:
        """``count`` deployments listed ``page_size`` per page: chat, embedding, batch and skipped ones."""
        items = [self._deployment(i) for i in range(count)]
        pages: dict[int, bytes] = {}
        for offset in range(0, max(count, 1), page_size):
            payload: dict[str, Any] = {"value": items[offset : offset + page_size]}
            if offset + page_size < count:
                token = base64.urlsafe_b64encode(b'{"next":%d}' % (offset + page_size)).rstrip(b"=").decode()
                payload["nextLink"] = f"{self.url}{quote(self._arm_path)}?api-version=2023-05-01&$skipToken={token}"
            pages[offset] = _answer(200, _dumps(payload), _ARM_HEADERS)
        self._pages = pages

    def _deployment(self, i: int) -> dict[str, Any]:
        kind = i % 10
        model, version, sku, capabilities, state = (
            "gpt-4o",
            "2024-08-06",
            "GlobalStandard",
            {"chatCompletion": "true"},
            "Succeeded",
        )
        if kind in (6, 7):
            model, version, sku, capabilities = "text-embedding-3-small", "1", "Standard", {"embeddings": "true"}
        elif kind == 8:
            sku = "GlobalBatch"
        elif kind == 9:
            if i % 20 == 9:
                model, version, capabilities = "dall-e-3", "3.0", {"imageGenerations": "true"}
            else:
                state = "Creating"
        name = f"dep-{i:04d}"
        return {
            "id": f"{self._arm_path}/{name}",
            "name": name,
            "type": "Microsoft.CognitiveServices/accounts/deployments",
            "sku": {"name": sku, "capacity": 50},
            "systemData": {"createdBy": "ops@contoso.com", "createdByType": "User", "createdAt": "2024-11-05T09:12:44.1234567Z"},
            "properties": {
                "model": {"format": "OpenAI", "name": model, "version": version},
                "versionUpgradeOption": "OnceNewDefaultVersionAvailable",
                "raiPolicyName": "Microsoft.DefaultV2",
                "capabilities": capabilities,
                "provisioningState": state,
            },
        }

    def _oidc_document(self) -> dict[str, Any]:
        base = f"{self.url}/{self.tenant_id}"
        return {
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "jwks_uri": f"{base}/discovery/v2.0/keys",
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": f"{base}/v2.0",
            "request_uri_parameter_supported": False,
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
            "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
            "tenant_region_scope": "WW",
            "cloud_instance_name": "microsoftonline.com",
            "cloud_graph_host_name": "graph.windows.net",
            "msgraph_host": "graph.microsoft.com",
        }

    # -- what it saw -----------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Request counts per route, token requests per (client, scope), server CPU seconds."""
        with self._lock:
            counts = dict(self._counts)
            tokens = [[client, scope, n] for (client, scope), n in self._token_requests.items()]
            cpu = sum(meter.cpu for meter in self._meters)
        return {
            "requests": counts,
            "total": sum(counts.values()),
            "token_requests": tokens,
            "cpu_seconds": cpu,
            # The whole process (accept loop, interpreter): meaningful when the server runs alone.
            "process_cpu_seconds": time.process_time(),
        }

    def bodies(self, route: str) -> list[bytes]:
        """The first distinct request bodies a route received (at most 8)."""
        with self._lock:
            return list(self._bodies.get(route, ()))

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()
            self._token_requests.clear()
            self._bodies.clear()
            for meter in self._meters:
                meter.cpu = 0.0

    def token_requests(self, client_id: str | None = None, scope: str | None = None) -> int:
        with self._lock:
            return sum(
                n
                for (client, requested), n in self._token_requests.items()
                if (client_id is None or client == client_id) and (scope is None or requested == scope)
            )

    # -- life cycle ------------------------------------------------------------------------------

    def start(self) -> FastServer:
        self._accept_thread = threading.Thread(target=self._accept, name=f"fastserver-{self.port}", daemon=True)
        self._accept_thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        try:
            # Wake accept() with one last connection; closing the listener alone does not.
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
        except OSError:
            pass
        if self._accept_thread is not None:
            self._accept_thread.join(timeout=5)
        self._listener.close()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def __enter__(self) -> FastServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                raw, _ = self._listener.accept()
            except OSError:
                return
            if self._stopping.is_set():
                raw.close()
                return
            threading.Thread(target=self._connection, args=(raw,), daemon=True).start()

    # -- one connection per thread ------------------------------------------------------------------

    def _connection(self, raw: socket.socket) -> None:
        meter = _Meter()
        with self._lock:
            self._meters.append(meter)
            self._connections.add(raw)
        try:
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            raw.settimeout(IDLE_TIMEOUT)
            connection = self._context.wrap_socket(raw, server_side=True)
        except (OSError, ssl.SSLError):
            self._forget(raw)
            raw.close()
            return
        try:
            self._serve(connection, meter)
        except (OSError, ssl.SSLError, ValueError):
            pass  # the client went away or sent garbage: drop the connection
        finally:
            meter.tick()
            self._forget(raw)
            connection.close()

    def _forget(self, raw: socket.socket) -> None:
        with self._lock:
            self._connections.discard(raw)

    def _serve(self, connection: ssl.SSLSocket, meter: _Meter) -> None:
        """Read requests off one keep-alive connection and write each answer with one sendall."""
        buffer = b""
        recv = connection.recv
        while True:
            end = buffer.find(b"\r\n\r\n")
            while end < 0:
                if len(buffer) > MAX_HEADER_BYTES:
                    return
                chunk = recv(65536)
                if not chunk:
                    return
                buffer += chunk
                end = buffer.find(b"\r\n\r\n")
            request_line, *header_lines = buffer[:end].decode("latin-1").split("\r\n")
            buffer = buffer[end + 4 :]
            method, target, _ = request_line.split(" ", 2)
            headers = {}
            for line in header_lines:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length") or 0)
            if length < 0 or length > MAX_BODY_BYTES or "chunked" in headers.get("transfer-encoding", "").lower():
                connection.sendall(_answer(400, b'{"error":{"code":"BadRequest","message":"bad framing"}}', close=True))
                return
            while len(buffer) < length:
                chunk = recv(max(65536, length - len(buffer)))
                if not chunk:
                    return
                buffer += chunk
            body, buffer = buffer[:length], buffer[length:]
            answer = self._route(method, target, headers, body)
            if self.latency and (answer is self._chat or answer is self._embedding):
                time.sleep(self.latency)  # slept, not spent: costs no CPU
            connection.sendall(answer)
            meter.tick()
            if headers.get("connection", "").lower() == "close":
                return

    def _route(self, method: str, target: str, headers: dict[str, str], body: bytes) -> bytes:
        path, _, query = target.partition("?")
        if path.startswith("/openai/deployments/") and method == "POST":
            route = "chat" if path.endswith("/chat/completions") else "embeddings" if path.endswith("/embeddings") else ""
            if route:
                self._count(route, body)
                if not self._authorized(headers, (DATA_PLANE_AUDIENCE,)):
                    return _DATA_PLANE_401
                return self._chat if route == "chat" else self._embedding
        elif path == self._arm_path and method == "GET":
            self._count("arm.deployments")
            if not self._authorized(headers, ARM_AUDIENCES):
                return _ARM_401
            skip = dict(parse_qsl(query)).get("$skipToken")
            offset = json.loads(base64.urlsafe_b64decode(skip + "=" * (-len(skip) % 4)))["next"] if skip else 0
            return self._pages.get(offset, _NOT_FOUND)
        elif path == f"/{self.tenant_id}/oauth2/v2.0/token" and method == "POST":
            self._count("entra.token")
            return self._token(body)
        elif path == f"/{self.tenant_id}/v2.0/.well-known/openid-configuration" and method == "GET":
            self._count("entra.discovery")
            return self._oidc
        elif path.startswith("/_"):
            return self._control(method, path)
        self._count("unknown")
        return _NOT_FOUND

    def _count(self, route: str, body: bytes | None = None) -> None:
        with self._lock:
            self._counts[route] += 1
            if body is not None:
                seen = self._bodies.setdefault(route, [])
                if len(seen) < 8 and body not in seen:
                    seen.append(body)

    def _authorized(self, headers: dict[str, str], audiences: tuple[str, ...]) -> bool:
        scheme, _, token = headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and self._tokens.get(token) in audiences

    def _token(self, body: bytes) -> bytes:
        form = dict(parse_qsl(body.decode()))
        client_id, scope = form.get("client_id", ""), form.get("scope", "")
        with self._lock:
            self._token_requests[(client_id, scope)] += 1
            known = self._clients.get(client_id)
        if form.get("grant_type") != "client_credentials" or known is None or form.get("client_secret") != known:
            return _answer(
                401,
                _dumps(
                    {
                        "error": "invalid_client",
                        "error_description": "AADSTS7000215: Invalid client secret provided.",
                        "error_codes": [7000215],
                    }
                ),
            )
        audience = scope.removesuffix("/.default").rstrip("/")
        token = ".".join(
            (
                "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9",
                base64.urlsafe_b64encode(_dumps({"aud": audience, "appid": client_id})).rstrip(b"=").decode(),
                secrets.token_urlsafe(32),
            )
        )
        self._tokens[token] = audience
        lifetime = self.token_lifetime
        return _answer(
            200,
            _dumps({"token_type": "Bearer", "expires_in": lifetime, "ext_expires_in": lifetime, "access_token": token}),
            b"Cache-Control: no-store, no-cache\r\n",
        )

    def _control(self, method: str, path: str) -> bytes:
        if path == "/_stats":
            return _answer(200, _dumps(self.stats()))
        if path == "/_reset" and method == "POST":
            self.reset()
            return _answer(200, b"{}")
        return _NOT_FOUND

    def describe(self) -> dict[str, Any]:
        """What a client in another process needs (credentials included: a throwaway tenant)."""
        return {
            "url": self.url,
            "tenant_id": self.tenant_id,
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "subscription_id": self.subscription_id,
            "resource_group": self.resource_group,
            "resource_name": self.resource_name,
        }


class _Meter:
    """CPU time of one connection thread, advanced after each answer (idle waits cost nothing)."""

    __slots__ = ("_last", "cpu")

    def __init__(self) -> None:
        self.cpu = 0.0
        self._last = time.thread_time()

    def tick(self) -> None:
        now = time.thread_time()
        self.cpu += now - self._last
        self._last = now


def server_context(cert_chain: str) -> ssl.SSLContext:
    """Server TLS from a PEM file holding the key and the certificate chain."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert_chain)
    return context


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serve canned Azure answers over TLS until stdin closes.")
    parser.add_argument("--cert-chain", required=True, help="PEM file with the server key and certificate chain")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds slept before each data-plane answer")
    parser.add_argument("--deployments", type=int, default=10)
    parser.add_argument("--page-size", type=int, default=100)
    args = parser.parse_args(argv)
    server = FastServer(
        server_context(args.cert_chain), latency=args.latency, deployments=args.deployments, page_size=args.page_size
    )
    server.start()
    print(json.dumps(server.describe()), flush=True)
    sys.stdin.read()  # the parent closes our stdin to stop us
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
