"""The CLI as a user runs it: a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys


def run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "REQUESTS_CA_BUNDLE"}
    return subprocess.run(
        [sys.executable, "-m", "polysync_azure_openai.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def test_demo_runs_every_step_and_exits_zero() -> None:
    done = run("demo")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    for fragment in (
        "== import_jobs",
        "gpt-4o::batch",
        "Azure OpenAI Embedding",
        "== Chat Completion run",
        "answer",
        "gpt-4o#sync#Success",
        "embed-small#sync#Success",
        "1536 dimensions",
        "https://portal.azure.com/#@/resource/subscriptions/",
        "== Batch run",
        "== Reasoning model run (v1 API, OpenAI Reasoning Effort low)",
        "reasoning    32 reasoning tokens of ",
        "== Structured output run (OpenAI Response Format: a JSON Schema)",
        'response_json {"city": "emulated city", "country": "emulated country", "population": 7}',
        "inputs       3 texts in one call, OpenAI Dimensions 256: vectors of 256, 256, 256 numbers",
        "input        6 requests to /v1/chat/completions for deployment 'gpt-4o-batch'",
        "is in_progress: 2 of 6 requests done",
        "] Success: Batch batch_",
        "requests     6 of 6 completed, 0 failed",
        "  question-1   Emulated answer: ",
        "== Batch from rows (the requests parameter)",
        "in 4 shards",
        "shard 4/4    2 batch(es), refused 1 time(s) for quota first",
        "rows         1,000 succeeded, 0 failed, 0 content filtered, 0 missing",
        "  row-0     Question 0: name a prime number above 0.",
        "  row-999   Question 999: name a prime number above 999.",
        "== Workload Identity run",
        "(the app trusting system:serviceaccount:polysync:polysync-worker)",
        "== Managed Identity run",
        "/msi/token (plain HTTP on the host",
        "(the host's system-assigned identity)",
        "every step succeeded",
    ):
        assert fragment in out, fragment
    uploaded = out.split("uploaded     ", 1)[1].split()[0]
    assert uploaded.startswith("file-") and "processed" in out.split("uploaded     ", 1)[1].splitlines()[0]
    assert out.count("  question-") == 3
    assert out.index("== Embedding run") < out.index("== Batch run") < out.index("== Batch from rows") < out.index("every step")
    assert "waits for the enqueued-token quota" in out
    assert out.index("== Batch run") < out.index("== Workload Identity run") < out.index("== Managed Identity run")


def test_help_lists_the_commands() -> None:
    done = run("--help")
    assert done.returncode == 0
    assert "demo" in done.stdout and "emulator" in done.stdout
