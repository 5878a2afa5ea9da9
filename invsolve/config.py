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

__all__ = ["Params", "validate_params", "load_config_file", "parse_assignments", "check_seed", "MAX_SEED", "canonical"]

#: Config files larger than this are refused before they are parsed (settings, not data: arrays go in files).
MAX_CONFIG_BYTES = 4 * 2**20

#: Seeds are integers 0..MAX_SEED; derived streams (seed + k, batch seeds) stay inside torch's 64-bit range.
MAX_SEED = 2**62


def check_seed(seed) -> int:
    """``seed`` as an int, or :class:`ConfigError` unless it is an integer from 0 to :data:`MAX_SEED`."""
    import numbers

    from .errors import ConfigError

    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not 0 <= int(seed) <= MAX_SEED:
        raise ConfigError(f"seed must be an integer from 0 to 2**62, got {seed!r}")
    return int(seed)


class Params(BaseModel):
    """Base of all parameter models: frozen, unknown keys fail."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)  # inf or NaN: never a setting


#: Settings given as positional command-line arguments, as the user knows them.
ARGUMENTS: dict[str, str] = {
    "measurement": "the measurement file (the first argument)",
    "inputs": "the input files (the arguments)",
}


def _clean(msg: str) -> str:
    """pydantic's message without its ``Value error, `` / ``Assertion failed, `` prefix."""
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            return msg[len(prefix):]
    return msg


def _missing(loc: tuple, where: str) -> str:
    name = ".".join(str(p) for p in loc)
    if len(loc) > 1:
        parent = ".".join(str(p) for p in loc[:-1])
        return f"{parent}: missing {str(loc[-1])!r}"
    if name in ARGUMENTS:
        return f"missing {ARGUMENTS[name]}; give it or set {name!r} in the config file"
    if where.endswith(" settings"):  # a command's settings: flags or config-file keys
        return f"missing {name!r} (give --{name.replace('_', '-')} or set {name!r} in the config file)"
    return f"missing {name!r} (set {name}=VALUE)"


def _describe(err: ValidationError, where: str) -> str:
    parts: list[str] = []
    short: dict[tuple, tuple[int, Any]] = {}  # too few entries of a fixed-length list: parent -> (needed, value)
    for e in err.errors():
        loc = tuple(e["loc"])
        if e["type"] == "missing" and len(loc) > 1 and isinstance(loc[-1], int):
            need, value = short.get(loc[:-1], (0, e.get("input")))
            short[loc[:-1]] = (max(need, loc[-1] + 1), value)
            continue
        name = ".".join(str(p) for p in loc)
        if e["type"] == "extra_forbidden":
            parts.append(f"unknown key {name!r}")
        elif e["type"] == "missing":
            parts.append(_missing(loc, where))
        elif not name:
            parts.append(_clean(e["msg"]))
        else:
            parts.append(f"{name}: {_clean(e['msg'])}")
    for parent, (need, value) in short.items():
        name = ".".join(str(p) for p in parent)
        got = len(value) if isinstance(value, (list, tuple)) else 1
        parts.append(f"{name} needs {need} values, got {got} ({json.dumps(value, default=str)})")
    return f"invalid {where}: " + "; ".join(parts)


def _keys(model: type[BaseModel]) -> list[str]:
    """The keys a user writes: a field's alias where it has one (``json`` for ``json_output``)."""
    return [f.alias or name for name, f in model.model_fields.items()]


def validate_params(model: type[BaseModel], values: dict[str, Any], where: str) -> Any:
    """Validate ``values`` against ``model``; raise :class:`ConfigError` in one line.

    The message lists the valid keys when an unknown key is given.
    """
    try:
        return model.model_validate(values)
    except ValidationError as err:
        msg = _describe(err, where)
        if any(e["type"] == "extra_forbidden" for e in err.errors()):
            keys = _keys(model)
            msg += f" (valid keys: {', '.join(keys)})" if keys else " (it takes no parameters)"
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
    """Read a TOML, YAML or JSON config file into a dict.

    Files over :data:`MAX_CONFIG_BYTES` are refused unread, and YAML aliases may not expand a document past
    :data:`invsolve.config_yaml.MAX_NODES` values (:func:`invsolve.config_yaml.load_yaml`).
    """
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file not found: {p} (check the path given to --config)")
    try:
        size = p.stat().st_size
        if size > MAX_CONFIG_BYTES:
            raise ConfigError(f"config file {p} is {size / 2**20:.1f} MiB, more than the {MAX_CONFIG_BYTES // 2**20} "
                              "MiB a settings file may hold; keep arrays in files and name them (e.g. -P "
                              "angles_file=theta.npy)")
        with p.open("rb") as fh:  # bounded even when the file grows after the check
            text = fh.read(MAX_CONFIG_BYTES + 1).decode("utf-8-sig")
        if len(text) > MAX_CONFIG_BYTES:
            raise ConfigError(f"config file {p} holds more than the {MAX_CONFIG_BYTES // 2**20} MiB a settings "
                              "file may hold; keep arrays in files and name them")
    except UnicodeDecodeError:
        raise ConfigError(f"config file {p} is not a TOML, YAML or JSON text file (it holds binary data); "
                          "give the settings file to --config") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {p}: {exc.strerror or exc}") from None
    suffix = p.suffix.lower()
    try:
        if suffix == ".toml":
            import tomllib

            data = tomllib.loads(text)
        elif suffix in (".yaml", ".yml"):
            from .config_yaml import load_yaml

            data = load_yaml(text, str(p)) or {}
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


def canonical(obj: Any) -> Any:
    """``obj`` as its JSON round trip with sorted keys: specs (dicts, lists, tuples) compare equal exactly when
    they would be written alike."""
    return json.loads(json.dumps(obj, sort_keys=True))
