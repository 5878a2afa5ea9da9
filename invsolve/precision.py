"""Arithmetic precision of the network evaluations: ``auto``, ``fp32`` or ``bf16``.

``auto`` (the default of MAP, Langevin and the trained samplers) chooses bfloat16
where the device computes it fast and float32 elsewhere:

- a CPU with AVX-512 BF16 or AMX (read from the kernel's CPU flags);
- a CUDA GPU of compute capability 8.0 or later (Ampere, Hopper, ...).

bf16 covers the networks' matrix products only (patchNR's subnets, a trained
sampler's network); data terms, log-determinants, likelihoods and the iterate
stay float32.  On ×4 superresolution of the 11 material test crops bf16 moved
the patchNR MAP mean by −0.02 dB, and at the papers' 600² setting one MAP
iteration took 2.5 s against 9.2 s in float32 (benchmarks/log/2026-11-29.md, "MAP
parity"), which is why ``auto`` takes it where the hardware has it.  The choice and its reason
are recorded in every output (``precision_used``).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BeforeValidator

__all__ = ["Precision", "PRECISIONS", "normalize_precision", "fast_bf16", "resolve_precision"]

PRECISIONS = ("auto", "fp32", "bf16")
#: Spellings accepted for the two precisions.
ALIASES = {"float32": "fp32", "float": "fp32", "bfloat16": "bf16"}


def normalize_precision(value):
    """``float32``/``bfloat16`` spelled as ``fp32``/``bf16``; other values pass unchanged (to be validated)."""
    return ALIASES.get(value, value) if isinstance(value, str) else value


#: A precision setting of a parameter model (``auto``, ``fp32``/``float32``, ``bf16``/``bfloat16``).
Precision = Annotated[Literal["auto", "fp32", "bf16"], BeforeValidator(normalize_precision)]


def _cpu_flags(path: str = "/proc/cpuinfo") -> set[str]:
    """The CPU feature flags the kernel reports (empty where there is no /proc/cpuinfo)."""
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.partition(":")[2].split())
    return set()


@functools.lru_cache(maxsize=8)
def fast_bf16(device_type: str, index: int | None = None) -> str:
    """Why ``device_type`` (``cpu``/``cuda``) computes bfloat16 fast, e.g. ``"AVX-512 BF16"``; ``""`` when not."""
    if device_type == "cuda":
        import torch

        if not torch.cuda.is_available():
            return ""
        major, minor = torch.cuda.get_device_capability(index)
        return f"CUDA compute capability {major}.{minor}" if major >= 8 else ""
    if device_type == "cpu":
        flags = _cpu_flags()
        for flag, label in (("amx_bf16", "AMX"), ("avx512_bf16", "AVX-512 BF16")):
            if flag in flags:
                return label
    return ""


def resolve_precision(precision: str, device, applies: bool = True,
                      not_applied: str = "bf16 does not apply here") -> tuple[str, str]:
    """The precision to run and why: ``(fp32|bf16, reason)``.

    Arguments:
        precision: ``auto``, ``fp32`` or ``bf16`` (aliases as :func:`normalize_precision`).
        device: A ``torch.device`` or its name.
        applies: Whether bf16 applies to the component (patchNR does; EPLL, WPP and MCMC keep float32).
        not_applied: The reason recorded when ``auto`` meets a component bf16 does not apply to.

    Returns:
        The precision and a short reason for the record, e.g. ``("bf16", "auto: AVX-512 BF16")``.
    """
    precision = normalize_precision(precision)
    if precision != "auto":
        return precision, "given"
    if not applies:
        return "fp32", f"auto: {not_applied}"
    dtype = getattr(device, "type", str(device).split(":")[0])
    index = getattr(device, "index", None)
    why = fast_bf16(dtype, index)
    return ("bf16", f"auto: {why}") if why else ("fp32", f"auto: no fast bf16 on this {dtype}")
