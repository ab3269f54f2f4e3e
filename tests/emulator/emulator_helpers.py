"""Helpers for the emulator tests: client certificates, forged assertions, URLs."""

from __future__ import annotations

import base64
import datetime
import json
import time
import uuid

import attrs
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from polysync_azure_openai.emulator import Emulator

API_VERSION = "2024-10-21"
# The oldest api-version on which Azure serves reasoning models (o1, o3, o4, gpt-5).
REASONING_API_VERSION = "2024-12-01-preview"
ARM_API_VERSION = "2023-05-01"
DATA_SCOPE = "https://cognitiveservices.azure.com/.default"
ARM_SCOPE = "https://management.azure.com/.default"


@attrs.frozen
class ClientCertificate:
    """An app's RSA key and self-signed certificate, as a user would create them."""

    key: rsa.RSAPrivateKey
    certificate: x509.Certificate

    @property
    def cert_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    @property
    def key_and_cert_pem(self) -> bytes:
        key_pem = self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        return key_pem + self.cert_pem


def make_client_certificate(common_name: str = "polysync-test-app") -> ClientCertificate:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    return ClientCertificate(key=key, certificate=certificate)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def make_assertion(
    signing: ClientCertificate,
    *,
    client_id: str,
    audience: str,
    thumbprint_of: ClientCertificate | None = None,
    algorithm: str = "RS256",
    thumbprint_header: str = "x5t",
    issuer: str | None = None,
    expires_in: float = 600,
    not_before_offset: float = 0,
) -> str:
    """A client assertion JWT signed with `signing`'s key, naming `thumbprint_of`'s certificate."""
    named = thumbprint_of or signing
    digest: hashes.HashAlgorithm = hashes.SHA1() if thumbprint_header == "x5t" else hashes.SHA256()
    header = {"alg": algorithm, "typ": "JWT", thumbprint_header: b64url(named.certificate.fingerprint(digest))}
    now = time.time()
    claims = {
        "aud": audience,
        "iss": issuer or client_id,
        "sub": client_id,
        "jti": str(uuid.uuid4()),
        "nbf": int(now + not_before_offset),
        "exp": int(now + expires_in),
    }
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    scheme: padding.AsymmetricPadding = (
        padding.PKCS1v15()
        if algorithm == "RS256"
        else padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=hashes.SHA256.digest_size)
    )
    signature = signing.key.sign(signing_input.encode("ascii"), scheme, hashes.SHA256())
    return f"{signing_input}.{b64url(signature)}"


def token_url(emu: Emulator) -> str:
    return f"{emu.url}/{emu.tenant_id}/oauth2/v2.0/token"


def request_token(http: requests.Session, emu: Emulator, **form: str) -> requests.Response:
    return http.post(token_url(emu), data={"grant_type": "client_credentials", **form})


def secret_token(
    http: requests.Session,
    emu: Emulator,
    scope: str = DATA_SCOPE,
    client_id: str | None = None,
    secret: str | None = None,
) -> str:
    """An access token for the default (or a given) secret client."""
    response = request_token(
        http, emu, client_id=client_id or emu.client_id, client_secret=secret or emu.client_secret, scope=scope
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def deployments_url(
    emu: Emulator, *, subscription: str | None = None, group: str | None = None, account: str | None = None
) -> str:
    return (
        f"{emu.url}/subscriptions/{subscription or emu.subscription_id}/resourceGroups/"
        f"{group or emu.resource_group}/providers/Microsoft.CognitiveServices/accounts/"
        f"{account or emu.resource_name}/deployments"
    )


def chat_url(emu: Emulator, deployment: str = "gpt-4o", api_version: str | None = API_VERSION) -> str:
    query = "" if api_version is None else f"?api-version={api_version}"
    return f"{emu.url}/openai/deployments/{deployment}/chat/completions{query}"


def embeddings_url(emu: Emulator, deployment: str = "embed-small") -> str:
    return f"{emu.url}/openai/deployments/{deployment}/embeddings?api-version={API_VERSION}"


def files_url(emu: Emulator, suffix: str = "", api_version: str = API_VERSION) -> str:
    return f"{emu.url}/openai/files{suffix}?api-version={api_version}"


def batches_url(emu: Emulator, suffix: str = "", api_version: str = API_VERSION) -> str:
    return f"{emu.url}/openai/batches{suffix}?api-version={api_version}"


def v1_url(emu: Emulator, path: str) -> str:
    """A v1 API address (second-release §B): no api-version; `path` as in `chat/completions`."""
    return f"{emu.url}/openai/v1/{path}"


def batch_line(
    index: int,
    *,
    model: str = "gpt-4o-batch",
    url: str = "/chat/completions",
    content: str | None = None,
    custom_id: str | None = None,
) -> dict[str, object]:
    """One batch input line; embeddings lines when `url` is `/embeddings` (or the v1 `/v1/embeddings`)."""
    text = content if content is not None else f"Question number {index}?"
    body: dict[str, object] = (
        {"model": model, "input": text}
        if url.endswith("/embeddings")
        else {"model": model, "messages": [{"role": "user", "content": text}]}
    )
    return {"custom_id": custom_id or f"task-{index}", "method": "POST", "url": url, "body": body}


def batch_jsonl(count: int, **line: object) -> str:
    return "".join(json.dumps(batch_line(index, **line)) + "\n" for index in range(count))  # type: ignore[arg-type]
