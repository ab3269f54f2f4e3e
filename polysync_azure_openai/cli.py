"""``polysync-azure-openai``: the demo, the local emulator and operator commands.

Every command loads the plugin through a real ``pluggy.PluginManager`` and the installed entry
points, exactly as the Polysync host does, and calls the same hooks. The platform comes from a
TOML file (``--config``, see ``config_file.py``) or from an emulator started for the command
(``--emulator``).

Exit codes: 0 success; 1 remote failure (Azure or the network failed, the run ended Failed or
Cancelled, a check step failed); 2 bad input (arguments, platform file, parameters: nothing was
sent); 3 not finished (the run is Starting, Running or Unknown).
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import logging
import re
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TextIO

import attrs

from .errors import ConfigurationError, RemoteError
from .jobs import BATCH, CHAT, EMBEDDING, JOB_TYPES
from .results import CANCELLED, RUNNING, SUCCESS, TERMINAL_STATUSES

if TYPE_CHECKING:
    import pluggy

    from .discovery import Catalog
    from .emulator import Emulator
    from .files import FileInfo
    from .host import Job, Platform
    from .platform import PlatformConfig
    from .results import ImportedJob, RunResult

EXIT_OK: Final = 0
EXIT_REMOTE_FAILURE: Final = 1
EXIT_BAD_INPUT: Final = 2
EXIT_NOT_FINISHED: Final = 3

JOB_TYPE_ALIASES: Final = {"chat": CHAT, "embedding": EMBEDDING, "embeddings": EMBEDDING, "batch": BATCH}
INPUT_DIRECTIONS: Final = ("Input", "Input&Output")
DEFAULT_POLL_SECONDS: Final = 10.0
EMULATOR_PLATFORM_NAME: Final = "Azure OpenAI Emulator"

EXIT_CODES_HELP: Final = """exit codes:
  0  success
  1  remote failure: Azure or the network failed, the run ended Failed or Cancelled, a check failed
  2  bad input: arguments, platform file or parameters are wrong (nothing was sent)
  3  not finished: the run is still Starting, Running or Unknown
"""

PLATFORM_HELP: Final = """platform file (--config PATH), the attribute names of the admin UI:
  name = "Contoso Azure OpenAI"
  auth_method = "Service Principal"
  [attributes]
  "OpenAI Resource Name" = "contoso-aoai"
  "Subscription Id" = "..."
  "Resource Group Name" = "..."
  "Tenant Id" = "..."
  "Client Id" = "..."
  "Client Secret" = { env = "AZURE_OPENAI_CLIENT_SECRET" }   # secrets only from the environment
