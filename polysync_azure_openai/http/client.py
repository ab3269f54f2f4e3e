"""One client per endpoint and identity; ``send`` is the only way a request reaches Azure.

Every ARM and data-plane call goes through ``HttpClient.send``: a ``(connect, read)`` timeout,
no redirects, https only, a ``User-Agent`` naming the plugin and one ``x-ms-client-request-id``
kept across the retries of one request (so Azure's logs tie them together). After each attempt
``send`` asks ``decide`` what to do; the rules live there, not in this loop.
"""

from __future__ import annotations

import json
import logging
import random
import re
import time
import uuid
from collections.abc import Hashable, Mapping
from typing import Any

import requests

from ..auth import ApiKeyAuth, BearerAuth, auth_for
from ..cache import BoundedCache
from ..clouds import Endpoint
from ..errors import AzureServiceError, ErrorDetail, RemoteError, TransportError
from ..platform import PlatformConfig
from ..redaction import Redactor
from .azure_errors import error_body, error_detail, request_id, retry_after, sent_secrets
from .classify import Failure, Transport, classify
from .decide import RETRY_STATUSES, Answered, Attempt, Budget, Decision, Kind, LookUp, Renew, Wait, decide
from .fastpath import FastSession, StreamBody

log = logging.getLogger(__name__)


class MayExist(RemoteError):
    """A create whose outcome is unknown (maybe processed, or a 5xx): look for it before creating again.

    ``error`` is the failure itself; ``detail`` and ``transient`` are its own.
    """

    def __init__(self, error: RemoteError) -> None:
        super().__init__(error.detail, transient=error.transient)
        self.error = error


