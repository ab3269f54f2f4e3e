"""An exception from one attempt → its transport class (second-release.md §A), decided once, by phase.

Why phase and not exception type: the same ``ssl.SSLEOFError`` (or ``ConnectionResetError``)
means "nothing reached the service" when the peer went away during the TLS handshake, and
"the service may have acted" when it went away while the request was being written or the
answer read. urllib3 wraps both the same way (``urllib3.exceptions.SSLError`` inside a
``MaxRetryError``, surfaced by requests as ``requests.exceptions.SSLError``), so the type of the
outer exception says nothing about the phase; 0.1.0 tested that type first and called a stream
cut while the body was being written "TLS handshake failed".

The phase is read from the real chain instead:

- urllib3 raises ``NewConnectionError`` (refused, DNS: ``NameResolutionError`` is a subclass)
  and ``ConnectTimeoutError`` only while opening the TCP connection.
- Everything else raised while connecting (the TLS handshake, a proxy tunnel) passes through
  urllib3's ``HTTPSConnection.connect`` (from ``HTTPConnectionPool._validate_conn``, or from
  http.client's ``send`` auto-open) and ``ssl.SSLSocket.do_handshake``; an exception raised there
  keeps those frames on its ``__traceback__``, which urllib3 preserves when it wraps (it raises
  the wrapper from inside the ``except`` block, so the original stays the ``__context__``, and
  ``Retry.increment`` re-raises read errors with their own traceback). A handshake that stalls
  is the one case urllib3 misnames: ``_raise_timeout`` turns it into ``ReadTimeoutError``, but the
  frames still show ``do_handshake``.
- Once past ``connect``, the request is written (``request`` → ``send``/``sendall``) and the answer
  read (``getresponse`` → ``_read_status``): any failure there is "maybe processed", because a
  byte of the request may have reached the service even if the write that failed was the first
  (the kernel had already accepted earlier bytes, or the service reads ahead).

So "not sent" must be proven by a connect-phase type or frame; without that proof (a chain
built by hand has no traceback) the answer is the safe one, "maybe processed", under which a
create is looked up instead of repeated.
"""

from __future__ import annotations

import enum
import http.client
import re
import ssl
import traceback
from collections.abc import Iterator

import attrs
import requests
import urllib3.exceptions

from ..troubleshooting import PRIVATE_CA


class Transport(enum.Enum):
    """How far a failed attempt got (§A); "answered" is an HTTP status, see decide.Answered."""

    #: Nothing reached the service: DNS, refused, connect timeout, the TLS handshake cut.
    NOT_SENT = "not sent"
    #: Cut after a byte of the request may have left: the service may have acted.
    MAYBE_PROCESSED = "maybe processed"
    #: The certificate was refused (verification, hostname): permanent.
    UNTRUSTED = "untrusted"
    #: requests refused to build the request (a malformed URL or header): permanent, nothing sent.
    INVALID = "invalid request"


@attrs.frozen
class Failure:
    """A classified failure: its class, an error code and a reason for people, and the advice."""

    transport: Transport
    code: str
    reason: str
    fix: str = ""


# (module, function) pairs that only run while a connection is being opened.
_CONNECT_FRAMES = frozenset(
    {
        ("urllib3.connectionpool", "_validate_conn"),
        ("urllib3.connection", "connect"),
        ("urllib3.connection", "_new_conn"),
        ("urllib3.connection", "_tunnel"),
        ("urllib3.connection", "_connect_tls_proxy"),
        ("urllib3.connection", "_ssl_wrap_socket_and_match_hostname"),
        ("urllib3.util.connection", "create_connection"),
        ("urllib3.util.ssl_", "ssl_wrap_socket"),
        ("http.client", "connect"),
        ("http.client", "_tunnel"),
        ("socket", "create_connection"),
        ("ssl", "do_handshake"),
    }
)
# RemoteDisconnected and the reset, abort and broken-pipe errors are builtin ConnectionErrors.
_DROPPED = (ssl.SSLEOFError, ssl.SSLZeroReturnError, ConnectionError)