"""


# -- the parser -----------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="polysync-azure-openai",
        description="Azure OpenAI job types for Polysync: demo, local emulator and operator tools.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser("demo", help="run every job type against the embedded Azure emulator")
    demo.set_defaults(handler=_demo)

    emulator = commands.add_parser("emulator", help="run the local Azure emulator until interrupted")
    emulator.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: any free port)")
    emulator.add_argument("--state-dir", help="where to write platform.toml and emulator.env (default: a temp dir)")
    emulator.set_defaults(handler=_emulator)

    target = argparse.ArgumentParser(add_help=False)
    where = target.add_argument_group("platform (one of)")
    choice = where.add_mutually_exclusive_group(required=True)
    choice.add_argument("--config", type=Path, metavar="PATH", help="platform TOML file; secrets come from the environment")
    choice.add_argument(
        "--emulator", action="store_true", help="start an embedded Azure emulator for this command and use its platform"
    )
    target.add_argument("--json", action="store_true", help="print one JSON object on stdout instead of text")

    def operator(
        name: str, help_text: str, description: str, handler: Callable[[argparse.Namespace], int]
    ) -> argparse.ArgumentParser:
        command = commands.add_parser(
            name,
            help=help_text,
            description=description,
            parents=[target],
            epilog=PLATFORM_HELP + "\n" + EXIT_CODES_HELP,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        command.set_defaults(handler=handler)
        return command

    check = operator(
        "check",
        "test connectivity: tokens, deployments and one tiny call",
        "The platform's Test connectivity: validate the configuration, get a token per scope, list the "
        "deployments and make one tiny data-plane call, reporting each step with a fix when it fails.",
        _check,
    )
    check.add_argument(
        "--deployment",
        metavar="NAME",
        help="deployment for the tiny call (default: the first chat deployment found; needed with API Key)",
    )

    operator("import", "list the jobs Import Jobs would create", "Run import_jobs as the host does and list the jobs.", _import)

    run = operator(
        "run",
        "submit one run of a job and (for a batch) wait for it",
        "Submit one run through the submit hook. A batch run is polled until it ends, with progress on stderr.",
        _run,
    )
    run.add_argument("job_type", metavar="JOB_TYPE", help="chat, embedding, batch or a job type's display name")
    run.add_argument(
        "external_id", metavar="EXTERNAL_ID", help="the job's External Id: a deployment (gpt-4o-batch::batch for a batch)"
    )
    run.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a run parameter, typed by the job type's declaration (Int, Float, Bool, JSON or String); repeatable",
    )
    run.add_argument(
        "--attr",
        action="append",
        default=[],
        metavar="'NAME=VALUE'",
        help="a job attribute such as 'OpenAI Max Tokens=64'; repeatable",
    )
    run.add_argument(
        "--run-key", metavar="KEY", help="the TaskRun key; re-running with the same key re-attaches (default: a new one)"
    )
    run.add_argument("--no-wait", action="store_true", help="return after submit instead of waiting for a batch to end")
    _poll_option(run)

    for name, help_text, handler in (
        ("status", "read the status of a run", _status),
        ("cancel", "ask a run to stop", _cancel),
    ):
        command = operator(name, help_text, f"Call the {name.replace('status', 'get_status')} hook for RUN_ID.", handler)
        command.add_argument("run_id", metavar="RUN_ID", help="the RunId that run (or submit) printed")
        _job_type_option(command)

    monitor = operator(
        "monitor-url",
        "print the link where an operator watches a run",
        "Call the monitor_url hook for RUN_ID; without RUN_ID, print the resource's portal link.",
        _monitor_url,
    )
    monitor.add_argument("run_id", metavar="RUN_ID", nargs="?", help="the RunId (optional)")
    _job_type_option(monitor)

    batch = commands.add_parser(
        "batch",
        help="upload batch input files and download results",
        description="Batch input and output files on the resource.",
    )
    batch_commands = batch.add_subparsers(dest="batch_command", required=True, metavar="COMMAND")
    upload = batch_commands.add_parser(
        "upload",
        help="check a JSONL batch input file and upload it",
        description="Check FILE line by line (JSON, unique custom_id, POST, one url and one model, Azure's "
        "limits of 100,000 requests and 200 MB), then upload it with purpose 'batch' and print its file id. "
        "Nothing is uploaded when any line has a problem.",
        parents=[target],
        epilog=PLATFORM_HELP + "\n" + EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    upload.add_argument("file", type=Path, metavar="FILE.jsonl", help="the batch input file")
    upload.add_argument("--endpoint", help="the url every line must have (default: the first line's)")
    upload.add_argument("--deployment", metavar="NAME", help="the deployment every line's model must name")
    upload.add_argument("--max-problems", type=int, default=20, metavar="N", help="report at most N problems (default 20)")
    upload.add_argument("--wait", action="store_true", help="wait until Azure has processed the file")
    _poll_option(upload, default=2.0)
    upload.set_defaults(handler=_batch_upload)

    download = batch_commands.add_parser(
        "download",
        help="stream a file's content to disk",
        description="Stream the content of FILE_ID (a batch's output or error file) to PATH; a failed "
        "download leaves no partial file.",
        parents=[target],
        epilog=PLATFORM_HELP + "\n" + EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    download.add_argument("file_id", metavar="FILE_ID")
    download.add_argument(
        "--out", type=Path, required=True, metavar="PATH", help="file to write, or a directory for FILE_ID.jsonl"
    )
    download.set_defaults(handler=_batch_download)
    return parser


def _poll_option(parser: argparse.ArgumentParser, default: float = DEFAULT_POLL_SECONDS) -> None:
    parser.add_argument(
        "--poll-interval",
        type=_positive_seconds,
        default=default,
        metavar="SECONDS",
        help=f"seconds between status reads (default {default:g})",
    )


def _job_type_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--job-type",
        metavar="JOB_TYPE",
        help="chat, embedding or batch (default: told by the RunId; '#sync#' RunIds are taken as chat)",
    )


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value <= 3600:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds from 0 to 3600")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # azure-identity logs each token failure as a multi-line warning; the commands report it themselves.
    logging.getLogger("azure.identity").setLevel(logging.ERROR)
    handler: Callable[[argparse.Namespace], int] = args.handler
    return handler(args)


def _emulator(args: argparse.Namespace) -> int:
    from .emulator.cli import run_emulator_cli

    argv = ["--port", str(args.port)]
    if args.state_dir:
        argv += ["--state-dir", args.state_dir]
    return run_emulator_cli(argv)


# -- output -----------------------------------------------------------------------------------------


class CommandFailed(Exception):
    """A command's own failure: its exit code, what went wrong and the fix."""

    def __init__(self, exit_code: int, message: str, fix: str = "") -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.message = message
        self.fix = fix


