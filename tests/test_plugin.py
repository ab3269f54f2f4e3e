"""Loading: the installed entry points through a real PluginManager, as the host does."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
from importlib import metadata

import pluggy

from polysync_azure_openai import hookspecs, plugin
from polysync_azure_openai.cli.host import Job, Platform
from polysync_azure_openai.jobs import BATCH, CHAT, EMBEDDING

HOOKS = ("import_jobs", "submit", "get_status", "cancel", "monitor_url")


def test_three_entry_points_name_module_level_instances() -> None:
    eps = {ep.name: ep for ep in metadata.entry_points(group="polysync.job_types")}
    assert set(eps) == {"azure_openai_chat", "azure_openai_embedding", "azure_openai_batch"}
    loaded = {name: ep.load() for name, ep in eps.items()}
    assert loaded["azure_openai_chat"] is plugin.chat
    assert loaded["azure_openai_embedding"] is plugin.embedding
    assert loaded["azure_openai_batch"] is plugin.batch
    for obj in loaded.values():
        assert not inspect.isclass(obj)
        assert isinstance(obj, plugin.AzureOpenAIJobTypePlugin)
    assert {type(o).job_type for o in loaded.values()} == {CHAT, EMBEDDING, BATCH}


def test_manager_loads_all_three_and_every_hook_is_specified(pm: pluggy.PluginManager) -> None:
    assert {name for name, _ in pm.list_name_plugin()} == {
        "azure_openai_chat",
        "azure_openai_embedding",
        "azure_openai_batch",
    }
    pm.check_pending()
    for hook in HOOKS:
        impls = getattr(pm.hook, hook).get_hookimpls()
        assert len([i for i in impls if not i.wrapper]) == 3, hook


def test_no_hookimpl_argument_has_a_default(pm: pluggy.PluginManager) -> None:
    checked = 0
    for hook in HOOKS:
        spec_args = list(inspect.signature(getattr(hookspecs, hook)).parameters)
        for impl in getattr(pm.hook, hook).get_hookimpls():
            params = inspect.signature(impl.function).parameters
            for name, param in params.items():
                assert param.default is inspect.Parameter.empty, f"{impl.function.__qualname__}({name}=...)"
                if name != "self":
                    assert name in spec_args
                    checked += 1
    assert checked >= 3 * (1 + 4 + 3 + 3 + 3)


def test_other_platform_types_and_job_types_get_none(pm: pluggy.PluginManager) -> None:
    other = Platform(name="x", auth_method="API Key", attributes={}, platform_type="Databricks")
    assert pm.hook.import_jobs(platform=other) == []
    foreign_job = Job(job_type="Databricks Job", external_id="1", name="x")
    ours = Platform(name="x", auth_method="API Key", attributes={"OpenAI Resource Name": "r", "API Key": "k"})
    assert pm.hook.submit(platform=ours, job=foreign_job, parameters={}, run_key="k") is None
    assert pm.hook.get_status(platform=ours, job=foreign_job, run_id="r") is None
    assert pm.hook.cancel(platform=ours, job=foreign_job, run_id="r") is None
    assert pm.hook.monitor_url(platform=ours, job=foreign_job, run_id="r") is None
    chat_job = Job(job_type=CHAT, external_id="gpt-4o", name="x")
    assert pm.hook.get_status(platform=other, job=chat_job, run_id="gpt-4o#sync#Success") is None


def test_loading_the_plugin_is_light() -> None:
    """The host imports every plugin at start-up: no requests, azure-identity, emulator or CLI."""
    # The host's own loading, not the CLI's stand-in (cli.host): that one lives in the CLI package.
    code = (
        "import json, sys\n"
        "import pluggy\n"
        "from polysync_azure_openai import hookspecs\n"
        "pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)\n"
        "pm.add_hookspecs(hookspecs)\n"
        "assert pm.load_setuptools_entrypoints('polysync.job_types') == 3\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    modules = set(json.loads(out))
    heavy = {m for m in modules if m.split(".")[0] in ("requests", "urllib3", "azure", "msal", "cryptography", "trustme")}
    assert heavy == set()
    ours = {m for m in modules if m.startswith("polysync_azure_openai")}
    assert not any(m.startswith(("polysync_azure_openai.emulator", "polysync_azure_openai.cli")) for m in ours)
    assert "polysync_azure_openai.jobs.chat" not in ours


def test_version_agrees_with_metadata() -> None:
    import polysync_azure_openai

    assert polysync_azure_openai.__version__ == metadata.version("polysync-azure-openai")
