"""Forward operators, registered by name.

``build_operator(name, params, image_shape)`` resolves a name (an operator or
one of its presets, e.g. ``ct-limited``) to an :class:`Operator`.
"""

from __future__ import annotations

from typing import Any

from ..config import validate_params
from .base import OPERATORS, Operator, OperatorEntry

__all__ = ["OPERATORS", "Operator", "OperatorEntry", "build_operator", "operator_entry", "load_all"]

_loaded = False


def load_all() -> None:
    """Import every operator module so that its registrations run."""
    global _loaded
    if not _loaded:
        from . import blur, ct, gixrf, inpaint, linear, superres, surrogate  # noqa: F401

        _loaded = True


def operator_entry(name: str) -> OperatorEntry:
    load_all()
    return OPERATORS.get(name)


def build_operator(
    name: str,
    params: dict[str, Any] | None = None,
    image_shape: tuple[int, int] = (64, 64),
    arrays: dict | None = None,
) -> Operator:
    """Build a registered operator; preset defaults apply first, then ``params``."""
    entry = operator_entry(name)
    merged = {**entry.defaults, **(params or {})}
    p = validate_params(entry.cls.Params, merged, f"parameters of operator {name!r}")
    op = entry.cls(p, image_shape, arrays)
    op.name = name
    return op