class Output:
    """Text for people on stdout, or exactly one JSON object with ``--json``; problems on stderr."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json

    def line(self, text: str = "") -> None:
        if not self.as_json:
            print(text)

    def data(self, payload: Mapping[str, Any]) -> None:
        if self.as_json:
            print(json.dumps(payload, indent=2, ensure_ascii=False))

    def fail(self, exit_code: int, message: str, fix: str = "") -> int:
        print(f"error: {message}", file=sys.stderr)
        if fix:
            print(f"fix: {fix}", file=sys.stderr)
        kind = {EXIT_BAD_INPUT: "bad_input", EXIT_REMOTE_FAILURE: "remote_failure"}.get(exit_code, "error")
        self.data({"error": {"kind": kind, "message": message, "fix": fix or None}})
        return exit_code


class Progress:
    """A status line: rewritten in place on a terminal, plain lines (one per change) otherwise."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.last = ""
        self.width = 0

    def show(self, text: str, elapsed: float) -> None:
        """``text`` after ``elapsed`` seconds of waiting (on the emulator, its clock's seconds)."""
        line = f"[{elapsed:7.1f} s] {text}"
        if self.tty:
            line = line[: shutil.get_terminal_size().columns - 1]
            self.stream.write("\r" + line + " " * max(0, self.width - len(line)))
            self.width = len(line)
        elif text != self.last:
            self.stream.write(line + "\n")
        self.last = text
        self.stream.flush()

    def end(self) -> None:
        if self.tty and self.width:
            self.stream.write("\n")
            self.stream.flush()
            self.width = 0


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def result_json(result: RunResult) -> dict[str, Any]:
    return {
        "run_id": result.run_id,
        "status": result.status,
        "outputs": dict(result.outputs),
        "message": result.message,
        "started_at": _iso(result.started_at),
        "ended_at": _iso(result.ended_at),
    }


def job_json(job: ImportedJob) -> dict[str, Any]:
    return {
        "job_type": job.job_type,
        "external_id": job.external_id,
        "name": job.name,
        "description": job.description,
        "attributes": dict(job.attributes),
        "parameters": [attrs.asdict(p) for p in job.parameters],
    }


def _short_value(value: Any) -> str:
    if isinstance(value, list) and len(value) > 4:
        head = ", ".join(f"{v:.4f}" if isinstance(v, float) else json.dumps(v) for v in value[:3])
        return f"[{len(value)} values: {head}, ...]"
    if isinstance(value, str):
        return value
    return json.dumps(value)


def show_result(out: Output, result: RunResult) -> None:
    out.line(f"RunId      {result.run_id}")
    out.line(f"Status     {result.status}")
    if result.message:
        out.line(f"Message    {result.message}")
    if result.started_at is not None:
        out.line(f"Started    {_iso(result.started_at)}")
    if result.ended_at is not None:
        out.line(f"Ended      {_iso(result.ended_at)}")
    if result.outputs:
        out.line("Outputs")
        width = max(len(name) for name in result.outputs)
        for name, value in result.outputs.items():
            out.line(f"  {name:<{width}}  {_short_value(value)}")
    out.data(result_json(result))


def exit_for(result: RunResult, *, cancelling: bool = False) -> int:
    """0 Success, 1 Failed or Cancelled, 3 not finished; for ``cancel`` a stopping run is success."""
    if result.status == SUCCESS:
        return EXIT_OK
    if cancelling and result.status in (CANCELLED, RUNNING):
        return EXIT_OK
    if result.status in TERMINAL_STATUSES:
        return EXIT_REMOTE_FAILURE
    return EXIT_NOT_FINISHED


# -- the platform of a command --------------------------------------------------------------------


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
    from .emulator import Emulator
    from .emulator.cli import platform_attributes

    with Emulator() as emu:
        # The emulator's throwaway CA, handed to the plugin with the platform, not the environment.
        platform = Platform(
            name=EMULATOR_PLATFORM_NAME,
            auth_method="Service Principal",
            attributes={**platform_attributes(emu), "Client Secret": emu.client_secret},
            ca_bundle=emu.ca_path,
        )
        yield Target(platform, plugin_manager(), f"embedded emulator at {emu.url}", emu)


def _operator_command(body: Callable[[argparse.Namespace, Target, Output], int]) -> Callable[[argparse.Namespace], int]:
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


# -- jobs, parameters and RunIds ------------------------------------------------------------------


def resolve_job_type(text: str) -> str:
    wanted = text.strip().lower()
    for name in JOB_TYPES:
        if name.lower() == wanted:
            return name
    if wanted in JOB_TYPE_ALIASES:
        return JOB_TYPE_ALIASES[wanted]
    raise ConfigurationError(
        f"Unknown job type {text[:80]!r}. Use chat, embedding or batch, or a display name: {', '.join(JOB_TYPES)}."
    )


def parse_parameters(job_type: str, items: Sequence[str]) -> dict[str, Any]:
    """``NAME=VALUE`` items as run parameters, each decoded by its declared data type."""
    from .manifest import job_type_spec

    specs = {p.name: p for p in job_type_spec(job_type).parameters}
    inputs = [name for name, p in specs.items() if p.direction in INPUT_DIRECTIONS]
    values: dict[str, Any] = {}
    for item in items:
        name, equals, text = item.partition("=")
        name = name.strip()
        if not equals or not name:
            raise ConfigurationError(f"--param {item[:80]!r} is not NAME=VALUE. Write for example --param user_prompt='Hello'.")
        spec = specs.get(name)
        if spec is None or spec.direction not in INPUT_DIRECTIONS:
            problem = "is an Output parameter, set by the run" if spec is not None else "is not a parameter of this job type"
            raise ConfigurationError(
                f"--param {name!r} {problem}. {job_type} takes: {', '.join(inputs) or 'no input parameters'}."
            )
        if name in values:
            raise ConfigurationError(f"--param {name!r} is given twice. Give each parameter once.")
        values[name] = decode_parameter(name, spec.data_type, text)
    return values


