"""``batch upload`` and ``batch download``: batch input and output files on the resource."""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import attrs

from ..errors import ConfigurationError, RemoteError
from .output import EXIT_BAD_INPUT, EXIT_OK, EXIT_REMOTE_FAILURE, CommandFailed, Output, Progress, iso
from .target import Target, operator_command

if TYPE_CHECKING:
    from ..files import FileInfo, FilesApi
    from ..platform import PlatformConfig

STDOUT: Final = "-"


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

    config = PlatformConfig.from_host(target.platform)
    endpoint = summary["endpoint"]
    expected = config.surface.batch_endpoint(endpoint)
    if endpoint != expected:
        # Azure would accept the upload and fail the batch later with url_mismatch on every line.
        other = "a dated version such as 2025-04-01-preview" if config.surface.is_v1 else "v1"
        raise CommandFailed(
            EXIT_BAD_INPUT,
            f"{args.file}: the lines' url is {endpoint!r}, but platform '{config.name}' speaks "
            f"{config.surface.describe()}, whose batches take {expected!r}; nothing was uploaded.",
            f'Write "url": "{expected}" on every line, or set the platform\'s \'OpenAI API Version\' to {other}.',
        )
    api = FilesApi(config)
    with _advised(config):
        info = api.upload(args.file)
    out.line(f"Uploaded as {info.id} (status {info.status or 'unknown'})")
    if args.wait and info.processing:
        progress = Progress(sys.stderr)
        polls = itertools.count()

        def on_status(current: FileInfo) -> None:
            progress.show(f"file {current.id}: {current.status}", next(polls) * args.poll_interval)

        try:
            with _advised(config):
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


def stdout_clash(args: argparse.Namespace, what: str) -> int | None:
    """``--out -`` with ``--json``: both would share stdout, and each would corrupt the other."""
    if str(args.out) == STDOUT and args.json:
        return Output(True).fail(
            EXIT_BAD_INPUT, f"--out - writes {what} to stdout, where --json would write too.", "Drop --json."
        )
    return None


def download_command(args: argparse.Namespace) -> int:
    clash = stdout_clash(args, "the file")
    return clash if clash is not None else _download(args)


@operator_command
def _download(args: argparse.Namespace, target: Target, out: Output) -> int:
    from ..files import FilesApi
    from ..platform import PlatformConfig

    config = PlatformConfig.from_host(target.platform)
    api = FilesApi(config)
    if str(args.out) == STDOUT:
        # Through a private temporary file, so a failed download writes nothing to stdout.
        with tempfile.TemporaryDirectory(prefix="polysync-download-") as scratch:
            with _advised(config):
                path, size = _write(api, args.file_id, Path(scratch), SCRATCH_FIX)
            with path.open("rb") as handle:
                shutil.copyfileobj(handle, sys.stdout.buffer)
            sys.stdout.flush()
        print(f"Wrote {size:,} bytes of {args.file_id} to stdout", file=sys.stderr)
        return EXIT_OK
    path = _destination(args.out, args.file_id, force=args.force)
    with _advised(config):
        path, size = _write(api, args.file_id, path)
    out.line(f"Wrote {size:,} bytes of {args.file_id} to {path}")
    out.data({"file_id": args.file_id, "path": str(path), "bytes": size})
    return EXIT_OK


#: A write into the temporary directory failed (a download to stdout goes through one).
SCRATCH_FIX: Final = "Free space in the temporary directory, or set TMPDIR to a disk with room."


def _destination(out: Path, file_id: str, *, force: bool) -> Path:
    """The file ``--out`` names, checked before any request: new (or ``--force``) and writable."""
    target = out / f"{file_id}.jsonl" if out.is_dir() else out
    if target.is_dir():
        raise CommandFailed(EXIT_BAD_INPUT, f"Cannot write {target}: it is a directory.", "Choose another --out.")
    if target.exists() and not force:
        raise CommandFailed(
            EXIT_BAD_INPUT,
            f"{target} already exists; nothing was downloaded.",
            "Pass --force to overwrite it, or choose another --out.",
        )
    if not target.parent.is_dir():
        raise CommandFailed(
            EXIT_BAD_INPUT,
            f"Cannot write {target}: the directory {target.parent} does not exist.",
            "Create it or choose another --out.",
        )
    try:
        # The download lands in a temporary file next to the target: probe exactly that.
        descriptor, probe = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".probe", dir=target.parent)
    except OSError as exc:
        raise CommandFailed(
            EXIT_BAD_INPUT,
            f"Cannot write {target}: {exc.strerror or exc} in {target.parent}.",
            "Choose another --out, or a directory you may write to.",
        ) from None
    os.close(descriptor)
    os.unlink(probe)
    return target


@contextlib.contextmanager
def _advised(config: PlatformConfig) -> Iterator[None]:
    """A failed files call with the advice the plugin gives (a 404 on the v1 API names a dated version)."""
    from ..identity import API_KEY
    from ..troubleshooting import advise

    try:
        yield
    except RemoteError as exc:
        detail = advise(exc.detail, operation="batch", api_key=config.auth.method == API_KEY, v1=config.surface.is_v1)
        raise CommandFailed(EXIT_REMOTE_FAILURE, detail.describe(), detail.fix) from None


def _write(api: FilesApi, file_id: str, destination: Path, fix: str = "Free space or choose another --out.") -> tuple[Path, int]:
    with local_writes(str(destination), fix):
        return api.download(file_id, destination)


@contextlib.contextmanager
def local_writes(what: str, fix: str) -> Iterator[None]:
    """A write on this machine that fails (a full disk, a file size limit) as the operator's error, not a traceback."""
    try:
        yield
    except OSError as exc:
        # requests' own errors are OSErrors too, without an errno; those are the plugin's to report.
        if exc.errno is None:
            raise
        raise CommandFailed(EXIT_REMOTE_FAILURE, f"Writing {exc.filename or what} failed: {exc.strerror or exc}.", fix) from None
