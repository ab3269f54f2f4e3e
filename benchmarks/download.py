"""Batch output download: a 500 MB file from the emulator, ``batch download`` vs streamed requests.

The emulator (the project's own, which streams file content from disk) runs in its own process
with one ``batch_output`` file. Each download runs in a fresh interpreter that first imports
everything it will use (so imports do not count as growth), resets its peak-RSS mark
(``/proc/self/clear_refs``), then times:

- ``plugin``: ``polysync-azure-openai batch download --config platform.toml FILE_ID --out PATH``
  (``cli.main``; config loading, token and the files API included);
- ``requests``: a token POST, then ``requests.get(..., stream=True)`` written 1 MiB at a time.

Peak RSS growth is ``VmHWM`` after the download minus ``VmRSS`` before it. Skipped, with a line
saying why, while the files API or the emulator's files support is missing.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from .harness import CHILD_MEMORY as _MEMORY
from .harness import REPO, Result, Skipped, Target, note, run_child, table, title, trust

PLUGIN = "plugin: batch download (CLI)"
RAW = "requests: streamed GET"
LINE = (
    '{"custom_id": "task-%08d", "response": {"status_code": 200, "request_id": "660b7424-b648-4b67-addc-862ba067d442", '
    '"body": {"id": "chatcmpl-9rFGJ9dh08Tw9WRKqaEHwrkqRa4DJ", "object": "chat.completion", "created": 1722477079, '
    '"model": "gpt-4o-2024-05-13", "choices": [{"index": 0, "finish_reason": "stop", "logprobs": null, '
    '"message": {"role": "assistant", "content": "April 4, 1975."}}], '
    '"usage": {"completion_tokens": 24, "prompt_tokens": 27, "total_tokens": 51}}}, "error": null}\n'
)


PLUGIN_CHILD = (
    _MEMORY
    + """
import polysync_azure_openai.cli as cli
import polysync_azure_openai.cli.config_file, polysync_azure_openai.files, polysync_azure_openai.http
import azure.identity, msal
args = json.loads(sys.argv[1])
os.environ[args["secret_env"]] = args["secret"]
reset = _reset_peak()
before = _status("VmRSS")
start = time.perf_counter()
code = cli.main(["batch", "download", "--config", args["config"], args["file_id"], "--out", args["out"]])
elapsed = time.perf_counter() - start
print(json.dumps({"seconds": elapsed, "growth": _status("VmHWM") - before, "exit": code, "reset": reset,
                  "bytes": os.path.getsize(args["out"]) if code == 0 else 0}))
"""
)

RAW_CHILD = (
    _MEMORY
    + """
import requests
args = json.loads(sys.argv[1])
reset = _reset_peak()
before = _status("VmRSS")
start = time.perf_counter()
session = requests.Session()
token = session.post(f"{args['url']}/{args['tenant_id']}/oauth2/v2.0/token", data={
    "grant_type": "client_credentials", "client_id": args["client_id"], "client_secret": args["secret"],
    "scope": "https://cognitiveservices.azure.com/.default"}, timeout=30).json()["access_token"]
written = 0
with session.get(f"{args['url']}/openai/files/{args['file_id']}/content", params={"api-version": "2024-10-21"},
                 headers={"Authorization": "Bearer " + token}, stream=True, timeout=(10, 120)) as response:
    response.raise_for_status()
    with open(args["out"], "wb") as handle:
        for chunk in response.iter_content(1024 * 1024):
            handle.write(chunk)
            written += len(chunk)
