"""plugin.toml against literal values from the spec, against import_jobs, and as packaged."""

from __future__ import annotations

import tomllib
import zipfile
from importlib import resources
from pathlib import Path

import pluggy
import pytest

from polysync_azure_openai.emulator import Emulator
from polysync_azure_openai.jobs import BATCH, CHAT, EMBEDDING

from .conftest import imported, sp_platform

ROOT = Path(__file__).resolve().parents[1]

# Literal values from ../shared/spec/azure-openai.md, second-release.md (which wins where they
# differ: §B-§F) and host-contract.md, not from the code.
SPEC_PLATFORM_ATTRIBUTES = {
    "Subscription Id",
    "Resource Group Name",
    "OpenAI Resource Name",
    "OpenAI API Version",
    "Azure Cloud",
    "OpenAI Endpoint",
    "Resource Manager Endpoint",
    "Authority Host",
    "Request Timeout Seconds",
    "Max Retries",
    "Tenant Id",
    "Client Id",
    "Client Secret",
    "Certificate",
    "Certificate Password",
    "Thumbprint",
    "Token File Path",
    "API Key",
}
SPEC_SECRETS = {"Client Secret", "Certificate", "Certificate Password", "API Key"}
SPEC_DEFAULTS = {
    "OpenAI API Version": "v1",  # second-release §B: blank now means v1 (0.1.0: 2024-10-21)
    "Azure Cloud": "AzureCloud",
    "Request Timeout Seconds": "120",
    "Max Retries": "3",
}
SPEC_AUTH_METHODS = {
    "Polysync Service Principal": ([], True),
    "Service Principal": (["Tenant Id", "Client Id", "Client Secret"], True),
    "Certificate": (["Tenant Id", "Client Id", "Certificate", "Certificate Password", "Thumbprint"], True),
    "Managed Identity": (["Client Id"], True),
    "Workload Identity": (["Tenant Id", "Client Id", "Token File Path"], True),
    "API Key": (["API Key"], False),
}
SPEC_JOB_TYPES = {
    "Azure OpenAI Chat Completion": ("azure_openai_chat", False),
    "Azure OpenAI Embedding": ("azure_openai_embedding", False),
    "Azure OpenAI Batch Job": ("azure_openai_batch", True),
}
SPEC_JOB_ATTRIBUTES = {
    "Azure OpenAI Chat Completion": {
        "Deployment Name": "",
        "Model Name": "",
        "Model Format": "",  # §F
        "OpenAI System Prompt": "",
        "OpenAI Max Tokens": "",
        "OpenAI Temperature": "",
        "OpenAI Reasoning Effort": "",  # §C
        "OpenAI Response Format": "",  # §C
    },
    "Azure OpenAI Embedding": {"Deployment Name": "", "Model Name": "", "Model Format": "", "OpenAI Dimensions": ""},
    "Azure OpenAI Batch Job": {
        "Deployment Name": "",
        "Model Name": "",
        "OpenAI Input File ID": "",
        "OpenAI Batch Endpoint": "/chat/completions",
        "OpenAI Completion Window": "24h",
        # second-release §G: the chat attributes are defaults of the items of `requests`.
        "OpenAI System Prompt": "",
        "OpenAI Max Tokens": "",
        "OpenAI Temperature": "",
        "OpenAI Reasoning Effort": "",
        "OpenAI Response Format": "",
        "OpenAI Max Requests Per Batch": "",
        "OpenAI Max Results MB": "16",
    },
}
SPEC_PARAMETERS = {
    "Azure OpenAI Chat Completion": {
        "system_prompt": ("Input", "String", False),
        "user_prompt": ("Input", "String", True),
        "response": ("Output", "String", False),
        "prompt_tokens": ("Output", "Int", False),
        "completion_tokens": ("Output", "Int", False),
        "total_tokens": ("Output", "Int", False),
        "finish_reason": ("Output", "String", False),
        # second-release §C
        "response_schema": ("Input", "JSON", False),
        "response_json": ("Output", "JSON", False),
        "model": ("Output", "String", False),
        "cached_tokens": ("Output", "Int", False),
        "reasoning_tokens": ("Output", "Int", False),
    },
    "Azure OpenAI Embedding": {
        # second-release §D: exactly one of input and inputs, so neither alone is required.
        "input": ("Input", "String", False),
        "inputs": ("Input", "JSON", False),
        "embedding": ("Output", "JSON", False),
        "embeddings": ("Output", "JSON", False),
        "prompt_tokens": ("Output", "Int", False),
        "total_tokens": ("Output", "Int", False),
    },
    "Azure OpenAI Batch Job": {
        "input_file_id": ("Input", "String", False),
        "output_file_id": ("Output", "String", False),
        "error_file_id": ("Output", "String", False),
        "request_counts_total": ("Output", "Int", False),
        "request_counts_completed": ("Output", "Int", False),
        "request_counts_failed": ("Output", "Int", False),
        # second-release §G
        "requests": ("Input", "JSON", False),
        "results": ("Output", "JSON", False),
        "succeeded_count": ("Output", "Int", False),
        "failed_count": ("Output", "Int", False),
        "content_filtered_count": ("Output", "Int", False),
        "missing_count": ("Output", "Int", False),
        "prompt_tokens": ("Output", "Int", False),
        "completion_tokens": ("Output", "Int", False),
        "total_tokens": ("Output", "Int", False),
        "output_file_ids": ("Output", "JSON", False),
        "error_file_ids": ("Output", "JSON", False),
    },
}


