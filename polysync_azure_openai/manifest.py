"""The packaged plugin.toml: the declarative half of each job type (attributes, parameters).

The manifest is the single source of what the admin UI shows; the job types read their
parameter specs and attribute defaults from it so the two cannot drift apart.
"""

from __future__ import annotations

import functools
import tomllib
from collections.abc import Mapping
from importlib import resources
from typing import Any

import attrs

from .results import ParameterSpec


@attrs.frozen
class AttributeSpec:
    name: str
    required: bool
    default: str
    description: str


@attrs.frozen
class JobTypeSpec:
    name: str
    entry_point: str
    supports_cancel: bool
    attributes: tuple[AttributeSpec, ...]
    parameters: tuple[ParameterSpec, ...]

    def defaults(self) -> dict[str, str]:
        """Job attributes with a non-empty default, as Import Jobs pre-fills them."""
        return {a.name: a.default for a in self.attributes if a.default}


@functools.cache
def load() -> Mapping[str, Any]:
    """The parsed manifest shipped in the package."""
    text = resources.files(__package__).joinpath("plugin.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


@functools.cache
def job_type_spec(name: str) -> JobTypeSpec:
    for table in load()["job_types"]:
        if table["name"] == name:
            return JobTypeSpec(
                name=table["name"],
                entry_point=table["entry_point"],
                supports_cancel=table["supports_cancel"],
                attributes=tuple(
                    AttributeSpec(a["name"], a["required"], a["default"], a["description"]) for a in table.get("attributes", [])
                ),
                parameters=tuple(
                    ParameterSpec(p["name"], p["direction"], p["data_type"], p["required"], p["description"])
                    for p in table.get("parameters", [])
                ),
            )
    raise KeyError(f"plugin.toml declares no job type {name!r}")
