"""``check``: the platform's Test connectivity, step by step, each failure with its fix.

It uses what the host uses and the plugin's public services, never a job type's internals:

- configuration: ``PlatformConfig.from_host``, the plugin's own validation;
- a token per scope: ``auth.token_provider``, the public token service (no hook gets a token
  alone, and a token failure is the one a new platform most often has);
- the deployments: the ``import_jobs`` hook, so the step shows what Import Jobs would create;
- one tiny run: the ``submit`` hook (a chat with max tokens 1, or one embedding), then
  ``get_status`` on the RunId it returned.
"""

from __future__ import annotations

import argparse
import time
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final

import attrs

from ..errors import ConfigurationError, RemoteError
from ..jobs import BATCH, CHAT, EMBEDDING
from ..results import SUCCESS
from .output import EXIT_BAD_INPUT, EXIT_OK, EXIT_REMOTE_FAILURE, CommandFailed, Output, split_fix
from .target import Target, answer, open_target

if TYPE_CHECKING:
    from ..platform import PlatformConfig
    from ..results import ImportedJob, RunResult
    from .host import Job

OK: Final = "OK"
FAIL: Final = "FAIL"
SKIP: Final = "SKIP"
STEP_NAMES: Final = ("configuration", "token: data plane", "token: Resource Manager", "list deployments", "data-plane call")
CALL_FIX: Final = "Check 'OpenAI Endpoint' or 'OpenAI Resource Name', 'OpenAI API Version' and the network."
LISTING_FIX: Final = "Check 'Subscription Id', 'Resource Group Name', 'OpenAI Resource Name' and 'Resource Manager Endpoint'."
#: What the tiny run sends per job type: its parameters, its job attributes and its label.
TINY_RUNS: Final[dict[str, tuple[dict[str, str], dict[str, str], str]]] = {
    CHAT: ({"user_prompt": "Reply with OK."}, {"OpenAI Max Tokens": "1"}, "chat completion (max tokens 1)"),
    EMBEDDING: ({"input": "connectivity check"}, {}, "embedding"),
}
#: A reasoning model spends tokens on reasoning before any answer: with a budget of 1 its answer
#: is always empty, which is a Failed run. Low effort (every reasoning model takes it) and room.
REASONING_TINY_RUN: Final = (
    {"OpenAI Max Tokens": "500", "OpenAI Reasoning Effort": "low"},
    "chat completion (reasoning effort low, max tokens 500)",
)


@attrs.frozen
class Step:
    """One line of the connectivity report."""

    name: str
    status: str
    detail: str
    fix: str = ""
    #: A failure of the configuration itself (exit 2) rather than of Azure (exit 1).
    bad_input: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"step": self.name, "status": self.status, "detail": self.detail, "fix": self.fix or None}


def check_command(args: argparse.Namespace) -> int:
    out = Output(args.json)
    steps: list[Step] = []
    name: str | None = None
    source = str(args.config) if args.config else "embedded emulator"
    try:
        with open_target(args) as target:
            name, source = target.platform.name, target.source
            steps = check_steps(target, args.deployment)
    except CommandFailed as exc:
        return out.fail(exc.exit_code, exc.message, exc.fix)
    except ConfigurationError as exc:
        steps = [Step(STEP_NAMES[0], FAIL, str(exc), bad_input=True)]
        steps += [Step(n, SKIP, "needs a valid configuration") for n in STEP_NAMES[1:]]

    failed = [s for s in steps if s.status == FAIL]
    out.line(f"Checking platform '{name or '?'}' ({source})")
    for step in steps:
        out.line(f"  {step.status:<5} {step.name:<24} {step.detail}")
        if step.fix:
            out.line(f"  {'':<5} {'':<24} fix: {step.fix}")
    ran = [s for s in steps if s.status != SKIP]
    if failed:
        out.line(f"{len(failed)} of {len(ran)} checks failed.")
    else:
        out.line(
            f"All {len(ran)} checks that ran passed" + (f"; {len(steps) - len(ran)} skipped." if len(ran) < len(steps) else ".")
        )
    out.data({"platform": name, "source": source, "ok": not failed, "steps": [s.to_json() for s in steps]})
    if any(s.bad_input for s in failed):
        return EXIT_BAD_INPUT
    return EXIT_REMOTE_FAILURE if failed else EXIT_OK


