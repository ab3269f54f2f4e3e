"""A minimal stand-in for the Polysync host, for the CLI, the demo and the tests.

It builds the plugin manager exactly as the host does (host-contract.md, Loading) and holds the
duck-typed objects the host passes to hooks.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

import attrs
import pluggy

from .. import hookspecs
from ..jobs import PLATFORM_TYPE
from ..results import ImportedJob


def plugin_manager() -> pluggy.PluginManager:
    """``PluginManager("polysync")`` with the specs and the installed ``polysync.job_types``."""
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    pm.load_setuptools_entrypoints("polysync.job_types")
    pm.check_pending()
    return pm


@attrs.frozen
class Platform:
    """What the host passes as ``platform``. Attribute values may be secrets: not in repr."""

    name: str
    auth_method: str
    attributes: Mapping[str, str] = attrs.field(repr=False)
    platform_type: str = PLATFORM_TYPE
    credential: Any = attrs.field(default=None, repr=False)
    enabled_job_types: Collection[str] | None = None
    #: Not part of the host contract: a CA bundle path the plugin trusts for this platform,
    #: so the CLI can trust its embedded emulator without changing the process environment.
    ca_bundle: str | None = None


@attrs.frozen
class Job:
    """What the host passes as ``job``."""

    job_type: str
    external_id: str
    name: str
    attributes: Mapping[str, str] = attrs.field(factory=dict)

    @classmethod
    def from_imported(cls, imported: ImportedJob, **attributes: str) -> Job:
        return cls(
            job_type=imported.job_type,
            external_id=imported.external_id,
            name=imported.name,
            attributes={**imported.attributes, **attributes},
        )


def import_all(pm: pluggy.PluginManager, platform: Platform) -> list[ImportedJob]:
    """One host ``import_jobs`` call, with the per-plugin lists concatenated as the host does."""
    return [job for jobs in pm.hook.import_jobs(platform=platform) if jobs for job in jobs]
