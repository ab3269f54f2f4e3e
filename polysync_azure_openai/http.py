"""One ``requests.Session`` per endpoint and identity, the retry policy, Azure error mapping.

Every ARM and data-plane call goes through ``HttpClient.send``: a ``(connect, read)`` timeout,
no redirects, https only, a ``User-Agent`` naming the plugin and a fresh
``x-ms-client-request-id`` kept across the retries of one request.
"""

from __future__ import annotations

import email.utils
import enum
import json
import logging
import os
import random
import re
import sys
import time
import uuid
from collections.abc import Hashable, Mapping
from datetime import UTC, datetime
from typing import Any, Final, Protocol
from urllib.parse import urlencode

import requests
import urllib3.exceptions
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict
from requests.utils import get_encoding_from_headers, requote_uri

from . import __version__
from .auth import ApiKeyAuth, BearerAuth, auth_for
from .cache import BoundedCache
from .clouds import Endpoint
from .errors import AzureServiceError, ErrorDetail, TransportError
from .platform import PlatformConfig
from .troubleshooting import PRIVATE_CA

log = logging.getLogger(__name__)

USER_AGENT: Final = (
    f"polysync-azure-openai/{__version__} python/{sys.version_info.major}.{sys.version_info.minor} "
    f"requests/{requests.__version__}"
)
RETRY_STATUSES: Final = frozenset({408, 429, 500, 502, 503, 504})
MAX_RETRY_AFTER: Final = 60.0
#: Upper bound on the time one request may spend waiting between its attempts.
MAX_TOTAL_WAIT: Final = 120.0
BACKOFF_BASE: Final = 0.5
BACKOFF_CAP: Final = 8.0
#: Enough connections for the host's worker threads on one platform.
POOL_SIZE: Final = 64
ERROR_TEXT_LIMIT: Final = 500
REQUEST_ID_HEADERS: Final = ("apim-request-id", "x-request-id", "x-ms-request-id")


class StreamBody(Protocol):
    """A request body read in chunks and rewound before each attempt (a file upload)."""

    def read(self, size: int = -1, /) -> bytes: ...

    def seek(self, offset: int, whence: int = 0, /) -> int: ...

    def tell(self) -> int: ...


class RetryMode(enum.Enum):
    """What may be sent again after a failure."""

    #: GET and other reads: every transient failure, read timeouts included.
    READ = "read"
    #: Chat and embedding POSTs: 429/5xx and failures where the request never left.
    POST = "post"
    #: Batch create: only when the request provably never left; the caller re-attaches.
    ONCE = "once"