elapsed = time.perf_counter() - start
print(json.dumps({"seconds": elapsed, "growth": _status("VmHWM") - before, "exit": 0, "reset": reset, "bytes": written}))
"""
)


def missing() -> str | None:
    """Why the benchmark cannot run yet, or None."""
    if importlib.util.find_spec("polysync_azure_openai.files") is None:
        return "polysync_azure_openai.files (the files API) does not exist yet"
    from polysync_azure_openai.emulator import Emulator

    if not hasattr(Emulator, "add_file"):
        return "the emulator has no files API yet (Emulator.add_file)"
    try:
        from polysync_azure_openai.emulator.cli import SECRET_ENV, write_state_files  # noqa: F401
    except ImportError:
        return "the emulator cannot write a platform file yet (emulator.cli.write_state_files)"
    return None


def serve(size: int) -> int:
    """Child: an emulator holding one ``size``-byte batch output file, until stdin closes."""
    from polysync_azure_openai.emulator import Emulator
    from polysync_azure_openai.emulator.cli import SECRET_ENV, write_state_files

    with tempfile.TemporaryDirectory(prefix="polysync-bench-download-") as scratch, Emulator() as emu:
        path = Path(scratch) / "output.jsonl"
        with path.open("w", encoding="utf-8") as handle:
            number, written = 0, 0
            while written < size:
                line = LINE % number
                handle.write(line)
                written += len(line)
                number += 1
        file_id = emu.add_file(path, purpose="batch_output", filename="output.jsonl", status="processed")
        config, _ = write_state_files(emu, Path(scratch) / "state")
        info = {
            "url": emu.url,
            "ca_path": emu.ca_path,
            "tenant_id": emu.tenant_id,
            "client_id": emu.client_id,
            "secret": emu.client_secret,
            "secret_env": SECRET_ENV,
            "config": str(config),
            "file_id": file_id,
            "bytes": path.stat().st_size,
        }
        print(json.dumps(info), flush=True)
        sys.stdin.read()
    return 0


def _download(code: str, args: dict[str, Any], ca_path: str) -> dict[str, Any]:
    result = run_child(code, args, ca_path, timeout=600)
    if result["exit"] != 0:
        raise RuntimeError(f"batch download exited {result['exit']}: {json.dumps(result)[-1500:]}")
    return result


def run(quick: bool) -> list[Target | Skipped]:
    size = (50 if quick else 500) * 1000 * 1000
    title(f"Batch output download: {size / 1e6:.0f} MB from the emulator in its own process")
    reason = missing()
    if reason:
        note(f"skipped: {reason}")
        return [Skipped("download", f"skipped: {reason}")]
    rounds = 1 if quick else 10
    server = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.download", "--serve", str(size)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=REPO,
        env=trust().child_env(),
        text=True,
    )
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        if not line:
            raise RuntimeError("the emulator process did not start")
        info = json.loads(line)
        times = {PLUGIN: Result(PLUGIN), RAW: Result(RAW)}
        growth = {PLUGIN: Result(PLUGIN), RAW: Result(RAW)}
        resets: set[bool] = set()
        with tempfile.TemporaryDirectory(prefix="polysync-bench-out-") as out:
            for index in range(rounds):
                order = [(PLUGIN, PLUGIN_CHILD), (RAW, RAW_CHILD)]
                for name, code in order if index % 2 == 0 else order[::-1]:
                    target = os.path.join(out, "download.jsonl")
                    result = _download(code, {**info, "out": target}, info["ca_path"])
                    if result["bytes"] != info["bytes"]:
                        raise RuntimeError(f"{name} wrote {result['bytes']} of {info['bytes']} bytes")
                    os.unlink(target)
                    times[name].samples.append(result["seconds"])
                    growth[name].samples.append(result["growth"])
                    resets.add(result["reset"])
    finally:
        assert server.stdin is not None
        server.stdin.close()
        server.wait(timeout=60)
    table(list(times.values()), reference=RAW, unit="ms", scale=1e3)
    print("   peak RSS growth of the downloading process")
    table(list(growth.values()), reference=RAW, unit="MB", scale=1e-6)
    note(f"{info['bytes'] / 1e6:.0f} MB each; peak mark reset before the download: {'yes' if resets == {True} else 'no'}")
    worst_growth = max(growth[PLUGIN].samples) / 1e6
    return [
        Target("download", "peak RSS growth of batch download (max)", worst_growth, 30.0, fmt="{:.1f} MB"),
        Target("download", "batch download / streamed requests (median)", times[PLUGIN].median / times[RAW].median, 1.2),
    ]


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--serve":
        sys.exit(serve(int(sys.argv[2])))
    sys.exit("usage: python -m benchmarks.download --serve BYTES")
