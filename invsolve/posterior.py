"""Posterior summaries shared by every sampler: running moments, quantiles,
and credible-interval coverage.

A posterior file's layout is described with its writer, :mod:`invsolve.results.files`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

__all__ = ["RunningMoments", "PosteriorSummary", "summarize_samples", "concat_summaries", "interval_coverage",
           "split_rhat", "effective_sample_size"]


class RunningMoments:
    """Welford's running mean and variance over samples of shape (B, *shape).

    Memory does not grow with the number of samples.  ``update(x)`` adds one
    sample per batch item; ``update(x, dim=1)`` adds a set of samples (B, S, *shape).

    References:
        Welford, Note on a method for calculating corrected sums of squares
        and products, Technometrics 4(3) (1962).
    """

    def __init__(self) -> None:
        self.n = 0
        self.mean: torch.Tensor | None = None
        self.m2: torch.Tensor | None = None

    def update(self, x: torch.Tensor, dim: int | None = None) -> None:
        x = x.detach().to(torch.float64)
        xs = x.unbind(dim) if dim is not None else (x,)
        for s in xs:
            self.n += 1
            if self.mean is None:
                self.mean = s.clone()
                self.m2 = torch.zeros_like(s)
                continue
            d = s - self.mean
            self.mean += d / self.n
            self.m2 += d * (s - self.mean)

    @property
    def var(self) -> torch.Tensor:
        if self.mean is None:
            raise ValueError("no samples")
        return self.m2 / max(self.n - 1, 1)

    @property
    def std(self) -> torch.Tensor:
        return self.var.sqrt()


@dataclass
class PosteriorSummary:
    """Posterior outputs of N measurements (numpy, float32)."""

    mean: np.ndarray
    std: np.ndarray
    quantiles: np.ndarray | None = None
    levels: tuple[float, ...] = ()
    samples: np.ndarray | None = None
    info: dict = field(default_factory=dict)
    calibrated_quantiles: np.ndarray | None = None


def summarize_samples(samples: torch.Tensor, levels=(), keep: bool = False) -> PosteriorSummary:
    """Summaries of samples (N, S, *shape): mean, std (unbiased), quantiles at ``levels``."""
    s = samples.detach().to(torch.float64)
    q = None
    if levels:
        q = torch.quantile(s.flatten(2), torch.tensor(levels, dtype=torch.float64), dim=1)
        q = q.permute(1, 0, 2).reshape(s.shape[0], len(levels), *s.shape[2:]).float().cpu().numpy()
    return PosteriorSummary(
        mean=s.mean(1).float().cpu().numpy(),
        std=s.std(1, unbiased=s.shape[1] > 1).float().cpu().numpy(),
        quantiles=q,
        levels=tuple(levels),
        samples=samples.float().cpu().numpy() if keep else None,
    )


def concat_summaries(parts: list[PosteriorSummary]) -> PosteriorSummary:
    """One summary of the measurements of ``parts`` (summaries of consecutive batches), in order; the info of
    the first part."""
    def cat(name):
        vals = [getattr(q, name) for q in parts]
        return None if vals[0] is None else np.concatenate(vals).astype(np.float32)

    return PosteriorSummary(mean=cat("mean"), std=cat("std"), quantiles=cat("quantiles"), levels=parts[0].levels,
                            samples=cat("samples"), info=dict(parts[0].info),
                            calibrated_quantiles=cat("calibrated_quantiles"))


def interval_coverage(truth: np.ndarray, quantiles: np.ndarray, levels, mass: float) -> float:
    """Fraction of entries of ``truth`` (N, *shape) inside the central credible
    interval of probability ``mass``, read from ``quantiles`` (N, Q, *shape) at ``levels``.

    The interval is [q_{(1-mass)/2}, q_{(1+mass)/2}]; both levels must be present.
    """
    levels = [round(float(v), 6) for v in levels]
    lo, hi = round((1 - mass) / 2, 6), round((1 + mass) / 2, 6)
    if lo not in levels or hi not in levels:
        raise ValueError(f"coverage at {mass} needs quantile levels {lo} and {hi}; have {levels}")
    ql, qh = quantiles[:, levels.index(lo)], quantiles[:, levels.index(hi)]
    return float(np.mean((truth >= ql) & (truth <= qh)))


def _split_halves(chains: torch.Tensor) -> torch.Tensor | None:
    """Chains (N, C, S, d) cut into 2C half-chains (N, 2C, S // 2, d), float64 (the middle draw of an odd S
    dropped); None when a half would hold fewer than 2 draws."""
    S = chains.shape[2]
    h = S // 2
    if h < 2:
        return None
    return torch.cat([chains[:, :, :h], chains[:, :, S - h:]], dim=1).double()


def split_rhat(chains: torch.Tensor) -> torch.Tensor:
    """Split-R̂ of each coordinate: chains (N, C, S, d) -> (N, d); ≈ 1 when the chains agree, NaN if S < 4.

    References:
        Vehtari, Gelman, Simpson, Carpenter, Bürkner, Rank-normalization, folding, and localization: an
        improved R̂ for assessing convergence of MCMC, Bayesian Analysis 16(2) (2021) (without the ranks).
    """
    N, C, S, d = chains.shape
    halves = _split_halves(chains)
    if halves is None:
        return torch.full((N, d), float("nan"), dtype=chains.dtype, device=chains.device)
    h = halves.shape[2]
    w = halves.var(2).mean(1)
    b = h * halves.mean(2).var(1)
    var = (h - 1) / h * w + b / h
    return torch.sqrt(var / w.clamp_min(1e-300)).to(chains.dtype)


def effective_sample_size(chains: torch.Tensor) -> torch.Tensor:
    """Effective sample size of each coordinate over all chains: (N, C, S, d) -> (N, d), NaN if S < 4.

    The split-chain estimate with Geyer's initial monotone sequence: C·S draws that are independent give
    about C·S; draws that barely move (or chains that disagree) give a few.  Autocovariances by FFT.

    References:
        Vehtari et al., Bayesian Analysis 16(2) (2021), eqs. 10-11 (without the ranks); Geyer, Practical
        Markov chain Monte Carlo, Statistical Science 7(4) (1992).
    """
    N, C, S, d = chains.shape
    x = _split_halves(chains)
    if x is None:
        return torch.full((N, d), float("nan"), dtype=chains.dtype, device=chains.device)
    M, h = x.shape[1], x.shape[2]
    xc = x - x.mean(2, keepdim=True)
    n_fft = 1 << (2 * h - 1).bit_length()
    f = torch.fft.rfft(xc, n=n_fft, dim=2)
    acov = torch.fft.irfft(f * f.conj(), n=n_fft, dim=2)[:, :, :h] / h  # (N, M, h, d), biased
    w = acov[:, :, 0].mean(1) * h / (h - 1)  # mean within-chain variance
    var_plus = w * (h - 1) / h + x.mean(2).var(1)
    rho = 1 - (w[:, None] - acov.mean(1)) / var_plus[:, None]  # (N, h, d)
    rho[:, 0] = 1.0
    pairs = rho[:, 0 : 2 * (h // 2) : 2] + rho[:, 1 : 2 * (h // 2) : 2]  # (N, h // 2, d)
    positive = torch.cumprod((pairs > 0).double(), dim=1)  # up to the first non-positive pair
    mono = torch.cummin(pairs, dim=1).values  # Geyer's monotone sequence
    tau = -1 + 2 * (mono * positive).sum(1)
    n = M * h
    tau = tau.clamp_min(1 / math.log10(n)) if n > 1 else tau
    return (n / tau).to(chains.dtype)