class HttpClient:
    """Calls to one endpoint as one identity; thread-safe, shared per platform configuration."""

    def __init__(self, config: PlatformConfig, endpoint: Endpoint, scope: str) -> None:
        self.endpoint = endpoint
        self.scope = scope
        self.timeout = config.timeout
        self.max_retries = config.max_retries
        self.auth: BearerAuth | ApiKeyAuth = auth_for(config, scope)
        self.session = _new_session(endpoint.origin, config.ca_bundle)
        # What Session.request would merge into every request; fixed for this client's life.
        self._headers = {name: str(value) for name, value in self.session.headers.items()}
        self._verify: bool | str = self.session.verify if self.session.verify is not None else True

    def __repr__(self) -> str:
        return f"<HttpClient {self.endpoint.base} {self.auth!r}>"

    def close(self) -> None:
        self.session.close()

    def send(
        self,
        method: str,
        path_or_url: str,
        *,
        params: Mapping[str, str] | None = None,
        body: bytes | StreamBody | None = None,
        headers: Mapping[str, str] | None = None,
        mode: RetryMode,
        stream: bool = False,
    ) -> requests.Response:
        """Send one logical request, retrying as ``mode`` allows; raise a RemoteError on failure.

        ``body`` is JSON bytes, or a seekable binary stream (with ``headers`` naming its content
        type) that is sent in chunks and rewound before each attempt.
        """
        url = path_or_url if path_or_url.startswith("https://") else self.endpoint.url(path_or_url)
        client_request_id = str(uuid.uuid4())
        sent_headers = {"x-ms-client-request-id": client_request_id}
        if isinstance(body, bytes):
            sent_headers["Content-Type"] = "application/json"
        sent_headers.update(headers or {})
        start = body.tell() if body is not None and not isinstance(body, bytes) else 0
        attempts = 0
        renewed = stale_resent = False
        waited = 0.0
        while True:
            attempts += 1
            if body is not None and not isinstance(body, bytes):
                body.seek(start)
            try:
                response = self._attempt(method, url, params, body, sent_headers, stream)
            except requests.RequestException as exc:
                failure = _classify(exc, url, client_request_id, attempts)
                if failure.kind == "dropped" and not stale_resent and mode is not RetryMode.ONCE:
                    # A pooled keep-alive connection the server had closed: send once more on a
                    # fresh connection (urllib3 discards the dead one).
                    stale_resent = True
                    attempts -= 1
                    log.warning("%s %s: %s; resending once on a fresh connection", method, _path(url), failure.reason)
                    continue
                retryable = failure.error.transient and (not failure.error.sent or mode is RetryMode.READ)
                wait = _backoff(attempts)
                if retryable and attempts <= self.max_retries and waited + wait <= MAX_TOTAL_WAIT:
                    self._log_retry(method, url, failure.reason, wait, attempts)
                    time.sleep(wait)
                    waited += wait
                    continue
                raise failure.error from None

            status = response.status_code
            if status == 401 and not renewed:
                renewed = True
                if self.auth.renew(response.request):
                    response.close()
                    attempts -= 1
                    log.info("%s %s: 401, resending once with a new token", method, _path(url))
                    continue
            if status in RETRY_STATUSES and mode is not RetryMode.ONCE:
                wait = retry_after(response.headers) or _backoff(attempts)
                if attempts <= self.max_retries and waited + wait <= MAX_TOTAL_WAIT:
                    self._log_retry(method, url, f"HTTP {status}", wait, attempts)
                    response.close()
                    time.sleep(wait)
                    waited += wait
                    continue
            if 300 <= status < 400:
                response.close()
                location = response.headers.get("Location", "")
                raise TransportError(
                    ErrorDetail(
                        status,
                        "Redirect",
                        f"Azure answered with a redirect to {_origin(location) or 'an unnamed location'}, "
                        "which is never followed (it would carry the credential elsewhere). Check "
                        "'OpenAI Endpoint' / 'Resource Manager Endpoint'.",
                        _request_id(response.headers, client_request_id),
                        attempts,
                    )
                )
            if status >= 400:
                detail = error_detail(
                    status, response.headers, _body(response), client_request_id, attempts, self._secrets(response)
                )
                response.close()
                raise AzureServiceError(detail, transient=status in RETRY_STATUSES)
            return response

    def _attempt(
        self,
        method: str,
        url: str,
        params: Mapping[str, str] | None,
        body: bytes | StreamBody | None,
        headers: Mapping[str, str],
        stream: bool,
    ) -> requests.Response:
        """One attempt, prepared here and handed to the adapter.

        ``Session.request`` would merge session settings, cookies, hooks and environment again on
        every call, and ``Session.send`` adds cookie and redirect handling: together more than
        all of this plugin's own work per call. Everything they merge is fixed per client, and
        redirects are never followed.
        """
        request = requests.PreparedRequest()
        request.method = method
        request.url = requote_uri(f"{url}?{urlencode(params)}" if params else url)
        request.headers = CaseInsensitiveDict(self._headers)
        request.headers.update(headers)
        request.prepare_body(body, None)
        self.auth(request)
        response = self.session.get_adapter(request.url).send(
            request, stream=stream, timeout=self.timeout, verify=self._verify, proxies=self.session.proxies
        )
        if not stream:
            _ = response.content  # read the body and give the connection back, as Session.send does
        return response

    def _log_retry(self, method: str, url: str, reason: str, wait: float, attempt: int) -> None:
        log.warning(
            "%s %s: %s; retrying in %.2f s (attempt %d of %d)",
            method,
            _path(url),
            reason,
            wait,
            attempt + 1,
            self.max_retries + 1,
        )

    def _secrets(self, response: requests.Response) -> tuple[str, ...]:
        """Values an error body must never echo back: the key or token this request carried."""
        sent = response.request.headers if response.request is not None else {}
        values = [sent.get("api-key") or "", (sent.get("Authorization") or "").removeprefix("Bearer ")]
        return tuple(v for v in values if v)


