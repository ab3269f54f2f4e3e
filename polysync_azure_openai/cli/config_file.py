"""A platform from a TOML file, for the operator commands (``--config PATH``).

The file names attributes exactly as the admin UI does, in the format the emulator writes::

    name = "Contoso Azure OpenAI"
    platform_type = "Azure OpenAI"              # optional; nothing else is accepted
    auth_method = "Service Principal"
    enabled_job_types = ["Azure OpenAI Chat Completion"]   # optional; all job types when absent

    [attributes]
    "OpenAI Resource Name" = "contoso-aoai"
    "Tenant Id" = "contoso.onmicrosoft.com"
    "Client Id" = "11111111-2222-3333-4444-555555555555"
    "Client Secret" = { env = "AZURE_OPENAI_CLIENT_SECRET" }

Secrets (the attributes ``plugin.toml`` marks ``secret = true``) never live in the file: each is
written as ``{ env = "VAR" }`` and read from that environment variable, so the file can be shared
and committed. ``Certificate`` may instead name the absolute path of the certificate file: the
path is not the secret, the file's content is. ``Managed Identity`` and ``Workload Identity`` need
no secret at all: the identity endpoint comes from the environment Azure sets (IDENTITY_ENDPOINT),
and ``Token File Path`` is a path like any other attribute. Any other attribute may use
``{ env = ... }`` too. Every error names the file, the key or attribute, what is wrong and the
fix, and never quotes a secret.
"""

from __future__ import annotations

import difflib
import functools
import logging
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import attrs

from ..errors import ConfigurationError
from ..identity import AUTH_METHODS, POLYSYNC_SERVICE_PRINCIPAL
from ..jobs import JOB_TYPES, PLATFORM_TYPE
from ..manifest import load as load_manifest
from ..platform import PlatformConfig
from .host import Platform
from .output import shown

log = logging.getLogger(__name__)

TOP_LEVEL_KEYS: Final = ("name", "platform_type", "auth_method", "enabled_job_types", "attributes")
#: The one secret attribute whose value may instead be a file's path.
CERTIFICATE: Final = "Certificate"
_ENV_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")


class ConfigFileError(ConfigurationError):
    """The platform file cannot be used; the message names the file and the fix."""


@attrs.frozen
class AttributeInfo:
    """What the manifest says about one platform attribute."""

    name: str
    secret: bool
    #: Auth methods that use it; empty means every method.
    auth_methods: tuple[str, ...]

    def used_by(self, method: str) -> bool:
        return not self.auth_methods or method in self.auth_methods


@functools.cache
def platform_attributes() -> Mapping[str, AttributeInfo]:
    """The platform attributes the manifest declares, by display name."""
    return {
        table["name"]: AttributeInfo(table["name"], bool(table["secret"]), tuple(table.get("auth_methods", ())))
        for table in load_manifest()["platform"]["attributes"]
    }


def suggested_env_name(attribute: str) -> str:
    """``Client Secret`` -> ``AZURE_OPENAI_CLIENT_SECRET``: a name to offer in a fix."""
    return "AZURE_OPENAI_" + re.sub(r"[^A-Za-z0-9]+", "_", attribute).strip("_").upper()


def load_platform(path: str | os.PathLike[str], environ: Mapping[str, str] | None = None) -> Platform:
    """Read the platform file, resolve ``{ env = ... }`` references and validate the result.

    Raises ConfigFileError before any network call when anything is wrong.
    """
    source = Path(path)
    environ = os.environ if environ is None else environ
    document = _read(source)
    fail = _Failer(source)

    unknown = [key for key in document if key not in TOP_LEVEL_KEYS]
    if unknown:
        raise fail(
            f"has an unknown key {unknown[0]!r}",
            f"Use only {', '.join(TOP_LEVEL_KEYS)}{_did_you_mean(unknown[0], TOP_LEVEL_KEYS)}.",
        )

    name = document.get("name")
    if not isinstance(name, str) or not name.strip():
        raise fail("has no 'name'", 'Add the platform\'s display name, for example name = "Contoso Azure OpenAI".')

    platform_type = document.get("platform_type", PLATFORM_TYPE)
    if platform_type != PLATFORM_TYPE:
        raise fail(
            f"has platform_type {shown(platform_type, 60)}", f'This command serves only platform_type = "{PLATFORM_TYPE}".'
        )

    method = document.get("auth_method")
    if method not in AUTH_METHODS:
        problem = f"auth_method {shown(method, 60)}" if method is not None else "no 'auth_method'"
        raise fail(f"has {problem}", f"Set auth_method to one of: {', '.join(repr(m) for m in AUTH_METHODS)}.")
    if method == POLYSYNC_SERVICE_PRINCIPAL:
        # That method borrows the Polysync host's own identity, which a local command lacks.
        raise fail(
            f"uses auth_method {method!r}, which borrows the Polysync host's own identity",
            "A local command has no host identity: use 'Service Principal', 'Certificate', 'Managed Identity' "
            "or 'Workload Identity' with an identity that holds the same roles.",
        )

    enabled = _enabled_job_types(document.get("enabled_job_types"), fail)

    table = document.get("attributes", {})
    if not isinstance(table, dict):
        raise fail("has 'attributes' that is not a table", "Write the attributes under an [attributes] table.")
    attributes = _attributes(table, str(method), environ, fail)

    platform = Platform(name=name.strip(), auth_method=str(method), attributes=attributes, enabled_job_types=enabled)
    try:
        PlatformConfig.from_host(platform)
    except ConfigurationError as exc:
        raise ConfigFileError(f"Platform file {source}: {exc}") from None
    log.info("Loaded platform %r (%s) from %s", platform.name, platform.auth_method, source)
    return platform


