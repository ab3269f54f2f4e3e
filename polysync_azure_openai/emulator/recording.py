"""A second, trivial HTTPS server that answers every request `200 {}` and records it.

It is where an injected redirect points: a test proves that a client never followed the redirect
(the log stays empty) and so never sent its credential to another host.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from .handle import ServerHandle
from .server import Request, Response, Route, json_response, route
from .state import EmulatorState

if TYPE_CHECKING:
    import trustme

_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def _ok(request: Request, match: re.Match[str]) -> Response:
    return json_response(200, {})


class RecordingServer(ServerHandle):
    """HTTPS on 127.0.0.1 (port 0) with a certificate from `ca` (share the emulator's: `emu.ca`)."""

    label = "the recording server"

    def __init__(self, ca: trustme.CA | None = None) -> None:
        super().__init__(EmulatorState(token_lifetime=3600, page_size=100), ca)

    def _routes(self) -> list[Route]:
        return [route(method, r".*", "recorded", _ok) for method in _METHODS]
