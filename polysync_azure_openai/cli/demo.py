"""``demo``: every job type against the embedded Azure emulator, through the hooks.

The emulator's throwaway CA is handed to the plugin with the platform (``ca_bundle``), not
through the environment.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from ..jobs import BATCH, CHAT, EMBEDDING
from .output import EXIT_OK, EXIT_REMOTE_FAILURE
from .runs import wait_for_run
from .target import Target, require_emulator

if TYPE_CHECKING:
    import pluggy

    from ..emulator import Emulator
    from ..results import ImportedJob
    from .host import Job, Platform


class DemoFailed(Exception):
    """A demo step did not end as the emulator guarantees it does."""


def demo_command(args: argparse.Namespace) -> int:
    from ..errors import PolysyncAzureOpenAIError

    require_emulator()
    started = time.monotonic()
    try:
        _run_demo()
    except (DemoFailed, PolysyncAzureOpenAIError) as exc:
        print(f"\nDEMO FAILED: {exc}", file=sys.stderr)
        return EXIT_REMOTE_FAILURE
    print(f"\nDemo finished in {time.monotonic() - started:.1f} s: every step succeeded.")
    return EXIT_OK


def _step(title: str) -> None:
    print(f"\n== {title}")


def _expect(result: Any, status: str, what: str) -> None:
    if result is None:
        raise DemoFailed(f"{what}: no plugin answered")
    if result.status != status:
        raise DemoFailed(f"{what}: status {result.status}, expected {status}: {result.message}")


def _run_demo() -> None:
    from ..emulator import Emulator
    from ..emulator.cli import platform_attributes
    from .host import Job, Platform, import_all, plugin_manager

    with Emulator() as emu:
        # The emulator's throwaway CA is handed to the plugin with the platform, not the environment.
        _step("Azure emulator")
        print(f"endpoint     {emu.url} (Entra ID, Azure Resource Manager and data plane)")
        print(f"CA bundle    {emu.ca_path}")

        platform = Platform(
            name="Azure OpenAI (emulator)",
            auth_method="Service Principal",
            attributes={**platform_attributes(emu), "Client Secret": emu.client_secret},
            ca_bundle=emu.ca_path,
        )
        pm = plugin_manager()
        plugins = sorted(name for name, _ in pm.list_name_plugin())
        _step("Plugin loaded through pluggy")
        print("entry points " + ", ".join(plugins))

        _step("import_jobs")
        jobs = import_all(pm, platform)
        for job in jobs:
            print(f"  {job.job_type:<30} {job.external_id:<20} {job.description}")
        by_type = {job_type: [j for j in jobs if j.job_type == job_type] for job_type in (CHAT, EMBEDDING, BATCH)}
        if not by_type[CHAT] or not by_type[EMBEDDING]:
            raise DemoFailed("import_jobs found no chat or no embedding deployment")

        _step("Chat Completion run")
        chat_job = Job.from_imported(by_type[CHAT][0], **{"OpenAI Max Tokens": "64", "OpenAI Temperature": "0.2"})
        result = pm.hook.submit(
            platform=platform,
            job=chat_job,
            parameters={"system_prompt": "Answer briefly.", "user_prompt": "Name a prime number."},
            run_key="demo-chat-1",
        )
        _expect(result, "Success", "chat submit")
        out = result.outputs
        print(f"deployment   {chat_job.external_id}")
        print(f"answer       {out['response']}")
        print(f"tokens       {out['prompt_tokens']} prompt + {out['completion_tokens']} completion = {out['total_tokens']}")
        print(f"finish       {out['finish_reason']}")
        print(f"RunId        {result.run_id}")
        status = pm.hook.get_status(platform=platform, job=chat_job, run_id=result.run_id)
        _expect(status, "Success", "chat get_status")
        print(f"get_status   {status.status} (decoded locally, no request)")
        print(f"monitor      {pm.hook.monitor_url(platform=platform, job=chat_job, run_id=result.run_id)}")

        _demo_reasoning(pm, platform, by_type[CHAT])
        _demo_structured_output(pm, platform, chat_job)

        _step("Embedding run")
        embed_job = Job.from_imported(by_type[EMBEDDING][0])
        result = pm.hook.submit(
            platform=platform,
            job=embed_job,
            parameters={"input": "Polysync schedules Azure OpenAI work."},
            run_key="demo-embedding-1",
        )
        _expect(result, "Success", "embedding submit")
        vector = result.outputs["embedding"]
        print(f"deployment   {embed_job.external_id}")
        print(f"embedding    {len(vector)} dimensions, starts {', '.join(f'{v:.4f}' for v in vector[:3])}, ...")
        print(f"tokens       {result.outputs['prompt_tokens']} prompt, {result.outputs['total_tokens']} total")
        print(f"RunId        {result.run_id}")
        status = pm.hook.get_status(platform=platform, job=embed_job, run_id=result.run_id)
        _expect(status, "Success", "embedding get_status")
        print(f"get_status   {status.status}")
        print(f"monitor      {pm.hook.monitor_url(platform=platform, job=embed_job, run_id=result.run_id)}")
        shorter = Job.from_imported(by_type[EMBEDDING][0], **{"OpenAI Dimensions": "256"})
        texts = ["first text", "second text", "third text"]
        result = pm.hook.submit(platform=platform, job=shorter, parameters={"inputs": texts}, run_key="demo-embedding-2")
        _expect(result, "Success", "embedding submit with inputs")
        sizes = ", ".join(str(len(vector)) for vector in result.outputs["embeddings"])
        print(f"inputs       {len(texts)} texts in one call, OpenAI Dimensions 256: vectors of {sizes} numbers, in input order")
        _demo_batch(emu, pm, platform, by_type[BATCH])
        _demo_rows(emu, pm, platform, by_type[BATCH])
        print(f"\ntoken requests to Entra ID: {emu.token_requests()} (one per scope, reused across runs)")
        _demo_identities(emu, pm)


def _demo_identities(emu: Emulator, pm: pluggy.PluginManager) -> None:
    from .demo_identities import demo_identities

    with tempfile.TemporaryDirectory(prefix="polysync-demo-") as scratch:
        demo_identities(emu, pm, Path(scratch), _expect)


#: The structured-output run's schema: strict, so every property is required and none other allowed.
CITY_SCHEMA: Final = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "country": {"type": "string"}, "population": {"type": "integer"}},
    "required": ["city", "country", "population"],
    "additionalProperties": False,
}


def _demo_reasoning(pm: pluggy.PluginManager, platform: Platform, chat_jobs: Sequence[ImportedJob]) -> None:
    """A reasoning model on the v1 API with low effort: its reasoning tokens are an output."""
    from .host import Job

    _step("Reasoning model run (v1 API, OpenAI Reasoning Effort low)")
    imported = next((j for j in chat_jobs if j.external_id == "o3-mini"), None)
    if imported is None:
        raise DemoFailed("import_jobs found no chat job for the o3-mini deployment")
    job = Job.from_imported(imported, **{"OpenAI Reasoning Effort": "low", "OpenAI Max Tokens": "2000"})
    result = pm.hook.submit(
        platform=platform, job=job, parameters={"user_prompt": "Is 91 a prime number?"}, run_key="demo-reasoning-1"
    )
    _expect(result, "Success", "reasoning submit")
    out = result.outputs
    print(f"deployment   {job.external_id} (model {out['model']})")
    print(f"answer       {out['response']}")
    print(f"reasoning    {out['reasoning_tokens']} reasoning tokens of {out['completion_tokens']} completion tokens")


def _demo_structured_output(pm: pluggy.PluginManager, platform: Platform, chat_job: Job) -> None:
    """A JSON Schema as 'OpenAI Response Format': the answer arrives parsed, in response_json."""
    from .host import Job

    _step("Structured output run (OpenAI Response Format: a JSON Schema)")
    job = Job(
        job_type=chat_job.job_type,
        external_id=chat_job.external_id,
        name=chat_job.name,
        attributes={**chat_job.attributes, "OpenAI Response Format": json.dumps(CITY_SCHEMA)},
    )
    result = pm.hook.submit(
        platform=platform,
        job=job,
        parameters={"user_prompt": "Name the largest city of France."},
        run_key="demo-structured-1",
    )
    _expect(result, "Success", "structured output submit")
    print(f"schema       {json.dumps(CITY_SCHEMA)}")
    print(f"response_json {json.dumps(result.outputs['response_json'])}")


DEMO_QUESTIONS: Final = (
    "When was Microsoft founded?",
    "What is the capital of France?",
    "Name a prime number above 90.",
    "How many legs has a spider?",
    "What colour is the sky on a clear day?",
    "Translate 'good morning' into German.",
)


def _demo_batch(emu: Emulator, pm: pluggy.PluginManager, platform: Platform, batch_jobs: Sequence[ImportedJob]) -> None:
    """Upload a JSONL file, submit the batch job, poll it on the emulator's clock, read the answers."""
    from ..files import FilesApi
    from ..platform import PlatformConfig
    from .batch_input import validate_file
    from .host import Job

    _step("Batch run")
    # The Global Batch deployment serves only batch work: the job the batch docs describe.
    imported = next((j for j in batch_jobs if j.external_id == "gpt-4o-batch::batch"), None)
    if imported is None:
        raise DemoFailed("import_jobs found no batch job for the gpt-4o-batch deployment")
    deployment = imported.attributes["Deployment Name"]
    config = PlatformConfig.from_host(platform)
    files = FilesApi(config)
    # The lines' url in the platform's API's form: /v1/chat/completions on the v1 API.
    url = config.surface.batch_endpoint("/chat/completions")
    with tempfile.TemporaryDirectory(prefix="polysync-demo-") as scratch:
        input_path = Path(scratch) / "questions.jsonl"
        with input_path.open("w", encoding="utf-8") as handle:
            for number, question in enumerate(DEMO_QUESTIONS, start=1):
                body = {"model": deployment, "messages": [{"role": "user", "content": question}], "max_tokens": 40}
                line = {"custom_id": f"question-{number}", "method": "POST", "url": url, "body": body}
                handle.write(json.dumps(line) + "\n")
        report = validate_file(input_path, deployment=deployment)
        if not report.ok:
            raise DemoFailed("the demo's batch input is invalid: " + "; ".join(p.describe() for p in report.problems))
        print(f"input        {report.requests} requests to {url} for deployment '{deployment}', checked line by line")
        uploaded = files.wait_until_processed(files.upload(input_path).id, interval=1.0, pause=emu.advance)
        if uploaded.status != "processed":
            raise DemoFailed(f"the uploaded input {uploaded.id} is {uploaded.status}: {uploaded.status_details}")
        print(f"uploaded     {uploaded.id} ({uploaded.bytes} bytes, {uploaded.status})")

        job = Job.from_imported(imported)
        result = pm.hook.submit(platform=platform, job=job, parameters={"input_file_id": uploaded.id}, run_key="demo-batch-1")
        _expect(result, "Running", "batch submit")
        print(f"RunId        {result.run_id}")
        # A slow emulated deployment, so that each poll (one emulated second) shows progress.
        emu.batch_timing.requests_per_second = 2.0
        result = wait_for_run(Target(platform, pm, "demo", emu), job, result, 1.0, stream=sys.stdout)
        _expect(result, "Success", "batch get_status")
        out = result.outputs
        completed, total, failed = (out[f"request_counts_{k}"] for k in ("completed", "total", "failed"))
        print(f"requests     {completed} of {total} completed, {failed} failed")

        path, size = files.download(out["output_file_id"], Path(scratch))
        print(f"output       {out['output_file_id']}: {size} bytes downloaded")
        answers = {}
        for raw in path.read_text(encoding="utf-8").splitlines():
            line = json.loads(raw)
            answers[line["custom_id"]] = line["response"]["body"]["choices"][0]["message"]["content"]
        for custom_id in sorted(answers)[:3]:
            print(f"  {custom_id:<12} {answers[custom_id]}")
        print(f"monitor      {pm.hook.monitor_url(platform=platform, job=job, run_id=result.run_id)}")


