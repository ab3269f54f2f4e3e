"""What every benchmark shares: the trusted CA, servers, interleaved timing, tables, targets.

Timing rules: each contender is warmed up, then the contenders run round-robin (one call each,
in a rotating order) so that machine noise hits all of them alike; tables show the median, the
95th percentile and the ratio of medians to the reference contender.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trustme

from .fastserver import FastServer, server_context

REPO = Path(__file__).resolve().parent.parent
API_VERSION = "2024-10-21"
CHAT_SCOPE = "https://cognitiveservices.azure.com/.default"
ARM_SCOPE = "https://management.azure.com/.default"


# -- the run's CA -------------------------------------------------------------------------------


class Trust:
    """One throwaway CA for the whole run, trusted through REQUESTS_CA_BUNDLE from the start.

    The plugin's sessions read the bundle once when built, so it is set before any session
    exists and never changes; every server of the run (in-process or not) gets a certificate
    from this CA.
    """

    def __init__(self) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="polysync-bench-"))
        self.ca = trustme.CA(organization_name="Polysync benchmarks")
        self.ca_path = str(self.directory / "ca.pem")
        self.ca.cert_pem.write_to_path(self.ca_path)
        # For servers in child processes that issue their own leaf (the emulator does).
        self.ca_key_path = str(self.directory / "ca-key.pem")
        self.ca.private_key_pem.write_to_path(self.ca_key_path)
        leaf = self.ca.issue_cert("127.0.0.1", "localhost")
        self.cert_chain = str(self.directory / "server.pem")
        leaf.private_key_and_cert_chain_pem.write_to_path(self.cert_chain)
        os.environ["REQUESTS_CA_BUNDLE"] = self.ca_path
        # httpx (openai) and azure-core read these; nothing here talks to a public host.
        os.environ["SSL_CERT_FILE"] = self.ca_path
        os.environ.pop("CURL_CA_BUNDLE", None)
        os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"

    def child_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        return env

    def cleanup(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


_TRUST: Trust | None = None


def trust() -> Trust:
    global _TRUST
    if _TRUST is None:
        _TRUST = Trust()
        atexit.register(_TRUST.cleanup)
    return _TRUST


# -- servers ------------------------------------------------------------------------------------


@contextmanager
def local_server(**options: Any) -> Iterator[FastServer]:
    """The fast server in this process (its threads compete for the GIL with the client)."""
    server = FastServer(server_context(trust().cert_chain), **options)
    with server:
        yield server


class RemoteServer:
    """The fast server in its own process: same interface for what the benchmarks read."""

    def __init__(self, latency: float = 0.0) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.fastserver", "--cert-chain", trust().cert_chain, "--latency", str(latency)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=REPO,
            env=trust().child_env(),
            text=True,
        )
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line:
            raise RuntimeError("the fast server process did not start")
        info = json.loads(line)
        for key, value in info.items():
            setattr(self, key, value)
        self.url: str = info["url"]
        import requests

        self._control = requests.Session()
        self._control.verify = trust().ca_path
        self._control.trust_env = False

    def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = self._control.get(self.url + "/_stats", timeout=10).json()
        return result

    def reset(self) -> None:
        self._control.post(self.url + "/_reset", timeout=10).raise_for_status()

    def stop(self) -> None:
        self._control.close()
        assert self._process.stdin is not None
        self._process.stdin.close()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(timeout=10)

    def __enter__(self) -> RemoteServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def server_cost_line(before: dict[str, Any], after: dict[str, Any]) -> str:
    """One line: the server's CPU per request over a measured stretch."""
    requests = after["total"] - before["total"]
    cpu = after["cpu_seconds"] - before["cpu_seconds"]
    per = cpu / requests * 1e6 if requests else float("nan")
    return f"server: benchmarks/fastserver.py (raw-socket TLS, keep-alive): {per:.0f} µs CPU/request over {requests} requests"


# -- timing -------------------------------------------------------------------------------------


