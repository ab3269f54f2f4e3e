"""Frozen value objects the plugin hands back to the host (host-contract.md)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from types import MappingProxyType
from typing import Any, Final

import attrs

STARTING: Final = "Starting"
RUNNING: Final = "Running"
SUCCESS: Final = "Success"
FAILED: Final = "Failed"
CANCELLED: Final = "Cancelled"
UNKNOWN: Final = "Unknown"
TERMINAL_STATUSES: Final = frozenset({SUCCESS, FAILED, CANCELLED})


def _frozen_mapping(value: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(value))


def _specs(value: Sequence[ParameterSpec]) -> tuple[ParameterSpec, ...]:
    return tuple(value)


@attrs.frozen
class ParameterSpec:
    name: str
    direction: str
    data_type: str
    required: bool
    description: str


@attrs.frozen
class ImportedJob:
    job_type: str
    external_id: str
    name: str
    description: str
    attributes: Mapping[str, str] = attrs.field(converter=_frozen_mapping)
    parameters: Sequence[ParameterSpec] = attrs.field(converter=_specs)


@attrs.frozen
class RunResult:
    run_id: str
    status: str
    outputs: Mapping[str, Any] = attrs.field(factory=dict, converter=_frozen_mapping)
    message: str | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES
