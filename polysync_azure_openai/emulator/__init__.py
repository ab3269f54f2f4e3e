"""A local Azure for tests and the demo: Entra ID, Resource Manager and the Azure OpenAI data plane.

It serves real HTTPS on 127.0.0.1 with a throwaway CA, checks credentials as strictly as Azure
does and answers in Azure's wire shapes: chat, embeddings, files and batches (on a clock a test
moves), and the faults a test injects (faults.py). The keyless identities come with it: an App
Service style managed-identity endpoint (plain HTTP on 127.0.0.1, as App Service serves it) and a
cluster's OIDC issuer whose service account tokens Entra takes as client assertions. Nothing on
the plugin's import path imports it.
"""

from __future__ import annotations

from . import faults
from .clock import BatchTiming, Clock
from .control import DEFAULT_WORKLOAD_SUBJECT, Emulator
from .recording import RecordingServer
from .state import (
    DEFAULT_DEPLOYMENTS,
    DEFAULT_ROLES,
    OPENAI_USER_ROLE,
    READER_ROLE,
    TOKEN_EXCHANGE_AUDIENCE,
    Deployment,
    RecordedRequest,
)
from .tls import new_ca

__all__ = [
    "DEFAULT_DEPLOYMENTS",
    "DEFAULT_ROLES",
    "DEFAULT_WORKLOAD_SUBJECT",
    "OPENAI_USER_ROLE",
    "READER_ROLE",
    "TOKEN_EXCHANGE_AUDIENCE",
    "BatchTiming",
    "Clock",
    "Deployment",
    "Emulator",
    "RecordedRequest",
    "RecordingServer",
    "faults",
    "new_ca",
]
