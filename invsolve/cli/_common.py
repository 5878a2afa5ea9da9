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

__all__ = ["err_console", "out_console", "merge_config", "handle_errors", "emit_json"]


def err_console():
    from rich.console import Console

    return Console(stderr=True)


def apply_scale(scale: int | None, operator: str | None, op_params: dict[str, Any]) -> dict[str, Any]:
    """``--scale S`` as the superres operator's ``factor``: refused for other operators and when ``-P factor``
    says otherwise."""
    if scale is None:
        return op_params
    from ..errors import ConfigError
    from ..operators import operator_entry

    if operator is not None and operator_entry(operator).cls.kind != "superres":
        raise ConfigError(f"--scale applies to the superres operator, not {operator!r}; drop it")
    if op_params.get("factor", scale) != scale:
        raise ConfigError(f"--scale {scale} and -P factor={op_params['factor']} disagree; give one of them")
    return {**op_params, "factor": scale}


def warn_outside_unit_range(images, source: str) -> None:
    """A warning on stderr when float images stray from [0, 1], the range the presets (λ, step sizes) and the
    metrics (data range 1) assume; 8- and 16-bit files are scaled to [0, 1] on reading."""
    import warnings

    import numpy as np

    arrays = images if isinstance(images, (list, tuple)) else [images]
    lo = min(float(np.min(a)) for a in arrays)
    hi = max(float(np.max(a)) for a in arrays)
    if lo < -0.05 or hi > 1.05:
        warnings.warn(f"{source} has values in [{lo:.4g}, {hi:.4g}]; invsolve's presets and PSNR/SSIM (data range 1) "
                      "assume images in [0, 1]: rescale them, or set λ and step sizes yourself", stacklevel=2)


def out_console():
    """The console for results on stdout; lines are not wrapped (a pipe keeps each result on one line).  With
    stdout closed it writes nowhere, and the command ends with one ``Error:`` line (:mod:`._stdout`)."""
    from rich.console import Console

    from ._stdout import lose_stdout, stdout_is_closed

    class _Results(Console):
        def on_broken_pipe(self) -> None:  # rich exits with 1; the command runs on and exits with 141
            self.quiet = True
            lose_stdout("broken")

    if stdout_is_closed():
        import io

        lose_stdout("closed")
        return _Results(file=io.StringIO(), soft_wrap=True)
    return _Results(soft_wrap=True)


def merge_config(model: type[BaseModel], config_file: str | None, flags: dict[str, Any], where: str):
    """Values from ``config_file`` (TOML/YAML/JSON), overridden by flags given on the command line.

    A flag that names another operator, noise model, method, sampler or prior than the file drops the file's
    parameters of the one it replaces (``method: tv`` with ``method_params: {lam: 10}``, run with
    ``--method fbp``, gives fbp its defaults, not tv's ``lam``).
    """
    values: dict[str, Any] = load_config_file(config_file) if config_file else {}
    for k, v in flags.items():
        if v is not None and f"{k}_params" in values and values.get(k) not in (None, v):
            values.pop(f"{k}_params")
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
    """Map user errors to one ``Error: ...`` line on stderr and exit code 1; a broken pipe on stdout ends the
    command quietly with exit code 141, a closed stdout with one line and exit code 1 (:mod:`._stdout`)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from ._signals import exit_code, interrupted_message, interrupts
        from ._stdout import BROKEN_PIPE_EXIT, finish_stdout, lose_stdout, reset

        reset()
        try:
            with interrupts() as state:
                result = fn(*args, **kwargs)
            if state["signal"] is not None:  # an interrupt Python swallowed in a finalizer: still one
                raise KeyboardInterrupt
        except BrokenPipeError:  # a result line printed to a pipe whose reader has quit (e.g. `| head -1`)
            lose_stdout("broken")
            raise typer.Exit(BROKEN_PIPE_EXIT) from None
        except InvsolveError as exc:
            if os.environ.get("INVSOLVE_DEBUG"):
                raise
            print(f"Error: {exc}", file=sys.stderr)
            raise typer.Exit(getattr(exc, "exit_code", 1)) from None
        except KeyboardInterrupt:
            print(f"Error: {interrupted_message(kwargs)}", file=sys.stderr)
            raise typer.Exit(exit_code()) from None
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except Exception as exc:  # the last resort: never a bare traceback without INVSOLVE_DEBUG
            if type(exc).__module__.split(".")[0] in ("typer", "click") or os.environ.get("INVSOLVE_DEBUG"):
                raise  # the command-line parser's own exceptions, or a traceback asked for
            print(f"Error: {unexpected_message(exc)}", file=sys.stderr)
            raise typer.Exit(1) from None
        code = finish_stdout()
        if code is not None:
            raise typer.Exit(code)
        return result

    return wrapper


def unexpected_message(exc: BaseException) -> str:
    """One line for an error invsolve did not anticipate: out of memory, a file system error, or anything
    else (with the way to get the traceback for a report)."""
    first = (str(exc).strip().splitlines() or [""])[0][:300]
    name = type(exc).__name__
    if isinstance(exc, MemoryError) or any(s in first.lower() for s in ("out of memory", "can't allocate memory")):
        return (f"out of memory ({name}{': ' + first if first else ''}); use a smaller --batch-size, a smaller crop, or "
                "-M precision=bf16 / --device cpu")
    if isinstance(exc, OSError):
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        return f"{exc.strerror or first}{where}; check the path, its folder and their permissions"
    return (f"unexpected {name}: {first}; rerun with INVSOLVE_DEBUG=1 for the traceback and report it "
            "with the command")


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
    """One JSON Lines record on stdout; non-finite numbers (e.g. the PSNR of an exact result) become null.  A
    broken pipe or a closed stdout is recorded and the command runs on (:mod:`._stdout`)."""
    from ._stdout import write_stdout

    write_stdout(json.dumps(_finite_json(obj), allow_nan=False) + "\n")
