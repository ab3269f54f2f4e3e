"""``batch upload`` and ``batch download``: batch input and output files on the resource."""

from __future__ import annotations

import argparse
import itertools
import sys
from typing import TYPE_CHECKING, Any

import attrs

from ..errors import ConfigurationError
from .output import EXIT_BAD_INPUT, EXIT_OK, EXIT_REMOTE_FAILURE, Output, Progress, iso
from .target import Target, operator_command

if TYPE_CHECKING:
    from ..files import FileInfo


def upload_command(args: argparse.Namespace) -> int:
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
    return operator_command(lambda a, t, o: _upload(a, t, o, summary))(args)


def _upload(args: argparse.Namespace, target: Target, out: Output, summary: dict[str, Any]) -> int:
    from ..files import FilesApi
    from ..platform import PlatformConfig

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
    return {**attrs.asdict(info), "created_at": iso(info.created_at)}


@operator_command
def download_command(args: argparse.Namespace, target: Target, out: Output) -> int:
    from ..files import FilesApi
    from ..platform import PlatformConfig

    path, size = FilesApi(PlatformConfig.from_host(target.platform)).download(args.file_id, args.out)
    out.line(f"Wrote {size:,} bytes of {args.file_id} to {path}")
    out.data({"file_id": args.file_id, "path": str(path), "bytes": size})
    return EXIT_OK
