"""The gate between the job services and the host: every hook's answers and errors are scrubbed."""

from __future__ import annotations

import pluggy
import pytest

from polysync_azure_openai.emulator import Deployment, Emulator
from polysync_azure_openai.emulator.faults import Status
from polysync_azure_openai.errors import ConfigurationError
from polysync_azure_openai.jobs import BATCH, CHAT, EMBEDDING

from ..conftest import api_key_platform, imported, job, sp_platform

JOBS = {CHAT: "gpt-4o", EMBEDDING: "embed-small", BATCH: "gpt-4o-batch::batch"}


@pytest.mark.parametrize("hook", ["get_status", "cancel", "monitor_url"])
@pytest.mark.parametrize("job_type", list(JOBS))
def test_a_run_id_carrying_the_key_is_refused_with_the_key_masked(
    pm: pluggy.PluginManager, emu: Emulator, hook: str, job_type: str
) -> None:
    # A host that mixed up its fields: the refusal quotes the RunId, never the key in it.
    with pytest.raises(ConfigurationError) as raised:
        getattr(pm.hook, hook)(platform=api_key_platform(emu), job=job(job_type, JOBS[job_type]), run_id=f"x#{emu.api_key}")
    assert "is not one this plugin issued" in str(raised.value)
    assert emu.api_key not in str(raised.value) and "***" in str(raised.value)
    assert emu.requests == []


def test_a_cancel_answer_echoing_the_key_is_scrubbed(pm: pluggy.PluginManager, emu: Emulator) -> None:
    cancelling = {
        "id": "batch_echo",
        "object": "batch",
        "endpoint": "/chat/completions",
        "status": "cancelling",
        "input_file_id": "file-abc",
        "output_file_id": f"file-{emu.api_key}",
        "completion_window": "24h",
        "created_at": 1700000000,
        "request_counts": {"total": 2, "completed": 1, "failed": 0},
    }
    emu.inject(Status(200, body={**cancelling, "status": "in_progress"}), kind="batches.get")
    emu.inject(Status(200, body=cancelling), kind="batches.cancel")
    result = pm.hook.cancel(platform=api_key_platform(emu), job=job(BATCH, JOBS[BATCH]), run_id="batch_echo")
    assert result.status == "Running" and "cancelling" in result.message, result
    assert result.outputs["output_file_id"] == "file-***"
    assert emu.api_key not in repr(result)


def test_an_imported_jobs_description_is_scrubbed_of_a_secret_the_resource_manager_echoed(
    pm: pluggy.PluginManager, emu: Emulator
) -> None:
    # The model version reaches only the description (not the attributes) of the imported job.
    emu.set_deployments([Deployment("gpt-4o", "gpt-4o", model_version=f"v-{emu.client_secret}")])
    (chat,) = [j for j in imported(pm, sp_platform(emu)) if j.job_type == CHAT]
    assert chat.description.startswith("Azure OpenAI Chat Completion on deployment 'gpt-4o' (model gpt-4o version v-***")
    assert emu.client_secret not in chat.description
