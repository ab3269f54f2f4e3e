"""The token audiences each Azure cloud accepts, as the emulator enforces them."""

from __future__ import annotations

import attrs


def normalize_audience(audience: str) -> str:
    """Audiences compare without their trailing slash: Entra and ARM treat both spellings alike."""
    return audience.rstrip("/").lower()


@attrs.frozen
class Cloud:
    """One Azure cloud: the audiences its data plane and Resource Manager accept."""

    name: str
    data_plane_audience: str
    # The 401 body names the audience; sovereign clouds were observed with a trailing slash.
    data_plane_audience_display: str
    arm_audiences: tuple[str, ...]
    cloud_instance_name: str
    msgraph_host: str

    def accepts_for_data_plane(self, audience: str) -> bool:
        return normalize_audience(audience) == normalize_audience(self.data_plane_audience)

    def accepts_for_arm(self, audience: str) -> bool:
        wanted = normalize_audience(audience)
        return any(wanted == normalize_audience(known) for known in self.arm_audiences)

    def issues_for(self, audience: str) -> bool:
        """Whether the token endpoint issues tokens for this audience (one of the cloud's)."""
        return self.accepts_for_data_plane(audience) or self.accepts_for_arm(audience)

    def arm_audience_list(self) -> str:
        """The allowed-audiences list as ARM quotes it in InvalidAuthenticationTokenAudience."""
        spellings: list[str] = []
        for audience in self.arm_audiences:
            bare = audience.rstrip("/")
            spellings.extend([bare + "/", bare])
        return ", ".join(f"'{spelling}'" for spelling in spellings)


CLOUDS: dict[str, Cloud] = {
    cloud.name: cloud
    for cloud in (
        Cloud(
            name="AzureCloud",
            data_plane_audience="https://cognitiveservices.azure.com",
            data_plane_audience_display="https://cognitiveservices.azure.com",
            arm_audiences=("https://management.core.windows.net/", "https://management.azure.com"),
            cloud_instance_name="microsoftonline.com",
            msgraph_host="graph.microsoft.com",
        ),
        Cloud(
            name="AzureUSGovernment",
            data_plane_audience="https://cognitiveservices.azure.us",
            data_plane_audience_display="https://cognitiveservices.azure.us/",
            arm_audiences=(
                "https://management.core.usgovcloudapi.net",
                "https://management.usgovcloudapi.net",
            ),
            cloud_instance_name="microsoftonline.us",
            msgraph_host="graph.microsoft.us",
        ),
        Cloud(
            name="AzureChinaCloud",
            data_plane_audience="https://cognitiveservices.azure.cn",
            data_plane_audience_display="https://cognitiveservices.azure.cn/",
            arm_audiences=(
                "https://management.core.chinacloudapi.cn",
                "https://management.chinacloudapi.cn",
            ),
            cloud_instance_name="partner.microsoftonline.cn",
            msgraph_host="microsoftgraph.chinacloudapi.cn",
        ),
    )
}
