"""Batch from data (second-release §G): 100,000 requests in, 100,000 results out, against the emulator.

The emulator runs in its own process (it also runs every batch line through its chat code, which
is not what is measured). Each measured step runs in a fresh interpreter that first imports
everything it will use and builds its inputs, then resets its peak-RSS mark
(``/proc/self/clear_refs``) and times one call:

- ``build+upload``: the Batch job's ``submit`` hook with the 100,000 prompts as ``requests``
  (checking every item, writing the JSONL, uploading it, waiting for ``processed``, creating
  the batch); growth is measured beyond the ``requests`` value, which exists before the mark;
- ``join``: the ``get_status`` hook that sees the run ended (reading the output and error files
  and joining them into ``results``; ``OpenAI Max Results MB`` raised so the results are kept);
- ``raw upload``: the same JSONL bytes streamed as ``multipart/form-data`` by ``requests``,
  then read until ``processed`` (the service's own processing is in both);
- ``raw download``: the output and error files streamed by ``requests`` 1 MiB at a time;
- ``floor``: the raw figures plus ``json.loads`` of every downloaded line, timed apart from
  the download: what any join parsing with the standard library cannot go below (printed for
  reference; the target stays against the raw figures).

Peak RSS growth is ``VmHWM`` after the call minus ``VmRSS`` before it. The last line is the
figure the issue asks for.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .harness import CHILD_MEMORY, REPO, Result, Target, note, run_child, table, title, trust

ROWS = 100_000
QUICK_ROWS = 10_000
#: About 1,900 bytes a line: 100,000 lines are about 190 MB of JSONL, under Azure's 200 MB a file.
PROMPT_CHARS = 1_800
RUN_KEY = "bench-batch-data"

_MEMORY = (
    CHILD_MEMORY
    + """