def classify(exc: BaseException) -> Failure:
    """The §A class of what one attempt raised (a ``requests.RequestException`` as the adapter raises it)."""
    chain = list(causes(exc))
    if any(isinstance(e, ssl.SSLCertVerificationError) for e in chain):
        return Failure(
            Transport.UNTRUSTED,
            "UntrustedCertificate",
            f"the server's TLS certificate is not trusted: {short(exc)}",
            fix=PRIVATE_CA,
        )
    if _while_connecting(chain):
        # NewConnectionError subclasses ConnectTimeoutError in urllib3 2, so it is asked first.
        if any(isinstance(e, urllib3.exceptions.NewConnectionError) for e in chain):
            return Failure(Transport.NOT_SENT, "ConnectionFailed", f"cannot connect: {short(exc)}")
        if any(_is_timeout(e) for e in chain):
            return Failure(Transport.NOT_SENT, "ConnectTimeout", "connecting timed out")
        return Failure(Transport.NOT_SENT, "TLSHandshakeFailed", f"the TLS handshake failed: {short(exc)}")
    if any(isinstance(e, (requests.exceptions.ReadTimeout, urllib3.exceptions.ReadTimeoutError)) for e in chain):
        return Failure(Transport.MAYBE_PROCESSED, "ReadTimeout", "no answer within the read timeout ('Request Timeout Seconds')")
    if any(isinstance(e, _BROKEN_BODY) for e in chain):
        return Failure(
            Transport.MAYBE_PROCESSED, "BrokenResponse", f"the response body was cut short or unreadable: {short(exc)}"
        )
    if any(isinstance(e, _DROPPED) for e in chain) or isinstance(exc, requests.exceptions.ConnectionError):
        return Failure(
            Transport.MAYBE_PROCESSED, "ConnectionDropped", f"the connection was closed before an answer arrived ({_root(chain)})"
        )
    return Failure(Transport.INVALID, "RequestError", f"the request could not be made: {short(exc)}")


_BROKEN_BODY = (
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
    urllib3.exceptions.IncompleteRead,
    urllib3.exceptions.InvalidChunkLength,
    urllib3.exceptions.DecodeError,
    http.client.IncompleteRead,
)


def _root(chain: list[BaseException]) -> str:
    """The innermost socket, TLS or HTTP error, named: what actually happened on the wire."""
    roots = [e for e in chain if isinstance(e, (OSError, http.client.HTTPException))]
    root = roots[-1] if roots else chain[-1]
    text = short(root)
    return f"{type(root).__name__}: {text}" if text else type(root).__name__


def _is_timeout(exc: BaseException) -> bool:
    return isinstance(exc, (TimeoutError, urllib3.exceptions.TimeoutError, requests.exceptions.Timeout))


def _while_connecting(chain: list[BaseException]) -> bool:
    for exc in chain:
        if isinstance(exc, (urllib3.exceptions.ConnectTimeoutError, requests.exceptions.ConnectTimeout)):
            return True  # NewConnectionError and NameResolutionError are subclasses
        for frame, _ in traceback.walk_tb(exc.__traceback__):
            if (frame.f_globals.get("__name__"), frame.f_code.co_name) in _CONNECT_FRAMES:
                return True
    return False


def causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and everything it wraps: causes, contexts, and urllib3's ``reason`` and ``args``."""
    seen: list[BaseException] = []
    pending = [exc]
    while pending:
        current = pending.pop(0)
        if any(current is s for s in seen):
            continue
        seen.append(current)
        yield current
        wrapped = [current.__cause__, current.__context__, getattr(current, "reason", None), *current.args]
        pending.extend(e for e in wrapped if isinstance(e, BaseException))


def short(exc: BaseException) -> str:
    """The human part of an exception's text."""
    text = str(exc)
    # urllib3 repeats the pool and object addresses; keep the human part.
    text = re.sub(r"HTTPSConnectionPool\(host='[^']*', port=\d+\): ", "", text)
    text = re.sub(r"<urllib3[^>]*>", "", text)
    text = re.sub(r"\s+", " ", text).strip()
    return text[:300]
