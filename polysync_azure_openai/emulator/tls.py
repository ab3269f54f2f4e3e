"""A throwaway certificate authority and a server certificate for 127.0.0.1 and localhost.

Clients trust the emulator through the CA file (``REQUESTS_CA_BUNDLE`` or ``verify=``), never by
turning verification off. trustme is imported here only, so the plugin's own import path never
loads it.
"""

from __future__ import annotations

import shutil
import ssl
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import attrs

if TYPE_CHECKING:
    import trustme


def new_ca() -> trustme.CA:
    """A fresh CA; tests share one per session so HTTP sessions built once keep trusting it."""
    import trustme

    return trustme.CA(organization_name="Polysync Azure emulator")


@attrs.frozen
class ServerTLS:
    """The server side TLS context and the CA file a client needs to trust it."""

    ca: trustme.CA
    context: ssl.SSLContext
    ca_path: Path
    directory: Path

    def cleanup(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


def make_server_tls(ca: trustme.CA | None = None) -> ServerTLS:
    """Issue a server certificate for the loopback names and write the CA PEM to a temp file."""
    authority = ca if ca is not None else new_ca()
    certificate = authority.issue_cert("127.0.0.1", "localhost", "::1")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    certificate.configure_cert(context)
    directory = Path(tempfile.mkdtemp(prefix="polysync-emulator-tls-"))
    ca_path = directory / "emulator-ca.pem"
    authority.cert_pem.write_to_path(str(ca_path))
    return ServerTLS(ca=authority, context=context, ca_path=ca_path, directory=directory)
