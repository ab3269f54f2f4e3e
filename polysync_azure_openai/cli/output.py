"""What the commands print: text for people or one JSON object, progress, and exit codes.

Exit codes: 0 success; 1 remote failure (Azure or the network failed, the run ended Failed or
Cancelled, a check step failed); 2 bad input (arguments, platform file, parameters: nothing was
sent); 3 not finished (the run is Starting, Running or Unknown).
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final, TextIO

import attrs

from ..results import CANCELLED, RUNNING, SUCCESS, TERMINAL_STATUSES

if TYPE_CHECKING:
    from ..results import ImportedJob, RunResult

EXIT_OK: Final = 0
EXIT_REMOTE_FAILURE: Final = 1
EXIT_BAD_INPUT: Final = 2
EXIT_NOT_FINISHED: Final = 3

EXIT_CODES_HELP: Final = """exit codes:
  0  success
  1  remote failure: Azure or the network failed, the run ended Failed or Cancelled, a check failed
  2  bad input: arguments, platform file or parameters are wrong (nothing was sent)
  3  not finished: the run is still Starting, Running or Unknown
"""

#: How ``ErrorDetail.render`` joins a run message to its fix; a run message is all the hooks return.
FIX_SEPARATOR: Final = " Fix: "
SHOWN_CHARS: Final = 80


def shown(value: Any, limit: int = SHOWN_CHARS) -> str:
    """A value the user gave, quoted and cut short, for an error message."""
    text = str(value)
    return repr(text if len(text) <= limit else text[:limit] + "...")


def split_fix(message: str) -> tuple[str, str]:
    """A run message as (what happened, the fix), so the fix can go on its own line."""
    text, separator, fix = message.rpartition(FIX_SEPARATOR)
    return (text, fix) if separator else (message, "")


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
            text = json.dumps(payload, indent=2, ensure_ascii=False)
            try:
                text.encode(sys.stdout.encoding or "utf-8")
            except UnicodeEncodeError:
                # A text stdout cannot carry (a lone surrogate in a row, or a narrow locale): JSON's escapes.
                text = json.dumps(payload, indent=2)
            print(text)

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


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def result_json(result: RunResult) -> dict[str, Any]:
    return {
        "run_id": result.run_id,
        "status": result.status,
        "outputs": dict(result.outputs),
        "message": result.message,
        "started_at": iso(result.started_at),
        "ended_at": iso(result.ended_at),
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
    if isinstance(value, list) and value and all(isinstance(v, list) for v in value):
        # Embeddings of several inputs: each vector summarised, the first two shown.
        shown_vectors = ", ".join(_short_value(v) for v in value[:2])
        return f"[{len(value)} vectors: {shown_vectors}{', ...' if len(value) > 2 else ''}]"
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
        out.line(f"Started    {iso(result.started_at)}")
    if result.ended_at is not None:
        out.line(f"Ended      {iso(result.ended_at)}")
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
