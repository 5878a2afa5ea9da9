"""Additive white Gaussian noise."""

from __future__ import annotations

import math

import torch
from pydantic import Field

from ..config import Params
from .base import NOISE, NoiseModel, _flat_sum


class GaussianParams(Params):
    sigma: float = Field(0.01, gt=0, description="standard deviation of the noise")


@NOISE.register("gaussian")
class GaussianNoise(NoiseModel):
    """y = f + sigma * eta, eta ~ N(0, I).

    ``nll(y, f) = sum (y - f)^2 / (2 sigma^2) + n/2 log(2 pi sigma^2)`` per item.
    """

    Params = GaussianParams
    name = "gaussian"

    def sample(self, f, generator=None):
        return f + self.params.sigma * torch.randn(f.shape, generator=generator, device=f.device, dtype=f.dtype)

    def nll(self, y, f):
        s2 = self.params.sigma**2
        r = _flat_sum((y - f) ** 2) / (2 * s2)
        n = f[0].numel() if f.dim() > 1 else f.numel()
        return r + 0.5 * n * math.log(2 * math.pi * s2)