def decode_parameter(name: str, data_type: str, text: str) -> Any:
    """A parameter value as its data type: a String stays text even when it looks like a number."""
    fail = ConfigurationError
    if data_type == "String":
        return text
    if data_type == "Int":
        stripped = text.strip()
        if re.fullmatch(r"[+-]?[0-9]+", stripped):
            return int(stripped)
        raise fail(f"--param {name!r} is an Int parameter, and {text[:80]!r} is not a whole number.")
    if data_type == "Float":
        try:
            number = float(text)
        except ValueError:
            number = float("nan")
        if number != number or number in (float("inf"), float("-inf")):
            raise fail(f"--param {name!r} is a Float parameter, and {text[:80]!r} is not a finite number.")
        return number
    if data_type == "Bool":
        if text.strip().lower() in ("true", "false"):
            return text.strip().lower() == "true"
        raise fail(f"--param {name!r} is a Bool parameter: use true or false, not {text[:80]!r}.")
    try:
        return json.loads(text)
    except ValueError as exc:
        raise fail(f"--param {name!r} is a JSON parameter, and its value is not valid JSON ({exc}).") from None


def parse_attributes(job_type: str, items: Sequence[str]) -> dict[str, str]:
    from .manifest import job_type_spec

    names = [a.name for a in job_type_spec(job_type).attributes]
    values: dict[str, str] = {}
    for item in items:
        name, equals, value = item.partition("=")
        name = name.strip()
        if not equals or not name:
            raise ConfigurationError(
                f"--attr {item[:80]!r} is not 'NAME=VALUE'. Write for example --attr 'OpenAI Max Tokens=64'."
            )
        if name not in names:
            raise ConfigurationError(
                f"--attr {name[:80]!r} is not an attribute of {job_type}. Its attributes: {', '.join(names)}."
            )
        values[name] = value
    return values


def job_for_run_id(run_id: str, job_type_text: str | None) -> Job:
    """The job a RunId belongs to, as far as the hooks need one (its type and External Id)."""
    from .host import Job
    from .jobs import run_ids

    if job_type_text:
        job_type = resolve_job_type(job_type_text)
    elif run_ids.is_batch_run_id(run_id):
        job_type = BATCH
    elif run_ids.is_sync_run_id(run_id):
        job_type = CHAT
    else:
        raise ConfigurationError(
            f"RunId {run_id[:80]!r} is not one this plugin issues (batch_..., <deployment>#sync#<status> or "
            "<deployment>#batch#Failed). Check the RunId, or name its job type with --job-type."
        )
    deployment = run_ids.deployment_of(run_id) or ""
    external_id = deployment + ("::batch" if job_type == BATCH and deployment else "")
    return Job(job_type=job_type, external_id=external_id or run_id, name=external_id or run_id)


def _answer(value: Any, hook: str) -> Any:
    if value is None:
        raise CommandFailed(EXIT_REMOTE_FAILURE, f"No installed plugin answered {hook}.", "Reinstall polysync-azure-openai.")
    return value


# -- import, run, status, cancel, monitor-url -------------------------------------------------------


@_operator_command
def _import(args: argparse.Namespace, target: Target, out: Output) -> int:
    from .host import import_all
    from .troubleshooting import advise

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


@_operator_command
def _run(args: argparse.Namespace, target: Target, out: Output) -> int:
    from .host import Job
    from .manifest import job_type_spec

    job_type = resolve_job_type(args.job_type)
    parameters = parse_parameters(job_type, args.param)
    attributes = {**job_type_spec(job_type).defaults(), **parse_attributes(job_type, args.attr)}
    job = Job(job_type=job_type, external_id=args.external_id, name=args.external_id, attributes=attributes)
    run_key = args.run_key or f"cli-{uuid.uuid4()}"
    result: RunResult = _answer(
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
            result = _answer(target.pm.hook.get_status(platform=target.platform, job=job, run_id=result.run_id), "get_status")
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


@_operator_command
def _status(args: argparse.Namespace, target: Target, out: Output) -> int:
    job = job_for_run_id(args.run_id, args.job_type)
    result: RunResult = _answer(target.pm.hook.get_status(platform=target.platform, job=job, run_id=args.run_id), "get_status")
    show_result(out, result)
    return exit_for(result)


@_operator_command
def _cancel(args: argparse.Namespace, target: Target, out: Output) -> int:
    job = job_for_run_id(args.run_id, args.job_type)
    result: RunResult = _answer(target.pm.hook.cancel(platform=target.platform, job=job, run_id=args.run_id), "cancel")
    show_result(out, result)
    return exit_for(result, cancelling=True)


@_operator_command
def _monitor_url(args: argparse.Namespace, target: Target, out: Output) -> int:
    from .platform import PlatformConfig

    if args.run_id:
        job = job_for_run_id(args.run_id, args.job_type)
        url: str = _answer(target.pm.hook.monitor_url(platform=target.platform, job=job, run_id=args.run_id), "monitor_url")
    else:
        url = PlatformConfig.from_host(target.platform).portal_url()
    out.line(url)
    out.data({"monitor_url": url})
    return EXIT_OK


# -- check ----------------------------------------------------------------------------------------

OK: Final = "OK"
FAIL: Final = "FAIL"
SKIP: Final = "SKIP"


@attrs.frozen
class Step:
    """One line of the connectivity report."""

    name: str
    status: str
    detail: str
    fix: str = ""
    #: A failure of the configuration itself (exit 2) rather than of Azure (exit 1).
    bad_input: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"step": self.name, "status": self.status, "detail": self.detail, "fix": self.fix or None}


