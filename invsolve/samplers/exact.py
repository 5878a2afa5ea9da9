"""Closed-form posteriors for validation: a Gaussian or Gaussian-mixture prior,
a linear operator and Gaussian noise; plus the energy distance used to compare
sample sets.  Everything is float64; shapes are given per function.
"""

from __future__ import annotations

import math

import torch

from ..errors import OperatorError

__all__ = ["ExactPosterior", "exact_posterior", "energy_distance"]


class ExactPosterior:
    """p(x | y) ∝ Σ_k w_k N(x; m_k, diag v_k) · N(y; A x, σ² I).

    The posterior is a mixture with, per component,
    S'_k = (AᵀA/σ² + diag(1/v_k))⁻¹, m'_k = S'_k (Aᵀy/σ² + m_k / v_k) and
    w'_k ∝ w_k N(y; A m_k, A diag(v_k) Aᵀ + σ² I).

    Arguments:
        weights: (K,) prior weights.
        means: (K, d) prior means.
        variances: (K, d) prior variances (diagonal covariances).
        matrix: (m, d) the operator A.
        sigma: Noise standard deviation σ, or one per measured value (m,) (a diagonal noise covariance).

    References:
        Chemseddine et al., Conditional Wasserstein distances with applications
        in Bayesian OT flow matching, arXiv 2403.18705 (the mixture problem).
    """

    def __init__(self, weights, means, variances, matrix, sigma: float | list[float]):
        d64 = torch.float64
        self.w = torch.as_tensor(weights, dtype=d64)
        self.m = torch.as_tensor(means, dtype=d64)
        self.v = torch.as_tensor(variances, dtype=d64)
        self.A = torch.as_tensor(matrix, dtype=d64)
        # noise variances per measured value, (m,): Σ = diag(σ²)
        s = torch.as_tensor(sigma, dtype=d64).reshape(-1)
        if s.numel() not in (1, self.A.shape[0]):
            raise OperatorError(f"gaussian noise has {s.numel()} standard deviations (sigma) for {self.A.shape[0]} "
                                "measured values; give one, or one per value")
        self.s2 = s.expand(self.A.shape[0]) ** 2
        prec = self.A.T @ (self.A / self.s2[:, None])  # Aᵀ Σ⁻¹ A, (d, d)
        self.cov = torch.linalg.inv(prec[None] + torch.diag_embed(1.0 / self.v))  # (K, d, d)
        self.chol = torch.linalg.cholesky(self.cov)
        ycov = self.A[None] @ torch.diag_embed(self.v) @ self.A.T[None] + torch.diag(self.s2)
        self.ychol = torch.linalg.cholesky(ycov)  # (K, m, m)

    def components(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior log-weights (B, K) and means (B, K, d) for y (B, m)."""
        y = y.to(torch.float64)
        r = y[:, None, :] - (self.m @ self.A.T)[None]  # (B, K, m)
        sol = torch.linalg.solve_triangular(self.ychol[None], r[..., None], upper=False)[..., 0]
        logdet = 2 * torch.log(torch.diagonal(self.ychol, dim1=-2, dim2=-1)).sum(-1)  # (K,)
        ll = -0.5 * (sol**2).sum(-1) - 0.5 * logdet[None] - 0.5 * r.shape[-1] * math.log(2 * math.pi)
        logw = torch.log_softmax(torch.log(self.w)[None] + ll, dim=1)
        rhs = ((y / self.s2) @ self.A)[:, None, :] + (self.m / self.v)[None]  # Aᵀ Σ⁻¹ y + V⁻¹ μ, (B, K, d)
        means = (self.cov[None] @ rhs[..., None])[..., 0]
        return logw, means

    def sample(self, y: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
        """n exact posterior samples per measurement: y (B, m) -> (B, n, d) float64."""
        logw, means = self.components(y)
        B, K, d = means.shape
        k = torch.multinomial(logw.exp().float(), n, replacement=True, generator=generator)  # (B, n)
        e = torch.randn((B, n, d), generator=generator, dtype=torch.float64)
        mu = torch.gather(means, 1, k[..., None].expand(B, n, d))
        return mu + (self.chol[k] @ e[..., None])[..., 0]

    def mean(self, y: torch.Tensor) -> torch.Tensor:
        """Posterior mean (B, d)."""
        logw, means = self.components(y)
        return (logw.exp()[..., None] * means).sum(1)

    def covariance(self, y: torch.Tensor) -> torch.Tensor:
        """Posterior covariance (B, d, d)."""
        logw, means = self.components(y)
        w = logw.exp()
        mu = (w[..., None] * means).sum(1)
        dm = means - mu[:, None]
        within = (w[..., None, None] * self.cov[None]).sum(1)
        return within + (w[..., None, None] * dm[..., :, None] * dm[..., None, :]).sum(1)


def exact_posterior(operator, noise_spec: dict, prior) -> ExactPosterior:
    """The closed-form posterior of a ``linear`` operator, Gaussian noise and a
    Gaussian or Gaussian-mixture prior (:mod:`invsolve.samplers.priors`)."""
    if operator.kind != "linear":
        raise OperatorError(f"the exact posterior needs the 'linear' operator, not {operator.name!r}")
    if noise_spec.get("name") != "gaussian":
        raise OperatorError(f"the exact posterior needs gaussian noise, not {noise_spec.get('name')!r}")
    mixture = prior.as_mixture()
    if mixture is None:
        raise OperatorError(f"the exact posterior needs a gaussian or gmm prior, not {prior.name!r}")
    w, m, v = mixture
    return ExactPosterior(w, m, v, operator.dense(), noise_spec["sigma"])


def energy_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Energy distance 2E‖X−Y‖ − E‖X−X′‖ − E‖Y−Y′‖ (V-statistics, so two
    independent sets from one law give a small positive value that shrinks
    like 1/N): a (B, N, d), b (B, M, d) -> (B,).

    References:
        Székely & Rizzo, Energy statistics, J. Stat. Plan. Inference 143 (2013).
    """
    a, b = a.to(torch.float64), b.to(torch.float64)
    ab = torch.cdist(a, b).mean((1, 2))
    aa = torch.cdist(a, a).mean((1, 2))
    bb = torch.cdist(b, b).mean((1, 2))
    return 2 * ab - aa - bb
