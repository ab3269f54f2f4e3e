"""Sovereign clouds and endpoint overrides (spec §1, §1.3)."""

from __future__ import annotations

import pluggy
import pytest

from polysync_azure_openai.cli.host import Platform
from polysync_azure_openai.emulator import Emulator
from polysync_azure_openai.errors import TransportError
from polysync_azure_openai.jobs import CHAT
from polysync_azure_openai.platform import PlatformConfig

from .conftest import emulator_attributes, imported, job


@pytest.fixture
def gov(ca) -> Emulator:
    with Emulator(ca=ca, cloud="AzureUSGovernment") as emulator:
        yield emulator


def test_us_government_platform_asks_for_us_scopes_and_links_the_us_portal(pm: pluggy.PluginManager, gov: Emulator) -> None:
    platform = Platform(
        name="gov", auth_method="Service Principal", attributes={**emulator_attributes(gov), "Azure Cloud": "AzureUSGovernment"}
    )
    jobs = imported(pm, platform)
    assert jobs
    result = pm.hook.submit(platform=platform, job=job(CHAT, "gpt-4o"), parameters={"user_prompt": "hi"}, run_key="k")
    assert result.status == "Success", result.message
    assert gov.token_requests(scope="https://cognitiveservices.azure.us/.default") == 1
    assert gov.token_requests(scope="https://management.core.usgovcloudapi.net/.default") == 1
    assert gov.token_requests() == 2
    url = pm.hook.monitor_url(platform=platform, job=job(CHAT, "gpt-4o"), run_id=result.run_id)
    assert url.startswith("https://portal.azure.us/#@/resource/subscriptions/")


def test_public_cloud_token_is_refused_by_a_government_resource(pm: pluggy.PluginManager, gov: Emulator) -> None:
    """A platform left on AzureCloud gets tokens for the wrong audience: Entra refuses the scope."""
    platform = Platform(
        name="wrong-cloud", auth_method="Service Principal", attributes=emulator_attributes(gov, Azure_Cloud="AzureCloud")
    )
    result = pm.hook.submit(platform=platform, job=job(CHAT, "gpt-4o"), parameters={"user_prompt": "hi"}, run_key="k")
    assert result.status == "Failed"
    assert "cognitiveservices.azure.com" in result.message


@pytest.mark.parametrize(
    "cloud,data_plane,arm,authority,data_scope,arm_scope,portal",
    [
        (
            "AzureCloud",
            "https://res.openai.azure.com",
            "https://management.azure.com",
            "login.microsoftonline.com",
            "https://cognitiveservices.azure.com/.default",
            "https://management.azure.com/.default",
            "portal.azure.com",
        ),
        (
            "AzureUSGovernment",
            "https://res.openai.azure.us",
            "https://management.usgovcloudapi.net",
            "login.microsoftonline.us",
            "https://cognitiveservices.azure.us/.default",
            "https://management.core.usgovcloudapi.net/.default",
            "portal.azure.us",
        ),
        (
            "azurechinacloud",
            "https://res.openai.azure.cn",
            "https://management.chinacloudapi.cn",
            "login.chinacloudapi.cn",
            "https://cognitiveservices.azure.cn/.default",
            "https://management.core.chinacloudapi.cn/.default",
            "portal.azure.cn",
        ),
    ],
)
def test_cloud_table(cloud: str, data_plane: str, arm: str, authority: str, data_scope: str, arm_scope: str, portal: str) -> None:
    config = PlatformConfig.from_host(
        Platform(
            name="c",
            auth_method="Service Principal",
            attributes={
                "OpenAI Resource Name": "res",
                "Azure Cloud": cloud,
                "Tenant Id": "contoso.onmicrosoft.com",
                "Client Id": "11111111-2222-3333-4444-555555555555",
                "Client Secret": "s",
                "Subscription Id": "11111111-2222-3333-4444-555555555555",
                "Resource Group Name": "rg",
            },
        )
    )
    assert config.openai_endpoint.base == data_plane
    assert config.arm_endpoint.base == arm
    assert config.auth.authority == authority and config.auth.instance_discovery is True
    assert (config.data_plane_scope, config.arm_scope) == (data_scope, arm_scope)
    assert config.portal_url().startswith(f"https://{portal}/#@/resource/subscriptions/")


@pytest.mark.parametrize(
    "value,expected_host,discovery",
    [
        ("login.microsoftonline.us", "login.microsoftonline.us", True),
        ("127.0.0.1:8443", "127.0.0.1:8443", False),
        ("https://127.0.0.1:8443", "127.0.0.1:8443", False),
        ("https://Login.Contoso.example/", "login.contoso.example", False),
    ],
)
def test_authority_host_forms(value: str, expected_host: str, discovery: bool) -> None:
    config = PlatformConfig.from_host(
        Platform(
            name="a",
            auth_method="Service Principal",
            attributes={
                "OpenAI Resource Name": "res",
                "Authority Host": value,
                "Tenant Id": "contoso.onmicrosoft.com",
                "Client Id": "11111111-2222-3333-4444-555555555555",
                "Client Secret": "s",
            },
        )
    )
    assert config.auth.authority == expected_host
    assert config.auth.instance_discovery is discovery


def test_endpoint_override_with_a_gateway_path_prefix() -> None:
    config = PlatformConfig.from_host(
        Platform(
            name="g",
            auth_method="API Key",
            attributes={
                "OpenAI Resource Name": "res",
                "OpenAI Endpoint": "https://apim.contoso.com/aoai/",
                "API Key": "k",
                "Resource Manager Endpoint": "https://arm-proxy.contoso.com:8443/arm",
            },
        )
    )
    assert config.openai_endpoint.url("/openai/x") == "https://apim.contoso.com/aoai/openai/x"
    assert config.arm_endpoint.url("/subscriptions") == "https://arm-proxy.contoso.com:8443/arm/subscriptions"


def test_overrides_with_a_gateway_path_prefix_reach_that_host_and_path(pm: pluggy.PluginManager, emu: Emulator) -> None:
    """A gateway at https://host/aoai: every data-plane and ARM path goes under its prefix."""
    from polysync_azure_openai.emulator import RecordingServer

    with RecordingServer(ca=emu.ca) as gateway:
        platform = Platform(
            name="gateway",
            auth_method="Service Principal",
            attributes={
                **emulator_attributes(emu),
                "OpenAI Endpoint": gateway.url + "/aoai/",
                "Resource Manager Endpoint": gateway.url + "/arm",
            },
        )
        result = pm.hook.submit(platform=platform, job=job(CHAT, "gpt-4o"), parameters={"user_prompt": "hi"}, run_key="k")
        with pytest.raises(TransportError, match="no 'value' list"):  # the recorder answers {}
            imported(pm, platform)
        paths = [r.path for r in gateway.requests]
    assert result.status == "Failed" and "has no choices" in result.message  # the recorder answered {}
    assert paths == [
        "/aoai/openai/v1/chat/completions",
        f"/arm/subscriptions/{emu.subscription_id}/resourceGroups/{emu.resource_group}"
        f"/providers/Microsoft.CognitiveServices/accounts/{emu.resource_name}/deployments",
    ]
    assert not [r for r in emu.requests if r.kind in ("chat", "arm.deployments")]  # tokens still came from the emulator
    assert emu.token_requests() == 2
