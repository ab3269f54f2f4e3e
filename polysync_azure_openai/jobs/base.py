"""The small base the three job types share: import, job input, RunIds, monitor links."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar, Final

import attrs

from .. import discovery
from ..errors import ConfigurationError, ErrorDetail, RemoteError, TransportError
from ..http import RetryMode, data_plane, dumps, read_json, response_request_id
from ..http.quota import estimated_tokens
from ..identity import API_KEY
from ..ids import DECIMAL, DEPLOYMENT_NAME, POSITIVE_WHOLE_NUMBER, json_type, lone_surrogate, shown
from ..manifest import JobTypeSpec, job_type_spec
from ..platform import PlatformConfig
from ..results import FAILED, SUCCESS, ImportedJob, RunResult
from ..troubleshooting import failure_message
from . import OPENAI_FORMAT, run_ids

#: Texts larger than this are refused before sending (Azure's largest context is far smaller).
MAX_TEXT_CHARS: Final = 1_000_000


def utcnow() -> datetime:
    return datetime.now(UTC)


class JobInput:
    """A job's attributes and a run's parameters, with errors that name the field and the fix."""

    def __init__(self, job: Any, parameters: Mapping[str, Any] | None = None) -> None:
        self.job_name = str(getattr(job, "name", "") or getattr(job, "external_id", "") or "(unnamed)")
        raw = getattr(job, "attributes", None) or {}
        self.attributes = {str(k): str(v).strip() for k, v in raw.items() if v is not None and str(v).strip()}
        self.parameters = parameters or {}

    def fail(self, what: str, problem: str, fix: str) -> ConfigurationError:
        return ConfigurationError(f"Job '{self.job_name}': {what} {problem}. {fix}")

    def attribute(self, name: str) -> str | None:
        value = self.attributes.get(name)
        if value is not None:
            self.check_encodable(f"attribute '{name}'", value)
        return value

    def check_encodable(self, what: str, value: str) -> None:
        """Text that JSON and UTF-8 can carry: a lone surrogate would fail mid-request."""
        surrogate = lone_surrogate(value)
        if surrogate is not None:
            raise self.fail(
                what,
                f"contains a lone surrogate ({surrogate}), which is not text UTF-8 can carry",
                "Fix the upstream output that produced it (a broken emoji or a mis-decoded byte).",
            )

    def positive_int(self, name: str, maximum: int = 10_000_000) -> int | None:
        value = self.attribute(name)
        if value is None:
            return None
        if not POSITIVE_WHOLE_NUMBER.fullmatch(value) or int(value) > maximum:
            raise self.fail(
                f"attribute '{name}'",
                f"is {shown(value)}",
                f"Use a whole number from 1 to {maximum} (no sign, no decimals), or leave it blank.",
            )
        return int(value)

    def decimal(self, name: str, low: float, high: float) -> float | None:
        value = self.attribute(name)
        if value is None:
            return None
        number = float(value) if DECIMAL.fullmatch(value) else math.nan
        if not math.isfinite(number) or not low <= number <= high:
            raise self.fail(
                f"attribute '{name}'",
                f"is {shown(value)}",
                f"Use a decimal number from {low:g} to {high:g} (for example 0.7), or leave it blank.",
            )
        return number

    def required_text(self, name: str) -> str:
        """A required String parameter: present, a string, not blank, not oversized."""
        value = self.text(name, required=True)
        assert value is not None
        return value

    def text(self, name: str, *, required: bool = False) -> str | None:
        """A String parameter: a string, not oversized; None when absent or blank and optional."""
        if name not in self.parameters or self.parameters[name] is None:
            if required:
                raise self.fail(
                    f"parameter '{name}'",
                    "is missing",
                    "Give it a value in the Task's parameters, or map it from an upstream task's output.",
                )
            return None
        value = self.parameters[name]
        if not isinstance(value, str):
            raise self.fail(
                f"parameter '{name}'",
                f"is {json_type(value)}, not a string",
                "Pass text (quote numbers and serialise objects to a string first).",
            )
        if not value.strip():
            if required:
                raise self.fail(f"parameter '{name}'", "is empty", "Give it a non-blank text.")
            return None
        self.check_encodable(f"parameter '{name}'", value)
        if len(value) > MAX_TEXT_CHARS:
            raise self.fail(
                f"parameter '{name}'",
                f"has {len(value):,} characters, more than the {MAX_TEXT_CHARS:,} allowed",
                "Shorten it, or use the Azure OpenAI Batch Job for bulk work.",
            )
        return value


def json_object(payload: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    """``payload[key]`` when it is a JSON object, else an empty one (Azure omits or nulls fields)."""
    value = payload.get(key)
    return value if isinstance(value, dict) else {}


def int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def unusable_answer(problem: str, request_id: str) -> TransportError:
    """A 200 whose body lacks what the run needs: a failure, never a crash."""
    return TransportError(ErrorDetail(200, "UnexpectedResponse", f"the answer (HTTP 200) {problem}", request_id))


class JobService:
    """What every job type has: its manifest spec, import, deployment and monitor link."""

    name: ClassVar[str]
    #: Operation name used in advice ("chat", "embeddings", "batch").
    operation: ClassVar[str]
    external_id_suffix: ClassVar[str] = ""

    @property
    def spec(self) -> JobTypeSpec:
        return job_type_spec(self.name)

    # -- import_jobs ----------------------------------------------------------------------------

    def import_jobs(self, platform: Any) -> list[ImportedJob]:
        enabled = getattr(platform, "enabled_job_types", None)
        if enabled is not None and self.name not in enabled:
            return []
        config = PlatformConfig.from_host(platform)
        catalog = discovery.catalog(config)
        return [self.imported_job(d) for d in catalog.deployments_for(self.name)]

    def imported_job(self, deployment: discovery.Deployment) -> ImportedJob:
        spec = self.spec
        attributes = spec.defaults()
        attributes["Deployment Name"] = deployment.name
        attributes["Model Name"] = deployment.model_name
        if any(a.name == "Model Format" for a in spec.attributes):
            attributes["Model Format"] = deployment.model_format
        return ImportedJob(
            job_type=self.name,
            external_id=deployment.name + self.external_id_suffix,
            name=deployment.name + self.external_id_suffix,
            description=f"{self.name} on deployment '{deployment.name}' ({deployment.describe()}).",
            attributes=attributes,
            parameters=spec.parameters,
        )

    # -- shared by the run hooks ----------------------------------------------------------------

    def deployment(self, job: Any, job_input: JobInput) -> str:
        """``Deployment Name`` when set, else the External Id without its suffix (spec §2, §4)."""
        name = job_input.attribute("Deployment Name")
        source = "attribute 'Deployment Name'"
        if name is None:
            external = str(getattr(job, "external_id", "") or "")
            name = external.removesuffix(self.external_id_suffix) if self.external_id_suffix else external
            source = "External Id"
        if not DEPLOYMENT_NAME.fullmatch(name):
            raise job_input.fail(
                source,
                f"is {shown(name)}: a deployment name is 1-64 letters, digits, '.', '-' or '_' (not dots alone)",
                "Re-run Import Jobs, or set 'Deployment Name' to a deployment of the resource.",
            )
        return name

    def submit(self, platform: Any, job: Any, parameters: Mapping[str, Any], run_key: str) -> RunResult:
        raise NotImplementedError

    def get_status(self, platform: Any, job: Any, run_id: str) -> RunResult:
        raise NotImplementedError

    def cancel(self, platform: Any, job: Any, run_id: str) -> RunResult:
        raise NotImplementedError

    def monitor_url(self, platform: Any, job: Any, run_id: str) -> str:
        self.check_run_id(run_id)
        return PlatformConfig.from_host(platform).portal_url()

    def check_run_id(self, run_id: str) -> None:
        raise NotImplementedError

    def failed(
        self,
        run_id: str,
        detail: ErrorDetail,
        *,
        what: str,
        config: PlatformConfig,
        deployment: str | None,
        started: datetime | None,
    ) -> RunResult:
        message = failure_message(
            detail,
            what=what,
            operation=self.operation,
            deployment=deployment,
            api_key=config.auth.method == API_KEY,
            v1=config.surface.is_v1,
        )
        return RunResult(run_id=run_id, status=FAILED, outputs={}, message=message, started_at=started, ended_at=utcnow())


@attrs.frozen
class Prepared:
    """A synchronous run's request body, and what reading its answer needs to know."""

    body: dict[str, Any]
    #: Chat: the answer must parse as JSON (a JSON response format is in force).
    json_format: bool = False
    #: Chat: the job's model is a reasoning model (per 'Model Name').
    reasoning: bool = False
    #: Embedding: the run gave 'inputs' (a list), not 'input'.
    many: bool = False