class HttpClient:
    """Calls to one endpoint as one identity; thread-safe, shared per platform configuration."""

    def __init__(self, config: PlatformConfig, endpoint: Endpoint, scope: str) -> None:
        self.endpoint = endpoint
        self.scope = scope
        self.timeout = config.timeout
        self.max_retries = config.max_retries
        self.auth: BearerAuth | ApiKeyAuth = auth_for(config, scope)
        self._secrets = config.auth.secrets
        self._fast = FastSession(endpoint.origin, config.trusted_ca_bundle())
        self.session = self._fast.session

    def __repr__(self) -> str:
        return f"<HttpClient {self.endpoint.base} {self.auth!r}>"

    def close(self) -> None:
        self._fast.close()

    def send(
        self,
        method: str,
        path_or_url: str,
        *,
        params: Mapping[str, str] | None = None,
        body: bytes | StreamBody | None = None,
        headers: Mapping[str, str] | None = None,
        mode: Kind,
        stream: bool = False,
        max_retries: int | None = None,
    ) -> requests.Response:
        """Send one logical request, repeating it as ``decide`` says; raise a RemoteError on failure.

        ``body`` is JSON bytes, or a seekable binary stream (with ``headers`` naming its content
        type) that is sent in chunks and rewound before each attempt. ``mode`` is the request's
        kind; a ``Kind.CREATE`` whose outcome is unknown raises :class:`MayExist`.
        ``max_retries`` lowers the platform's ``Max Retries`` for this request (a create sent
        again after a look-up spends what its first sending left).
        """
        url = path_or_url if path_or_url.startswith("https://") else self.endpoint.url(path_or_url)
        client_request_id = str(uuid.uuid4())
        sent_headers = {"x-ms-client-request-id": client_request_id}
        if isinstance(body, bytes):
            sent_headers["Content-Type"] = "application/json"
        sent_headers.update(headers or {})
        start = body.tell() if body is not None and not isinstance(body, bytes) else 0
        budget = Budget(self.max_retries if max_retries is None else max(0, min(max_retries, self.max_retries)))
        attempt = Attempt()
        while True:
            if body is not None and not isinstance(body, bytes):
                body.seek(start)
            outcome = self._try(method, url, params, body, sent_headers, stream)
            if isinstance(outcome, requests.Response) and outcome.status_code < 300:
                return outcome
            observed = (
                outcome.transport if isinstance(outcome, Failure) else Answered(outcome.status_code, retry_after(outcome.headers))
            )
            decision = decide(observed, mode, attempt, budget, jitter=random.uniform(0.5, 1.0))  # noqa: S311 (jitter)
            if isinstance(decision, Renew) and isinstance(outcome, requests.Response):
                if outcome.request is not None and self.auth.renew(outcome.request):
                    outcome.close()
                    log.info("%s %s: 401, resending once with a new token", method, _path(url))
                    attempt = attempt.after(decision)
                    continue
            elif isinstance(decision, Wait):
                self._log_retry(method, url, outcome, decision, attempt)
                if isinstance(outcome, requests.Response):
                    outcome.close()
                time.sleep(decision.seconds)
                attempt = attempt.after(decision)
                continue
            raise self._error(outcome, decision, url, client_request_id, attempt)

    def _try(
        self,
        method: str,
        url: str,
        params: Mapping[str, str] | None,
        body: bytes | StreamBody | None,
        headers: Mapping[str, str],
        stream: bool,
    ) -> requests.Response | Failure:
        """One attempt: the response whatever its status, or the classified failure."""
        try:
            return self._fast.send(
                method, url, params=params, body=body, headers=headers, auth=self.auth, timeout=self.timeout, stream=stream
            )
        except requests.RequestException as exc:
            return classify(exc)

    def _error(
        self, outcome: requests.Response | Failure, decision: Decision, url: str, client_request_id: str, attempt: Attempt
    ) -> RemoteError:
        error: RemoteError
        if isinstance(outcome, Failure):
            detail = ErrorDetail(
                None, outcome.code, f"{outcome.reason} ({_origin(url)})", client_request_id, attempt.number, fix=outcome.fix
            )
            transient = outcome.transport in (Transport.NOT_SENT, Transport.MAYBE_PROCESSED)
            error = TransportError(detail, transient=transient, sent=outcome.transport is not Transport.NOT_SENT)
        else:
            error = _status_error(outcome, client_request_id, attempt.number, self._secrets)
        return MayExist(error) if isinstance(decision, LookUp) else error

    def _log_retry(self, method: str, url: str, outcome: requests.Response | Failure, decision: Wait, attempt: Attempt) -> None:
        reason = f"HTTP {outcome.status_code}" if isinstance(outcome, requests.Response) else outcome.reason
        log.warning(
            "%s %s: %s; retrying in %.2f s (attempt %d of %d)",
            method,
            _path(url),
            reason,
            decision.seconds,
            attempt.number + 1,
            self.max_retries + 1,
        )


def _status_error(response: requests.Response, client_request_id: str, attempts: int, secrets: tuple[str, ...]) -> RemoteError:
    status = response.status_code
    secrets = secrets + sent_secrets(response.request)
    if 300 <= status < 400:
        response.close()
        location = Redactor.of(secrets)(response.headers.get("Location", ""))
        return TransportError(
            ErrorDetail(
                status,
                "Redirect",
                f"Azure answered with a redirect to {_origin(location) or 'an unnamed location'}, "
                "which is never followed (it would carry the credential elsewhere). Check "
                "'OpenAI Endpoint' / 'Resource Manager Endpoint'.",
                request_id(response.headers, client_request_id),
                attempts,
            )
        )
    detail = error_detail(status, response.headers, error_body(response), client_request_id, attempts, secrets)
    response.close()
    return AzureServiceError(detail, transient=status in RETRY_STATUSES)


def dumps(payload: Any) -> bytes:
    """A request body, serialised once (retries resend the same bytes)."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


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


def _origin(url: str) -> str:
    match = re.match(r"(https?://[^/?#]*)", url)
    return match.group(1) if match else ""


def _path(url: str) -> str:
    return re.sub(r"^https?://[^/]*", "", url).split("?")[0]
