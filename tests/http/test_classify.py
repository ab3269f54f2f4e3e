"""classify: real exception chains from real sockets on 127.0.0.1 → the §A class, by phase.

Every chain below is what the plugin's own fast path raised against a misbehaving loopback
server (tests/http/loopback.py); only the last tests build chains by hand, as urllib3 and
requests wrap them, for failures a socket cannot be made to produce on demand.
"""

from __future__ import annotations

import http.client
import ssl
from pathlib import Path

import pytest
import requests
import trustme
import urllib3.exceptions

from polysync_azure_openai.http import Transport, classify
from polysync_azure_openai.http.classify import causes
from polysync_azure_openai.troubleshooting import PRIVATE_CA

from . import loopback as lb


@pytest.fixture
def bundle(ca: trustme.CA, tmp_path: Path) -> str:
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


def roots(exc: BaseException) -> set[type[BaseException]]:
    return {type(e) for e in causes(exc)}


# -- not sent ------------------------------------------------------------------------------------


def test_connection_refused(bundle: str) -> None:
    exc = lb.raised(lb.closed_port(), bundle)
    assert ConnectionRefusedError in roots(exc)
    failure = classify(exc)
    assert (failure.transport, failure.code, failure.fix) == (Transport.NOT_SENT, "ConnectionFailed", "")
    # urllib3's "HTTPSConnectionPool(host=..., port=...): " prefix goes; its human part stays.
    assert failure.reason.startswith("cannot connect: Max retries exceeded with url: /openai/deployments/d/chat/completions (")
    assert "Connection refused" in failure.reason


def test_name_resolution_failure(bundle: str) -> None:
    # .invalid never resolves (RFC 6761), and the resolver answers that locally.
    exc = lb.raised("https://polysync-emulator.invalid", bundle)
    assert urllib3.exceptions.NameResolutionError in roots(exc)
    assert classify(exc).transport is Transport.NOT_SENT
    assert "cannot connect" in classify(exc).reason


def test_connect_timeout(bundle: str) -> None:
    with lb.full_backlog() as origin:
        exc = lb.raised(origin, bundle)
    assert isinstance(exc, requests.exceptions.ConnectTimeout)
    assert (classify(exc).transport, classify(exc).code, classify(exc).reason) == (
        Transport.NOT_SENT,
        "ConnectTimeout",
        "connecting timed out",
    )


@pytest.mark.parametrize("behaviour", [lb.reset_in_handshake, lb.eof_in_handshake], ids=["reset", "eof"])
def test_a_handshake_cut_short_is_not_sent(ca: trustme.CA, bundle: str, behaviour: lb.Behaviour) -> None:
    with lb.loopback(behaviour, ca) as origin:
        exc = lb.raised(origin, bundle)
    assert roots(exc) & {ssl.SSLEOFError, ConnectionResetError, ssl.SSLZeroReturnError}, roots(exc)
    failure = classify(exc)
    assert (failure.transport, failure.code, failure.fix) == (Transport.NOT_SENT, "TLSHandshakeFailed", "")


def test_a_stalled_handshake_is_a_connect_timeout(ca: trustme.CA, bundle: str) -> None:
    # urllib3 reports it as a ReadTimeoutError; the do_handshake frame says when it happened.
    with lb.loopback(lb.stall_in_handshake, ca) as origin:
        exc = lb.raised(origin, bundle)
    assert urllib3.exceptions.ReadTimeoutError in roots(exc)
    assert (classify(exc).transport, classify(exc).code, classify(exc).reason) == (
        Transport.NOT_SENT,
        "ConnectTimeout",
        "connecting timed out",
    )


# -- untrusted -----------------------------------------------------------------------------------


def test_a_certificate_from_an_unknown_ca(bundle: str) -> None:
    with lb.loopback(lb.untrusted_handshake, trustme.CA()) as origin:
        exc = lb.raised(origin, bundle)
    assert ssl.SSLCertVerificationError in roots(exc)
    failure = classify(exc)
    assert (failure.transport, failure.fix) == (Transport.UNTRUSTED, PRIVATE_CA)


def test_a_certificate_for_another_host(ca: trustme.CA, bundle: str) -> None:
    with lb.loopback(lb.untrusted_handshake, ca, hostname="other.example") as origin:
        exc = lb.raised(origin, bundle)
    assert ssl.SSLCertVerificationError in roots(exc)
    failure = classify(exc)
    assert (failure.transport, failure.fix) == (Transport.UNTRUSTED, PRIVATE_CA)
    assert "other.example" in failure.reason or "mismatch" in failure.reason