def _new_session(origin: str, ca_bundle: str | None) -> requests.Session:
    session = requests.Session()
    # requests would re-read proxy and CA settings from the environment on every request;
    # read them once here instead (spec §1: REQUESTS_CA_BUNDLE and the proxy variables).
    session.trust_env = False
    session.verify = ca_bundle or os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
    session.proxies.update(requests.utils.get_environ_proxies(origin))
    session.headers["User-Agent"] = USER_AGENT
    session.headers["Accept"] = "application/json"
    session.mount("https://", _Adapter(pool_connections=1, pool_maxsize=POOL_SIZE, max_retries=0))
    # Plain http is never used: the Endpoint parser only builds https URLs.
    session.adapters.pop("http://", None)
    return session


class _Adapter(HTTPAdapter):
    """``HTTPAdapter`` whose responses skip the cookie jar."""

    def build_response(self, req: requests.PreparedRequest, resp: urllib3.BaseHTTPResponse) -> requests.Response:
        # requests' own also copies Set-Cookie headers into a cookie jar (http.cookiejar); this
        # plugin sends no cookies, and a session shared by many runs must not carry one's to another.
        response = requests.Response()
        response.status_code = resp.status
        response.headers = CaseInsensitiveDict(resp.headers)
        response.encoding = get_encoding_from_headers(response.headers)
        response.raw = resp
        response.reason = resp.reason or ""
        response.url = req.url or ""
        response.request = req
        response.connection = self
        return response


_CLIENTS: BoundedCache[HttpClient] = BoundedCache("http-clients", max_size=128, on_evict=HttpClient.close)


def client_for(config: PlatformConfig, endpoint: Endpoint, scope: str) -> HttpClient:
    """The shared client of this endpoint and identity."""
    key: Hashable = (
        endpoint,
        scope,
        config.auth.identity_key,
        config.timeout,
        config.max_retries,
        config.ca_bundle,
    )
    return _CLIENTS.get_or_create(key, lambda: HttpClient(config, endpoint, scope))


def data_plane(config: PlatformConfig) -> HttpClient:
    return client_for(config, config.openai_endpoint, config.data_plane_scope)


def resource_manager(config: PlatformConfig) -> HttpClient:
    return client_for(config, config.arm_endpoint, config.arm_scope)


# -- failures -----------------------------------------------------------------------------------


class _Failure:
    def __init__(self, kind: str, reason: str, error: TransportError) -> None:
        self.kind = kind
        self.reason = reason
        self.error = error


