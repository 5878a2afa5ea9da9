"""The noise of a measurement: an operator preset's own noise, or a named one.

It sits beside the operators (their registry entries carry the preset noise) and above the noise models, which
never import operators.
"""

from __future__ import annotations

from typing import Any

from ..noise import build_noise
from . import operator_entry

__all__ = ["resolve_noise"]


def resolve_noise(operator: str, noise: str | None = None, noise_params: dict | None = None) -> dict[str, Any]:
    """The noise spec: the operator preset's noise, or ``noise`` with ``noise_params`` on top.

    Parameters given without a name adjust the preset's noise (e.g. ``n0`` of ``ct-lowdose``).
    """
    preset = dict(operator_entry(operator).noise)
    if noise is None or noise == preset.get("name"):
        spec = {**preset, **(noise_params or {})}
    else:
        spec = {"name": noise, **(noise_params or {})}
    return build_noise(spec).spec()  # validates