class _Failer:
    def __init__(self, source: Path) -> None:
        self.source = source

    def __call__(self, problem: str, fix: str) -> ConfigFileError:
        return ConfigFileError(f"Platform file {self.source}: {problem}. {fix}")


def _read(source: Path) -> dict[str, Any]:
    try:
        text = source.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigFileError(
            f"Platform file {source} does not exist. Check the path given to --config "
            "(polysync-azure-openai emulator writes an example platform.toml)."
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "it is not UTF-8 text"
        raise ConfigFileError(f"Platform file {source} cannot be read ({reason}). Check the path and its permissions.") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # tomllib's messages give the position only, never the text around it (which may be a secret).
        raise ConfigFileError(
            f"Platform file {source} is not valid TOML: {exc}. Fix the syntax; attribute names with "
            'spaces need quotes ("OpenAI Resource Name" = "...").'
        ) from None


def _enabled_job_types(value: Any, fail: _Failer) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise fail("has 'enabled_job_types' that is not a list of strings", f"List job type names: {', '.join(JOB_TYPES)}.")
    for item in value:
        if item not in JOB_TYPES:
            raise fail(
                f"has enabled_job_types entry {shown(item, 60)}",
                f"Use the job types' display names: {', '.join(JOB_TYPES)}{_did_you_mean(item, JOB_TYPES)}.",
            )
    return tuple(value)


def _attributes(table: Mapping[str, Any], method: str, environ: Mapping[str, str], fail: _Failer) -> dict[str, str]:
    known = platform_attributes()
    values: dict[str, str] = {}
    for name, raw in table.items():
        info = known.get(name)
        if info is None:
            raise fail(
                f"attribute {name!r} is not an attribute of the {PLATFORM_TYPE} platform",
                f"Use the names the admin UI shows{_did_you_mean(name, list(known))}.",
            )
        scalar = isinstance(raw, str | int | float) and not isinstance(raw, bool)
        if scalar and info.secret and str(raw).strip() and not _is_certificate_path(name, raw):
            env = suggested_env_name(name)
            # The value itself is never quoted: it is a secret written where it must not be.
            path_note = " (or give the absolute path of the certificate file)" if name == CERTIFICATE else ""
            raise fail(
                f"attribute {name!r} is a secret written into the file",
                f'Secrets come only from environment variables: write "{name}" = {{ env = "{env}" }}{path_note}, '
                f"set {env} in the environment, and remove the value from the file (rotate it if "
                "the file was shared)",
            )
        if not info.used_by(method):
            # Kept so one file can switch methods; its variable need not be set meanwhile.
            log.warning("%s: attribute %r is not used by auth method %r; ignored", fail.source, name, method)
            continue
        if isinstance(raw, dict):
            value = _from_environment(name, raw, environ, fail)
        elif scalar:
            value = str(raw)
        else:
            raise fail(
                f"attribute {name!r} is a TOML {type(raw).__name__}",
                f'Give it as text ("{name}" = "...") or as {{ env = "VARIABLE" }}',
            )
        if value.strip():
            values[name] = value
    return values


def _is_certificate_path(name: str, raw: Any) -> bool:
    """A ``Certificate`` given as the absolute path of its file: a path is not a secret.

    The plugin reads a value starting with ``/`` as a path (never as PEM text or base64: base64
    starting with ``/`` cannot decode to PEM or DER), so exactly those values may be written here.
    """
    return name == CERTIFICATE and isinstance(raw, str) and raw.startswith("/") and raw.isprintable()


def _from_environment(name: str, reference: Mapping[str, Any], environ: Mapping[str, str], fail: _Failer) -> str:
    variable = reference.get("env")
    if set(reference) != {"env"} or not isinstance(variable, str) or not _ENV_NAME.fullmatch(variable):
        raise fail(
            f'attribute {name!r} is a table other than {{ env = "VARIABLE" }}',
            f'Write "{name}" = {{ env = "{suggested_env_name(name)}" }} (a variable name of letters, digits and _)',
        )
    value = environ.get(variable)
    if value is None or not value.strip():
        state = "is not set" if value is None else "is empty"
        raise fail(
            f"attribute {name!r} comes from the environment variable {variable}, which {state}",
            f"Set {variable} before running the command (export {variable}=...), or correct the variable's name",
        )
    return value


def _did_you_mean(value: str, choices: Any) -> str:
    close = difflib.get_close_matches(value, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""
