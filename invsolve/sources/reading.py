"""How a measurement invsolve did not write is read (:class:`MeasurementReading`), and the pieces every reader of
such data shares: its provenance record, its shape check, and the assembly of a
:class:`invsolve.results.Measurement` with a checked operator.

The readers (:mod:`invsolve.sources.build`, :mod:`invsolve.sources.ct`) and the entry point
(:mod:`invsolve.sources.measured`) build on this module; it imports none of them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import Field, field_validator

from ..config import Params
from ..errors import ConfigError, ShapeError
from .inputs import InputSpec, array_digest

__all__ = ["MeasurementReading", "build_checked", "check_shape", "digest_ident", "make_measurement"]


class MeasurementReading(Params):
    """How to read a measurement invsolve did not write (config keys of the same names)."""

    operator: str | None = Field(None, description="operator that produced the data (ct, ct-lowdose, superres, ...)")
    operator_params: dict[str, Any] = Field(default_factory=dict)
    noise: str | None = None
    noise_params: dict[str, Any] = Field(default_factory=dict)
    image_size: list[int] | None = Field(None, description="image H W (or one side) where the operator leaves it open")
    flats: str | None = Field(None, description="flat fields (beam, no sample): FILE.h5:/exchange/data_white, ...")
    darks: str | None = Field(None, description="dark fields (no beam)")
    rows: str | None = Field(None, description="detector rows START:STOP of a projection stack")

    @field_validator("image_size", mode="before")
    @classmethod
    def _size_forms(cls, v):
        """One side or "H,W" as the flag takes them, besides a list."""
        if isinstance(v, int) and not isinstance(v, bool):
            return [v]
        if isinstance(v, str):
            try:
                return [int(s) for s in v.replace("x", ",").split(",") if s.strip()]
            except ValueError:
                raise ValueError(f"image_size {v!r} is not H,W or one side (e.g. 362 or 256,320)") from None
        return v

    def given(self) -> bool:
        """Whether anything here describes the data (else an invsolve file is expected)."""
        return any(v not in (None, {}, []) for v in self.model_dump().values())


def digest_ident(spec: InputSpec, arr: np.ndarray, reading: MeasurementReading) -> dict[str, Any]:
    """Provenance of foreign data: where it came from, the SHA-256 of the array as read, the description."""
    return {"file": str(spec.file), "dataset": spec.dataset,
            "items": None if spec.items is None else [spec.items.start, spec.items.stop],
            "sha256": array_digest(arr), "shape": list(arr.shape),
            "operator_given": {"name": reading.operator, "params": reading.operator_params},
            "noise_given": {"name": reading.noise, "params": reading.noise_params},
            **{k: getattr(reading, k) for k in ("flats", "darks", "rows", "image_size") if getattr(reading, k)}}


def check_shape(arr: np.ndarray, ndim: tuple[int, ...], where: str, what: str) -> None:
    if arr.ndim not in ndim:
        raise ShapeError(f"{where} has shape {arr.shape} ({arr.ndim}-D); expected {what}")


def build_checked(name: str, params: dict[str, Any], range_shape: tuple[int, ...], reading: MeasurementReading,
                  where: str):
    """The operator ``name`` whose measurements have ``range_shape``: the image shape from ``--image-size``
    or from the operator; a shape that does not fit is one line naming both."""
    from ..config import validate_params
    from ..operators import build_operator, operator_entry

    entry = operator_entry(name)
    p = validate_params(entry.cls.Params, {**entry.defaults, **params}, f"parameters of operator {name!r}")
    shape = _image_size(reading) or entry.cls.image_shape_for(p, range_shape)
    if shape is None:
        raise ConfigError(f"operator {name!r} does not determine the image size from {where}; give --image-size H,W")
    op = build_operator(name, params, shape)
    if tuple(op.range_shape) != tuple(range_shape) and len(range_shape) == 1:
        raise ShapeError(f"{where} holds vectors of {range_shape[0]} values, and operator {name!r} produces "
                         f"{op.range_shape[0]}; give the measured vectors (N, {op.range_shape[0]}) or the operator's "
                         "-P parameters they were measured with")
    if tuple(op.range_shape) != tuple(range_shape):
        raise ShapeError(f"{where} holds measurements of shape {tuple(range_shape)}, and operator {name!r} on "
                         f"{'x'.join(map(str, shape))} gives {tuple(op.range_shape)}; give the -P parameters "
                         "(or --image-size) it was measured with")
    return op


def _image_size(reading: MeasurementReading) -> tuple[int, ...] | None:
    s = reading.image_size
    if s is None:
        return None
    if len(s) == 1:
        s = [s[0], s[0]]
    if len(s) != 2 or min(s) < 1:
        raise ConfigError(f"--image-size takes H,W (or one side), positive; got {s}")
    return tuple(int(v) for v in s)


def make_measurement(y: np.ndarray, op, reading: MeasurementReading, name: str, ident: dict, single: bool,
                     noise: dict | None = None):
    from ..operators.noise_preset import resolve_noise
    from ..io.images import check_finite
    from ..results import Measurement

    check_finite(y, ident["file"] + (f":{ident['dataset']}" if ident.get("dataset") else ""))
    spec = noise if noise is not None else resolve_noise(name, reading.noise, reading.noise_params)
    return Measurement(measurement=np.ascontiguousarray(y, dtype=np.float32), operator=op.spec(), noise=spec,
                       arrays=op.arrays(), single=single, source=ident["file"], seed=None, device="cpu",
                       provenance=ident), ident