@attrs.frozen
class Outcome:
    """What a 200 answer means for the run: its outputs, message and status."""

    outputs: dict[str, Any]
    message: str
    status: str = SUCCESS


def model_format_gate(job_input: JobInput, config: PlatformConfig) -> None:
    """A Foundry model (a 'Model Format' other than OpenAI) runs only on the v1 API (second-release §F)."""
    model_format = job_input.attribute("Model Format")
    if model_format is None or model_format.lower() == OPENAI_FORMAT.lower() or config.surface.is_v1:
        return
    raise job_input.fail(
        f"model format {model_format!r} (attribute 'Model Format')",
        "is a Foundry model, which Azure serves only on the v1 API, but the platform's 'OpenAI API Version' is "
        f"{config.api_version!r}",
        "Set the platform's 'OpenAI API Version' to v1 (or leave it blank).",
    )


class SynchronousService(JobService):
    """Chat Completion and Embedding: one POST during submit; the RunId records the outcome."""

    path_suffix: ClassVar[str]

    def prepare(self, job_input: JobInput, config: PlatformConfig) -> Prepared:
        """The request for this run, every input checked before any call."""
        raise NotImplementedError

    def read_outputs(self, payload: Mapping[str, Any], request_id: str, prepared: Prepared) -> Outcome:
        """What a 200 answer means; raise RemoteError if it is unusable."""
        raise NotImplementedError

    def submit(self, platform: Any, job: Any, parameters: Mapping[str, Any], run_key: str) -> RunResult:
        config = PlatformConfig.from_host(platform)
        job_input = JobInput(job, parameters)
        deployment = self.deployment(job, job_input)
        model_format_gate(job_input, config)
        prepared = self.prepare(job_input, config)
        client = data_plane(config)
        started = utcnow()
        try:
            payload, request_id = self.call(client, config, deployment, prepared.body)
            outcome = self.read_outputs(payload, request_id, prepared)
        except RemoteError as exc:
            return self.failed(
                run_ids.local(deployment, run_ids.SYNC, FAILED),
                exc.detail,
                what=f"{self.name} on deployment '{deployment}'",
                config=config,
                deployment=deployment,
                started=started,
            )
        return RunResult(
            run_id=run_ids.local(deployment, run_ids.SYNC, outcome.status),
            status=outcome.status,
            outputs=outcome.outputs,
            message=outcome.message,
            started_at=started,
            ended_at=utcnow(),
        )

    def call(self, client: Any, config: PlatformConfig, deployment: str, body: dict[str, Any]) -> tuple[dict[str, Any], str]:
        """POST the body; on the v1 API the body names the deployment (``model``), the path does not."""
        surface = config.surface
        response = client.send(
            "POST",
            surface.inference_path(deployment, self.path_suffix),
            params=surface.params,
            body=dumps({"model": deployment, **body} if surface.is_v1 else body),
            mode=RetryMode.POST,
            # Paced in the deployment's lane, shared by every thread calling it (spec §H).
            deployment=deployment,
            tokens=estimated_tokens(body),
        )
        return read_json(response, f"The {self.operation} answer"), response_request_id(response)

    def get_status(self, platform: Any, job: Any, run_id: str) -> RunResult:
        return self._from_run_id(
            run_id,
            f"{self.name} runs finish within submit; this status is read from the RunId "
            "(the outputs were recorded when the run ended).",
        )

    def cancel(self, platform: Any, job: Any, run_id: str) -> RunResult:
        return self._from_run_id(
            run_id,
            f"Cancel is not supported for {self.name}: the run finished within submit "
            "with status {status}; nothing was sent to Azure.",
        )

    def _from_run_id(self, run_id: str, message: str) -> RunResult:
        """The outcome a synchronous RunId records; ``{status}`` in ``message`` names it."""
        status = run_ids.decode_sync(run_id, self.name).status
        return RunResult(run_id=run_id, status=status, outputs={}, message=message.format(status=status))

    def check_run_id(self, run_id: str) -> None:
        run_ids.decode_sync(run_id, self.name)
