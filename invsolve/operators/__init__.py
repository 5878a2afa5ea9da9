"""Forward operators, registered by name.

``build_operator(name, params, image_shape)`` resolves a name (an operator or
one of its presets, e.g. ``ct-limited``) to an :class:`Operator`.
"""

from __future__ import annotations

from typing import Any

from ..config import validate_params
from .base import OPERATORS, LinearOperator, Operator, OperatorEntry

__all__ = ["OPERATORS", "LinearOperator", "Operator", "OperatorEntry", "build_operator", "operator_entry", "load_all"]

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


#: Bytes one measurement of an operator may take before it is refused (``INVSOLVE_MAX_MEMORY_GB`` raises it).
MAX_BYTES_DEFAULT = 8 * 2**30


def check_size(name: str, declared: tuple[str, int] | None) -> None:
    """Refuse an operator whose settings declare more float32 values per measurement than the memory limit
    allows, before anything is allocated (a typo such as ``angles=2000000``, or a hostile file)."""
    import os

    from ..errors import ConfigError

    if declared is None:
        return
    what, values = declared
    limit = float(os.environ.get("INVSOLVE_MAX_MEMORY_GB") or MAX_BYTES_DEFAULT / 2**30) * 2**30
    size = f"{values:.3g} values ({4 * values / 2**30:.3g} GiB) per measurement"
    if 4 * values > limit:
        raise ConfigError(f"operator {name!r} with {what} would hold {size}, above the {limit / 2**30:g} GiB limit; "
                          "check the settings, or raise the limit with INVSOLVE_MAX_MEMORY_GB")
    if 4 * values > limit / 8:
        import warnings

        warnings.warn(f"operator {name!r} with {what} holds {size}: check the settings if that is not meant",
                      RuntimeWarning, stacklevel=3)


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
    check_size(name, entry.cls.declared_size(p, tuple(image_shape)))
    op = entry.cls(p, image_shape, arrays)
    op.name = name
    return op