def check_steps(target: Target, deployment: str | None) -> list[Step]:
    from ..identity import API_KEY
    from ..platform import PlatformConfig

    config = PlatformConfig.from_host(target.platform)
    steps = [
        Step(
            STEP_NAMES[0],
            OK,
            f"{config.auth.method}, resource '{config.resource_name}', endpoint {config.openai_endpoint.base}, "
            f"cloud {config.cloud.name}, {config.surface.describe()}",
        )
    ]
    jobs: list[ImportedJob] | None = None
    if config.auth.method == API_KEY:
        steps += [Step(n, SKIP, "API Key platforms send the key, not a Microsoft Entra token") for n in STEP_NAMES[1:3]]
        steps.append(
            Step(
                STEP_NAMES[3],
                SKIP,
                "impossible with 'API Key': Azure Resource Manager does not accept keys, so Import Jobs cannot list deployments",
                "Switch the platform to 'Service Principal' (or 'Certificate', 'Managed Identity', 'Workload Identity') "
                "for Import Jobs (and back to 'API Key' for runs if you want).",
            )
        )
        data_token_ok = True
    else:
        data_token = _token_step(STEP_NAMES[1], config, config.data_plane_scope)
        arm_token = _token_step(STEP_NAMES[2], config, config.arm_scope)
        steps += [data_token, arm_token]
        data_token_ok = data_token.status == OK
        if arm_token.status != OK:
            steps.append(Step(STEP_NAMES[3], SKIP, "needs a Resource Manager token (see above)"))
        else:
            listing, jobs = _import_step(target)
            steps.append(listing)
    if not data_token_ok:
        steps.append(Step(STEP_NAMES[4], SKIP, "needs a data-plane token (see above)"))
    else:
        steps.append(_call_step(target, jobs, deployment))
    return steps


def _token_step(name: str, config: PlatformConfig, scope: str) -> Step:
    from ..auth import token_provider

    try:
        token_provider(config).token(scope)
    except ConfigurationError as exc:
        return Step(name, FAIL, str(exc), bad_input=True)
    except RemoteError as exc:
        return Step(name, FAIL, exc.detail.describe(), exc.detail.fix or _token_fix(exc))
    return Step(name, OK, f"got a token for {scope}")


def _token_fix(exc: RemoteError) -> str:
    """The fix for token failures the token service leaves without one."""
    from ..errors import TransportError

    if isinstance(exc, TransportError):
        return "Check 'Authority Host' (or 'Azure Cloud'), the network and proxy, and REQUESTS_CA_BUNDLE for a private CA."
    return "Check 'Tenant Id', 'Client Id' and the secret or certificate, and that 'Azure Cloud' is the tenant's cloud."


def _import_step(target: Target) -> tuple[Step, list[ImportedJob] | None]:
    from ..troubleshooting import advise
    from .host import import_all

    try:
        jobs = import_all(target.pm, target.platform)
    except ConfigurationError as exc:
        return Step(STEP_NAMES[3], FAIL, str(exc), bad_input=True), None
    except RemoteError as exc:
        detail = advise(exc.detail, operation="discovery")
        return Step(STEP_NAMES[3], FAIL, detail.describe(), detail.fix or LISTING_FIX), None
    deployments = {job.attributes.get("Deployment Name") for job in jobs}
    counts = ", ".join(
        f"{sum(job.job_type == job_type for job in jobs)} {label}"
        for job_type, label in ((CHAT, "chat"), (EMBEDDING, "embedding"), (BATCH, "batch"))
    )
    # Deployments Import Jobs skips are named in the plugin's own warnings, on stderr.
    return Step(STEP_NAMES[3], OK, f"{len(jobs)} jobs on {len(deployments)} deployments: {counts}"), jobs


