"""Priors on parameter vectors for training samplers on vector problems:
a uniform box, a Gaussian and a Gaussian mixture, with seeded sampling and
log-densities.  Shapes: samples (N, d), log-densities (N,).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
from pydantic import Field

from ..config import Params, validate_params
from ..errors import ConfigError

__all__ = ["VectorPrior", "UniformPrior", "GaussianPrior", "MixturePrior", "PRIORS", "build_prior", "training_prior"]


class VectorPrior:
    """Base class: ``sample(n, generator) -> (n, d)`` and ``log_prob(x) -> (n,)``."""

    Params: ClassVar[type[Params]] = Params
    name: ClassVar[str] = ""

    def __init__(self, params: Params, dim: int):
        self.params = params
        self.dim = int(dim)

    def sample(self, n: int, generator: torch.Generator, device="cpu") -> torch.Tensor:
        raise NotImplementedError

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def as_mixture(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
        """(weights (K,), means (K, d), variances (K, d)) of a Gaussian or Gaussian-mixture prior, for closed-form
        posteriors; None for other priors."""
        return None

    def box(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """The (low, high) corners (d,) of a prior whose support is a box, None for priors on all of R^d."""
        return None

    def spec(self) -> dict[str, Any]:
        return {"name": self.name, "dim": self.dim, **self.params.model_dump(mode="json")}

    def _vec(self, v, what: str) -> torch.Tensor:
        t = torch.as_tensor(v, dtype=torch.float64).flatten()
        if t.numel() == 1:
            return t.expand(self.dim).clone()
        if t.numel() != self.dim:
            raise ConfigError(f"prior parameter {what} has {t.numel()} entries; give one number or {self.dim}")
        return t


class UniformParams(Params):
    low: float | list[float] = Field(-1.0, description="lower corner of the box")
    high: float | list[float] = Field(1.0, description="upper corner of the box")


class UniformPrior(VectorPrior):
    """Uniform on the box [low, high]^d."""

    Params = UniformParams
    name = "uniform"

    def __init__(self, params, dim):
        super().__init__(params, dim)
        self.low, self.high = self._vec(params.low, "low"), self._vec(params.high, "high")
        if not bool((self.high > self.low).all()):
            raise ConfigError("uniform prior needs high > low in every entry; fix --prior-param low/high")

    def sample(self, n, generator, device="cpu"):
        u = torch.rand((n, self.dim), generator=generator, device=device)
        return (self.low.to(device) + u.double() * (self.high - self.low).to(device)).float()

    def box(self):
        return self.low, self.high

    def log_prob(self, x):
        lo, hi = self.low.to(x.device), self.high.to(x.device)
        inside = ((x >= lo) & (x <= hi)).all(dim=1)
        lp = -torch.log(hi - lo).sum()
        return torch.where(inside, lp, torch.full_like(lp, -math.inf)).to(x.dtype)


class GaussianParams(Params):
    mean: float | list[float] = Field(0.0, description="mean (one number or d numbers)")
    std: float | list[float] = Field(1.0, description="standard deviation per entry")


class GaussianPrior(VectorPrior):
    """N(mean, diag(std²))."""

    Params = GaussianParams
    name = "gaussian"

    def __init__(self, params, dim):
        super().__init__(params, dim)
        self.mean, self.std = self._vec(params.mean, "mean"), self._vec(params.std, "std")
        if not bool((self.std > 0).all()):
            raise ConfigError("gaussian prior needs std > 0")

    def sample(self, n, generator, device="cpu"):
        e = torch.randn((n, self.dim), generator=generator, device=device)
        return (self.mean.to(device) + e.double() * self.std.to(device)).float()

    def log_prob(self, x):
        z = (x.double() - self.mean.to(x.device)) / self.std.to(x.device)
        return (-0.5 * (z**2).sum(1) - torch.log(self.std).sum() - 0.5 * self.dim * math.log(2 * math.pi)).to(x.dtype)

    def as_mixture(self):
        """(weights (1,), means (1, d), variances (1, d)) in float64."""
        return torch.ones(1, dtype=torch.float64), self.mean[None].clone(), (self.std**2)[None].clone()


class MixtureParams(Params):
    components: int = Field(10, ge=1, description="number of components K")
    variance: float = Field(0.01, gt=0, description="variance of every component (isotropic)")
    means_low: float = Field(-1.0, description="means are drawn uniformly in [means_low, means_high]^d")
    means_high: float = Field(1.0, description="upper end of the means' box")
    means_seed: int = Field(0, description="seed of the random means")
    means: list[list[float]] | None = Field(None, description="explicit means (K, d), replacing random ones")
    weights: list[float] | None = Field(None, description="component weights (default equal)")


class MixturePrior(VectorPrior):
    """Σ_k w_k N(m_k, v I) with means drawn from a seed (the cOT flow-matching test problem).

    References:
        Chemseddine et al., Conditional Wasserstein distances with applications
        in Bayesian OT flow matching, arXiv 2403.18705.
    """

    Params = MixtureParams
    name = "gmm"

    def __init__(self, params, dim):
        super().__init__(params, dim)
        p = params
        if p.means is not None:
            m = torch.as_tensor(p.means, dtype=torch.float64)
            if m.ndim != 2 or m.shape[1] != dim:
                raise ConfigError(f"gmm means have shape {tuple(m.shape)}; expected (K, {dim})")
        else:
            g = torch.Generator().manual_seed(p.means_seed)
            m = p.means_low + (p.means_high - p.means_low) * torch.rand((p.components, dim), generator=g,
                                                                        dtype=torch.float64)
        k = m.shape[0]
        w = torch.as_tensor(p.weights if p.weights is not None else [1.0] * k, dtype=torch.float64)
        if w.numel() != k or not bool((w > 0).all()):
            raise ConfigError(f"gmm weights must be {k} positive numbers")
        self.means, self.weights = m, w / w.sum()
        self.variances = torch.full((k, dim), p.variance, dtype=torch.float64)

    def sample(self, n, generator, device="cpu"):
        k = torch.multinomial(self.weights.to(device).float(), n, replacement=True, generator=generator)
        e = torch.randn((n, self.dim), generator=generator, device=device).double()
        return (self.means.to(device)[k] + e * self.variances.to(device)[k].sqrt()).float()

    def log_prob(self, x):
        xd = x.double()[:, None]
        m, v = self.means.to(x.device)[None], self.variances.to(x.device)[None]
        lc = -0.5 * (((xd - m) ** 2) / v + torch.log(2 * math.pi * v)).sum(2)
        return torch.logsumexp(lc + torch.log(self.weights.to(x.device)), dim=1).to(x.dtype)

    def as_mixture(self):
        return self.weights.clone(), self.means.clone(), self.variances.clone()


PRIORS: dict[str, type[VectorPrior]] = {"uniform": UniformPrior, "gaussian": GaussianPrior, "gmm": MixturePrior}


def build_prior(spec: dict[str, Any]) -> VectorPrior:
    """Build a prior from ``{"name": ..., "dim": d, **params}``."""
    spec = dict(spec)
    name, dim = spec.pop("name", None), spec.pop("dim", None)
    if name not in PRIORS:
        raise ConfigError(f"unknown prior {name!r}; valid: {', '.join(PRIORS)}")
    if not isinstance(dim, int) or dim < 1:
        raise ConfigError(f"prior {name!r} needs the dimension: give --dim d (got {dim!r})")
    cls = PRIORS[name]
    return cls(validate_params(cls.Params, spec, f"parameters of prior {name!r}"), dim)


def training_prior(sampler) -> VectorPrior | None:
    """The vector prior a loaded trained sampler was trained with (None for image samplers).

    Arguments:
        sampler: A :class:`invsolve.samplers.base.TrainedSampler` read from its file.
    """
    src = (sampler.training_state or {}).get("source", {})
    return build_prior(src["prior"]) if src.get("kind") == "prior" else None