@dataclass
class Result:
    """Timings of one contender, in seconds."""

    name: str
    samples: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def p95(self) -> float:
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def interleave(
    contenders: dict[str, Callable[[], object]],
    *,
    rounds: int,
    warmup: int,
    max_seconds: float,
) -> dict[str, Result]:
    """Warm each contender up, then time them round-robin; stop early after ``max_seconds``."""
    names = list(contenders)
    for name in names:
        for _ in range(warmup):
            contenders[name]()
    results = {name: Result(name) for name in names}
    clock = time.perf_counter
    deadline = clock() + max_seconds
    for index in range(rounds):
        shift = index % len(names)
        for name in names[shift:] + names[:shift]:
            call = contenders[name]
            start = clock()
            call()
            results[name].samples.append(clock() - start)
        if clock() > deadline:
            break
    return results


# -- output -------------------------------------------------------------------------------------


def title(text: str) -> None:
    print(f"\n## {text}")


def note(text: str) -> None:
    print(f"   {text}")


def table(results: Sequence[Result], reference: str, unit: str = "µs", scale: float = 1e6) -> None:
    """Median, p95 and ratio of medians against ``reference`` for each contender."""
    ref = next(r for r in results if r.name == reference).median
    width = max(len(r.name) for r in results)
    print(f"   {'contender':<{width}}  {'n':>5}  {'median ' + unit:>12}  {'p95 ' + unit:>12}  {'ratio':>7}")
    for r in results:
        ratio = r.median / ref if ref else float("nan")
        marker = "  (reference)" if r.name == reference else ""
        median, p95 = r.median * scale, r.p95 * scale
        print(f"   {r.name:<{width}}  {len(r.samples):>5}  {median:>12,.1f}  {p95:>12,.1f}  {ratio:>6.2f}x{marker}")


@dataclass
class Target:
    """One line of the summary: what was promised, what was measured, PASS or MISS."""

    benchmark: str
    what: str
    measured: float
    limit: float
    at_most: bool = True
    fmt: str = "{:.2f}x"

    @property
    def passed(self) -> bool:
        return self.measured <= self.limit if self.at_most else self.measured >= self.limit

    def line(self) -> str:
        sign = "<=" if self.at_most else ">="
        status = "PASS" if self.passed else "MISS"
        measured = self.fmt.format(self.measured)
        limit = self.fmt.format(self.limit)
        return f"{status}  {self.benchmark:<12} {self.what:<52} {measured:>10}  (target {sign} {limit})"


@dataclass
class Headline:
    """A benchmark's one-line verdict: printed unindented after the summary, the run's last lines."""

    text: str
    closing: bool = True

    def line(self) -> str:
        return self.text


@dataclass
class Skipped:
    benchmark: str
    reason: str

    def line(self) -> str:
        return f"SKIP  {self.benchmark:<12} {self.reason}"


def burst(call: Callable[[], object], threads: int, calls: int, timeout: float = 600) -> tuple[float, float]:
    """``threads`` x ``calls`` released at once: wall seconds and this process's CPU seconds meanwhile."""
    barrier = threading.Barrier(threads + 1)
    errors: list[BaseException] = []

    def worker() -> None:
        barrier.wait()
        try:
            for _ in range(calls):
                call()
        except BaseException as exc:  # reported below, never swallowed
            errors.append(exc)

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in pool:
        thread.start()
    barrier.wait()
    cpu, start = time.process_time(), time.perf_counter()
    for thread in pool:
        thread.join(timeout=timeout)
    elapsed, used = time.perf_counter() - start, time.process_time() - cpu
    if errors:
        raise RuntimeError(f"{len(errors)} worker(s) failed; first: {errors[0]!r}")
    return elapsed, used


#: Child-process helpers for memory figures: a /proc/self/status field in bytes, and a reset of
#: the peak-RSS mark (Linux clear_refs), so a child measures only the step it runs.
CHILD_MEMORY = """
import json, os, sys, time
def _status(field):
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
def _reset_peak():
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False
"""


def run_child(code: str, args: dict[str, Any], ca_path: str, *, timeout: float) -> dict[str, Any]:
    """Run ``code`` in a fresh interpreter trusting ``ca_path``; its last stdout line is JSON."""
    env = trust().child_env()
    env["REQUESTS_CA_BUNDLE"] = ca_path
    completed = subprocess.run(
        [sys.executable, "-c", code, json.dumps(args)],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=timeout,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"benchmark child failed: {completed.stderr.strip()[-2000:]}")
    result: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result
