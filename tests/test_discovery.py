"""Discovery: one ARM listing per host import_jobs call, classification, paging, nextLink safety."""

from __future__ import annotations

import itertools
import logging
import threading

import attrs
import pluggy
import pytest

from polysync_azure_openai.emulator import Deployment, Emulator
from polysync_azure_openai.emulator.faults import DropFields, Status
from polysync_azure_openai.errors import ConfigurationError, TransportError
from polysync_azure_openai.jobs import BATCH, CHAT, EMBEDDING

from .conftest import api_key_platform, imported, sp_platform

ALL = (CHAT, EMBEDDING, BATCH)


def listings(emu: Emulator) -> int:
    """ARM listings started (first pages), not counting nextLink pages."""
    return sum(1 for r in emu.requests if r.kind == "arm.deployments" and "$skipToken" not in r.query)


def test_classification_of_the_default_deployments(
    pm: pluggy.PluginManager, emu: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="polysync_azure_openai")
    jobs = imported(pm, sp_platform(emu))
    got = sorted((j.job_type, j.external_id) for j in jobs)
    assert got == sorted(
        [
            (CHAT, "gpt-4o"),
            (BATCH, "gpt-4o::batch"),
            (EMBEDDING, "embed-small"),
            (BATCH, "gpt-4o-batch::batch"),  # GlobalBatch SKU: batch only
            (CHAT, "o3-mini"),
            (BATCH, "o3-mini::batch"),
            (CHAT, "DeepSeek-R1"),  # a Foundry model: Chat only (second-release §F)
        ]
    )
    # dall-e (not chat-capable) and a deployment still Creating are skipped and named.
    warnings = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert "dalle" in warnings and "gpt-35-old (Creating)" in warnings
    gpt4o = next(j for j in jobs if j.external_id == "gpt-4o")
    assert gpt4o.attributes["Deployment Name"] == "gpt-4o"
    assert gpt4o.attributes["Model Name"] == "gpt-4o"
    assert gpt4o.attributes["Model Format"] == "OpenAI"
    assert "2024-08-06" in gpt4o.description and "GlobalStandard" in gpt4o.description
    deepseek = next(j for j in jobs if j.external_id == "DeepSeek-R1")
    assert deepseek.attributes["Model Format"] == "DeepSeek" and "v1 API only" in deepseek.description
    batch = next(j for j in jobs if j.external_id == "gpt-4o::batch")
    assert batch.attributes["OpenAI Batch Endpoint"] == "/chat/completions"
    assert batch.attributes["OpenAI Completion Window"] == "24h"


def test_classification_rules(pm: pluggy.PluginManager, emu: Emulator) -> None:
    emu.set_deployments(
        [
            Deployment(name="Embed-Upper", model="Text-EMBEDDING-ada-002"),  # case-insensitive
            Deployment(name="whisper", model="whisper"),  # non-chat family, no capabilities
            Deployment(name="tts", model="tts-hd", capabilities={}),
            Deployment(name="caps-no-chat", model="gpt-4o", capabilities={"completion": "true"}),
            Deployment(name="emb-batch", model="text-embedding-3-large", sku="GlobalBatch"),
            Deployment(name="dz", model="gpt-4o-mini", sku="datazonebatch"),
            Deployment(name="failed", model="gpt-4o", provisioning_state="Failed"),
        ]
    )
    got = sorted((j.job_type, j.external_id) for j in imported(pm, sp_platform(emu)))
    assert got == [(BATCH, "dz::batch"), (BATCH, "emb-batch::batch"), (EMBEDDING, "Embed-Upper")]


