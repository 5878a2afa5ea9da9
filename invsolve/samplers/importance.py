"""Importance resampling of a trained conditional flow's proposals (``cflow``: exact densities; ``csnf``: the
path weights of its stochastic layers, Wu, Köhler, Noé, NeurIPS 2020).

An amortised flow q(x | y) is trained once for all y and is therefore only
approximately the posterior of any one measurement.  Its density is exact,
so for low-dimensional parameter posteriors the approximation can be removed
per measurement: draw K proposals x_k ~ q(x | y), weight them by

    w_k ∝ p(y | x_k) · p(x_k) / q(x_k | y),

and resample n of them in proportion to w (systematic resampling).  The
effective sample size ESS = (Σ w)² / Σ w² says how well q covered the
posterior; the kept sample is exact as K/n → ∞ whenever q's support covers
the posterior's.  The likelihood is the measurement's noise model, so the
same proposals also serve a noise level other than the training one (e.g. the
EM-DeepGEM estimate).

No library offers this for the samplers here (it needs the flow's exact log
density and the operator's likelihood together), hence these few lines.

References:
    Dax, Green, Gair, Pürrer, Wildberger, Macke, Buonanno, Schölkopf, Neural
    importance sampling for rapid and reliable gravitational-wave inference,
    Phys. Rev. Lett. 130 (2023) 171403, arXiv 2210.05686; Kitagawa, Monte
    Carlo filter and smoother for non-Gaussian nonlinear state space models,
    J. Comput. Graph. Stat. 5(1) (1996) (systematic resampling).
"""

from __future__ import annotations

import math

import torch

from ..errors import ConfigError, OperatorError

__all__ = ["flow_log_prob", "importance_resample", "importance_weigher", "systematic_resample"]


@torch.no_grad()
def flow_log_prob(sampler, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """log q(x | y) (R,) of a vector ``cflow`` for parameters x (R, d) and measurements y (R, m)."""
    if sampler.name != "cflow" or not sampler.vector:
        raise ConfigError(f"importance resampling needs a vector cflow (an exact density); got {sampler.name!r}")
    sampler.net.eval()
    c = sampler.condition(y.to(sampler.device, torch.float32), None)
    w = sampler.to_work(x.to(sampler.device, torch.float32), None)
    return sampler.log_q_vector(*sampler._to_latent(w, c))


def systematic_resample(weights: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
    """n indices (B, n) drawn in proportion to the rows of ``weights`` (B, K) with one uniform per row."""
    B, K = weights.shape
    cdf = torch.cumsum(weights / weights.sum(1, keepdim=True), dim=1)
    u = torch.rand((B, 1), generator=generator, device=weights.device, dtype=weights.dtype)
    pos = (u + torch.arange(n, device=weights.device, dtype=weights.dtype)) / n
    return torch.searchsorted(cdf, pos).clamp_max(K - 1)


@torch.no_grad()
def importance_resample(sampler, operator, noise, prior, y: torch.Tensor, n: int, proposals: int,
                        generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Posterior samples of each measurement by importance resampling of the flow's proposals.

    Args:
        sampler: A trained vector sampler with ``exact_weights`` (``cflow``: its density; ``csnf``: its
            path weights).
        operator: The forward operator f: (R, d) -> (R, m).
        noise: Noise model whose ``nll(y, f)`` (R,) is −log p(y | x) up to a constant.
        prior: Vector prior with ``log_prob`` (R,) (−∞ outside its support).
        y: Measurements (B, m).
        n: Samples kept per measurement.
        proposals: Proposals K per measurement (K ≥ n; e.g. 10·n).
        generator: Drives proposals and resampling.

    Returns:
        Samples (B, n, d) and the effective sample size of the K proposals (B,).
    """
    if proposals < n:
        raise ConfigError(f"importance resampling needs at least as many proposals as samples ({proposals} < {n})")
    B = len(y)
    xs, log_q = sampler.proposals(y, proposals, generator)  # (B, K, d), (B·K,)
    d = xs.shape[-1]
    flat = xs.reshape(-1, d)
    yr = y.to(flat.device, torch.float32).repeat_interleave(proposals, 0)
    log_p = prior.log_prob(flat.double())
    inside = torch.isfinite(log_p)
    f = operator(flat).double()
    log_w = -noise.nll(yr.double(), f) + torch.where(inside, log_p, torch.zeros_like(log_p)) - log_q.double()
    log_w = torch.where(inside & torch.isfinite(log_w), log_w, torch.full_like(log_w, -math.inf)).reshape(B, proposals)
    if not bool(torch.isfinite(log_w).any(1).all()):
        raise ConfigError("no flow proposal has a finite posterior weight; the flow does not fit these measurements")
    w = torch.exp(log_w - log_w.amax(1, keepdim=True))
    ess = w.sum(1) ** 2 / (w**2).sum(1)
    idx = systematic_resample(w, n, generator)
    return torch.gather(xs.to(w.device).double(), 1, idx[..., None].expand(-1, -1, d)).to(xs.dtype), ess.float()


def importance_weigher(smp, measurement, importance: int, dev):
    """``weigh(y, n, generator) -> (samples, ess)`` for ``sample-posterior --importance``: a vector cflow's
    proposals resampled against the likelihood of ``measurement`` (an :class:`invsolve.api.Measurement`) and the
    sampler's training prior (else the operator's own box)."""
    from ..mcmc import resolve_prior_spec
    from ..noise import build_noise
    from .priors import build_prior, training_prior

    if importance < 1:
        raise OperatorError(f"--importance takes the proposals per kept sample (at least 1), got {importance}")
    if not smp.exact_weights:
        raise OperatorError(f"--importance needs a cflow or csnf sampler of a vector problem (exact proposal "
                            f"weights); {measurement.operator.get('name')!r} with {smp.name!r} has none")
    op = measurement.build_operator(dev)
    pr = training_prior(smp) or build_prior(resolve_prior_spec(op, None))
    nm = build_noise(measurement.noise)
    return lambda y, n, gen: importance_resample(smp, op, nm, pr, y, n, importance * n, gen)
