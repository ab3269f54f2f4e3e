"""``python -m benchmarks [NAME ...] [--quick]``: run the benchmarks, print tables and a summary.

Benchmarks, not tests: every target is printed as PASS or MISS with the measured value, and the
exit status is 0 unless a benchmark could not run at all.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import sys
import time
import traceback
from collections.abc import Callable
from importlib import metadata
from typing import Any

BENCHMARKS: dict[str, tuple[str, str]] = {
    # name: (module:function, what it compares)
    "chat": ("sync_calls:run_chat", "sync chat call: plugin submit vs requests vs openai SDK"),
    "embeddings": ("sync_calls:run_embeddings", "1536-dim float embeddings: plugin vs requests vs openai SDK"),
    "cold-start": ("cold_start:run", "fresh process: host loading the entry points vs import openai"),
    "discovery": ("discovery:run", "import_jobs over 1,000 deployments in 10 pages"),
    "tokens": ("tokens:run", "16 threads x 100 calls on a fresh Service Principal: token requests"),
    "concurrency": ("concurrency:run", "1/4/16/64 threads at 50 ms latency, server in its own process"),
    "download": ("download:run", "500 MB batch output: batch download vs streamed requests (not in --quick)"),
    "batch-data": ("batch_data:run", "100,000 requests in and results out: memory and time vs raw streamed upload and download"),
    "quota": ("quota:run", "640 chat runs at the emulator's rate limit: plugin (32 threads, 4 processes) vs openai SDK"),
}
NOT_QUICK = ("download",)


def _versions() -> str:
    found = []
    for name in ("polysync-azure-openai", "requests", "urllib3", "pluggy", "azure-identity", "openai", "httpx2", "httpx"):
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return ", ".join(found)


def _load() -> str:
    """Other work on the machine skews every number: say how busy it was."""
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Benchmarks of the Azure OpenAI plugin against raw requests and the openai SDK, all on 127.0.0.1.",
        epilog="Benchmarks: " + "; ".join(f"{name}: {what}" for name, (_, what) in BENCHMARKS.items()),
    )
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"benchmarks to run (default: all): {', '.join(BENCHMARKS)}")
    parser.add_argument("--quick", action="store_true", help="a fast smoke run: fewer rounds, no download unless named")
    args = parser.parse_args(argv)
    unknown = [name for name in args.names if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    names = args.names or [name for name in BENCHMARKS if not (args.quick and name in NOT_QUICK)]

    # Log records are formatted as a host would, then dropped: their cost counts, their text does not.
    handler = logging.StreamHandler(open(os.devnull, "w"))
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.WARNING, handlers=[handler])

    from .harness import trust

    started = time.monotonic()
    trust()  # the CA, REQUESTS_CA_BUNDLE and NO_PROXY before any session exists
    print(f"# polysync-azure-openai benchmarks{' (quick)' if args.quick else ''}")
    print(f"machine: {os.cpu_count()} CPUs, {platform.platform()}, Python {platform.python_version()}, {_load()}")
    print(f"packages: {_versions()}")
    print("server: benchmarks/fastserver.py, a raw-socket TLS HTTP/1.1 keep-alive server, one thread per connection,")
    print("        canned answers; its CPU per request is printed under each table")

    outcomes: list[Any] = []
    failed: list[str] = []
    for name in names:
        module_name, _, function = BENCHMARKS[name][0].partition(":")
        try:
            module = __import__(f"benchmarks.{module_name}", fromlist=[function])
            run: Callable[[bool], list[Any]] = getattr(module, function)
            outcomes.extend(run(args.quick))
        except Exception:
            failed.append(name)
            print(f"\n!! benchmark {name} failed:\n{traceback.format_exc()}", file=sys.stderr)
            print(f"\n!! benchmark {name} failed (traceback on stderr)")

    print(f"\n## Summary ({time.monotonic() - started:.0f} s, {_load()})")
    closing = [outcome for outcome in outcomes if getattr(outcome, "closing", False)]
    for outcome in outcomes:
        if outcome not in closing:
            print("   " + outcome.line())
    for name in failed:
        print(f"   FAIL  {name:<12} the benchmark raised; see stderr")
    # A benchmark's headline figure ends the output, where a reader (or a note) picks it up.
    for outcome in closing:
        print(outcome.line())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
