"""The closed-form M-step of mixed-noise EM: nested EM updates of (a², b²).

With residuals r = y − f(x) of posterior samples x, the noise model
r = u + v, u ~ N(0, α), v ~ N(0, β f²) (α = a², β = b²) is a sum of two
Gaussian sources; one EM step on that latent split is

    α ← mean[ r² α²/σ⁴ + α β f²/σ² ],   β ← mean[ r² β² f²/σ⁴ + α β/σ² ],   σ² = α + β f²,

averaged over samples, measurements and components.  Each step does not
decrease Σ log N(r; 0, α + β f²).
"""

from __future__ import annotations

import math

import torch

__all__ = ["mstep_mixed", "mixed_nll"]


def mstep_mixed(r: torch.Tensor, f: torch.Tensor, a: float, b: float, iterations: int = 20,
                tol: float = 0.0) -> tuple[float, float]:
    """Run ``iterations`` nested-EM updates of (a², b²), warm-started at (a, b).

    Args:
        r: Residuals y − f(x), any shape (e.g. (N, S, m)).
        f: Clean predictions f(x), the same shape.
        a, b: Current additive and relative standard deviations (> 0).
        iterations: Inner EM steps.
        tol: Stop early when both relative changes fall below ``tol`` (0: never).

    Returns:
        The updated (a, b).

    References:
        Hagemann, Gruhlke, Heidenreich, Steidl, Mixed noise and posterior
        estimation with conditional DeepGEM, arXiv 2402.02964 (§ M-step).
    """
    r2 = r.detach().double().reshape(-1) ** 2
    f2 = f.detach().double().reshape(-1) ** 2
    alpha = torch.tensor(max(float(a), 1e-12) ** 2, dtype=torch.float64, device=r2.device)
    beta = torch.tensor(max(float(b), 1e-12) ** 2, dtype=torch.float64, device=r2.device)
    for _ in range(int(iterations)):
        s2 = (alpha + beta * f2).clamp_min(1e-300)
        w = r2 / s2**2
        alpha_new = (alpha**2 * w + alpha * beta * f2 / s2).mean()
        beta_new = (beta**2 * f2 * w + alpha * beta / s2).mean()
        done = tol > 0 and abs(float(alpha_new / alpha) - 1) < tol and abs(float(beta_new / beta) - 1) < tol
        alpha, beta = alpha_new.abs(), beta_new.abs()
        if done:
            break
    return math.sqrt(float(alpha)), math.sqrt(float(beta))


def mixed_nll(y: torch.Tensor, f: torch.Tensor, a: float, b: float) -> torch.Tensor:
    """−log N(y; f, a² + b² f²) summed over the last dimension: (..., m) -> (...)."""
    var = (a**2 + b**2 * f**2).clamp_min(1e-12)
    return 0.5 * ((y - f) ** 2 / var + torch.log(2 * math.pi * var)).sum(-1)
