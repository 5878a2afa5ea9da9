"""Poisson photon-count noise for transmission CT, with post-log data."""

from __future__ import annotations

import torch
from pydantic import Field

from ..config import Params
from .base import NOISE, NoiseModel, _flat_sum

MU_MAX = 81.35858  # LoDoPaB-CT attenuation scaling, 1/m: 3071*(20-0.02)/1000 + 20


class PoissonParams(Params):
    n0: float = Field(4096.0, gt=0, description="mean photon count per detector pixel without object")
    mu: float = Field(MU_MAX, gt=0, description="attenuation scaling mu_max (1/length unit of the operator)")
    zero_count: float = Field(0.1, gt=0, description="value that replaces zero counts before the log")


@NOISE.register("poisson")
class PoissonNoise(NoiseModel):
    """Low-dose CT noise (LoDoPaB-CT): counts N ~ Poisson(N0 exp(-mu f)),
    observation y = -log(N / N0) / mu (post-log line integrals).

    The negative log-likelihood is the Poisson NLL of the counts
    N = N0 exp(-mu y) given the rates lambda = N0 exp(-mu f):
    ``sum lambda - N log lambda + log Gamma(N + 1)``; up to the last
    (f-independent) term this is the data term of the patchNR paper,
    sum N0 e^{-mu f} - N0 e^{-mu y} (log N0 - mu f).

    References:
        Leuschner et al., LoDoPaB-CT, Scientific Data 8:109 (2021), arXiv 1910.01113;
        Altekrueger et al., PatchNR, Inverse Problems 39 (2023), arXiv 2205.12021.
    """

    Params = PoissonParams
    name = "poisson"

    def sample(self, f, generator=None):
        p = self.params
        rate = p.n0 * torch.exp(-p.mu * f)
        counts = torch.poisson(rate, generator=generator)
        counts = torch.where(counts == 0, torch.full_like(counts, p.zero_count), counts)
        return -torch.log(counts / p.n0) / p.mu

    def counts(self, y: torch.Tensor) -> torch.Tensor:
        return self.params.n0 * torch.exp(-self.params.mu * y)

    def nll(self, y, f):
        p = self.params
        n = self.counts(y)
        log_rate = torch.log(torch.as_tensor(p.n0, dtype=f.dtype, device=f.device)) - p.mu * f
        return _flat_sum(torch.exp(log_rate) - n * log_rate + torch.lgamma(n + 1))