#: The rows demo: 1,000 prompts, 300 a shard, and a quota that holds three shards' prompt tokens.
ROWS: Final = 1000
ROWS_PER_SHARD: Final = 300


def _demo_rows(emu: Emulator, pm: pluggy.PluginManager, platform: Platform, batch_jobs: Sequence[ImportedJob]) -> None:
    """Rows in, rows out: 1,000 prompts as ``requests`` in one run, four shards, one held back by the quota."""
    from .host import Job

    _step("Batch from rows (the requests parameter)")
    imported = next(j for j in batch_jobs if j.external_id == "gpt-4o-batch::batch")
    deployment = imported.attributes["Deployment Name"]
    prompts = [f"Question {index}: name a prime number above {index}." for index in range(ROWS)]
    system_prompt = "Answer in a few words."
    # The emulator counts a prompt token per word, the system prompt's included.
    words = len(prompts[-1].split()) + len(system_prompt.split())
    # Room for three shards' prompt tokens: the fourth is refused until one of them has finished.
    emu.set_batch_token_quota(deployment, 3 * ROWS_PER_SHARD * words)
    emu.batch_timing.requests_per_second = 100.0
    job = Job.from_imported(
        imported, **{"OpenAI Max Requests Per Batch": str(ROWS_PER_SHARD), "OpenAI System Prompt": system_prompt}
    )
    result = pm.hook.submit(platform=platform, job=job, parameters={"requests": prompts}, run_key="demo-rows-1")
    _expect(result, "Running", "rows submit")
    print(f"requests     {ROWS:,} prompts, at most {ROWS_PER_SHARD} a shard; enqueued-token quota {3 * ROWS_PER_SHARD * words:,}")
    print(f"RunId        {result.run_id}")
    result = wait_for_run(Target(platform, pm, "demo", emu), job, result, 1.0, stream=sys.stdout)
    _expect(result, "Success", "rows get_status")
    attempts: dict[str, int] = {}
    for batch_id in emu.batches:
        metadata = emu.batch(batch_id).get("metadata") or {}
        if metadata.get("polysync_run_key") == "demo-rows-1":
            attempts[metadata["polysync_shard"]] = attempts.get(metadata["polysync_shard"], 0) + 1
    for shard, count in sorted(attempts.items()):
        note = f", refused {count - 1} time(s) for quota first" if count > 1 else ""
        print(f"shard {shard:<6} {count} batch(es){note}")
    if max(attempts.values(), default=1) < 2:
        raise DemoFailed("no shard was held back by the quota")
    out = result.outputs
    print(
        f"rows         {out['succeeded_count']:,} succeeded, {out['failed_count']:,} failed, "
        f"{out['content_filtered_count']:,} content filtered, {out['missing_count']:,} missing"
    )
    print(f"tokens       {out['prompt_tokens']:,} prompt + {out['completion_tokens']:,} completion = {out['total_tokens']:,}")
    for index in (0, 500, ROWS - 1):
        row = out["results"][index]
        print(f"  {row['custom_id']:<9} {prompts[index]:<48} -> {row['response']}")
