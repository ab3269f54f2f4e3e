"""Batch files and batch runs from the command line, as a user runs them (subprocesses)."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from polysync_azure_openai.cli.output import Progress
from polysync_azure_openai.emulator import Emulator
from polysync_azure_openai.emulator.faults import Status

from .helpers import SECRET_ENV, Done, cli, command_env, platform_file


def request_line(custom_id: str, **overrides: object) -> str:
    line: dict[str, object] = {
        "custom_id": custom_id,
        "method": "POST",
        "url": "/v1/chat/completions",  # the platform file speaks the v1 API, the default
        "body": {"model": "gpt-4o-batch", "messages": [{"role": "user", "content": f"Question {custom_id}?"}]},
    }
    line.update(overrides)
    return json.dumps(line)


def jsonl(count: int) -> str:
    return "".join(request_line(f"task-{i}") + "\n" for i in range(count))


@pytest.fixture
def env(emu: Emulator) -> dict[str, str]:
    return {SECRET_ENV: emu.client_secret}


@pytest.fixture
def config(tmp_path: Path, emu: Emulator) -> str:
    return str(platform_file(tmp_path, emu))


# -- upload -------------------------------------------------------------------------------------

BAD_UPLOADS = [
    pytest.param(
        [request_line("a"), "{oops", request_line("a"), request_line("c", method="GET")],
        [(2, "is not valid JSON"), (3, 'custom_id "a" is already used on line 1'), (4, 'method is "GET"')],
        id="three-problems",
    ),
    pytest.param(
        [request_line("a"), request_line("b", url="/v1/embeddings")],
        [(2, "url '/v1/embeddings' differs from '/v1/chat/completions' (line 1)")],
        id="url",
    ),
    pytest.param(
        [request_line("a", body={"model": "other", "messages": [{"role": "user", "content": "x"}]})],
        [(1, "body.model 'other' differs from 'gpt-4o-batch' (the deployment given)")],
        id="deployment",
    ),
]


@pytest.mark.parametrize(("lines", "problems"), BAD_UPLOADS)
def test_a_bad_file_is_not_uploaded(
    tmp_path: Path, emu: Emulator, config: str, env: dict[str, str], lines: list[str], problems: list[tuple[int, str]]
) -> None:
    path = tmp_path / "input.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    done = cli("batch", "upload", str(path), "--deployment", "gpt-4o-batch", "--config", config, "--json", env=env)
    assert done.code == 2, done.stderr
    found = done.json()["problems"]
    assert [p["line"] for p in found] == [line for line, _ in problems]
    for problem, (line, fragment) in zip(found, problems, strict=True):
        assert fragment in problem["message"]
        assert f"{path}:{line}: {problem['message']}" in done.stderr
    assert "nothing was uploaded" in done.stderr
    assert emu.requests == []


def test_a_deeply_nested_line_is_a_problem_of_that_line(tmp_path: Path, emu: Emulator, config: str, env: dict[str, str]) -> None:
    # Deeper than Python's recursion limit: json.loads raised RecursionError, a traceback and exit 1.
    nested = request_line("b")[:-1] + ', "extra": ' + "[" * 100_000 + "]" * 100_000 + "}"
    path = tmp_path / "input.jsonl"
    path.write_text(request_line("a") + "\n" + nested + "\n", encoding="utf-8")
    done = cli("batch", "upload", str(path), "--config", config, env=env)
    assert done.code == 2, done.stderr
    assert f"{path}:2: nests JSON too deeply to read" in done.stderr and "Traceback" not in done.stderr
    assert "nothing was uploaded" in done.stderr
    assert emu.requests == []


def test_a_good_file_is_uploaded_and_its_id_printed(tmp_path: Path, emu: Emulator, config: str, env: dict[str, str]) -> None:
    path = tmp_path / "input.jsonl"
    content = jsonl(4)
    path.write_text(content, encoding="utf-8")
    done = cli("batch", "upload", str(path), "--config", config, "--wait", "--poll-interval", "0.1", env=env)
    assert done.code == 0, done.stderr
    assert f"{path}: 4 requests for /v1/chat/completions on deployment 'gpt-4o-batch'" in done.stdout
    file_id = done.stdout.split("Uploaded as ", 1)[1].split()[0]
    assert file_id.startswith("file-") and f"Processed: {file_id} is ready for a batch" in done.stdout
    assert emu.file_content(file_id) == content.encode()
    (upload,) = [r for r in emu.requests if r.kind == "files.upload"]
    assert upload.headers["content-type"].startswith("multipart/form-data")
    done.assert_no_secret(emu.client_secret)


def test_lines_in_the_other_apis_url_form_are_not_uploaded(tmp_path: Path, emu: Emulator, env: dict[str, str]) -> None:
    path = tmp_path / "input.jsonl"
    path.write_text(request_line("a", url="/chat/completions") + "\n", encoding="utf-8")
    done = cli("batch", "upload", str(path), "--config", str(platform_file(tmp_path, emu)), env=env)
    assert done.code == 2, done.stderr
    assert "the lines' url is '/chat/completions', but platform 'test platform' speaks the v1 API" in done.stderr
    assert 'Write "url": "/v1/chat/completions" on every line' in done.stderr
    assert not [r for r in emu.requests if r.kind == "files.upload"]
    dated = platform_file(tmp_path, emu, OpenAI_API_Version="2024-10-21")
    uploaded = cli("batch", "upload", str(path), "--config", str(dated), env=env)
    assert uploaded.code == 0, uploaded.stderr


def test_upload_json_output(tmp_path: Path, emu: Emulator, config: str, env: dict[str, str]) -> None:
    path = tmp_path / "input.jsonl"
    path.write_text(jsonl(2), encoding="utf-8")
    done = cli("batch", "upload", str(path), "--config", config, "--json", env=env)
    assert done.code == 0, done.stderr
    report = done.json()
    assert report["requests"] == 2 and report["model"] == "gpt-4o-batch"
    assert report["uploaded"]["id"].startswith("file-") and report["uploaded"]["purpose"] == "batch"
    assert report["uploaded"]["filename"] == "input.jsonl"


def test_upload_wait_reports_azure_s_processing_error(tmp_path: Path, emu: Emulator, config: str, env: dict[str, str]) -> None:
    path = tmp_path / "input.jsonl"
    path.write_text(jsonl(1), encoding="utf-8")
    # Azure's own processing refuses what no local check can see; the emulator answers as it would.
    refused = {
        "id": "file-x",
        "object": "file",
        "status": "error",
        "status_details": "Quota exceeded (emulated)",
        "purpose": "batch",
    }
    emu.inject(Status(200, refused), kind="files.get")
    done = cli("batch", "upload", str(path), "--wait", "--poll-interval", "0.1", "--config", config, "--json", env=env)
    assert done.code == 1
    assert done.json()["uploaded"]["status"] == "error"
    assert "Azure did not process file-x: status error: Quota exceeded (emulated)" in done.stderr


# -- download -----------------------------------------------------------------------------------


def test_download_writes_the_exact_bytes(tmp_path: Path, emu: Emulator, config: str, env: dict[str, str]) -> None:
    content = "".join(json.dumps({"custom_id": f"t{i}", "text": "é ☃ \u2028"}) + "\r\n" for i in range(50)).encode()
    file_id = emu.add_file(content)
    out = tmp_path / "out.jsonl"
    done = cli("batch", "download", file_id, "--out", str(out), "--config", config, "--json", env=env)
    assert done.code == 0, done.stderr
    assert done.json() == {"file_id": file_id, "path": str(out), "bytes": len(content)}
    assert out.read_bytes() == content
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["out.jsonl", *(p.name for p in tmp_path.glob("*.toml"))])


def test_a_20_mb_download_into_a_directory(tmp_path: Path, emu: Emulator, config: str, env: dict[str, str]) -> None:
    line = b'{"custom_id": "x", "response": {"status_code": 200, "body": "' + b"a" * 1000 + b'"}}\n'
    content = line * (20 * 1024 * 1024 // len(line))
    file_id = emu.add_file(content)
    target = tmp_path / "downloads"
    target.mkdir()
    done = cli("batch", "download", file_id, "--out", str(target), "--config", config, env=env)
    assert done.code == 0, done.stderr
    written = target / f"{file_id}.jsonl"
    assert f"Wrote {len(content):,} bytes of {file_id} to {written}" in done.stdout
    assert hashlib.sha256(written.read_bytes()).digest() == hashlib.sha256(content).digest()


def test_download_of_an_unknown_file_is_a_remote_failure(tmp_path: Path, config: str, env: dict[str, str]) -> None:
    done = cli("batch", "download", "file-nosuchfile", "--out", str(tmp_path / "x.jsonl"), "--config", config, env=env)
    assert done.code == 1 and "HTTP 404 notFound" in done.stderr
    assert not (tmp_path / "x.jsonl").exists()


def test_download_to_stdout_writes_the_bytes_there(tmp_path: Path, emu: Emulator, config: str, env: dict[str, str]) -> None:
    content = "".join(json.dumps({"custom_id": f"t{i}", "text": "é ☃"}) + "\n" for i in range(20)).encode()
    file_id = emu.add_file(content)
    done = subprocess.run(
        [sys.executable, "-m", "polysync_azure_openai.cli", "batch", "download", file_id, "--out", "-", "--config", config],
        capture_output=True,
        timeout=60,
        env=command_env(env),
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == content
    assert f"Wrote {len(content):,} bytes of {file_id} to stdout" in done.stderr.decode()
    assert not (tmp_path / "-").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in tmp_path.glob("*.toml"))


def test_download_to_stdout_refuses_json_too(config: str, env: dict[str, str]) -> None:
    done = cli("batch", "download", "file-abc", "--out", "-", "--config", config, "--json", env=env)
    assert done.code == 2 and "--out - writes the file to stdout" in done.stderr


def test_an_existing_out_is_refused_unless_forced(tmp_path: Path, emu: Emulator, config: str, env: dict[str, str]) -> None:
    file_id = emu.add_file(b'{"custom_id": "new"}\n')
    out = tmp_path / "results.jsonl"
    out.write_bytes(b"yesterday's results\n")
    done = cli("batch", "download", file_id, "--out", str(out), "--config", config, env=env)
    assert done.code == 2, done.stderr
    assert f"{out} already exists" in done.stderr and "--force" in done.stderr
    assert out.read_bytes() == b"yesterday's results\n"
    assert emu.requests == []
    # The same through a directory: the file it would write there exists.
    (tmp_path / f"{file_id}.jsonl").write_bytes(b"old\n")
    done = cli("batch", "download", file_id, "--out", str(tmp_path), "--config", config, env=env)
    assert done.code == 2 and f"{tmp_path / f'{file_id}.jsonl'} already exists" in done.stderr
    done = cli("batch", "download", file_id, "--out", str(out), "--force", "--config", config, env=env)
    assert done.code == 0, done.stderr
    assert out.read_bytes() == b'{"custom_id": "new"}\n'


@pytest.mark.skipif(not Path("/sys").is_dir(), reason="needs a directory nobody may write to, as /sys on Linux")
def test_an_unwritable_out_is_a_clear_error(emu: Emulator, config: str, env: dict[str, str]) -> None:
    file_id = emu.add_file(b'{"custom_id": "x"}\n')
    out = "/sys/polysync-results.jsonl"
    done = cli("batch", "download", file_id, "--out", out, "--config", config, env=env)
    assert done.code == 2, done.stderr
    assert f"Cannot write {out}" in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.splitlines()) == 2  # the error and its fix
    assert emu.requests == []


@pytest.mark.parametrize("to", ["file", "stdout"])
def test_a_disk_that_fills_during_a_download_is_a_clear_error(
    tmp_path: Path, emu: Emulator, config: str, env: dict[str, str], to: str
) -> None:
    """A file size limit fails the write mid-file as a full disk does: an error and its fix, no
    traceback, and nothing left behind (a download to stdout goes through the temporary directory)."""
    content = b'{"custom_id": "x", "body": "' + b"a" * 300_000 + b'"}\n'
    file_id = emu.add_file(content)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    out = tmp_path / "out.jsonl"
    target = str(out) if to == "file" else "-"
    done = cli(
        "batch",
        "download",
        file_id,
        "--out",
        target,
        "--config",
        config,
        env={**env, "TMPDIR": str(scratch)},
        max_file_bytes=100_000,
    )
    assert done.code == 1, done.stderr
    where = str(out) if to == "file" else str(scratch)
    fix = (
        "Free space or choose another --out."
        if to == "file"
        else "Free space in the temporary directory, or set TMPDIR to a disk with room."
    )
    assert done.stderr.startswith(f"error: Writing {where}"), done.stderr
    assert done.stderr.endswith(f" failed: File too large.\nfix: {fix}\n"), done.stderr
    assert done.stdout == "" and not out.exists() and list(scratch.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["tmp", *(p.name for p in tmp_path.glob("*.toml"))])


# -- a batch run --------------------------------------------------------------------------------


def run_while_advancing(emu: Emulator, *args: str, env: dict[str, str], step: float = 0.5) -> Done:
    """Run the command while moving the emulator's clock, as time passes for a real batch."""
    process = subprocess.Popen(
        [sys.executable, "-m", "polysync_azure_openai.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=command_env(env),
    )
    deadline = time.monotonic() + 60
    while process.poll() is None and time.monotonic() < deadline:
        emu.advance(step)
        time.sleep(0.05)
    stdout, stderr = process.communicate(timeout=10)
    return Done(process.returncode, stdout, stderr)


def test_a_batch_run_waits_with_progress_on_stderr(emu: Emulator, config: str, env: dict[str, str]) -> None:
    emu.batch_timing.requests_per_second = 5.0
    file_id = emu.add_file(jsonl(12))
    done = run_while_advancing(
        emu,
        "run", "batch", "gpt-4o-batch::batch", "--param", f"input_file_id={file_id}", "--poll-interval", "0.1",
        "--config", config, "--json",
        env=env,
    )  # fmt: skip
    assert done.code == 0, done.stderr
    result = done.json()
    assert result["status"] == "Success" and result["run_id"].startswith("batch_")
    assert (result["outputs"]["request_counts_total"], result["outputs"]["request_counts_completed"]) == (12, 12)
    progress = done.stderr.splitlines()
    assert "\r" not in done.stderr  # not a terminal: plain lines
    assert any("is validating" in line for line in progress) and any("is in_progress" in line for line in progress)
    assert progress[-1].split("] ", 1)[1].startswith("Success: Batch ")
    assert len(progress) == len(set(line.split("] ", 1)[1] for line in progress))  # a line per change
    done.assert_no_secret(emu.client_secret)


def test_no_wait_status_and_cancel(emu: Emulator, config: str, env: dict[str, str]) -> None:
    file_id = emu.add_file(jsonl(3))
    submitted = cli(
        "run",
        "batch",
        "gpt-4o-batch::batch",
        "--param",
        f"input_file_id={file_id}",
        "--no-wait",
        "--config",
        config,
        "--json",
        env=env,
    )
    assert submitted.code == 3 and submitted.json()["status"] == "Running"
    run_id = submitted.json()["run_id"]
    status = cli("status", run_id, "--config", config, env=env)
    assert status.code == 3 and "Status     Running" in status.stdout
    cancel = cli("cancel", run_id, "--config", config, "--json", env=env)
    assert cancel.code == 0 and "cancelling" in cancel.json()["message"]
    emu.advance(3600)
    final = cli("status", run_id, "--config", config, "--json", env=env)
    assert final.code == 1 and final.json()["status"] == "Cancelled"
    monitor = cli("monitor-url", run_id, "--config", config, env=env)
    assert monitor.code == 0 and monitor.stdout.startswith("https://portal.azure.com/#@/resource/subscriptions/")


def test_a_batch_on_an_unknown_file_fails_at_submit(config: str, env: dict[str, str]) -> None:
    done = cli(
        "run", "batch", "gpt-4o-batch::batch", "--param", "input_file_id=file-missing", "--config", config, "--json", env=env
    )
    assert done.code == 1
    result = done.json()
    assert result["run_id"] == "gpt-4o-batch#batch#Failed" and "does not exist" in result["message"]
    later = cli("status", result["run_id"], "--config", config, env=env)
    assert later.code == 1 and "never created" in later.stdout


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_rewrites_one_line_on_a_terminal() -> None:
    stream = Terminal()
    progress = Progress(stream)
    progress.show("Running: in_progress, 1 of 2 requests done", 0.0)
    progress.show("Running: in_progress, 1 of 2 requests done", 1.0)
    progress.show("Success", 2.0)
    progress.end()
    text = stream.getvalue()
    assert text.count("\r") == 3 and text.count("\n") == 1 and text.endswith("\n")
    last = text.rsplit("\r", 1)[1]
    # The shorter last state blanks out what is left of the longer line before it.
    assert last.startswith("[    2.0 s] Success ") and len(last.rstrip("\n")) == len(
        "[    1.0 s] Running: in_progress, 1 of 2 requests done"
    )


def test_a_download_through_a_gateway_without_the_v1_api_names_the_fix(
    tmp_path: Path, emu: Emulator, config: str, env: dict[str, str]
) -> None:
    emu.inject(Status(404), kind="files.content")
    file_id = emu.add_file(jsonl(1))
    done = cli("batch", "download", file_id, "--out", str(tmp_path / "out.jsonl"), "--config", config, env=env)
    assert done.code == 1, done.stderr
    assert "HTTP 404" in done.stderr and "may not offer the v1 API: set a dated OpenAI API Version" in done.stderr
