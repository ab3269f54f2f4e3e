"""The Polysync host's hook specifications, copied from the host contract.

The host builds ``pluggy.PluginManager("polysync")``, adds these specs, loads the
``polysync.job_types`` entry points and calls ``check_pending()``. Argument names are the
contract: pluggy passes an implementation only the arguments it names, so no implementation
may give them defaults.
"""

from __future__ import annotations

from typing import Any

import pluggy

PROJECT_NAME = "polysync"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def import_jobs(platform: Any) -> list[Any] | None:
    """Discover the jobs a platform offers. Each plugin returns a list (possibly empty), or
    None when the platform or job type is not its own. The host concatenates the lists."""


@hookspec(firstresult=True)
def submit(platform: Any, job: Any, parameters: Any, run_key: str) -> Any:
    """Start one run of `job`. Returns a RunResult, or None when the job is not this plugin's."""


@hookspec(firstresult=True)
def get_status(platform: Any, job: Any, run_id: str) -> Any:
    """Report the current state of a run. Returns a RunResult, or None when not this plugin's."""


@hookspec(firstresult=True)
def cancel(platform: Any, job: Any, run_id: str) -> Any:
    """Ask for a run to stop. Returns a RunResult, or None when not this plugin's."""


@hookspec(firstresult=True)
def monitor_url(platform: Any, job: Any, run_id: str) -> str | None:
    """A link where an operator can watch the run. Returns a str, or None when not this plugin's."""