STEP_NAMES: Final = ("configuration", "token: data plane", "token: Resource Manager", "list deployments", "data-plane call")


def _check(args: argparse.Namespace) -> int:
    from .platform import PlatformConfig

    out = Output(args.json)
    steps: list[Step] = []
    name: str | None = None
    source = str(args.config) if args.config else "embedded emulator"
    try:
        with open_target(args) as target:
            name, source = target.platform.name, target.source
            steps = check_steps(PlatformConfig.from_host(target.platform), args.deployment)
    except ConfigurationError as exc:
        steps = [Step(STEP_NAMES[0], FAIL, str(exc), bad_input=True)]
        steps += [Step(n, SKIP, "needs a valid configuration") for n in STEP_NAMES[1:]]

    failed = [s for s in steps if s.status == FAIL]
    out.line(f"Checking platform '{name or '?'}' ({source})")
    for step in steps:
        out.line(f"  {step.status:<5} {step.name:<24} {step.detail}")
        if step.fix:
            out.line(f"  {'':<5} {'':<24} fix: {step.fix}")
    ran = [s for s in steps if s.status != SKIP]
    if failed:
        out.line(f"{len(failed)} of {len(ran)} checks failed.")
    else:
        out.line(
            f"All {len(ran)} checks that ran passed" + (f"; {len(steps) - len(ran)} skipped." if len(ran) < len(steps) else ".")
        )
    out.data({"platform": name, "source": source, "ok": not failed, "steps": [s.to_json() for s in steps]})
    if any(s.bad_input for s in failed):
        return EXIT_BAD_INPUT
    return EXIT_REMOTE_FAILURE if failed else EXIT_OK


def check_steps(config: PlatformConfig, deployment: str | None) -> list[Step]:
    from .platform import API_KEY

    steps = [
        Step(
            STEP_NAMES[0],
            OK,
            f"{config.auth.method}, resource '{config.resource_name}', endpoint {config.openai_endpoint.base}, "
            f"cloud {config.cloud.name}",
        )
    ]
    catalog: Catalog | None = None
    if config.auth.method == API_KEY:
        steps += [Step(n, SKIP, "API Key platforms send the key, not a Microsoft Entra token") for n in STEP_NAMES[1:3]]
        steps.append(
            Step(
                STEP_NAMES[3],
                SKIP,
                "impossible with 'API Key': Azure Resource Manager does not accept keys, so Import Jobs cannot list deployments",
                "Switch the platform to 'Service Principal' or 'Certificate' for Import Jobs (and back to 'API Key' "
                "for runs if you want).",
            )
        )
        data_token_ok = True
    else:
        data_token = _token_step(STEP_NAMES[1], config, config.data_plane_scope)
        arm_token = _token_step(STEP_NAMES[2], config, config.arm_scope)
        steps += [data_token, arm_token]
        data_token_ok = data_token.status == OK
        if arm_token.status != OK:
            steps.append(Step(STEP_NAMES[3], SKIP, "needs a Resource Manager token (see above)"))
        else:
            listing, catalog = _discovery_step(config)
            steps.append(listing)
    if not data_token_ok:
        steps.append(Step(STEP_NAMES[4], SKIP, "needs a data-plane token (see above)"))
    else:
        steps.append(_call_step(config, catalog, deployment))
    return steps


def _token_step(name: str, config: PlatformConfig, scope: str) -> Step:
    from .auth import token_provider

    try:
        token_provider(config).token(scope)
    except ConfigurationError as exc:
        return Step(name, FAIL, str(exc), bad_input=True)
    except RemoteError as exc:
        return Step(name, FAIL, exc.detail.describe(), exc.detail.fix or _token_fix(exc))
    return Step(name, OK, f"got a token for {scope}")


def _token_fix(exc: RemoteError) -> str:
    """The fix for token failures auth.py leaves without one."""
    from .errors import TransportError

    if isinstance(exc, TransportError):
        return "Check 'Authority Host' (or 'Azure Cloud'), the network and proxy, and REQUESTS_CA_BUNDLE for a private CA."
    return "Check 'Tenant Id', 'Client Id' and the secret or certificate, and that 'Azure Cloud' is the tenant's cloud."