def _causes(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        nxt = current.__cause__ or current.__context__
        if nxt is None and current.args and isinstance(current.args[0], BaseException):
            nxt = current.args[0]
        current = nxt
    # urllib3 keeps the underlying error in .reason / args of its wrappers.
    extra: list[BaseException] = []
    for item in seen:
        reason = getattr(item, "reason", None)
        if isinstance(reason, BaseException):
            extra.append(reason)
        extra.extend(a for a in getattr(item, "args", ()) if isinstance(a, BaseException))
    return seen + [e for e in extra if e not in seen]


def _classify(exc: requests.RequestException, url: str, client_request_id: str, attempts: int) -> _Failure:
    origin = _origin(url)
    causes = _causes(exc)

    def failure(kind: str, reason: str, *, transient: bool, sent: bool, fix: str = "") -> _Failure:
        detail = ErrorDetail(None, kind, f"{reason} ({origin})", client_request_id, attempts, fix=fix)
        return _Failure(kind, reason, TransportError(detail, transient=transient, sent=sent))

    if isinstance(exc, requests.exceptions.SSLError):
        return failure(
            "TLSError",
            f"TLS handshake failed: {_short(exc)}",
            transient=False,
            sent=False,
            fix=PRIVATE_CA,
        )
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return failure("ConnectTimeout", "connecting timed out", transient=True, sent=False)
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return failure("ReadTimeout", "no answer within the read timeout ('Request Timeout Seconds')", transient=True, sent=True)
    if isinstance(exc, (requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError)):
        return failure(
            "BrokenResponse", f"the response body was cut short or unreadable: {_short(exc)}", transient=True, sent=True
        )
    if isinstance(exc, requests.exceptions.ConnectionError):
        if any(isinstance(c, (urllib3.exceptions.NewConnectionError, urllib3.exceptions.ConnectTimeoutError)) for c in causes):
            return failure("ConnectionFailed", f"cannot connect: {_short(exc)}", transient=True, sent=False)
        if any(
            isinstance(c, (ConnectionResetError, BrokenPipeError, ConnectionAbortedError))
            or type(c).__name__ == "RemoteDisconnected"
            for c in causes
        ):
            return failure("dropped", "the connection was closed before an answer arrived", transient=True, sent=True)
        return failure("ConnectionError", f"connection failed: {_short(exc)}", transient=True, sent=True)
    return failure("RequestError", f"the request could not be made: {_short(exc)}", transient=False, sent=False)


def _short(exc: BaseException) -> str:
    text = str(exc)
    # urllib3 repeats the pool and object addresses; keep the human part.
    text = re.sub(r"HTTPSConnectionPool\(host='[^']*', port=\d+\): ", "", text)
    text = re.sub(r"<urllib3[^>]*>", "", text)
    text = re.sub(r"\s+", " ", text).strip()
    return text[:300]


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait as Azure asks (retry-after-ms, x-ms-retry-after-ms, Retry-After), capped."""
    for name, scale in (("retry-after-ms", 0.001), ("x-ms-retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        value = value.strip()
        try:
            seconds = float(value) * scale
        except ValueError:
            if scale != 1.0:
                continue
            try:
                when = email.utils.parsedate_to_datetime(value)
            except (TypeError, ValueError):
                continue
            if when.tzinfo is None:
                when = when.replace(tzinfo=UTC)
            seconds = (when - datetime.now(UTC)).total_seconds()
        if seconds != seconds or seconds < 0:  # NaN or negative: ignore this header
            continue
        return min(seconds, MAX_RETRY_AFTER)
    return None


def _backoff(attempt: int) -> float:
    delay: float = min(BACKOFF_CAP, BACKOFF_BASE * 2.0 ** (attempt - 1))
    return delay * random.uniform(0.5, 1.0)  # noqa: S311 (jitter, not crypto)


def dumps(payload: Any) -> bytes:
    """A request body, serialised once (retries resend the same bytes)."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


# -- Azure error bodies -------------------------------------------------------------------------


def _request_id(headers: Mapping[str, str], client_request_id: str) -> str:
    for name in REQUEST_ID_HEADERS:
        value = headers.get(name)
        if value:
            return value
    return client_request_id


def _body(response: requests.Response) -> bytes:
    try:
        return response.content[: 64 * 1024]
    except requests.RequestException:
        return b""


def error_detail(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    client_request_id: str,
    attempts: int = 1,
    secrets: tuple[str, ...] = (),
) -> ErrorDetail:
    """Status, code, message and request id from any of Azure's error shapes (spec §6)."""
    code: str | None = None
    message: str | None = None
    try:
        payload = json.loads(body) if body else None
    except ValueError:
        payload = None
    if isinstance(payload, dict):
        error = payload.get("error")
        if isinstance(error, dict):
            code = _text(error.get("code"))
            message = _text(error.get("message"))
            inner = error.get("innererror") or error.get("inner_error")
            if isinstance(inner, dict):
                filtered = _filtered_categories(inner)
                if filtered:
                    message = f"{message or ''} [content filter: {filtered}]".strip()
                inner_code = _text(inner.get("code"))
                if inner_code and inner_code != code:
                    code = f"{code}/{inner_code}" if code else inner_code
        elif isinstance(error, str):  # OAuth / Entra envelope
            code = error
            message = _text(payload.get("error_description"))
        elif "message" in payload or "Message" in payload:  # {"statusCode": 401, "message": ...}
            message = _text(payload.get("message") or payload.get("Message"))
            code = _text(payload.get("code") or payload.get("Code"))
    if message is None:
        text = body.decode("utf-8", "replace").strip()
        xml_code = re.search(r"<Code>([^<]{1,100})</Code>", text)
        if xml_code and code is None:
            code = xml_code.group(1)
        content_type = headers.get("Content-Type", "") or "no content type"
        message = f"non-JSON error body ({content_type}): {text[:ERROR_TEXT_LIMIT]}" if text else "empty error body"
    for secret in secrets:
        message = message.replace(secret, "***")
    return ErrorDetail(status, code, message, _request_id(headers, client_request_id), attempts)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return str(value)


def _filtered_categories(inner: Mapping[str, Any]) -> str:
    results = inner.get("content_filter_result") or inner.get("content_filter_results")
    if not isinstance(results, dict):
        return ""
    hits = []
    for category, verdict in results.items():
        if isinstance(verdict, dict) and verdict.get("filtered"):
            severity = verdict.get("severity")
            hits.append(f"{category}={severity}" if severity else category)
    return ", ".join(hits)


def read_json(response: requests.Response, what: str) -> dict[str, Any]:
    """The JSON object of a 2xx answer, or a TransportError saying what was wrong with it."""
    request_id = _request_id(
        response.headers, response.request.headers.get("x-ms-client-request-id", "") if response.request else ""
    )
    content_type = response.headers.get("Content-Type", "")
    try:
        body = response.content
    except requests.RequestException as exc:
        raise TransportError(
            ErrorDetail(response.status_code, "BrokenResponse", f"{what}: the body was cut short ({_short(exc)})", request_id),
            transient=True,
        ) from None
    if "json" not in content_type.lower():
        raise TransportError(
            ErrorDetail(
                response.status_code,
                "UnexpectedContentType",
                f"{what}: expected JSON but got {content_type or 'no content type'}: {body[:200].decode('utf-8', 'replace')!r}",
                request_id,
            )
        )
    try:
        payload = json.loads(body)
    except ValueError as exc:
        raise TransportError(
            ErrorDetail(response.status_code, "MalformedJSON", f"{what}: the body is not valid JSON ({exc})", request_id)
        ) from None
    if not isinstance(payload, dict):
        raise TransportError(
            ErrorDetail(
                response.status_code, "MalformedJSON", f"{what}: expected a JSON object, got {type(payload).__name__}", request_id
            )
        )
    return payload


def response_request_id(response: requests.Response) -> str:
    sent = response.request.headers.get("x-ms-client-request-id", "") if response.request else ""
    return _request_id(response.headers, sent)


def _origin(url: str) -> str:
    match = re.match(r"(https?://[^/?#]*)", url)
    return match.group(1) if match else ""


def _path(url: str) -> str:
    return re.sub(r"^https?://[^/]*", "", url).split("?")[0]