# -- maybe processed -----------------------------------------------------------------------------


def test_a_stream_cut_while_the_body_is_written(ca: trustme.CA, bundle: str) -> None:
    """Issue 11 defect 1: 0.1.0 called this "TLS handshake failed" and gave it the private-CA advice."""
    with lb.loopback(lb.cut_during_body, ca) as origin:
        exc = lb.raised(origin, bundle, body=b"x" * 8_000_000)
    assert roots(exc) & {ssl.SSLEOFError, ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected}
    failure = classify(exc)
    assert (failure.transport, failure.code, failure.fix) == (Transport.MAYBE_PROCESSED, "ConnectionDropped", "")
    assert "handshake" not in failure.reason


@pytest.mark.parametrize(
    "behaviour,root",
    [(lb.close_after_request, http.client.RemoteDisconnected), (lb.reset_after_request, ConnectionResetError)],
    ids=["closed-without-close-notify", "reset"],
)
def test_a_connection_lost_while_the_answer_is_awaited(
    ca: trustme.CA, bundle: str, behaviour: lb.Behaviour, root: type[BaseException]
) -> None:
    with lb.loopback(behaviour, ca) as origin:
        exc = lb.raised(origin, bundle)
    lost = [e for e in causes(exc) if isinstance(e, root)]  # RemoteDisconnected is a ConnectionResetError
    assert lost
    failure = classify(exc)
    assert (failure.transport, failure.code) == (Transport.MAYBE_PROCESSED, "ConnectionDropped")
    assert type(lost[-1]).__name__ in failure.reason


def test_a_read_timeout(ca: trustme.CA, bundle: str) -> None:
    with lb.loopback(lb.stall_answer, ca) as origin:
        exc = lb.raised(origin, bundle, read_timeout=0.3)
    assert isinstance(exc, requests.exceptions.ReadTimeout)
    assert (classify(exc).transport, classify(exc).code) == (Transport.MAYBE_PROCESSED, "ReadTimeout")


@pytest.mark.parametrize("behaviour", [lb.cut_chunked_answer, lb.cut_sized_answer], ids=["chunked", "content-length"])
def test_an_answer_cut_short(ca: trustme.CA, bundle: str, behaviour: lb.Behaviour) -> None:
    with lb.loopback(behaviour, ca) as origin:
        exc = lb.raised(origin, bundle)
    assert isinstance(exc, requests.exceptions.ChunkedEncodingError)
    assert (classify(exc).transport, classify(exc).code) == (Transport.MAYBE_PROCESSED, "BrokenResponse")


# -- chains built as urllib3 and requests build them ---------------------------------------------


def as_requests_raises(error: BaseException) -> requests.RequestException:
    """urllib3's wrapping of ``error`` once retries are exhausted, then requests' (adapters.py)."""
    if isinstance(error, (ssl.SSLError,)):
        reason: Exception = urllib3.exceptions.SSLError(error)
        return requests.exceptions.SSLError(urllib3.exceptions.MaxRetryError(None, "/", reason))  # type: ignore[arg-type]
    return requests.exceptions.ConnectionError(urllib3.exceptions.ProtocolError("Connection aborted.", error))


@pytest.mark.parametrize(
    "error",
    [
        ssl.SSLZeroReturnError(6, "TLS/SSL connection has been closed (EOF)"),
        ssl.SSLEOFError(8, "EOF occurred in violation of protocol"),
        http.client.RemoteDisconnected("Remote end closed connection without response"),
        ConnectionResetError(104, "Connection reset by peer"),
    ],
    ids=["SSLZeroReturnError", "SSLEOFError", "RemoteDisconnected", "ConnectionResetError"],
)
def test_without_proof_of_the_connect_phase_a_drop_may_have_been_processed(error: BaseException) -> None:
    # No traceback, so nothing shows the request never left: the safe answer (a create is looked up).
    failure = classify(as_requests_raises(error))
    assert (failure.transport, failure.code, failure.fix) == (Transport.MAYBE_PROCESSED, "ConnectionDropped", "")


def test_a_hand_built_certificate_failure_is_untrusted() -> None:
    error = ssl.SSLCertVerificationError(1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed")
    assert classify(as_requests_raises(error)).transport is Transport.UNTRUSTED


def test_a_request_requests_refuses_to_build_is_invalid() -> None:
    failure = classify(requests.exceptions.InvalidHeader("Invalid leading whitespace in header value"))
    assert (failure.transport, failure.code) == (Transport.INVALID, "RequestError")