def _discovery_step(config: PlatformConfig) -> tuple[Step, Catalog | None]:
    from .discovery import classify, list_deployments
    from .troubleshooting import advice

    try:
        deployments = list_deployments(config)
    except ConfigurationError as exc:
        return Step(STEP_NAMES[3], FAIL, str(exc), bad_input=True), None
    except RemoteError as exc:
        fix = advice(exc.detail, operation="discovery") or (
            "Check 'Subscription Id', 'Resource Group Name', 'OpenAI Resource Name' and 'Resource Manager Endpoint'."
        )
        return Step(STEP_NAMES[3], FAIL, exc.detail.describe(), fix), None
    catalog = classify(deployments)
    counts = ", ".join(
        f"{len(catalog.deployments_for(job_type))} {label}"
        for job_type, label in ((CHAT, "chat"), (EMBEDDING, "embedding"), (BATCH, "batch"))
    )
    used = {d.name for job_type in JOB_TYPES for d in catalog.deployments_for(job_type)}
    skipped = [d.name for d in deployments if d.name not in used]
    detail = f"{len(deployments)} deployments; jobs: {counts}"
    if skipped:
        detail += f"; skipped (not provisioned, or neither chat nor embedding): {', '.join(skipped)}"
    return Step(STEP_NAMES[3], OK, detail), catalog


def _call_step(config: PlatformConfig, catalog: Catalog | None, deployment: str | None) -> Step:
    """One chat with max_tokens 1 (or one embedding) on a deployment discovery found or the user named."""
    from .errors import AzureServiceError
    from .http import data_plane
    from .ids import DEPLOYMENT_NAME
    from .jobs.chat import ChatCompletionService, is_reasoning_model
    from .jobs.embedding import EmbeddingService
    from .platform import API_KEY

    name = STEP_NAMES[4]
    chats = catalog.deployments_for(CHAT) if catalog else ()
    embeddings = catalog.deployments_for(EMBEDDING) if catalog else ()
    if deployment is None:
        if catalog is None:
            return Step(name, SKIP, "no deployment known (discovery did not run)", "Pass --deployment NAME to call one.")
        chosen = (chats or embeddings or (None,))[0]
        if chosen is None:
            return Step(
                name,
                SKIP,
                "the resource has no chat or embedding deployment to call",
                "Deploy a model, or pass --deployment NAME.",
            )
        deployment = chosen.name
    elif not DEPLOYMENT_NAME.fullmatch(deployment):
        return Step(name, FAIL, f"--deployment {deployment[:80]!r} is not a deployment name", "Give a deployment's name.", True)
    model = next((d.model_name for d in (*chats, *embeddings) if d.name == deployment), None)
    # Without a listing (API Key) the kind is unknown: try chat, then embeddings if Azure says so.
    kinds = ["embeddings"] if any(d.name == deployment for d in embeddings) else ["chat"]
    if catalog is None:
        kinds.append("embeddings")
    client = data_plane(config)
    started = time.monotonic()
    for kind in kinds:
        try:
            if kind == "chat":
                limit = "max_completion_tokens" if is_reasoning_model(model) else "max_tokens"
                body: dict[str, Any] = {"messages": [{"role": "user", "content": "Reply with OK."}], limit: 1}
                _, request_id = ChatCompletionService().call(client, config, deployment, body)
            else:
                _, request_id = EmbeddingService().call(client, config, deployment, {"input": "connectivity check"})
        except AzureServiceError as exc:
            if kind != kinds[-1] and (exc.detail.code or "").split("/")[0] in ("OperationNotSupported", "InvalidInputModel"):
                continue
            return _call_failed(name, exc, kind, deployment, config.auth.method == API_KEY)
        except RemoteError as exc:
            return _call_failed(name, exc, kind, deployment, config.auth.method == API_KEY)
        label = "chat completion (max tokens 1)" if kind == "chat" else "embedding"
        return Step(
            name, OK, f"{label} on '{deployment}' answered in {time.monotonic() - started:.2f} s (request id {request_id})"
        )
    raise AssertionError("unreachable: the last kind returns")


def _call_failed(name: str, exc: RemoteError, kind: str, deployment: str, api_key: bool) -> Step:
    from .troubleshooting import advice

    fix = advice(exc.detail, operation=kind, deployment=deployment, api_key=api_key) or (
        "Check 'OpenAI Endpoint' or 'OpenAI Resource Name', 'OpenAI API Version' and the network."
    )
    return Step(name, FAIL, f"{kind} on '{deployment}': {exc.detail.describe()}", fix)


# -- batch files ----------------------------------------------------------------------------------


def _batch_upload(args: argparse.Namespace) -> int:
    from .batch_input import validate_file

    out = Output(args.json)
    # The file is checked before any platform is opened: a bad file never costs a request.
    try:
        report = validate_file(
            args.file, endpoint=args.endpoint, deployment=args.deployment, max_problems=max(1, args.max_problems)
        )
    except ConfigurationError as exc:
        return out.fail(EXIT_BAD_INPUT, str(exc))
    summary = {
        "file": str(args.file),
        "requests": report.requests,
        "bytes": report.size,
        "endpoint": report.endpoint,
        "model": report.model,
    }
    if not report.ok:
        for problem in report.problems:
            where = f"{args.file}:{problem.line}" if problem.line is not None else str(args.file)
            print(f"{where}: {problem.message}", file=sys.stderr)
        total = len(report.problems) + report.more_problems
        more = f" (the first {len(report.problems)} are shown)" if report.more_problems else ""
        out.data({**summary, "problems": [attrs.asdict(p) for p in report.problems], "problem_count": total})
        print(f"error: {args.file} has {total} problem(s){more}; nothing was uploaded.", file=sys.stderr)
        return EXIT_BAD_INPUT
    out.line(
        f"{args.file}: {report.requests} requests for {report.endpoint} on deployment '{report.model}', "
        f"{report.size:,} bytes: valid"
    )
    return _operator_command(lambda a, t, o: _upload(a, t, o, summary))(args)


