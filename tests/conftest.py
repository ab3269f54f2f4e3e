"""Fixtures: one throwaway CA per test session, a fresh emulator per test, the real plugin
manager loading the installed entry points, and platforms pointed at the emulator."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from typing import Any

import pluggy
import pytest
import trustme

from polysync_azure_openai.cli.host import Job, Platform, import_all, plugin_manager
from polysync_azure_openai.emulator import Emulator
from polysync_azure_openai.emulator.cli import platform_attributes
from polysync_azure_openai.http import pacer
from polysync_azure_openai.results import ImportedJob


@pytest.fixture(scope="session")
def ca(tmp_path_factory: pytest.TempPathFactory) -> trustme.CA:
    """The emulator CA, trusted through REQUESTS_CA_BUNDLE as a user would trust a private CA.

    HTTP sessions read the bundle once when built, so every emulator of the session shares it.
    """
    authority = trustme.CA()
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    authority.cert_pem.write_to_path(str(path))
    previous = os.environ.get("REQUESTS_CA_BUNDLE")
    os.environ["REQUESTS_CA_BUNDLE"] = str(path)
    yield authority
    if previous is None:
        os.environ.pop("REQUESTS_CA_BUNDLE", None)
    else:
        os.environ["REQUESTS_CA_BUNDLE"] = previous


@pytest.fixture(autouse=True)
def fresh_lanes() -> None:
    """Deployment lanes live per process, keyed by endpoint: an emulator port the OS hands out
    again must not inherit an earlier test's pauses or counts."""
    pacer.LANES.clear()


@pytest.fixture
def emu(ca: trustme.CA) -> Iterator[Emulator]:
    with Emulator(ca=ca) as emulator:
        yield emulator


@pytest.fixture
def one_look_up(monkeypatch: pytest.MonkeyPatch) -> None:
    """A create or upload whose answer was lost is looked up once, not for the 30 s
    (``REATTACH_SECONDS``) a worker keeps looking: what is looked up is the same, sooner."""
    from polysync_azure_openai.http import create

    monkeypatch.setattr(create, "REATTACH_SECONDS", 0.0)


@pytest.fixture
def pm() -> pluggy.PluginManager:
    """A fresh manager per test, built exactly as the host builds it."""
    return plugin_manager()


def with_overrides(attributes: dict[str, str], overrides: dict[str, str | None]) -> dict[str, str]:
    """Keyword names use '_' for spaces; None removes the attribute."""
    for name, value in overrides.items():
        key = name.replace("_", " ")
        if value is None:
            attributes.pop(key, None)
        else:
            attributes[key] = value
    return attributes


def emulator_attributes(emu: Emulator, **overrides: str | None) -> dict[str, str]:
    return with_overrides({**platform_attributes(emu), "Client Secret": emu.client_secret}, overrides)


def sp_platform(emu: Emulator, name: str = "emulator", enabled: Any = None, **overrides: str | None) -> Platform:
    """A Service Principal platform on the emulator; keyword names use '_' for spaces."""
    return Platform(
        name=name,
        auth_method="Service Principal",
        attributes=emulator_attributes(emu, **overrides),
        enabled_job_types=enabled,
    )


def api_key_platform(emu: Emulator, **overrides: str | None) -> Platform:
    attributes = {"OpenAI Resource Name": emu.resource_name, "OpenAI Endpoint": emu.url, "API Key": emu.api_key}
    return Platform(name="emulator-key", auth_method="API Key", attributes=with_overrides(attributes, overrides))


def job(job_type: str, external_id: str, **attributes: str) -> Job:
    return Job(
        job_type=job_type,
        external_id=external_id,
        name=external_id,
        attributes={k.replace("_", " "): v for k, v in attributes.items()},
    )


def imported(pm: pluggy.PluginManager, platform: Platform) -> list[ImportedJob]:
    return import_all(pm, platform)


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Every logger at DEBUG (ours, urllib3's, azure-identity's, msal's)."""
    caplog.set_level(logging.DEBUG)
    for name in ("polysync_azure_openai", "urllib3", "azure", "msal"):
        caplog.set_level(logging.DEBUG, logger=name)
    return caplog
