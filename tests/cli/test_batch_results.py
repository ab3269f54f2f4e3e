"""``run … --param requests=@rows.json`` and ``batch results RUN_ID --out results.jsonl``, as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from polysync_azure_openai.emulator import Emulator

from .helpers import SECRET_ENV, cli, platform_file
from .test_batch_files import jsonl, request_line, run_while_advancing


@pytest.fixture
def env(emu: Emulator) -> dict[str, str]:
    return {SECRET_ENV: emu.client_secret}


@pytest.fixture
def config(tmp_path: Path, emu: Emulator) -> str:
    return str(platform_file(tmp_path, emu))


def test_rows_from_a_file_run_sharded_with_progress_then_results_to_disk(
    tmp_path: Path, emu: Emulator, config: str, env: dict[str, str]
) -> None:
    rows = tmp_path / "rows.json"
    rows.write_text(json.dumps([f"Question {i}?" for i in range(25)] + [{"user_prompt": "EMULATOR_BLOCK", "custom_id": "x"}]))
    emu.batch_timing.requests_per_second = 5.0
    done = run_while_advancing(
        emu,
        "run", "batch", "gpt-4o-batch::batch", "--param", f"requests=@{rows}", "--attr", "OpenAI Max Requests Per Batch=10",
        "--poll-interval", "0.1", "--config", config, "--json",
        env=env,
    )  # fmt: skip
    assert done.code == 0, done.stderr
    result = done.json()
    assert result["status"] == "Success" and "#rows#" in result["run_id"]
    assert [r["custom_id"] for r in result["outputs"]["results"]] == [f"row-{i}" for i in range(25)] + ["x"]
    progress = [line.split("] ", 1)[1] for line in done.stderr.splitlines()]
    # The progress line counts rows across the three shards.
    assert any(line.startswith("Running: ") and " of 26 requests done" in line and "in 3 shards" in line for line in progress)
    done.assert_no_secret(emu.client_secret)

    # status and cancel tell a rows RunId's job type from the RunId alone.
    status = cli("status", result["run_id"], "--config", config, "--json", env=env)
    assert status.code == 0 and status.json()["outputs"]["results"] == result["outputs"]["results"]
    out = tmp_path / "results.jsonl"
    written = cli("batch", "results", result["run_id"], "--out", str(out), "--config", config, "--json", env=env)
    assert written.code == 0, written.stderr
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert lines == result["outputs"]["results"]
    summary = written.json()
    assert (summary["rows"], summary["succeeded_count"], summary["content_filtered_count"]) == (26, 25, 1)
    again = cli("batch", "results", result["run_id"], "--out", str(out), "--config", config, env=env)
    assert again.code == 2 and "already exists" in again.stderr  # nothing overwritten without --force
    to_stdout = cli("batch", "results", result["run_id"], "--out", "-", "--config", config, env=env)
    assert to_stdout.code == 0 and to_stdout.stdout == out.read_text()


def submitted_from_a_file(emu: Emulator, content: str, config: str, env: dict[str, str]) -> str:
    """The RunId of a batch run, not yet ended, on an uploaded file of these JSONL requests."""
    file_id = emu.add_file(content.encode())
    submitted = cli(
        "run", "batch", "gpt-4o-batch::batch", "--param", f"input_file_id={file_id}", "--no-wait", "--config", config, "--json",
        env=env,
    )  # fmt: skip
    run_id: str = submitted.json()["run_id"]
    return run_id


def test_results_of_a_run_from_a_file(tmp_path: Path, emu: Emulator, config: str, env: dict[str, str]) -> None:
    run_id = submitted_from_a_file(emu, jsonl(4), config, env)
    early = cli("batch", "results", run_id, "--out", str(tmp_path / "r.jsonl"), "--config", config, env=env)
    assert early.code == 3 and "has not ended" in early.stderr and not (tmp_path / "r.jsonl").exists()
    assert not list(tmp_path.glob(".results.*"))
    emu.advance(3600)
    done = cli("batch", "results", run_id, "--out", str(tmp_path), "--config", config, env=env)
    assert done.code == 0, done.stderr
    rows = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert [r["custom_id"] for r in rows] == [f"task-{i}" for i in range(4)] and {r["status"] for r in rows} == {"succeeded"}


def test_bad_inputs_of_the_commands(tmp_path: Path, config: str, env: dict[str, str]) -> None:
    missing = cli(
        "run", "batch", "gpt-4o-batch::batch", "--param", f"requests=@{tmp_path}/nope.json", "--config", config, env=env
    )
    assert missing.code == 2 and "requests" in missing.stderr and "cannot be read" in missing.stderr
    never = cli("batch", "results", "gpt-4o-batch#batch#Failed", "--out", str(tmp_path / "r.jsonl"), "--config", config, env=env)
    assert never.code == 2 and "never created" in never.stderr
    bad = cli("batch", "results", "nonsense", "--out", str(tmp_path / "r.jsonl"), "--config", config, env=env)
    assert bad.code == 2 and "'<deployment>#rows#...'" in bad.stderr


def test_a_literal_at_sign(tmp_path: Path, emu: Emulator, config: str, env: dict[str, str]) -> None:
    done = cli("run", "chat", "gpt-4o", "--param", "user_prompt=@@home", "--config", config, "--json", env=env)
    assert done.code == 0, done.stderr
    (chat,) = [json.loads(r.body) for r in emu.requests if r.kind == "chat"]
    assert chat["messages"][-1]["content"] == "@home"


@pytest.mark.parametrize("to", ["file", "stdout"])
def test_a_disk_that_fills_while_results_are_written_is_a_clear_error(
    tmp_path: Path, emu: Emulator, config: str, env: dict[str, str], to: str
) -> None:
    """The shards' result files are copied to the temporary directory, then the rows written to --out:
    a write past a file size limit (as on a full disk) is an error naming both places, and leaves nothing."""
    run_id = submitted_from_a_file(emu, jsonl(100), config, env)
    emu.advance(3600)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    out = tmp_path / "results.jsonl"
    target = str(out) if to == "file" else "-"
    done = cli(
        "batch", "results", run_id, "--out", target, "--config", config, env={**env, "TMPDIR": str(scratch)},
        max_file_bytes=50_000,
    )  # fmt: skip
    assert done.code == 1, done.stderr
    fix = (
        f"Free space in {tmp_path} or the temporary directory, or choose another --out or TMPDIR."
        if to == "file"
        else "Free space in the temporary directory, or set TMPDIR to a disk with room."
    )
    assert done.stderr == f"error: Writing the results failed: File too large.\nfix: {fix}\n"
    assert done.stdout == "" and not out.exists() and list(scratch.iterdir()) == []
    assert not list(tmp_path.glob(".results.*"))
    # With room, the same command writes every row: the refusal above was the disk's.
    room = cli("batch", "results", run_id, "--out", target, "--config", config, env={**env, "TMPDIR": str(scratch)})
    assert room.code == 0, room.stderr
    rows = (out.read_text() if to == "file" else room.stdout).splitlines()
    assert [json.loads(r)["custom_id"] for r in rows] == [f"task-{i}" for i in range(100)]


def test_a_row_whose_custom_id_utf8_cannot_carry_is_printed_and_written_as_a_json_escape(
    tmp_path: Path, emu: Emulator, config: str, env: dict[str, str]
) -> None:
    """A file run whose input names a row "a\\ud800" (a lone surrogate, escaped in the file): `status
    --json` prints its results and `batch results` writes them, with JSON's escape for that id."""
    run_id = submitted_from_a_file(emu, request_line("a\ud800") + "\n", config, env)
    emu.advance(3600)
    status = cli("status", run_id, "--config", config, "--json", env=env)
    assert status.code == 0, status.stderr
    assert "\\ud800" in status.stdout
    (row,) = status.json()["outputs"]["results"]
    assert (row["custom_id"], row["status"]) == ("a\ud800", "succeeded")
    out = tmp_path / "results.jsonl"
    written = cli("batch", "results", run_id, "--out", str(out), "--config", config, env=env)
    assert written.code == 0, written.stderr
    assert [json.loads(r)["custom_id"] for r in out.read_bytes().decode("utf-8").splitlines()] == ["a\ud800"]
