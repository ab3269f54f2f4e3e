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

import attrs
import requests

from ..auth import ApiKeyAuth, BearerAuth, auth_for
from ..cache import BoundedCache
from ..clouds import Endpoint
from ..errors import AzureServiceError, ErrorDetail, RemoteError, TransportError
from ..platform import PlatformConfig
from ..redaction import Redactor
from . import pacer
from .azure_errors import RetryHint, error_body, error_detail, request_id, retry_hint, sent_secrets
from .classify import Failure, Transport, classify
from .decide import (
    MAX_TOTAL_WAIT,
    RETRY_STATUSES,
    Answered,
    Attempt,
    Budget,
    Decision,
    GiveUp,
    Kind,
    LookUp,
    Outcome,
    Renew,
    Wait,
    backoff,
    decide,
)
from .fastpath import FastSession, StreamBody
from .quota import human

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
        # How long one request may wait, for retries and for its deployment's quota in all.
        self.max_wait = max(MAX_TOTAL_WAIT, config.request_timeout)
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
        deployment: str | None = None,
        tokens: int = 0,
    ) -> requests.Response:
        """Send one logical request, repeating it as ``decide`` says; raise a RemoteError on failure.

        ``body`` is JSON bytes, or a seekable binary stream (with ``headers`` naming its content
        type) that is sent in chunks and rewound before each attempt. ``mode`` is the request's
        kind; a ``Kind.CREATE`` whose outcome is unknown raises :class:`MayExist`.
        ``max_retries`` lowers the platform's ``Max Retries`` for this request (a create sent
        again after a look-up spends what its first sending left). A request naming the
        ``deployment`` it spends quota on, ``tokens`` by Azure's estimate, goes through that
        deployment's lane (pacer.py) before each attempt.
        """
        url = path_or_url if path_or_url.startswith("https://") else self.endpoint.url(path_or_url)
        client_request_id = str(uuid.uuid4())
        sent_headers = {"x-ms-client-request-id": client_request_id}
        if isinstance(body, bytes):
            sent_headers["Content-Type"] = "application/json"
        sent_headers.update(headers or {})
        start = body.tell() if body is not None and not isinstance(body, bytes) else 0
        retries = self.max_retries if max_retries is None else max(0, min(max_retries, self.max_retries))
        budget = Budget(retries, self.max_wait)
        attempt = Attempt()
        lane = pacer.lane(self.endpoint.base, deployment) if deployment is not None else None
        ticket = lane.ticket() if lane is not None else 0
        while True:
            admission = None
            if lane is not None:
                gate = lane.enter(ticket, tokens, budget.max_total_wait - attempt.waited)
                if isinstance(gate, pacer.Refusal):
                    raise _refused(gate, client_request_id, attempt)
                admission, attempt = gate, attempt.held(gate.held)
            if body is not None and not isinstance(body, bytes):
                body.seek(start)
            outcome = self._try(method, url, params, body, sent_headers, stream)
            if isinstance(outcome, requests.Response) and outcome.status_code < 300:
                if lane is not None and admission is not None:
                    lane.leave(admission, outcome.status_code, outcome.headers)
                return outcome
            hint = (
                retry_hint(outcome.headers, self._secrets + sent_secrets(outcome.request))
                if isinstance(outcome, requests.Response)
                else None
            )
            if isinstance(outcome, Failure):
                observed: Outcome = outcome.transport
            else:
                observed = Answered(outcome.status_code, None if hint is None else hint.seconds)
            jitter = random.uniform(0.5, 1.0)  # noqa: S311 (jitter)
            decision = decide(observed, mode, attempt, budget, jitter=jitter)
            if lane is not None and admission is not None:
                throttle = self._throttle(outcome, hint, decision, backoff(attempt.number, jitter), client_request_id)
                lane.leave(admission, _status(outcome), _headers(outcome), throttle)
            if isinstance(decision, Renew) and isinstance(outcome, requests.Response):
                if outcome.request is not None and self.auth.renew(outcome.request):
                    outcome.close()
                    log.info("%s %s: 401, resending once with a new token", method, _path(url))
                    attempt = attempt.after(decision)
                    continue
            elif isinstance(decision, Wait):
                # A paced 429 is logged once per pause by its lane, not once per thread.
                paced = lane is not None and _status(outcome) == 429
                self._log_retry(method, url, outcome, decision, attempt, logging.INFO if paced else logging.WARNING)
                if isinstance(outcome, requests.Response):
                    outcome.close()
                time.sleep(decision.seconds)
                attempt = attempt.after(decision)
                continue
            error = self._error(outcome, decision, url, client_request_id, attempt)
            if hint is not None and _status(outcome) == 429:
                error.replace_detail(_with_quota_note(error.detail, hint, decision, budget.max_total_wait - attempt.waited))
            raise error

    def _throttle(
        self,
        outcome: requests.Response | Failure,
        hint: RetryHint | None,
        decision: Decision,
        backoff_seconds: float,
        client_request_id: str,
    ) -> pacer.Throttle | None:
        """A 429 as its lane tells the calls it holds back: Azure's words and the wait it asked."""
        if not isinstance(outcome, requests.Response) or outcome.status_code != 429 or hint is None:
            return None
        if isinstance(decision, Wait):
            asked = decision.seconds
        elif isinstance(decision, GiveUp) and decision.wait is not None:
            asked = decision.wait
        else:
            asked = backoff_seconds if hint.seconds is None else hint.seconds
        secrets = self._secrets + sent_secrets(outcome.request)
        detail = error_detail(429, outcome.headers, error_body(outcome), client_request_id, 1, secrets)
        return pacer.Throttle(detail.code, detail.message, detail.request_id, hint.sent, asked, exact=hint.exact)

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
            error = TransportError(detail, transient=transient)
        else:
            error = _status_error(outcome, client_request_id, attempt.number, self._secrets)
        return MayExist(error) if isinstance(decision, LookUp) else error

    def _log_retry(
        self, method: str, url: str, outcome: requests.Response | Failure, decision: Wait, attempt: Attempt, level: int
    ) -> None:
        reason = f"HTTP {outcome.status_code}" if isinstance(outcome, requests.Response) else outcome.reason
        log.log(
            level,
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


def _status(outcome: requests.Response | Failure) -> int | None:
    return outcome.status_code if isinstance(outcome, requests.Response) else None


def _headers(outcome: requests.Response | Failure) -> Mapping[str, str] | None:
    return outcome.headers if isinstance(outcome, requests.Response) else None


def _refused(refusal: pacer.Refusal, client_request_id: str, attempt: Attempt) -> RemoteError:
    """A call its lane would hold past its budget: the 429 behind the pause, and why it was not sent."""
    attempts = max(1, attempt.number - 1)
    throttle = refusal.throttle
    if throttle is None:
        detail = ErrorDetail(None, "QuotaWait", refusal.reason, client_request_id, attempts)
        return TransportError(detail, transient=True)
    message = f"{throttle.message} [{refusal.reason}]"
    detail = ErrorDetail(429, throttle.code, message, throttle.request_id, attempts, retry_after=throttle.asked)
    return AzureServiceError(detail, transient=True)


def _with_quota_note(detail: ErrorDetail, hint: RetryHint, decision: Decision, may_wait: float) -> ErrorDetail:
    """A final 429 says what Azure sent and, when its wait was what ended the call, that it was too long."""
    if isinstance(decision, GiveUp) and decision.wait is not None:
        note = (
            f"Azure asked to wait {human(decision.wait)} ({hint.sent}), more than the "
            f"{human(max(0.0, may_wait))} this run may still wait, so it was not sent again"
        )
    elif hint.sent and hint.seconds is None:
        note = f"Azure sent {hint.sent}, which names no usable wait: the plugin backed off instead"
    elif hint.sent:
        note = f"Azure sent {hint.sent}"
    else:
        note = "Azure sent no retry header"
    return attrs.evolve(detail, message=f"{detail.message} [{note}]", retry_after=hint.seconds)


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