def test_deployments_not_provisioned_are_skipped_with_their_state_named(
    pm: pluggy.PluginManager, emu: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    emu.set_deployments(
        [
            Deployment(name="gpt-4o", model="gpt-4o"),
            Deployment(name="creating", model="gpt-4o", provisioning_state="Creating"),
            Deployment(name="stateless", model="gpt-4o", provisioning_state=""),
        ]
    )
    names = {j.external_id.split("::")[0] for j in imported(pm, sp_platform(emu))}
    assert names == {"gpt-4o"}
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert (
        "Skipped deployments that are not provisioned (provisioningState is not Succeeded): "
        "creating (Creating), stateless (no state)"
    ) in warnings, warnings


def test_a_listed_deployment_without_a_name_is_skipped_with_a_warning(
    pm: pluggy.PluginManager, emu: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    """An ARM item that names no deployment gets no job: there is no URL to call it by."""
    nameless = {"properties": {"model": {"name": "gpt-4o", "version": "2024-08-06"}, "provisioningState": "Succeeded"}}
    emu.inject(Status(200, body={"value": [nameless]}), kind="arm.deployments")
    assert imported(pm, sp_platform(emu)) == []
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "Skipped a deployment whose name cannot be used in a URL: ''" in warnings, warnings


def test_foundry_models_get_a_chat_or_embedding_job_only(pm: pluggy.PluginManager, emu: Emulator) -> None:
    emu.set_deployments(
        [
            Deployment(name="llama", model="Llama-3.3-70B-Instruct", format="Meta"),
            Deployment(name="mistral", model="Mistral-Large-2411", format="Mistral AI"),
            Deployment(name="cohere", model="Cohere-embed-v3-english", format="Cohere", capabilities={"embeddings": "true"}),
            Deployment(name="phi", model="Phi-4", format="Microsoft", capabilities={"completion": "true"}),
        ]
    )
    jobs = imported(pm, sp_platform(emu))
    assert sorted((j.job_type, j.external_id, j.attributes["Model Format"]) for j in jobs) == [
        (CHAT, "llama", "Meta"),
        (CHAT, "mistral", "Mistral AI"),
        (EMBEDDING, "cohere", "Cohere"),
    ]


@pytest.mark.parametrize(
    ("model", "version", "sku", "described"),
    [
        ("gpt-4o", "", "Standard", "(model gpt-4o, Standard SKU)."),  # no version listed: none invented
        ("", "", "Standard", "(model unknown, Standard SKU)."),  # no model name listed: said so
        ("gpt-4o", "2024-08-06", "", "(model gpt-4o version 2024-08-06)."),  # no SKU name listed: none invented
    ],
    ids=["no-version", "no-model-name", "no-sku-name"],
)
def test_a_job_description_names_only_what_arm_listed(
    pm: pluggy.PluginManager, emu: Emulator, model: str, version: str, sku: str, described: str
) -> None:
    emu.set_deployments([Deployment(name="plain", model=model, model_version=version, sku=sku)])
    chat = next(j for j in imported(pm, sp_platform(emu)) if j.job_type == CHAT)
    assert chat.description.endswith(f"on deployment 'plain' {described}"), chat.description


def test_a_missing_model_format_is_openai() -> None:
    from polysync_azure_openai.discovery import Deployment as Listed

    listed = Listed.from_json({"name": "x", "properties": {"model": {"name": "gpt-4o"}, "provisioningState": "Succeeded"}})
    assert listed.model_format == "OpenAI" and not listed.is_foundry


@pytest.mark.parametrize(
    "enabled",
    [None] + [set(c) for n in range(len(ALL) + 1) for c in itertools.combinations(ALL, n)],
    ids=lambda e: "all(None)" if e is None else ("+".join(sorted(x.split()[-1] for x in e)) or "empty"),
)
def test_exactly_one_listing_per_import_for_every_subset(
    pm: pluggy.PluginManager, emu: Emulator, enabled: set[str] | None
) -> None:
    emu.page_size = 2  # several pages: still one listing
    jobs = imported(pm, sp_platform(emu, enabled=enabled))
    expected_types = set(ALL) if enabled is None else enabled
    assert {j.job_type for j in jobs} <= expected_types
    if expected_types:
        assert {j.job_type for j in jobs} == expected_types
    assert listings(emu) == (1 if expected_types else 0)
    pages = sum(1 for r in emu.requests if r.kind == "arm.deployments")
    assert pages == (4 if expected_types else 0)  # 7 deployments, 2 per page


def test_two_imports_in_a_row_list_twice_and_see_new_deployments(pm: pluggy.PluginManager, emu: Emulator) -> None:
    first = imported(pm, sp_platform(emu))
    emu.set_deployments([Deployment(name="new-chat", model="gpt-4.1")])
    second = imported(pm, sp_platform(emu))
    assert listings(emu) == 2
    assert "gpt-4o" in {j.external_id for j in first}
    assert {j.external_id for j in second} == {"new-chat", "new-chat::batch"}


def test_two_platforms_imported_at_once_on_two_threads_never_share(pm: pluggy.PluginManager, ca, emu: Emulator) -> None:
    with Emulator(ca=ca) as other:
        other.set_deployments([Deployment(name="only-on-b", model="gpt-4o-mini")])
        barrier = threading.Barrier(2)
        results: dict[str, list] = {}

        def run(name: str, target: Emulator) -> None:
            barrier.wait()
            results[name] = imported(pm, sp_platform(target, name=name))

        threads = [threading.Thread(target=run, args=("a", emu)), threading.Thread(target=run, args=("b", other))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert "gpt-4o" in {j.external_id for j in results["a"]}
        assert {j.external_id for j in results["b"]} == {"only-on-b", "only-on-b::batch"}
        assert listings(emu) == 1 and listings(other) == 1


def test_same_platform_on_two_threads_lists_once_per_import(pm: pluggy.PluginManager, emu: Emulator) -> None:
    barrier = threading.Barrier(4)

    def run() -> None:
        barrier.wait()
        imported(pm, sp_platform(emu))

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert listings(emu) == 4


def test_api_key_platform_cannot_import(pm: pluggy.PluginManager, emu: Emulator) -> None:
    with pytest.raises(ConfigurationError) as info:
        imported(pm, api_key_platform(emu))
    message = str(info.value)
    assert "'API Key'" in message and "Service Principal" in message and "Import Jobs" in message
    assert emu.requests == []
    # Another platform with the same attributes is another platform: its own name, not the first's.
    renamed = attrs.evolve(api_key_platform(emu), name="key-twin")
    with pytest.raises(ConfigurationError, match=r"^Platform 'key-twin': Import Jobs needs"):
        imported(pm, renamed)


def test_discovery_needs_subscription_and_resource_group(pm: pluggy.PluginManager, emu: Emulator) -> None:
    with pytest.raises(ConfigurationError, match="'Subscription Id' and 'Resource Group Name' are not set"):
        imported(pm, sp_platform(emu, Subscription_Id=None, Resource_Group_Name=None))
    assert emu.requests == []


def test_missing_reader_role_is_a_clear_error(pm: pluggy.PluginManager, emu: Emulator) -> None:
    client_id = "0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b"
    emu.add_secret_client(client_id, "s3cret-no-reader", roles=("Cognitive Services OpenAI User",))
    with pytest.raises(Exception) as info:
        imported(pm, sp_platform(emu, Client_Id=client_id, Client_Secret="s3cret-no-reader"))
    message = str(info.value)
    assert "403" in message and "AuthorizationFailed" in message
    # The hook's error carries the same advice as the CLI's check, not only the status.
    assert "Fix: grant the identity the 'Reader' role" in message, message


def test_a_listing_without_a_value_list_is_a_malformed_listing(pm: pluggy.PluginManager, emu: Emulator) -> None:
    emu.inject(DropFields("value"), kind="arm.deployments")
    with pytest.raises(TransportError) as info:
        imported(pm, sp_platform(emu))
    assert info.value.detail.code == "MalformedListing"  # the code an operator can search for
    assert "HTTP 200 MalformedListing: Listing deployments: the answer has no 'value' list" in str(info.value)


def test_next_link_to_another_host_is_never_followed(pm: pluggy.PluginManager, emu: Emulator) -> None:
    emu.page_size = 2
    emu.next_link_origin = "https://evil.example"
    with pytest.raises(TransportError) as info:
        imported(pm, sp_platform(emu))
    assert "evil.example" in str(info.value) and "not followed" in str(info.value)
    assert "UnsafeNextLink" in str(info.value)  # the code an operator can search for
    assert not any("evil" in r.headers.get("host", "") for r in emu.requests)
    assert sum(1 for r in emu.requests if r.kind == "arm.deployments") == 1


def test_next_link_on_the_public_arm_host_is_rebased_onto_the_override(pm: pluggy.PluginManager, emu: Emulator) -> None:
    emu.page_size = 2
    emu.next_link_origin = "https://management.azure.com"
    jobs = imported(pm, sp_platform(emu))
    assert len(jobs) == 7
    assert sum(1 for r in emu.requests if r.kind == "arm.deployments") == 4


def test_override_with_path_prefix_is_not_a_license_for_other_paths(pm: pluggy.PluginManager, emu: Emulator) -> None:
    """A public-host nextLink whose path is not the listing path aborts the import."""
    from polysync_azure_openai.discovery import _next_url
    from polysync_azure_openai.platform import PlatformConfig

    config = PlatformConfig.from_host(sp_platform(emu))
    listing = config.resource_path() + "/deployments"
    assert _next_url(config, f"https://management.azure.com{listing}?api-version=2023-05-01&$skipToken=x", listing).startswith(
        emu.url + listing
    )
    with pytest.raises(TransportError):
        _next_url(config, "https://management.azure.com/subscriptions/other/providers?x=1", listing)
    with pytest.raises(TransportError):
        _next_url(config, "http://" + emu.host + listing, listing)


@pytest.mark.parametrize(
    ("link_path", "followed"),
    [("/arm/subscriptions/x/deployments", True), ("/arm", True), ("/armEVIL/subscriptions/x", False), ("/ar", False)],
)
def test_a_next_link_under_a_gateway_prefix_is_matched_by_path_segment(emu: Emulator, link_path: str, followed: bool) -> None:
    from polysync_azure_openai.discovery import _next_url
    from polysync_azure_openai.platform import PlatformConfig

    config = PlatformConfig.from_host(sp_platform(emu, Resource_Manager_Endpoint=emu.url + "/arm"))
    link = f"{emu.url}{link_path}?$skipToken=1"
    if followed:
        assert _next_url(config, link, "/listing") == link
    else:
        with pytest.raises(TransportError, match="not followed"):
            _next_url(config, link, "/listing")


# A nextLink's query is ARM's to write: a "?" inside it is legal (RFC 3986 allows it in a query).
@pytest.mark.parametrize(
    ("link", "followed"),
    [
        # The configured endpoint: followed exactly as written, a second "?" included.
        ("{emu}{listing}?$skipToken=a?b", "{emu}{listing}?$skipToken=a?b"),
        # The public ARM host through a proxy: rebased, the query kept whole, none invented.
        (
            "https://management.azure.com{listing}?api-version=2023-05-01&$skipToken=a?b",
            "{emu}{listing}?api-version=2023-05-01&$skipToken=a?b",
        ),
        ("https://management.azure.com{listing}", "{emu}{listing}"),
    ],
    ids=["own-host-query-with-question-mark", "public-host-query-with-question-mark", "public-host-no-query"],
)
def test_a_followed_next_link_keeps_its_query_whole(emu: Emulator, link: str, followed: str) -> None:
    from polysync_azure_openai.discovery import _next_url
    from polysync_azure_openai.platform import PlatformConfig

    config = PlatformConfig.from_host(sp_platform(emu))
    listing = config.resource_path() + "/deployments"
    assert _next_url(config, link.format(emu=emu.url, listing=listing), listing) == followed.format(emu=emu.url, listing=listing)


@pytest.mark.parametrize(
    ("link", "named"),
    [
        # A fragment after the query: the configured host, but not a link ARM writes.
        ("{emu}{listing}?$skipToken=1#top", "{host}"),
        # No host at all (a relative link): named as such, not as an empty host.
        ("{listing}?$skipToken=1", "an unparseable address"),
    ],
    ids=["fragment-in-query", "relative"],
)
def test_an_unsafe_next_link_is_refused_with_its_code_and_host(emu: Emulator, link: str, named: str) -> None:
    from polysync_azure_openai.discovery import _next_url
    from polysync_azure_openai.platform import PlatformConfig

    config = PlatformConfig.from_host(sp_platform(emu))
    listing = config.resource_path() + "/deployments"
    with pytest.raises(TransportError) as info:
        _next_url(config, link.format(emu=emu.url, listing=listing), listing)
    assert info.value.detail.code == "UnsafeNextLink"
    where = named.format(host=emu.host)
    assert f"nextLink points at {where}, which is not the configured Resource Manager endpoint" in str(info.value)


def test_a_next_link_that_spells_out_port_443_is_the_same_host(emu: Emulator) -> None:
    from polysync_azure_openai.discovery import _next_url
    from polysync_azure_openai.platform import PlatformConfig

    config = PlatformConfig.from_host(sp_platform(emu, Resource_Manager_Endpoint="https://arm.contoso.example"))
    link = "https://arm.contoso.example:443/subscriptions/x/deployments?$skipToken=1"
    assert _next_url(config, link, "/listing") == link


def test_a_thousand_deployments_in_ten_pages_is_one_listing(pm: pluggy.PluginManager, emu: Emulator) -> None:
    emu.set_deployments([Deployment(name=f"d{i:04d}", model="gpt-4o-mini") for i in range(1000)])
    emu.page_size = 100
    jobs = imported(pm, sp_platform(emu))
    assert len(jobs) == 2000  # chat + batch for each
    assert listings(emu) == 1
    assert sum(1 for r in emu.requests if r.kind == "arm.deployments") == 10


# Spec §1.2: chat-capable unless capabilities has keys but no chatCompletion "true", or the model
# name holds a known non-chat family. The families are spelled out here, not read from
# discovery.NON_CHAT_FAMILIES, so that a family dropped from that list fails its row.
NON_CHAT_MODELS = {
    "dall-e": "dall-e-3",
    "gpt-image": "gpt-image-1",
    "whisper": "whisper",
    "tts": "tts-hd",
    "transcribe": "gpt-4o-transcribe",
    "realtime": "gpt-4o-realtime-preview",
    "sora": "Sora",
}
CAPABILITIES = {
    "true": ({"chatCompletion": "true"}, True),
    "True": ({"chatCompletion": "True"}, True),
    "false": ({"chatCompletion": "false"}, False),
    "other-keys-only": ({"completion": "true", "embeddings": "false"}, False),
    # An older ARM api-version lists no capabilities: the model name decides.
    "missing": ({}, True),
}


def test_chat_capability_table(pm: pluggy.PluginManager, emu: Emulator, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="polysync_azure_openai")
    deployments = [Deployment(name=f"gpt-4o-{row}", model="gpt-4o", capabilities=caps) for row, (caps, _) in CAPABILITIES.items()]
    expected = {f"gpt-4o-{row}": chat for row, (_, chat) in CAPABILITIES.items()}
    for family, model in NON_CHAT_MODELS.items():
        for row in ("missing", "true"):
            deployments.append(Deployment(name=f"{family}-{row}", model=model, capabilities=CAPABILITIES[row][0]))
            expected[f"{family}-{row}"] = False
    emu.set_deployments(deployments)
    jobs = imported(pm, sp_platform(emu))
    got = {d.name: sorted(j.job_type for j in jobs if j.external_id in (d.name, f"{d.name}::batch")) for d in deployments}
    assert got == {name: sorted([CHAT, BATCH]) if chat else [] for name, chat in expected.items()}
    warnings = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert all(name in warnings for name, chat in expected.items() if not chat)
