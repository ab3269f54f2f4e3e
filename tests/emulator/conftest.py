"""Fixtures for the emulator's own tests: one CA per session, a fresh emulator per test.

Starting an emulator costs a few milliseconds (an ECDSA server certificate), so each test gets
its own and may change it freely. HTTP goes through real TLS; sessions ignore the environment
(`trust_env = False`) because a `REQUESTS_CA_BUNDLE` in the environment overrides
`session.verify` in requests.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from polysync_azure_openai.emulator import Emulator, new_ca

from .emulator_helpers import ClientCertificate, make_client_certificate


@pytest.fixture(scope="session")
def shared_ca() -> Any:
    return new_ca()


@pytest.fixture
def emu(shared_ca: Any) -> Iterator[Emulator]:
    with Emulator(ca=shared_ca) as emulator:
        yield emulator


@pytest.fixture
def http(emu: Emulator) -> Iterator[requests.Session]:
    session = requests.Session()
    session.trust_env = False
    session.verify = emu.ca_path
    yield session
    session.close()


@pytest.fixture(scope="session")
def app_cert() -> ClientCertificate:
    return make_client_certificate()


@pytest.fixture(scope="session")
def other_cert() -> ClientCertificate:
    """A second key pair: what someone without the registered key would sign with."""
    return make_client_certificate("someone-else")
