"""Additive Gaussian noise: white (one σ) or with one σ per measurement point."""

from __future__ import annotations

import math
from typing import Annotated

import numpy as np
import torch
from pydantic import Field, TypeAdapter, ValidationError, field_validator
from pydantic_core import PydanticCustomError

from ..config import Params
from ..errors import ConfigError
from .base import NOISE, NoiseModel, _flat_sum

__all__ = ["GaussianParams", "GaussianNoise"]

#: One standard deviation: a finite number > 0 (lax, as every other setting: 1 and "0.5" are numbers too).
_POSITIVE = TypeAdapter(Annotated[float, Field(gt=0, allow_inf_nan=False)])


def _positive(value) -> float:
    """``value`` as a float > 0, or pydantic's own error (type and message) for it."""
    try:
        return _POSITIVE.validate_python(value)
    except ValidationError as err:
        e = err.errors()[0]
        raise PydanticCustomError(e["type"], e["msg"]) from None


class GaussianParams(Params):
    sigma: float | list[float] = Field(0.01, description="standard deviation of the noise: one number, or a list "
                                                         "with one per measurement point")

    @field_validator("sigma", mode="plain")
    @classmethod
    def _sigma(cls, value):
        if isinstance(value, np.ndarray) and value.ndim == 1:
            value = value.tolist()
        if not isinstance(value, (list, tuple)):
            return _positive(value)
        if not value:
            raise ValueError("give one number, or a list with one positive standard deviation per measurement point "
                             "(got an empty list)")
        out = []
        for i, v in enumerate(value):
            if isinstance(v, (bool, list, tuple, dict)):
                raise ValueError(f"entry {i} is {v!r}, not a number; give one positive standard deviation per "
                                 "measurement point")
            try:
                out.append(_positive(v))
            except PydanticCustomError as exc:
                raise ValueError(f"entry {i} ({v!r}): {exc.message()}; give one positive standard deviation per "
                                 "measurement point") from None
        return out


@NOISE.register("gaussian")
class GaussianNoise(NoiseModel):
    """y = f + σ ⊙ η, η ~ N(0, I): white noise (``sigma`` one number) or one σ_i per measurement point.

    ``nll(y, f) = Σ_i (y_i − f_i)² / (2 σ_i²) + Σ_i ½ log(2π σ_i²)`` per item (B,), with σ_i = σ for a
    scalar ``sigma``.  A list ``sigma`` (m,) holds one σ_i per entry of an item f[b] (m = f[b].numel(), in
    its flattened order) and is shared by every item of the batch; another length is a
    :class:`~invsolve.errors.ConfigError` when the model meets a measurement.
    """

    Params = GaussianParams
    name = "gaussian"

    def __init__(self, params: GaussianParams):
        super().__init__(params)
        s = params.sigma
        self._per_point = None if isinstance(s, float) else np.asarray(s, dtype=np.float64)  # (m,)
        self._log_norm = None if self._per_point is None else 0.5 * math.fsum(
            np.log(2 * math.pi * self._per_point**2).tolist())

    def _point_sigma(self, f: torch.Tensor) -> torch.Tensor:
        """The per-point σ shaped as one item of f (f.shape[1:], or f.shape for 1-D f), in f's dtype and device."""
        shape = f.shape[1:] if f.dim() > 1 else f.shape
        n, m = math.prod(shape), len(self._per_point)
        if n != m:
            raise ConfigError(f"gaussian noise has {m} standard deviations (sigma) but each measurement has {n} "
                              f"points; give sigma as one number or as a list of {n} (one per point, in the "
                              "measurement's flattened order)")
        return torch.as_tensor(self._per_point, dtype=f.dtype, device=f.device).reshape(shape)

    def sample(self, f, generator=None):
        eta = torch.randn(f.shape, generator=generator, device=f.device, dtype=f.dtype)
        if self._per_point is None:
            return f + self.params.sigma * eta
        return f + self._point_sigma(f) * eta

    def nll(self, y, f):
        if self._per_point is None:
            s2 = self.params.sigma**2
            r = _flat_sum((y - f) ** 2) / (2 * s2)
            n = f[0].numel() if f.dim() > 1 else f.numel()
            return r + 0.5 * n * math.log(2 * math.pi * s2)
        s2 = self._point_sigma(f) ** 2
        return _flat_sum((y - f) ** 2 / (2 * s2)) + self._log_norm