def _upload(args: argparse.Namespace, target: Target, out: Output, summary: dict[str, Any]) -> int:
    from .files import FilesApi
    from .platform import PlatformConfig

    api = FilesApi(PlatformConfig.from_host(target.platform))
    info = api.upload(args.file)
    out.line(f"Uploaded as {info.id} (status {info.status or 'unknown'})")
    if args.wait and info.processing:
        progress = Progress(sys.stderr)
        polls = itertools.count()

        def on_status(current: FileInfo) -> None:
            progress.show(f"file {current.id}: {current.status}", next(polls) * args.poll_interval)

        try:
            info = api.wait_until_processed(info.id, interval=args.poll_interval, pause=target.pause, on_status=on_status)
        finally:
            progress.end()
    out.data({**summary, "uploaded": _file_json(info)})
    if not args.wait:
        return EXIT_OK
    if info.status != "processed":
        detail = info.status_details or "no detail given"
        print(f"error: Azure did not process {info.id}: status {info.status}: {detail}", file=sys.stderr)
        return EXIT_REMOTE_FAILURE
    out.line(f"Processed: {info.id} is ready for a batch")
    return EXIT_OK


def _file_json(info: FileInfo) -> dict[str, Any]:
    return {**attrs.asdict(info), "created_at": _iso(info.created_at)}


@_operator_command
def _batch_download(args: argparse.Namespace, target: Target, out: Output) -> int:
    from .files import FilesApi
    from .platform import PlatformConfig

    path, size = FilesApi(PlatformConfig.from_host(target.platform)).download(args.file_id, args.out)
    out.line(f"Wrote {size:,} bytes of {args.file_id} to {path}")
    out.data({"file_id": args.file_id, "path": str(path), "bytes": size})
    return EXIT_OK


# -- demo -----------------------------------------------------------------------------------------


class DemoFailed(Exception):
    pass


def _demo(args: argparse.Namespace) -> int:
    from .errors import PolysyncAzureOpenAIError

    started = time.monotonic()
    try:
        _run_demo()
    except (DemoFailed, PolysyncAzureOpenAIError) as exc:
        print(f"\nDEMO FAILED: {exc}", file=sys.stderr)
        return EXIT_REMOTE_FAILURE
    print(f"\nDemo finished in {time.monotonic() - started:.1f} s: every step succeeded.")
    return EXIT_OK


def _step(title: str) -> None:
    print(f"\n== {title}")


def _expect(result: Any, status: str, what: str) -> None:
    if result is None:
        raise DemoFailed(f"{what}: no plugin answered")
    if result.status != status:
        raise DemoFailed(f"{what}: status {result.status}, expected {status}: {result.message}")


def _run_demo() -> None:
    from .emulator import Emulator
    from .emulator.cli import platform_attributes
    from .host import Job, Platform, import_all, plugin_manager

    with Emulator() as emu:
        # The emulator's throwaway CA is handed to the plugin with the platform, not the environment.
        _step("Azure emulator")
        print(f"endpoint     {emu.url} (Entra ID, Azure Resource Manager and data plane)")
        print(f"CA bundle    {emu.ca_path}")

        platform = Platform(
            name="Azure OpenAI (emulator)",
            auth_method="Service Principal",
            attributes={**platform_attributes(emu), "Client Secret": emu.client_secret},
            ca_bundle=emu.ca_path,
        )
        pm = plugin_manager()
        plugins = sorted(name for name, _ in pm.list_name_plugin())
        _step("Plugin loaded through pluggy")
        print("entry points " + ", ".join(plugins))

        _step("import_jobs")
        jobs = import_all(pm, platform)
        for job in jobs:
            print(f"  {job.job_type:<30} {job.external_id:<20} {job.description}")
        by_type = {job_type: [j for j in jobs if j.job_type == job_type] for job_type in (CHAT, EMBEDDING, BATCH)}
        if not by_type[CHAT] or not by_type[EMBEDDING]:
            raise DemoFailed("import_jobs found no chat or no embedding deployment")

        _step("Chat Completion run")
        chat_job = Job.from_imported(by_type[CHAT][0], **{"OpenAI Max Tokens": "64", "OpenAI Temperature": "0.2"})
        result = pm.hook.submit(
            platform=platform,
            job=chat_job,
            parameters={"system_prompt": "Answer briefly.", "user_prompt": "Name a prime number."},
            run_key="demo-chat-1",
        )
        _expect(result, "Success", "chat submit")
        out = result.outputs
        print(f"deployment   {chat_job.external_id}")
        print(f"answer       {out['response']}")
        print(f"tokens       {out['prompt_tokens']} prompt + {out['completion_tokens']} completion = {out['total_tokens']}")
        print(f"finish       {out['finish_reason']}")
        print(f"RunId        {result.run_id}")
        status = pm.hook.get_status(platform=platform, job=chat_job, run_id=result.run_id)
        _expect(status, "Success", "chat get_status")
        print(f"get_status   {status.status} (decoded locally, no request)")
        print(f"monitor      {pm.hook.monitor_url(platform=platform, job=chat_job, run_id=result.run_id)}")

        _step("Embedding run")
        embed_job = Job.from_imported(by_type[EMBEDDING][0])
        result = pm.hook.submit(
            platform=platform,
            job=embed_job,
            parameters={"input": "Polysync schedules Azure OpenAI work."},
            run_key="demo-embedding-1",
        )
        _expect(result, "Success", "embedding submit")
        vector = result.outputs["embedding"]
        print(f"deployment   {embed_job.external_id}")
        print(f"embedding    {len(vector)} dimensions, starts {', '.join(f'{v:.4f}' for v in vector[:3])}, ...")
        print(f"tokens       {result.outputs['prompt_tokens']} prompt, {result.outputs['total_tokens']} total")
        print(f"RunId        {result.run_id}")
        status = pm.hook.get_status(platform=platform, job=embed_job, run_id=result.run_id)
        _expect(status, "Success", "embedding get_status")
        print(f"get_status   {status.status}")
        print(f"monitor      {pm.hook.monitor_url(platform=platform, job=embed_job, run_id=result.run_id)}")
        _demo_batch(emu, pm, platform, by_type[BATCH])
        print(f"\ntoken requests to Entra ID: {emu.token_requests()} (one per scope, reused across runs)")