@pytest.fixture(scope="module")
def manifest() -> dict:
    return tomllib.loads((ROOT / "plugin.toml").read_text())


def test_installed_manifest_is_the_repository_manifest(manifest: dict) -> None:
    packaged = resources.files("polysync_azure_openai").joinpath("plugin.toml").read_text()
    assert tomllib.loads(packaged) == manifest


def test_plugin_table(manifest: dict) -> None:
    assert manifest["plugin"] == {"name": "polysync-azure-openai", "version": "0.1.0", "platform_type": "Azure OpenAI"}


def test_platform_attributes_match_the_spec(manifest: dict) -> None:
    attributes = {a["name"]: a for a in manifest["platform"]["attributes"]}
    assert set(attributes) == SPEC_PLATFORM_ATTRIBUTES
    assert {n for n, a in attributes.items() if a["secret"]} == SPEC_SECRETS
    assert {n: a["default"] for n, a in attributes.items() if a["default"]} == SPEC_DEFAULTS
    assert attributes["OpenAI Resource Name"]["required"] is True
    assert attributes["Subscription Id"]["required"] is False  # only for discovery
    for a in attributes.values():
        assert a["description"]
        assert set(a["auth_methods"]) <= set(SPEC_AUTH_METHODS)


def test_auth_methods_match_the_spec(manifest: dict) -> None:
    methods = {m["name"]: (m["attributes"], m["supports_discovery"]) for m in manifest["platform"]["auth_methods"]}
    assert methods == SPEC_AUTH_METHODS
    attributes = {a["name"]: a for a in manifest["platform"]["attributes"]}
    for method, (names, _) in SPEC_AUTH_METHODS.items():
        for name in names:
            assert method in attributes[name]["auth_methods"], (method, name)


def test_the_code_serves_exactly_the_manifests_auth_methods(manifest: dict) -> None:
    from polysync_azure_openai.identity import AUTH_METHODS

    assert list(AUTH_METHODS) == [m["name"] for m in manifest["platform"]["auth_methods"]]


def test_job_types_match_the_spec(manifest: dict) -> None:
    job_types = {j["name"]: j for j in manifest["job_types"]}
    assert {n: (j["entry_point"], j["supports_cancel"]) for n, j in job_types.items()} == SPEC_JOB_TYPES
    for name, job_type in job_types.items():
        assert {a["name"]: a["default"] for a in job_type["attributes"]} == SPEC_JOB_ATTRIBUTES[name]
        assert {p["name"]: (p["direction"], p["data_type"], p["required"]) for p in job_type["parameters"]} == SPEC_PARAMETERS[
            name
        ]


def test_entry_points_in_manifest_are_installed(manifest: dict) -> None:
    from importlib import metadata

    installed = {ep.name for ep in metadata.entry_points(group="polysync.job_types")}
    assert {j["entry_point"] for j in manifest["job_types"]} == installed


def test_import_jobs_returns_what_the_manifest_declares(pm: pluggy.PluginManager, emu: Emulator, manifest: dict) -> None:
    jobs = imported(pm, sp_platform(emu))
    job_types = {j["name"]: j for j in manifest["job_types"]}
    assert {j.job_type for j in jobs} == {CHAT, EMBEDDING, BATCH}
    for job in jobs:
        declared = job_types[job.job_type]
        assert [(p.name, p.direction, p.data_type, p.required, p.description) for p in job.parameters] == [
            (p["name"], p["direction"], p["data_type"], p["required"], p["description"]) for p in declared["parameters"]
        ]
        assert {(p.name, p.direction, p.data_type, p.required) for p in job.parameters} == {
            (n, *v) for n, v in SPEC_PARAMETERS[job.job_type].items()
        }
        declared_attributes = {a["name"] for a in declared["attributes"]}
        assert set(job.attributes) <= declared_attributes
        assert job.attributes["Deployment Name"] == job.external_id.removesuffix("::batch")
        assert job.attributes["Model Name"]
        for name, default in SPEC_JOB_ATTRIBUTES[job.job_type].items():
            if default:
                assert job.attributes[name] == default


def test_wheel_ships_the_manifest(tmp_path: Path, manifest: dict) -> None:
    """The symlinked manifest lands in a wheel as a real file (editable installs: test above)."""
    from hatchling.builders.wheel import WheelBuilder

    wheel = Path(next(iter(WheelBuilder(str(ROOT)).build(directory=str(tmp_path), versions=["standard"]))))
    with zipfile.ZipFile(wheel) as archive:
        assert tomllib.loads(archive.read("polysync_azure_openai/plugin.toml").decode()) == manifest
        assert "polysync_azure_openai/py.typed" in archive.namelist()


def test_a_wheel_built_from_the_sdist_ships_the_manifest(tmp_path: Path, manifest: dict) -> None:
    """pip installs from an sdist by building a wheel from it: the symlink must survive that."""
    import tarfile

    from hatchling.builders.sdist import SdistBuilder
    from hatchling.builders.wheel import WheelBuilder

    sdist = Path(next(iter(SdistBuilder(str(ROOT)).build(directory=str(tmp_path), versions=["standard"]))))
    with tarfile.open(sdist) as archive:
        archive.extractall(tmp_path / "src", filter="tar")
    unpacked = next((tmp_path / "src").iterdir())
    wheel = Path(next(iter(WheelBuilder(str(unpacked)).build(directory=str(tmp_path / "dist"), versions=["standard"]))))
    with zipfile.ZipFile(wheel) as archive:
        assert tomllib.loads(archive.read("polysync_azure_openai/plugin.toml").decode()) == manifest