def _call_step(target: Target, jobs: Sequence[ImportedJob] | None, deployment: str | None) -> Step:
    """One tiny run on a deployment Import Jobs found or the user named."""
    name = STEP_NAMES[4]
    callable_jobs = sorted((j for j in (jobs or ()) if j.job_type in (CHAT, EMBEDDING)), key=_cheapest_first)
    if deployment is None:
        if jobs is None:
            return Step(name, SKIP, "no deployment known (the listing did not run)", "Pass --deployment NAME to call one.")
        if not callable_jobs:
            return Step(
                name,
                SKIP,
                "the resource has no chat or embedding deployment to call",
                "Deploy a model, or pass --deployment NAME.",
            )
        deployment = callable_jobs[0].attributes["Deployment Name"]
    known = next((j for j in callable_jobs if j.attributes.get("Deployment Name") == deployment), None)
    # Without a listing (API Key) the kind is unknown: chat first, then embeddings.
    kinds = [known.job_type] if known is not None else [CHAT] if jobs is not None else [CHAT, EMBEDDING]
    failures: list[RunResult] = []
    for kind in kinds:
        started = time.monotonic()
        try:
            result = _tiny_run(target, _job(kind, deployment, known))
        except ConfigurationError as exc:
            # Nothing was sent: a deployment name or a platform value the plugin refuses.
            return Step(name, FAIL, str(exc), bad_input=True)
        if result.status != SUCCESS:
            failures.append(result)
            continue
        elapsed = time.monotonic() - started
        label = TINY_RUNS[kind][2] if kind != CHAT or not _reasons(known) else REASONING_TINY_RUN[1]
        detail = f"{label} on '{deployment}' answered in {elapsed:.2f} s; get_status read {result.run_id} back"
        return Step(name, OK, detail)
    # The first kind tried is the one the deployment most likely serves: its failure says most.
    text, fix = split_fix(failures[0].message or f"the run ended {failures[0].status}")
    return Step(name, FAIL, text, fix or CALL_FIX)


def _reasons(known: ImportedJob | None) -> bool:
    from ..jobs.chat_body import is_reasoning_model

    return known is not None and is_reasoning_model(known.attributes.get("Model Name"))


def _cheapest_first(job: ImportedJob) -> tuple[bool, bool, bool]:
    """Chat before embeddings; an Azure OpenAI model before a Foundry one; no reasoning before reasoning."""
    from ..jobs import OPENAI_FORMAT

    foundry = job.attributes.get("Model Format", OPENAI_FORMAT).lower() != OPENAI_FORMAT.lower()
    return (job.job_type != CHAT, foundry, _reasons(job))


def _job(kind: str, deployment: str, known: ImportedJob | None) -> Job:
    from .host import Job

    attributes = REASONING_TINY_RUN[0] if kind == CHAT and _reasons(known) else TINY_RUNS[kind][1]
    if known is not None:
        return Job.from_imported(known, **attributes)
    return Job(job_type=kind, external_id=deployment, name=deployment, attributes=attributes)


def _tiny_run(target: Target, job: Job) -> RunResult:
    """Submit, then read the run's status back from its RunId, both through the hooks."""
    hook = target.pm.hook
    parameters = TINY_RUNS[job.job_type][0]
    result: RunResult = answer(
        hook.submit(platform=target.platform, job=job, parameters=parameters, run_key=f"check-{uuid.uuid4()}"), "submit"
    )
    if result.status != SUCCESS:
        return result
    status: RunResult = answer(hook.get_status(platform=target.platform, job=job, run_id=result.run_id), "get_status")
    return result if status.status == SUCCESS else status