DEMO_QUESTIONS: Final = (
    "When was Microsoft founded?",
    "What is the capital of France?",
    "Name a prime number above 90.",
    "How many legs has a spider?",
    "What colour is the sky on a clear day?",
    "Translate 'good morning' into German.",
)


def _demo_batch(emu: Emulator, pm: pluggy.PluginManager, platform: Platform, batch_jobs: Sequence[ImportedJob]) -> None:
    """Upload a JSONL file, submit the batch job, poll it on the emulator's clock, read the answers."""
    from .batch_input import validate_file
    from .files import FilesApi
    from .host import Job
    from .platform import PlatformConfig

    _step("Batch run")
    # The Global Batch deployment serves only batch work: the job the batch docs describe.
    imported = next((j for j in batch_jobs if j.external_id == "gpt-4o-batch::batch"), None)
    if imported is None:
        raise DemoFailed("import_jobs found no batch job for the gpt-4o-batch deployment")
    deployment = imported.attributes["Deployment Name"]
    files = FilesApi(PlatformConfig.from_host(platform))
    with tempfile.TemporaryDirectory(prefix="polysync-demo-") as scratch:
        input_path = Path(scratch) / "questions.jsonl"
        with input_path.open("w", encoding="utf-8") as handle:
            for number, question in enumerate(DEMO_QUESTIONS, start=1):
                body = {"model": deployment, "messages": [{"role": "user", "content": question}], "max_tokens": 40}
                line = {"custom_id": f"question-{number}", "method": "POST", "url": "/chat/completions", "body": body}
                handle.write(json.dumps(line) + "\n")
        report = validate_file(input_path, deployment=deployment)
        if not report.ok:
            raise DemoFailed("the demo's batch input is invalid: " + "; ".join(p.describe() for p in report.problems))
        print(f"input        {report.requests} chat requests for deployment '{deployment}', checked line by line")
        uploaded = files.wait_until_processed(files.upload(input_path).id, interval=1.0, pause=emu.advance)
        if uploaded.status != "processed":
            raise DemoFailed(f"the uploaded input {uploaded.id} is {uploaded.status}: {uploaded.status_details}")
        print(f"uploaded     {uploaded.id} ({uploaded.bytes} bytes, {uploaded.status})")

        job = Job.from_imported(imported)
        result = pm.hook.submit(platform=platform, job=job, parameters={"input_file_id": uploaded.id}, run_key="demo-batch-1")
        _expect(result, "Running", "batch submit")
        print(f"RunId        {result.run_id}")
        # A slow emulated deployment, so that each poll (one emulated second) shows progress.
        emu.batch_timing.requests_per_second = 2.0
        result = wait_for_run(Target(platform, pm, "demo", emu), job, result, 1.0, stream=sys.stdout)
        _expect(result, "Success", "batch get_status")
        out = result.outputs
        completed, total, failed = (out[f"request_counts_{k}"] for k in ("completed", "total", "failed"))
        print(f"requests     {completed} of {total} completed, {failed} failed")

        path, size = files.download(out["output_file_id"], Path(scratch))
        print(f"output       {out['output_file_id']}: {size} bytes downloaded")
        answers = {}
        for raw in path.read_text(encoding="utf-8").splitlines():
            line = json.loads(raw)
            answers[line["custom_id"]] = line["response"]["body"]["choices"][0]["message"]["content"]
        for custom_id in sorted(answers)[:3]:
            print(f"  {custom_id:<12} {answers[custom_id]}")
        print(f"monitor      {pm.hook.monitor_url(platform=platform, job=job, run_id=result.run_id)}")


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
