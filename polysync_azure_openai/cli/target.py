"""The platform an operator command works on, and the job a RunId belongs to.

The platform comes from a TOML file (``--config``, see ``config_file.py``) or from an emulator
started for the command (``--emulator``). The emulator's throwaway CA travels with the platform
(``Platform.ca_bundle``), never through the process environment.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Final

import attrs

from ..errors import ConfigurationError, RemoteError
from ..jobs import BATCH, CHAT, EMBEDDING, JOB_TYPES
from .output import EXIT_BAD_INPUT, EXIT_REMOTE_FAILURE, CommandFailed, Output, shown

if TYPE_CHECKING:
    import pluggy

    from ..emulator import Emulator
    from .host import Job, Platform

JOB_TYPE_ALIASES: Final = {"chat": CHAT, "embedding": EMBEDDING, "embeddings": EMBEDDING, "batch": BATCH}
EMULATOR_PLATFORM_NAME: Final = "Azure OpenAI Emulator"
EMULATOR_INSTALL: Final = "pip install 'polysync-azure-openai[emulator]'"


def require_emulator() -> None:
    """Refuse in one line, before anything starts, when the ``emulator`` extra is missing."""
    try:
        # trustme is the one dependency only the emulator has; it is imported right after anyway.
        importlib.import_module("trustme")
    except ImportError:
        raise CommandFailed(
            EXIT_BAD_INPUT, f"the embedded Azure emulator is not installed; install it with: {EMULATOR_INSTALL}"
        ) from None


@attrs.frozen
class Target:
    """What one operator command works on: the platform, the plugin manager, maybe an emulator."""

    platform: Platform
    pm: pluggy.PluginManager
    source: str
    emulator: Emulator | None = None

    def pause(self, seconds: float) -> None:
        """Wait between polls; on the embedded emulator, move its clock instead of the wall clock."""
        if self.emulator is None:
            time.sleep(seconds)
        else:
            self.emulator.advance(seconds)
            time.sleep(0.02)


@contextlib.contextmanager
def open_target(args: argparse.Namespace) -> Iterator[Target]:
    from .host import Platform, plugin_manager

    if not args.emulator:
        from .config_file import load_platform

        yield Target(load_platform(args.config), plugin_manager(), str(args.config))
        return
    require_emulator()
    from ..emulator import Emulator
    from ..emulator.cli import platform_attributes

    with Emulator() as emu:
        platform = Platform(
            name=EMULATOR_PLATFORM_NAME,
            auth_method="Service Principal",
            attributes={**platform_attributes(emu), "Client Secret": emu.client_secret},
            ca_bundle=emu.ca_path,
        )
        yield Target(platform, plugin_manager(), f"embedded emulator at {emu.url}", emu)


def operator_command(body: Callable[[argparse.Namespace, Target, Output], int]) -> Callable[[argparse.Namespace], int]:
    """Open the platform, run ``body`` and turn errors into messages and exit codes."""

    def command(args: argparse.Namespace) -> int:
        out = Output(args.json)
        try:
            with open_target(args) as target:
                return body(args, target, out)
        except CommandFailed as exc:
            return out.fail(exc.exit_code, exc.message, exc.fix)
        except ConfigurationError as exc:
            return out.fail(EXIT_BAD_INPUT, str(exc))
        except RemoteError as exc:
            return out.fail(EXIT_REMOTE_FAILURE, str(exc))

    return command


def answer(value: Any, hook: str) -> Any:
    """A hook's answer; None means no installed plugin took the call."""
    if value is None:
        raise CommandFailed(EXIT_REMOTE_FAILURE, f"No installed plugin answered {hook}.", "Reinstall polysync-azure-openai.")
    return value


def resolve_job_type(text: str) -> str:
    wanted = text.strip().lower()
    for name in JOB_TYPES:
        if name.lower() == wanted:
            return name
    if wanted in JOB_TYPE_ALIASES:
        return JOB_TYPE_ALIASES[wanted]
    raise ConfigurationError(
        f"Unknown job type {shown(text)}. Use chat, embedding or batch, or a display name: {', '.join(JOB_TYPES)}."
    )


def job_for_run_id(run_id: str, job_type_text: str | None) -> Job:
    """The job a RunId belongs to, as far as the hooks need one: its job type and External Id.

    ``status``, ``cancel`` and ``monitor-url`` get only a RunId, but the hooks route a call by
    ``job.job_type``. ``--job-type`` names the type; without it the RunId tells it: ``batch_...``,
    ``<deployment>#rows#...`` and ``<deployment>#batch#Failed`` are Batch Job runs, and ``<deployment>#sync#<status>`` is
    taken as a Chat Completion run (an Embedding RunId has the same form, and both synchronous job
    types read their status from it without a request). The RunId format itself is known only to
    ``jobs.run_ids``; the plugin then checks the RunId in full.
    """
    from ..jobs import run_ids
    from .host import Job

    if job_type_text:
        job_type = resolve_job_type(job_type_text)
    elif run_ids.is_batch_run_id(run_id):
        job_type = BATCH
    elif run_ids.is_sync_run_id(run_id):
        job_type = CHAT
    else:
        raise ConfigurationError(
            f"RunId {shown(run_id)} is not one this plugin issues (batch_..., <deployment>#rows#..., "
            "<deployment>#sync#<status> or <deployment>#batch#Failed). Check the RunId, or name its job type with --job-type."
        )
    deployment = run_ids.deployment_of(run_id) or ""
    external_id = deployment + ("::batch" if job_type == BATCH and deployment else "")
    return Job(job_type=job_type, external_id=external_id or run_id, name=external_id or run_id)
