"""The ``polysync-azure-openai`` command line: the parser, and the dispatch to each command.

Every command loads the plugin through a real ``pluggy.PluginManager`` and the installed entry
points, exactly as the Polysync host does, and calls the same hooks. The commands live in
``runs`` (import, run, status, cancel, monitor-url), ``check``, ``batch_files`` and ``demo``;
what they print and their exit codes in ``output``; the platform they work on in ``target``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final

from .batch_files import download_command, upload_command
from .batch_results import results_command
from .check import check_command
from .demo import demo_command
from .output import EXIT_CODES_HELP, CommandFailed
from .runs import cancel_command, import_command, monitor_url_command, run_command, status_command
from .target import require_emulator

DEFAULT_POLL_SECONDS: Final = 10.0

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


EMULATOR_RATE_LIMIT_FLAGS: Final = (
    ("--requests-per-window", "N", "rate limit: requests per window on each limited deployment"),
    ("--tokens-per-window", "N", "rate limit: estimated tokens (prompt characters / 4 + max_tokens) per window"),
    ("--window-seconds", "S", "rate limit: length of a window (default 60, Azure's minute)"),
    ("--throttle-shape", "SHAPE", "how a 429 names its wait: retry-after-ms (default), retry-after or none"),
    ("--limit-deployment", "NAME", "deployment to limit; repeat for more (default: every chat and embedding one)"),
)


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
    demo.set_defaults(handler=demo_command)

    emulator = commands.add_parser("emulator", help="run the local Azure emulator until interrupted")
    emulator.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: any free port)")
    emulator.add_argument("--state-dir", help="where to write platform.toml and emulator.env (default: a temp dir)")
    # Checked by the emulator's own parser (an extra), which names the flag in its error.
    for flag, metavar, text in EMULATOR_RATE_LIMIT_FLAGS:
        emulator.add_argument(flag, metavar=metavar, help=text, action="append" if flag == "--limit-deployment" else "store")
    emulator.set_defaults(handler=emulator_command)

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
        check_command,
    )
    check.add_argument(
        "--deployment",
        metavar="NAME",
        help="deployment for the tiny call (default: the first chat deployment found; needed with API Key)",
    )

    operator(
        "import", "list the jobs Import Jobs would create", "Run import_jobs as the host does and list the jobs.", import_command
    )

    run = operator(
        "run",
        "submit one run of a job and (for a batch) wait for it",
        "Submit one run through the submit hook. A batch run is polled until it ends, with progress on stderr.",
        run_command,
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
        help="a run parameter, typed by the job type's declaration (Int, Float, Bool, JSON or String); "
        "NAME=@PATH reads the value from a file (requests=@rows.json), NAME=@@text is the text @text; repeatable",
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
        ("status", "read the status of a run", status_command),
        ("cancel", "ask a run to stop", cancel_command),
    ):
        command = operator(name, help_text, f"Call the {name.replace('status', 'get_status')} hook for RUN_ID.", handler)
        command.add_argument("run_id", metavar="RUN_ID", help="the RunId that run (or submit) printed")
        _job_type_option(command)

    monitor = operator(
        "monitor-url",
        "print the link where an operator watches a run",
        "Call the monitor_url hook for RUN_ID; without RUN_ID, print the resource's portal link.",
        monitor_url_command,
    )
    monitor.add_argument("run_id", metavar="RUN_ID", nargs="?", help="the RunId (optional)")
    _job_type_option(monitor)

    batch = commands.add_parser(
        "batch",
        help="upload batch input files, download files, write joined results",
        description="Batch input and output files on the resource, and the joined results of a run.",
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
    upload.set_defaults(handler=upload_command)

    download = batch_commands.add_parser(
        "download",
        help="stream a file's content to disk",
        description="Stream the content of FILE_ID (a batch's output or error file) to PATH, or to stdout "
        "with --out -; a failed download leaves no partial file and writes nothing to stdout. An existing "
        "file is overwritten only with --force.",
        parents=[target],
        epilog=PLATFORM_HELP + "\n" + EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    download.add_argument("file_id", metavar="FILE_ID")
    download.add_argument(
        "--out",
        type=Path,
        required=True,
        metavar="PATH",
        help="file to write, a directory for FILE_ID.jsonl, or - for stdout",
    )
    download.add_argument("--force", action="store_true", help="overwrite the file --out names if it exists")
    download.set_defaults(handler=download_command)

    results = batch_commands.add_parser(
        "results",
        help="write the joined per-row results of a batch run",
        description="Join the output and error files of every shard of RUN_ID by custom_id, in input order, "
        "and stream one JSON object per request to PATH (or stdout with --out -): the Batch job's 'results' "
        "output, whatever its size. The run must have ended.",
        parents=[target],
        epilog=PLATFORM_HELP + "\n" + EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    results.add_argument("run_id", metavar="RUN_ID", help="the RunId of a Batch Job run (batch_... or <deployment>#rows#...)")
    results.add_argument("--out", type=Path, required=True, metavar="PATH", help="file to write, a directory, or - for stdout")
    results.add_argument("--force", action="store_true", help="overwrite the file --out names if it exists")
    results.set_defaults(handler=results_command)
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
    try:
        return handler(args)
    except CommandFailed as exc:
        # The operator commands report their own failures (in JSON with --json); this is the rest.
        print(f"error: {exc.message}", file=sys.stderr)
        if exc.fix:
            print(f"fix: {exc.fix}", file=sys.stderr)
        return exc.exit_code


def emulator_command(args: argparse.Namespace) -> int:
    require_emulator()
    from ..emulator.cli import run_emulator_cli

    argv = ["--port", str(args.port)]
    if args.state_dir:
        argv += ["--state-dir", args.state_dir]
    for flag, _, _ in EMULATOR_RATE_LIMIT_FLAGS:
        value = getattr(args, flag.removeprefix("--").replace("-", "_"))
        for item in value if isinstance(value, list) else [] if value is None else [value]:
            argv += [flag, item]
    return run_emulator_cli(argv)
