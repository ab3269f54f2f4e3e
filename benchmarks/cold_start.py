"""Cold start in a fresh process: the host loading our three entry points vs ``import openai``.

Each sample is a new interpreter that times, with ``perf_counter`` from its first line, what the
host does at start-up (import pluggy, build the ``PluginManager``, add the specs, load the
``polysync.job_types`` entry points, ``check_pending``); the contender times ``import openai``.
Interpreter start-up itself is the same for both and left out. Byte code is compiled once into a
private cache (``PYTHONPYCACHEPREFIX``) before timing, as an installed wheel would have it.
Samples of all rows are interleaved.
"""

from __future__ import annotations

import tempfile
from typing import Any

from .harness import REPO, Result, Target, note, table, title, trust

#: Modules the host's import path must not load (spec: no heavy imports at module level).
HEAVY = ("requests", "urllib3", "azure", "msal", "trustme", "cryptography", "attrs", "polysync_azure_openai.emulator")

_REPORT = f"""
import json, sys
heavy = [m for m in {HEAVY!r} if m in sys.modules]
print(json.dumps({{"seconds": _elapsed, "heavy": heavy, "modules": len(sys.modules)}}))
"""


def _timed_import(statement: str) -> str:
    """A child program that times one import statement."""
    return f"import time\n_t = time.perf_counter()\n{statement}\n_elapsed = time.perf_counter() - _t\n"


SNIPPETS = {
    "host loads the 3 entry points (pluggy incl.)": """
import time
_t = time.perf_counter()
import pluggy
from polysync_azure_openai import hookspecs
pm = pluggy.PluginManager("polysync")
pm.add_hookspecs(hookspecs)
loaded = pm.load_setuptools_entrypoints("polysync.job_types")
pm.check_pending()
_elapsed = time.perf_counter() - _t
assert loaded == 3, loaded
""",
    "import polysync_azure_openai.plugin": _timed_import("import polysync_azure_openai.plugin"),
    "import openai": _timed_import("import openai"),
    "import requests, pluggy, attrs": _timed_import("import requests, pluggy, attrs"),
    "import azure.identity": _timed_import("import azure.identity"),
}
HOST = "host loads the 3 entry points (pluggy incl.)"
OPENAI = "import openai"


def _child_env(cache: str) -> dict[str, str]:
    env = trust().child_env()
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = cache
    return env


def _sample(code: str, env: dict[str, str]) -> dict[str, Any]:
    import json
    import subprocess
    import sys

    completed = subprocess.run(
        [sys.executable, "-c", code + _REPORT], capture_output=True, text=True, cwd=REPO, env=env, timeout=60, check=False
    )
    if completed.returncode != 0:
        raise RuntimeError(f"cold-start child failed: {completed.stderr.strip()[-1500:]}")
    result: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result


def run(quick: bool) -> list[Target]:
    title("Cold start in a fresh process (median of interleaved fresh interpreters)")
    repetitions = 5 if quick else 21
    with tempfile.TemporaryDirectory(prefix="polysync-bench-pycache-") as cache:
        env = _child_env(cache)
        for code in SNIPPETS.values():  # compile and cache byte code once
            _sample(code, env)
        results = {name: Result(name) for name in SNIPPETS}
        loaded: dict[str, dict[str, Any]] = {}
        names = list(SNIPPETS)
        for index in range(repetitions):
            shift = index % len(names)
            for name in names[shift:] + names[:shift]:
                sample = _sample(SNIPPETS[name], env)
                results[name].samples.append(sample["seconds"])
                loaded[name] = sample
    table(list(results.values()), reference=OPENAI, unit="ms", scale=1e3)
    for name in (HOST, "import polysync_azure_openai.plugin"):
        heavy = loaded[name]["heavy"]
        note(f"{name}: {loaded[name]['modules']} modules loaded; heavy ones: {', '.join(heavy) if heavy else 'none'}")
    note(f"'heavy' means any of: {', '.join(HEAVY)}")
    ratio = results[HOST].median / results[OPENAI].median
    heavy_count = len(loaded[HOST]["heavy"])
    return [
        Target("cold start", "host entry-point load / import openai (median)", ratio, 0.15),
        Target("cold start", "heavy modules on the host's import path", heavy_count, 0, fmt="{:.0f}"),
    ]
