"""Mixed additive and multiplicative Gaussian noise."""

from __future__ import annotations

import math

import torch
from pydantic import Field

from ..config import Params
from .base import NOISE, NoiseModel, _flat_sum


class MixedParams(Params):
    a: float = Field(0.01, ge=0, description="additive standard deviation")
    b: float = Field(0.05, ge=0, description="relative (multiplicative) standard deviation")


@NOISE.register("mixed")
class MixedNoise(NoiseModel):
    """y = f + a*eta1 + b*f*eta2, so y | f ~ N(f, a^2 + b^2 f^2) entry-wise.

    References:
        Mixed Noise and Posterior Estimation with Conditional DeepGEM,
        Mach. Learn.: Sci. Technol. 5 (2024) 035001, arXiv 2402.02964.
    """

    Params = MixedParams
    name = "mixed"

    def _var(self, f):
        return self.params.a**2 + self.params.b**2 * f**2

    def sample(self, f, generator=None):
        e1 = torch.randn(f.shape, generator=generator, device=f.device, dtype=f.dtype)
        e2 = torch.randn(f.shape, generator=generator, device=f.device, dtype=f.dtype)
        return f + self.params.a * e1 + self.params.b * f * e2

    def nll(self, y, f):
        var = self._var(f).clamp_min(1e-12)
        return _flat_sum((y - f) ** 2 / (2 * var) + 0.5 * torch.log(2 * math.pi * var))
