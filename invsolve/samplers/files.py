"""Sampler files: the format's name and version, atomic writing, safe reading, and training checkpoints.

The layout of a file is described in :mod:`invsolve.samplers.base`; this module holds the code that writes and
reads it and does not import the samplers themselves.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..errors import CheckpointError, DataError
from ..io.torch_files import load_tensors

__all__ = ["FORMAT", "VERSION", "checkpoint_path", "check_complete", "read_checkpoint", "save_training",
           "tensors_digest", "training_done", "write_atomic"]

FORMAT = "invsolve-sampler"
VERSION = 1


def tensors_digest(ckpt: dict[str, Any]) -> str:
    """SHA-256 (hex) of a sampler file's tensors: its ``state_dict`` and operator ``arrays``."""
    from ..io.digest import state_digest

    named = {f"state_dict.{k}": v for k, v in (ckpt.get("state_dict") or {}).items()}
    named.update({f"arrays.{k}": v for k, v in (ckpt.get("arrays") or {}).items()})
    return state_digest(named)


def checkpoint_path(output: str | Path) -> Path:
    """Where the training checkpoints of the sampler file ``output`` go: ``OUTPUT.ckpt``, never the output."""
    return Path(f"{output}.ckpt")


def save_training(sampler, provenance: dict, training: dict, output: str | Path, final: bool) -> Path:
    """Write a training state: the finished sampler to ``output`` (``training["complete"]`` true, its
    checkpoint then removed), or a checkpoint to :func:`checkpoint_path` while training goes on."""
    training = {**training, "complete": bool(final)}
    path = Path(output) if final else checkpoint_path(output)
    write_atomic(sampler.checkpoint(provenance, training), path)
    if final:
        checkpoint_path(output).unlink(missing_ok=True)  # the output carries the same state for a later --resume
    return path


def write_atomic(obj: dict, path: str | Path) -> Path:
    """``torch.save`` to a temporary file beside ``path``, then rename over it."""
    import io

    from ..io.atomic import atomic_bytes

    buf = io.BytesIO()  # in memory first: a full disk is then one clean error, never a torn zip archive
    torch.save(obj, buf)
    return atomic_bytes(path, buf.getvalue())


def read_checkpoint(path: str | Path, device="cpu") -> dict[str, Any]:
    """Load a sampler file safely (``weights_only``) and check its format; DataError otherwise."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"sampler file not found: {p} (train one with `invsolve train-sampler`)")
    unreadable = (f"{p} is not a readable sampler file (damaged, truncated or another format); "
                  "train one with `invsolve train-sampler`")
    ckpt = load_tensors(p, device, unreadable, f"{p} is not a readable sampler file: it holds Python objects other "
                        "than tensors and plain data, which are never loaded; train one with `invsolve train-sampler`")
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise DataError(f"{p} is not an invsolve sampler file; train one with `invsolve train-sampler`")
    if ckpt.get("version") != VERSION:
        raise DataError(f"{p} has sampler-file version {ckpt.get('version')}; this invsolve reads version {VERSION} "
                        "(retrain the sampler or upgrade invsolve)")
    missing = [k for k in ("sampler", "config", "operator", "noise", "state_dict") if k not in ckpt]
    if missing:
        raise DataError(f"{p} lacks {', '.join(missing)}; the sampler file is incomplete, retrain it")
    digest = ckpt.get("sha256")
    if digest is not None and digest != tensors_digest(ckpt):
        raise CheckpointError(f"{p} is damaged (checksum mismatch of its weights); retrain it with "
                              "`invsolve train-sampler` or restore a copy")
    return ckpt


def training_done(ckpt: dict[str, Any]) -> tuple[int | None, int | None]:
    """(steps trained, steps asked) of a sampler file's training state; (None, None) without one."""
    tr = ckpt.get("training") or {}
    steps = (tr.get("settings") or {}).get("steps") if isinstance(tr.get("settings"), dict) else None
    step = tr.get("step")
    return (int(step) if isinstance(step, int) else None), (int(steps) if isinstance(steps, int) else None)


def check_complete(ckpt: dict[str, Any], path, allow_partial: bool) -> None:
    """Refuse (or, with ``allow_partial``, warn about) a sampler whose training stopped before its steps."""
    step, steps = training_done(ckpt)
    complete = (ckpt.get("training") or {}).get("complete")
    if complete is True or step is None or steps is None or (complete is None and step >= steps):
        return
    if not allow_partial:
        raise CheckpointError(f"{path} holds a sampler trained for {step} of its {steps} steps (a checkpoint of an "
                              "unfinished run); finish it with `invsolve train-sampler ... --resume`, or pass "
                              "--allow-partial to use it anyway")
    import warnings

    warnings.warn(f"{path} holds a sampler trained for {step} of its {steps} steps; used as it stands "
                  "(--allow-partial)", UserWarning, stacklevel=3)
