"""``polysync-azure-openai``: the demo, the local emulator and operator commands.

Every command loads the plugin through a real ``pluggy.PluginManager`` and the installed entry
points, exactly as the Polysync host does.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

EXIT_OK = 0
EXIT_REMOTE_FAILURE = 1
EXIT_BAD_INPUT = 2


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="polysync-azure-openai",
        description="Azure OpenAI job types for Polysync: demo, local emulator and operator tools.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser("demo", help="run every job type against the embedded Azure emulator")
    demo.set_defaults(handler=_demo)

    emulator = commands.add_parser("emulator", help="run the local Azure emulator until interrupted")
    emulator.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: any free port)")
    emulator.add_argument("--state-dir", help="where to write platform.toml and emulator.env (default: a temp dir)")
    emulator.set_defaults(handler=_emulator)

    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    handler: Any = args.handler
    result: int = handler(args)
    return result


def _emulator(args: argparse.Namespace) -> int:
    from .emulator.cli import run_emulator_cli

    argv = ["--port", str(args.port)]
    if args.state_dir:
        argv += ["--state-dir", args.state_dir]
    return run_emulator_cli(argv)


# -- demo -----------------------------------------------------------------------------------------


class DemoFailed(Exception):
    pass


def _demo(args: argparse.Namespace) -> int:
    from .errors import PolysyncAzureOpenAIError

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
    from .emulator import Emulator
    from .host import Job, Platform, import_all, plugin_manager
    from .jobs import BATCH, CHAT, EMBEDDING

    with Emulator() as emu:
        # The emulator's throwaway CA, trusted the standard way (spec §1), before any session exists.
        os.environ["REQUESTS_CA_BUNDLE"] = emu.ca_path
        _step("Azure emulator")
        print(f"endpoint     {emu.url} (Entra ID, Azure Resource Manager and data plane)")
        print(f"CA bundle    {emu.ca_path}")

        platform = Platform(
            name="Azure OpenAI (emulator)",
            auth_method="Service Principal",
            attributes={
                "Subscription Id": emu.subscription_id,
                "Resource Group Name": emu.resource_group,
                "OpenAI Resource Name": emu.resource_name,
                "OpenAI Endpoint": emu.url,
                "Resource Manager Endpoint": emu.url,
                "Authority Host": emu.url,
                "Tenant Id": emu.tenant_id,
                "Client Id": emu.client_id,
                "Client Secret": emu.client_secret,
            },
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
        print(f"token requests to Entra ID: {emu.token_requests()} (one per scope, reused across runs)")


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
