"""Annealed Langevin dynamics with a diffusion prior: Langevin chains on the posterior at decreasing noise.

In the variance-exploding coordinates x̃ = z_t/m_t the prior at level t is p₀ convolved with N(0, γ_t² Q),
γ_t = σ_t/m_t, and its preconditioned score is Q ∇ log p = −ε_θ(m_t x̃, t)/γ_t.  At each of ``levels``
levels (γ geometric from γ(1) to γ(T_MIN)) the chains take ``steps_per_level`` preconditioned Langevin steps

    x̃ ← x̃ + τ (−ε_θ/γ − w_γ Q ∇ NLL(y | A x(x̃))) + √(2τ) Q^{1/2} ξ,   τ = δ / L_γ,

where w_γ = 1/(1 + γ² L_y) tempers the likelihood at the noisy levels, L_y being the data term's largest
curvature in the Q metric: for Gaussian noise this is the likelihood of the noisy image, whose noise
variance σ_n² grows by γ²·‖A Q^{1/2}‖²/4 (Jalal et al. add γ² alike), and it keeps the steps of the
coarse levels as long as the prior's; w → 1 at the last level.  L_γ is

the largest curvature of the level's tempered posterior in the Q metric, found at the level's start by power
iteration on the Jacobian of the drift (vector–Jacobian products through the network and Hessian–vector
products of the NLL; the bound 1/γ² of the prior's curvature would make the steps far too short once γ is
below the image's own scales), then ``final_steps`` more at the last level.  There the chains target p_γmin(x) · p(y | x), the
posterior up to a prior blurred by γ_min² Q; with the exact score the draws follow it up to the O(τ) bias of
the unadjusted step.

References:
    Song & Ermon, Generative modeling by estimating gradients of the data distribution, NeurIPS 2019,
    arXiv 1907.05600; Jalal et al., Robust compressed sensing MRI with deep generative priors, NeurIPS 2021,
    arXiv 2108.01368 (annealed Langevin for posteriors).
"""

from __future__ import annotations

import math

import torch
from pydantic import Field

from ...config import Params
from .base import DIFFUSION_SAMPLERS, DiffusionSampler


class AnnealedParams(Params):
    levels: int = Field(40, ge=1, description="noise levels from t = 1 down to the smallest")
    steps_per_level: int = Field(5, ge=1, description="Langevin steps at each level")
    final_steps: int = Field(200, ge=0, description="extra steps at the smallest level")
    delta: float = Field(0.1, gt=0, lt=2, description="step as a share of the inverse curvature")
    power_iterations: int = Field(8, ge=1, description="power iterations for each level's curvature")


def curvature(prob, x: torch.Tensor, y: torch.Tensor, t: float, m: float, g: float | None, w: float, iters: int,
              gen: torch.Generator | None) -> float:
    """The spectral radius of the drift's Jacobian (m/γ) ∂ε/∂z + w Q ∇²NLL at x (B, H, W), the largest over
    the chains, by power iteration with vector–Jacobian and Hessian–vector products (γ None: the data term
    alone)."""
    prior = prob.prior
    v = torch.randn(x.shape, generator=gen, device=x.device, dtype=x.dtype)
    lam = 0.0
    for _ in range(iters):
        v = v / v.flatten(1).norm(dim=1).clamp(min=1e-30)[:, None, None]
        with torch.enable_grad():
            xx = x.detach().requires_grad_(True)
            (gd,) = torch.autograd.grad(prob.nll(xx, y).sum(), xx, create_graph=True)
            f = w * (gd * prob.covariance(v)).sum()
            if g is not None:
                f = f + (prior.eps(m * xx, t, prob.window) * v).sum() / g
            (jv,) = torch.autograd.grad(f, xx)
        lam = float((jv * v).flatten(1).sum(1).abs().max())
        v = jv.detach()
    return max(lam, 1e-12)


@DIFFUSION_SAMPLERS.register("annealed-langevin")
class AnnealedLangevin(DiffusionSampler):
    name = "annealed-langevin"
    Params = AnnealedParams

    def run(self, prob, n, gen, track):
        from ..sde import T_MIN

        prior, p = prob.prior, self.params
        y = self.expand(prob, n)
        t_hi = torch.tensor(1.0, dtype=torch.float64)
        m1, s1 = prior.marginal(t_hi)
        m0, s0 = prior.marginal(torch.tensor(T_MIN, dtype=torch.float64))
        g_hi, g_lo = float(s1 / m1), float(s0 / m0)
        gammas = torch.logspace(math.log10(g_hi), math.log10(g_lo), p.levels, dtype=torch.float64).tolist()
        x = g_hi * prob.noise_like(y.shape[0], gen)  # p₀ ∗ N(0, γ² Q) is nearly N(0, γ² Q) at the top
        plan = [(k, g) for k, g in enumerate(gammas) for _ in range(p.steps_per_level)]
        plan += [(p.levels - 1, gammas[-1])] * p.final_steps
        ts = _times(prior, gammas)
        data = curvature(prob, torch.zeros_like(x), y, 1.0, 1.0, None, 1.0, 2 * p.power_iterations, gen)
        level, tau, w = -1, 0.0, 1.0
        for k, g in track(plan, "annealed-langevin", hint="-S levels=, steps_per_level=, final_steps="):
            t, m = ts[k]
            if k != level:  # a new level: its step from its curvature where the chains are now
                level, w = k, 1.0 / (1.0 + g * g * data)
                tau = p.delta / curvature(prob, x, y, t, m, g, w, p.power_iterations, gen)
            eps = prior.eps(m * x, t, prob.window)
            _, grad = prob.nll_grad(x, y)
            drift = -eps / g - w * prob.covariance(grad)
            x = x + tau * drift + (2 * tau) ** 0.5 * prob.noise_like(y.shape[0], gen)
        return prior.to_image(x).reshape(prob.y.shape[0], n, *prob.shape)


def _times(prior, gammas: list[float]) -> list[tuple[float, float]]:
    """(t, m(t)) of each level: the VP time whose σ/m is γ, by bisection (γ grows with t)."""
    out = []
    for g in gammas:
        lo, hi = 0.0, 1.0
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            m, s = prior.marginal(torch.tensor(mid, dtype=torch.float64))
            lo, hi = (mid, hi) if float(s / m) < g else (lo, mid)
        t = 0.5 * (lo + hi)
        out.append((t, float(prior.marginal(torch.tensor(t, dtype=torch.float64))[0])))
    return out
