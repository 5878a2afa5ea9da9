"""Operator parameters that name files, as a stored measurement holds them.

A measurement file carries everything its operator needs: ``simulate`` stores the blur kernel, the inpainting
mask, the linear matrix and the surrogate's weights under ``/operator_arrays``, and reads CT angle files into
the ``angles`` list.  A path among the stored parameters (``kernel_file``, ``mask_file``, ``matrix_file``,
``model``, ``angles_file``) whose contents are not embedded would make reading the measurement open another
file the file names itself, so it is refused, unless the caller gives that same path (``-P KEY=PATH`` on the
command line, ``operator_params`` in the API).
"""

from __future__ import annotations

from typing import Any

from ..errors import DataError

__all__ = ["followed_paths", "check_stored_paths"]


def _embedded(names: list[str], carriers: tuple[str, ...]) -> bool:
    """Whether one of the array ``names`` carries the file (a carrier ending in "." matches a prefix)."""
    return any(n == c or (c.endswith(".") and n.startswith(c)) for n in names for c in carriers)


def followed_paths(spec: dict[str, Any], arrays: dict | None) -> dict[str, str]:
    """The file parameters that building the operator of ``spec`` with ``arrays`` would read.

    Arguments:
        spec: An operator spec ``{"name", "params", "image_shape"}`` as stored.
        arrays: The stored operator arrays (names to arrays).

    Returns:
        Parameter name -> the path it names, for every path whose contents ``arrays`` do not carry.
    """
    from . import operator_entry

    try:
        cls = operator_entry(spec["name"]).cls
    except Exception:  # an unknown operator is the caller's message
        return {}
    params = spec.get("params") or {}
    if not isinstance(params, dict):
        return {}
    names = [str(n) for n in (arrays or {})]
    out: dict[str, str] = {}
    for key, carriers in cls.file_params.items():
        value = params.get(key)
        if value in (None, "") or _embedded(names, carriers):
            continue
        out[key] = str(value)
    return out


def check_stored_paths(spec: dict[str, Any], arrays: dict | None, where: str,
                       given: dict[str, Any] | None = None) -> None:
    """Refuse a stored operator that would read a file the measurement names but does not carry.

    Arguments:
        spec: The stored operator spec.
        arrays: The stored operator arrays.
        where: The measurement file, for the message.
        given: Operator parameters the caller gave itself; a stored path equal to the given one is read.

    Raises:
        DataError: One line naming the parameter and how to use that file anyway.
    """
    given = given or {}
    for key, path in followed_paths(spec, arrays).items():
        if key in given and str(given[key]) == path:
            continue
        raise DataError(f"{where} stores operator {spec.get('name')!r} with {key}={path!r} but not that file's "
                        f"contents, and a measurement's stored paths are never followed; give -P {key}={path} on "
                        "the command line to use that file, or re-create the measurement with `invsolve simulate`")
