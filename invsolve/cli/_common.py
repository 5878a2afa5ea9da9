"""Shared CLI plumbing: consoles, config merging, error mapping."""

from __future__ import annotations

import functools
import json
import math
import os
import sys
from typing import Any, Callable

import typer
from pydantic import BaseModel

from ..config import load_config_file, validate_params
from ..errors import InvsolveError

__all__ = ["err_console", "out_console", "merge_config", "handle_errors", "emit_json", "make_track"]


def err_console():
    from rich.console import Console

    return Console(stderr=True)


def out_console():
    from rich.console import Console

    return Console()


def merge_config(model: type[BaseModel], config_file: str | None, flags: dict[str, Any], where: str):
    """Values from ``config_file`` (TOML/YAML/JSON), overridden by flags given on the command line."""
    values: dict[str, Any] = load_config_file(config_file) if config_file else {}
    for k, v in flags.items():
        if v is None:
            continue
        if isinstance(v, dict) and isinstance(values.get(k), dict):
            values[k] = {**values[k], **v}
        elif isinstance(v, dict) and not v:
            continue
        else:
            values[k] = v
    return validate_params(model, values, where)


def handle_errors(fn: Callable) -> Callable:
    """Map user errors to one ``Error: ...`` line on stderr and exit code 1."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except InvsolveError as exc:
            if os.environ.get("INVSOLVE_DEBUG"):
                raise
            print(f"Error: {exc}", file=sys.stderr)
            raise typer.Exit(getattr(exc, "exit_code", 1)) from None
        except KeyboardInterrupt:
            print("Error: interrupted; no output was written", file=sys.stderr)
            raise typer.Exit(130) from None

    return wrapper


def _finite_json(obj: Any) -> Any:
    """``obj`` with non-finite floats as null (strict JSON: jq and most parsers reject Infinity and NaN)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite_json(v) for v in obj]
    return obj


def emit_json(obj: Any) -> None:
    """One JSON Lines record on stdout; non-finite numbers (e.g. the PSNR of an exact result) become null."""
    sys.stdout.write(json.dumps(_finite_json(obj), allow_nan=False) + "\n")
    sys.stdout.flush()


def make_track(quiet: bool):
    """A progress wrapper drawing a rich progress bar on stderr (nothing when quiet)."""
    if quiet:
        from ..methods import no_track

        return no_track

    def track(it, description=""):
        from rich.progress import track as rich_track

        total = len(it) if hasattr(it, "__len__") else None
        return rich_track(it, description=description, total=total, console=err_console(), transient=True)

    return track
