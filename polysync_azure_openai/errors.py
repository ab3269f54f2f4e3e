"""The plugin's exception tree.

``PolysyncAzureOpenAIError``
    ``ConfigurationError``: bad platform/job configuration or run input, raised before any
    network call; the host shows ``str(exc)`` as the run message.
    ``AzureServiceError``: Azure answered with an error (status, code, message, request id).
    ``TransportError``: no usable answer (connection failed, timed out, unreadable body).

Remote failures during a run are not raised to the host: the job types turn them into
``Failed`` (or ``Unknown``) RunResults. Messages never contain secrets.
"""

from __future__ import annotations

import attrs


class PolysyncAzureOpenAIError(Exception):
    """Base of every error this plugin raises."""


class ConfigurationError(PolysyncAzureOpenAIError, ValueError):
    """A platform attribute, job attribute, parameter or RunId is wrong; nothing was sent."""


@attrs.frozen
class ErrorDetail:
    """The substance of an Azure error, kept so an operator can act on it."""

    status: int | None
    code: str | None
    message: str
    request_id: str | None
    attempts: int = 1
    #: What the operator should do, one sentence without a label; filled by troubleshooting.
    fix: str = ""
    #: The wait in seconds a 429 asked for, when it named one (hours mean a daily quota).
    retry_after: float | None = None

    def describe(self) -> str:
        """The substance alone: status, code, message, request id, attempts."""
        parts = []
        if self.status is not None:
            parts.append(f"HTTP {self.status}")
        if self.code:
            parts.append(self.code)
        head = " ".join(parts)
        text = f"{head}: {self.message}" if head else self.message
        if self.request_id:
            text += f" (request id {self.request_id})"
        if self.attempts > 1:
            text += f" after {self.attempts} attempts"
        return text

    def render(self, what: str | None = None) -> str:
        """The one rendering of an error for people: ``{what}: {substance}. Fix: {fix}``."""
        text = f"{what}: {self.describe()}." if what else self.describe()
        if not self.fix:
            return text
        return f"{text} Fix: {self.fix}" if what else f"{text}. Fix: {self.fix}"


class RemoteError(PolysyncAzureOpenAIError):
    """Something went wrong on the far side of the wire; carries an ErrorDetail."""

    def __init__(self, detail: ErrorDetail, *, transient: bool = False) -> None:
        super().__init__(detail.render())
        self.detail = detail
        #: True when retrying later may succeed (429, 5xx, connection trouble).
        self.transient = transient

    def replace_detail(self, detail: ErrorDetail) -> None:
        """Swap in a richer detail (advice added on the way up); the message follows it."""
        self.detail = detail
        self.args = (detail.render(),)

    @property
    def status(self) -> int | None:
        return self.detail.status

    @property
    def code(self) -> str | None:
        return self.detail.code


class AzureServiceError(RemoteError):
    """Azure answered with an HTTP error status."""


class TransportError(RemoteError):
    """No usable HTTP answer: connection refused or reset, timeout, redirect, unreadable body."""