def prompts(rows, chars):
    filler = ("lorem ipsum dolor sit amet " * (chars // 27 + 1))[:chars]
    return [f"Question {index}: {filler}" for index in range(rows)]
"""
)

_HOST = """
import polysync_azure_openai.jobs.batch, polysync_azure_openai.jobs.batch_rows, polysync_azure_openai.jobs.batch_shards
import polysync_azure_openai.jobs.batch_requests, polysync_azure_openai.jobs.batch_results, polysync_azure_openai.jobs.guard
import azure.identity, msal
from polysync_azure_openai.cli.host import Job, Platform, plugin_manager
args = json.loads(sys.argv[1])
pm = plugin_manager()
platform = Platform(name="bench", auth_method="Service Principal", attributes=args["attributes"])
job = Job(job_type="Azure OpenAI Batch Job", external_id="gpt-4o-batch::batch", name="bench",
          attributes={"OpenAI Max Results MB": "1024"})
pm.hook.get_status(platform=platform, job=job, run_id="gpt-4o-batch#batch#Failed")  # loads the service
"""

SUBMIT_CHILD = (
    _MEMORY
    + _HOST
    + """
requests = prompts(args["rows"], args["chars"])
reset = _reset_peak()
before = _status("VmRSS")
start = time.perf_counter()
result = pm.hook.submit(platform=platform, job=job, parameters={"requests": requests}, run_key=args["run_key"])
elapsed = time.perf_counter() - start
print(json.dumps({"seconds": elapsed, "growth": _status("VmHWM") - before, "reset": reset,
                  "status": result.status, "run_id": result.run_id, "message": result.message}))
"""
)

JOIN_CHILD = (
    _MEMORY
    + _HOST
    + """
reset = _reset_peak()
before = _status("VmRSS")
start = time.perf_counter()
result = pm.hook.get_status(platform=platform, job=job, run_id=args["run_id"])
elapsed = time.perf_counter() - start
growth = _status("VmHWM") - before
results = result.outputs["results"]
size = len(json.dumps(results, ensure_ascii=False).encode("utf-8")) if results is not None else 0
print(json.dumps({"seconds": elapsed, "growth": growth, "reset": reset, "status": result.status,
                  "rows": len(results or []), "results_bytes": size, "message": result.message,
                  "files": result.outputs["output_file_ids"] + result.outputs["error_file_ids"]}))
"""
)

_RAW = """
import requests, uuid
args = json.loads(sys.argv[1])
session = requests.Session()
session.trust_env = False
session.verify = args["ca_path"]
def token():
    return session.post(f"{args['url']}/{args['tenant_id']}/oauth2/v2.0/token", data={
        "grant_type": "client_credentials", "client_id": args["client_id"], "client_secret": args["secret"],
        "scope": "https://cognitiveservices.azure.com/.default"}, timeout=30).json()["access_token"]
# The platform's surface: v1 (the default) has its own paths and no api-version.
v1 = args["api_version"] == "v1"
base = args["url"] + ("/openai/v1" if v1 else "/openai")
query = {} if v1 else {"api-version": args["api_version"]}
def _begin():
    # The token is fetched inside the measured span, as the plugin's run fetches its own.
    return _reset_peak(), _status("VmRSS"), time.perf_counter(), {"Authorization": "Bearer " + token()}
"""

RAW_UPLOAD_CHILD = (
    _MEMORY
    + _RAW
    + """
reset, before, start, headers = _begin()
boundary = uuid.uuid4().hex
head = (f'--{boundary}\\r\\nContent-Disposition: form-data; name="purpose"\\r\\n\\r\\nbatch\\r\\n'
        f'--{boundary}\\r\\nContent-Disposition: form-data; name="file"; filename="raw.jsonl"\\r\\n'
        'Content-Type: application/octet-stream\\r\\n\\r\\n').encode()
tail = f"\\r\\n--{boundary}--\\r\\n".encode()
size = os.path.getsize(args["path"])
import io
class Body:
    # head + the file + tail, read in chunks; a known length, so requests sends it as is
    def __init__(self):
        self.parts = [io.BytesIO(head), open(args["path"], "rb"), io.BytesIO(tail)]
    def __len__(self):
        return len(head) + size + len(tail)
    def read(self, amount=-1):
        while self.parts:
            chunk = self.parts[0].read(amount)
            if chunk:
                return chunk
            self.parts.pop(0).close()
        return b""
body = Body()
headers["Content-Type"] = f"multipart/form-data; boundary={boundary}"
uploaded = session.post(f"{base}/files", params=query, data=body, headers=headers, timeout=(10, 600))
uploaded.raise_for_status()
file_id = uploaded.json()["id"]
def status():
    return session.get(f"{base}/files/{file_id}", params=query, headers=headers, timeout=(10, 600)).json()["status"]
while status() != "processed":
    time.sleep(0.05)
elapsed = time.perf_counter() - start
print(json.dumps({"seconds": elapsed, "growth": _status("VmHWM") - before, "reset": reset, "bytes": size}))
"""
)

RAW_DOWNLOAD_CHILD = (
    _MEMORY
    + _RAW
    + """
reset, before, start, headers = _begin()
written = 0
for file_id in args["files"]:
    with session.get(f"{base}/files/{file_id}/content", params=query, headers=headers, stream=True,
                     timeout=(10, 600)) as response:
        response.raise_for_status()
        with open(os.path.join(args["out"], file_id), "wb") as handle:
            for chunk in response.iter_content(1024 * 1024):
                handle.write(chunk)
                written += len(chunk)
elapsed = time.perf_counter() - start
growth = _status("VmHWM") - before
# Not part of the raw figure: the standard library's parse of every line downloaded, the part of
# any join that no code around it can avoid (the floor the README's explanation names).
start = time.perf_counter()
for file_id in args["files"]:
    with open(os.path.join(args["out"], file_id), "rb") as handle:
        for line in handle:
            if line.strip():
                json.loads(line)
parse = time.perf_counter() - start
print(json.dumps({"seconds": elapsed, "growth": growth, "reset": reset, "bytes": written, "parse": parse}))
"""
)


def serve() -> int:
    """Child: an emulator answering commands on stdin (one JSON object a line), until stdin closes."""
    from polysync_azure_openai.emulator import Emulator
    from polysync_azure_openai.emulator.cli import platform_attributes

    with Emulator() as emu:
        emu.batch_timing.requests_per_second = 1_000_000.0
        attributes = {**platform_attributes(emu), "Client Secret": emu.client_secret}
        info = {
            "url": emu.url,
            "ca_path": emu.ca_path,
            "tenant_id": emu.tenant_id,
            "client_id": emu.client_id,
            "secret": emu.client_secret,
            "api_version": attributes["OpenAI API Version"],
            "attributes": attributes,
        }
        print(json.dumps(info), flush=True)
        for line in sys.stdin:
            command = json.loads(line)
            if command["do"] == "finish":
                # Every batch runs to its end on the clock; reading it does the work, here.
                emu.advance(3600)
                states = [emu.batch(batch_id)["status"] for batch_id in emu.batches]
                print(json.dumps({"states": states}), flush=True)
    return 0


def _child(code: str, args: dict[str, Any], ca_path: str) -> dict[str, Any]:
    return run_child(code, args, ca_path, timeout=1800)


@dataclass
class Figure:
    """The summary's last line: the figures the issue names, with no verdict of their own."""

    text: str
    closing: bool = True

    def line(self) -> str:
        return self.text


def _jsonl_like_the_plugin(path: Path, rows: int, chars: int, deployment: str, url: str) -> int:
    """The same bytes the plugin uploads: its line builder's output for the same prompts."""
    namespace: dict[str, Any] = {}
    exec(_MEMORY, namespace)  # the children's own prompt builder, so the bytes match
    with path.open("wb") as handle:
        for index, prompt in enumerate(namespace["prompts"](rows, chars)):
            line = {
                "custom_id": f"row-{index}",
                "method": "POST",
                "url": url,
                "body": {"messages": [{"role": "user", "content": prompt}], "model": deployment},
            }
            handle.write(json.dumps(line, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n")
    return path.stat().st_size


def run(quick: bool) -> list[Target | Figure]:
    rows = QUICK_ROWS if quick else ROWS
    title(f"Batch from data: {rows:,} requests in, {rows:,} results out, emulator in its own process")
    server = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.batch_data", "--serve"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=REPO,
        env=trust().child_env(),
        text=True,
    )
    try:
        assert server.stdout is not None and server.stdin is not None
        line = server.stdout.readline()
        if not line:
            raise RuntimeError("the emulator process did not start")
        info = json.loads(line)
        ca = info["ca_path"]
        common = {**info, "rows": rows, "chars": PROMPT_CHARS, "run_key": RUN_KEY}
        with tempfile.TemporaryDirectory(prefix="polysync-bench-rows-") as scratch:
            jsonl = Path(scratch) / "raw.jsonl"
            url = "/v1/chat/completions" if info["api_version"] == "v1" else "/chat/completions"
            size = _jsonl_like_the_plugin(jsonl, rows, PROMPT_CHARS, "gpt-4o-batch", url)
            raw_up = _child(RAW_UPLOAD_CHILD, {**common, "path": str(jsonl)}, ca)
            jsonl.unlink()
            submitted = _child(SUBMIT_CHILD, common, ca)
            if submitted["status"] != "Running":
                raise RuntimeError(f"submit: {submitted['status']}: {submitted['message']}")
            server.stdin.write(json.dumps({"do": "finish"}) + "\n")
            server.stdin.flush()
            json.loads(server.stdout.readline())
            joined = _child(JOIN_CHILD, {**common, "run_id": submitted["run_id"]}, ca)
            if joined["status"] != "Success" or joined["rows"] != rows:
                raise RuntimeError(f"join: {joined['status']}, {joined['rows']} rows: {joined['message'][:500]}")
            out = Path(scratch) / "downloads"
            out.mkdir()
            raw_down = _child(RAW_DOWNLOAD_CHILD, {**common, "files": joined["files"], "out": str(out)}, ca)
    finally:
        assert server.stdin is not None
        server.stdin.close()
        server.wait(timeout=120)

    plugin_seconds = submitted["seconds"] + joined["seconds"]
    raw_seconds = raw_up["seconds"] + raw_down["seconds"]
    times = [
        Result("plugin: submit (build+upload)", [submitted["seconds"]]),
        Result("raw: streamed upload + processed", [raw_up["seconds"]]),
        Result("plugin: get_status (join)", [joined["seconds"]]),
        Result("raw: streamed download", [raw_down["seconds"]]),
        Result("plugin: both", [plugin_seconds]),
        Result("raw: both", [raw_seconds]),
        Result("floor: raw both + json.loads per line", [raw_seconds + raw_down["parse"]]),
    ]
    table(times, reference="raw: both", unit="s", scale=1.0)
    mb = 1024 * 1024
    build_growth = submitted["growth"] / mb
    join_growth = joined["growth"] / mb
    results_mb = joined["results_bytes"] / mb
    note(f"JSONL uploaded: {size / mb:.1f} MB; output and error files downloaded: {raw_down['bytes'] / mb:.1f} MB")
    note(f"peak RSS growth: submit {build_growth:.1f} MB (beyond the requests value), get_status {join_growth:.1f} MB")
    note(f"results JSON {results_mb:.1f} MB: the join may grow by 2 x {results_mb:.1f} + 32 = {2 * results_mb + 32:.1f} MB")
    note(
        f"json.loads of each downloaded line alone: {raw_down['parse']:.1f} s, so no join built on it comes closer "
        f"than {(raw_seconds + raw_down['parse']) / raw_seconds:.2f}x; plugin / that floor: "
        f"{plugin_seconds / (raw_seconds + raw_down['parse']):.2f}x"
    )
    note(f"raw upload grew {raw_up['growth'] / mb:.1f} MB, raw download {raw_down['growth'] / mb:.1f} MB")
    resets = {submitted["reset"], joined["reset"], raw_up["reset"], raw_down["reset"]}
    note(f"peak mark reset before each measured call: {'yes' if resets == {True} else 'no'}")
    return [
        Target("batch-data", "build+upload peak RSS growth", build_growth, 64.0, fmt="{:.1f} MB"),
        Target("batch-data", "join peak RSS growth", join_growth, 2 * results_mb + 32, fmt="{:.1f} MB"),
        Target("batch-data", "submit+join / raw upload+download", plugin_seconds / raw_seconds, 1.2),
        Figure(
            f"batch-data: build+upload {build_growth:.0f} MB peak, join {join_growth:.0f} MB peak, "
            f"{plugin_seconds:.1f} s for {rows} rows"
        ),
    ]


if __name__ == "__main__":
    if len(sys.argv) == 2 and sys.argv[1] == "--serve":
        sys.exit(serve())
    sys.exit("usage: python -m benchmarks.batch_data --serve")
