"""The hook commands: ``import``, ``run``, ``status``, ``cancel`` and ``monitor-url``.

Each calls the plugin's hooks through the plugin manager, exactly as the Polysync host does.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TextIO

from ..errors import ConfigurationError, RemoteError
from ..jobs import BATCH
from .output import EXIT_OK, EXIT_REMOTE_FAILURE, CommandFailed, Output, Progress, exit_for, job_json, show_result, shown
from .target import Target, answer, job_for_run_id, operator_command, resolve_job_type

if TYPE_CHECKING:
    from ..results import RunResult
    from .host import Job

INPUT_DIRECTIONS: Final = ("Input", "Input&Output")


@operator_command
def import_command(args: argparse.Namespace, target: Target, out: Output) -> int:
    from ..troubleshooting import advise
    from .host import import_all

    try:
        jobs = import_all(target.pm, target.platform)
    except RemoteError as exc:
        detail = advise(exc.detail, operation="discovery")
        raise CommandFailed(EXIT_REMOTE_FAILURE, f"Import Jobs failed: {detail.describe()}", detail.fix) from None
    out.line(f"{len(jobs)} jobs on platform '{target.platform.name}' ({target.source}):")
    for job in jobs:
        out.line(f"  {job.job_type:<30} {job.external_id:<24} {job.description}")
    out.data({"platform": target.platform.name, "jobs": [job_json(job) for job in jobs]})
    return EXIT_OK


@operator_command
def run_command(args: argparse.Namespace, target: Target, out: Output) -> int:
    from ..manifest import job_type_spec
    from .host import Job

    job_type = resolve_job_type(args.job_type)
    parameters = parse_parameters(job_type, args.param)
    attributes = {**job_type_spec(job_type).defaults(), **parse_attributes(job_type, args.attr)}
    job = Job(job_type=job_type, external_id=args.external_id, name=args.external_id, attributes=attributes)
    run_key = args.run_key or f"cli-{uuid.uuid4()}"
    result: RunResult = answer(
        target.pm.hook.submit(platform=target.platform, job=job, parameters=parameters, run_key=run_key), "submit"
    )
    if job_type == BATCH and not args.no_wait and not result.is_terminal:
        result = wait_for_run(target, job, result, args.poll_interval)
    show_result(out, result)
    return exit_for(result)


def wait_for_run(target: Target, job: Job, result: RunResult, interval: float, stream: TextIO | None = None) -> RunResult:
    """Poll ``get_status`` until the run ends, showing progress; Ctrl-C stops waiting, not the run."""
    progress = Progress(stream or sys.stderr)
    waited = 0.0
    try:
        while not result.is_terminal:
            progress.show(f"{result.status}: {result.message or ''}", waited)
            target.pause(interval)
            waited += interval
            result = answer(target.pm.hook.get_status(platform=target.platform, job=job, run_id=result.run_id), "get_status")
        progress.show(f"{result.status}: {result.message or ''}", waited)
    except KeyboardInterrupt:
        progress.end()
        print(
            f"Stopped waiting; the run goes on. Read it later with: polysync-azure-openai status {result.run_id} ...",
            file=sys.stderr,
        )
    finally:
        progress.end()
    return result


@operator_command
def status_command(args: argparse.Namespace, target: Target, out: Output) -> int:
    job = job_for_run_id(args.run_id, args.job_type)
    result: RunResult = answer(target.pm.hook.get_status(platform=target.platform, job=job, run_id=args.run_id), "get_status")
    show_result(out, result)
    return exit_for(result)


@operator_command
def cancel_command(args: argparse.Namespace, target: Target, out: Output) -> int:
    job = job_for_run_id(args.run_id, args.job_type)
    result: RunResult = answer(target.pm.hook.cancel(platform=target.platform, job=job, run_id=args.run_id), "cancel")
    show_result(out, result)
    return exit_for(result, cancelling=True)


@operator_command
def monitor_url_command(args: argparse.Namespace, target: Target, out: Output) -> int:
    from ..platform import PlatformConfig

    if args.run_id:
        job = job_for_run_id(args.run_id, args.job_type)
        url: str = answer(target.pm.hook.monitor_url(platform=target.platform, job=job, run_id=args.run_id), "monitor_url")
    else:
        url = PlatformConfig.from_host(target.platform).portal_url()
    out.line(url)
    out.data({"monitor_url": url})
    return EXIT_OK


# -- parameters and attributes from the command line ----------------------------------------------


def parse_parameters(job_type: str, items: Sequence[str]) -> dict[str, Any]:
    """``NAME=VALUE`` items as run parameters, each decoded by its declared data type."""
    from ..manifest import job_type_spec

    specs = {p.name: p for p in job_type_spec(job_type).parameters}
    inputs = [name for name, p in specs.items() if p.direction in INPUT_DIRECTIONS]
    values: dict[str, Any] = {}
    for item in items:
        name, equals, text = item.partition("=")
        name = name.strip()
        if not equals or not name:
            raise ConfigurationError(f"--param {shown(item)} is not NAME=VALUE. Write for example --param user_prompt='Hello'.")
        spec = specs.get(name)
        if spec is None or spec.direction not in INPUT_DIRECTIONS:
            problem = "is an Output parameter, set by the run" if spec is not None else "is not a parameter of this job type"
            raise ConfigurationError(
                f"--param {name!r} {problem}. {job_type} takes: {', '.join(inputs) or 'no input parameters'}."
            )
        if name in values:
            raise ConfigurationError(f"--param {name!r} is given twice. Give each parameter once.")
        values[name] = decode_parameter(name, spec.data_type, parameter_text(name, text))
    return values


def parameter_text(name: str, text: str) -> str:
    """``@PATH`` is the content of a file (a large ``requests`` array); ``@@`` starts a literal ``@``."""
    if text.startswith("@@"):
        return text[1:]
    if not text.startswith("@"):
        return text
    path = Path(text[1:]).expanduser()
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(
            f"--param {name!r} names the file {str(path)!r}, which cannot be read ({exc.strerror or exc}). "
            "Check the path, or write @@ for a value that starts with @."
        ) from None
    except UnicodeDecodeError as exc:
        raise ConfigurationError(
            f"--param {name!r} names the file {str(path)!r}, which is not UTF-8 text ({exc.reason} at byte {exc.start}). "
            "Save it as UTF-8."
        ) from None


def decode_parameter(name: str, data_type: str, text: str) -> Any:
    """A parameter value as its data type: a String stays text even when it looks like a number."""
    fail = ConfigurationError
    if data_type == "String":
        return text
    if data_type == "Int":
        stripped = text.strip()
        # The digit limit keeps int() from raising Python's own "exceeds the limit" error.
        if re.fullmatch(r"[+-]?[0-9]{1,4300}", stripped):
            return int(stripped)
        raise fail(f"--param {name!r} is an Int parameter, and {shown(text)} is not a whole number.")
    if data_type == "Float":
        try:
            number = float(text)
        except ValueError:
            number = float("nan")
        if number != number or number in (float("inf"), float("-inf")):
            raise fail(f"--param {name!r} is a Float parameter, and {shown(text)} is not a finite number.")
        return number
    if data_type == "Bool":
        if text.strip().lower() in ("true", "false"):
            return text.strip().lower() == "true"
        raise fail(f"--param {name!r} is a Bool parameter: use true or false, not {shown(text)}.")
    try:
        return json.loads(text)
    except RecursionError:
        raise fail(f"--param {name!r} is a JSON parameter nested too deeply to read. Flatten the value.") from None
    except ValueError as exc:
        raise fail(f"--param {name!r} is a JSON parameter, and its value is not valid JSON ({exc}).") from None


def parse_attributes(job_type: str, items: Sequence[str]) -> dict[str, str]:
    from ..manifest import job_type_spec

    names = [a.name for a in job_type_spec(job_type).attributes]
    values: dict[str, str] = {}
    for item in items:
        name, equals, value = item.partition("=")
        name = name.strip()
        if not equals or not name:
            raise ConfigurationError(
                f"--attr {shown(item)} is not 'NAME=VALUE'. Write for example --attr 'OpenAI Max Tokens=64'."
            )
        if name not in names:
            raise ConfigurationError(
                f"--attr {shown(name)} is not an attribute of {job_type}. Its attributes: {', '.join(names)}."
            )
        values[name] = value
    return values
