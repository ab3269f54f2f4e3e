"""A local Azure for tests and the demo: Entra ID, Resource Manager and the Azure OpenAI data plane.

It serves real HTTPS on 127.0.0.1 with a throwaway CA, checks credentials as strictly as Azure
does and answers in Azure's wire shapes. Nothing on the plugin's import path imports it.
"""

from __future__ import annotations

from .control import Emulator
from .state import (
    DEFAULT_DEPLOYMENTS,
    DEFAULT_ROLES,
    OPENAI_USER_ROLE,
    READER_ROLE,
    Deployment,
    RecordedRequest,
)
from .tls import new_ca

__all__ = [
    "DEFAULT_DEPLOYMENTS",
    "DEFAULT_ROLES",
    "OPENAI_USER_ROLE",
    "READER_ROLE",
    "Deployment",
    "Emulator",
    "RecordedRequest",
    "new_ca",
]
