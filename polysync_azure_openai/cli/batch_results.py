"""``batch results``: the joined per-row results of any batch run, streamed to a JSONL file.

The rows are joined as the Batch job joins them into its ``results`` output (second-release §G):
one line per request, in input order, for runs from ``requests`` (sharded or not) and runs from
an uploaded file alike, whatever ``OpenAI Max Results MB`` says.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

from .batch_files import SCRATCH_FIX, STDOUT, _destination, local_writes, stdout_clash
from .output import EXIT_NOT_FINISHED, EXIT_OK, CommandFailed, Output
from .target import Target, operator_command


def results_command(args: argparse.Namespace) -> int:
    clash = stdout_clash(args, "the rows")
    return clash if clash is not None else _results(args)


@operator_command
def _results(args: argparse.Namespace, target: Target, out: Output) -> int:
    from ..jobs.batch_rows import export_results
    from ..platform import PlatformConfig

    config = PlatformConfig.from_host(target.platform)
    to_stdout = str(args.out) == STDOUT
    path = None if to_stdout else _destination(args.out, "results", force=args.force)
    directory = path.parent if path is not None else None
    # Into a private file first: a run that has not ended, or a failed download, leaves nothing behind.
    descriptor, partial = tempfile.mkstemp(prefix=".results.", suffix=".part", dir=directory)
    try:
        # The rows go to a file in --out's directory (the temporary one for stdout), each shard's
        # result files to the temporary directory first: either disk may be the one that fails.
        fix = (
            SCRATCH_FIX
            if path is None
            else f"Free space in {directory} or the temporary directory, or choose another --out or TMPDIR."
        )
        with local_writes("the results", fix), os.fdopen(descriptor, "wb") as handle:
            result, tally = export_results(config, args.run_id, handle)
        if tally is None:
            raise CommandFailed(
                EXIT_NOT_FINISHED,
                f"Run {args.run_id} has not ended ({result.status}: {result.message}); it has no results yet.",
                "Wait until it ends (polysync-azure-openai status RUN_ID), then run this again.",
            )
        rows = sum(tally.counts.values())
        counts = ", ".join(f"{count:,} {status.replace('_', ' ')}" for status, count in tally.counts.items())
        summary = f"{rows:,} rows of {args.run_id} ({result.status}): {counts}; {tally.tokens['total_tokens']:,} tokens"
        if path is None:
            with open(partial, "rb") as handle:
                shutil.copyfileobj(handle, sys.stdout.buffer)
            sys.stdout.flush()
            print(f"Wrote {summary} to stdout", file=sys.stderr)
        else:
            os.replace(partial, path)
            out.line(f"Wrote {summary} to {path}")
        out.data(
            {"run_id": args.run_id, "status": result.status, "path": str(path) if path else None, "rows": rows, **tally.outputs()}
        )
        return EXIT_OK
    finally:
        Path(partial).unlink(missing_ok=True)
