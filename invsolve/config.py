"""Strict configuration models and config-file loading.

Every operator, noise model and method declares a frozen pydantic ``Params``
model that rejects unknown keys.  Config files (TOML, YAML or JSON) are read
into plain dicts here and validated by the command that uses them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from .errors import ConfigError

__all__ = ["Params", "validate_params", "load_config_file", "parse_assignments"]


class Params(BaseModel):
    """Base of all parameter models: frozen, unknown keys fail."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _describe(err: ValidationError, where: str) -> str:
    parts = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "(root)"
        if e["type"] == "extra_forbidden":
            parts.append(f"unknown key {loc!r}")
        elif e["type"] == "missing":
            parts.append(f"missing {loc!r} (give --{loc.replace('_', '-')} or set {loc!r} in the config file)")
        else:
            parts.append(f"{loc}: {e['msg']}")
    return f"invalid {where}: " + "; ".join(parts)


def validate_params(model: type[BaseModel], values: dict[str, Any], where: str) -> Any:
    """Validate ``values`` against ``model``; raise :class:`ConfigError` in one line.

    The message lists the valid keys when an unknown key is given.
    """
    try:
        return model.model_validate(values)
    except ValidationError as err:
        msg = _describe(err, where)
        if any(e["type"] == "extra_forbidden" for e in err.errors()):
            msg += f" (valid keys: {', '.join(model.model_fields)})"
        raise ConfigError(msg) from None


def parse_assignments(items: list[str] | None, flag: str) -> dict[str, Any]:
    """Turn ``["angles=180", "geometry=fan"]`` into a dict; values are JSON when they parse."""
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{flag} expects KEY=VALUE, got {item!r}")
        try:
            value: Any = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        out[key.strip().replace("-", "_")] = value
    return out


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a TOML, YAML or JSON config file into a dict."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file not found: {p} (check the path given to --config)")
    text = p.read_text()
    suffix = p.suffix.lower()
    try:
        if suffix == ".toml":
            import tomllib

            data = tomllib.loads(text)
        elif suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text) or {}
        elif suffix == ".json":
            data = json.loads(text)
        else:
            raise ConfigError(f"config file {p} must end in .toml, .yaml, .yml or .json")
    except ConfigError:
        raise
    except Exception as exc:  # parse errors of the three formats
        raise ConfigError(f"cannot parse config file {p}: {exc}".splitlines()[0]) from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {p} must hold a table/mapping at the top level")
    return data
