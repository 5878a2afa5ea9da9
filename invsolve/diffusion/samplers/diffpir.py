"""DiffPIR: plug-and-play restoration with a diffusion denoiser and a data proximal step per step.

At each step from t to t' < t:

    ẑ₀ = (z_t − σ_t ε_θ(z_t, t)) / m_t                                   (Tweedie's denoiser)
    z̃₀ = argmin_z  NLL(y | A x(z)) + ρ_t/2 ‖z − ẑ₀‖²,  ρ_t = λ / γ_t²,  γ_t = σ_t/m_t
    ε̂ = (z_t − m_t z̃₀)/σ_t;   z_t' = m_t' z̃₀ + σ_t' (√(1−ζ) ε̂ + √ζ η),  η ~ N(0, Q)

The paper writes ρ_t = λσ_n²/σ̄_t² for the squared residual; with the NLL (which holds 1/(2σ_n²)) it is
λ/γ_t².  The proximal problem is solved by L-BFGS with a strong-Wolfe line search from ẑ₀ for every noise
model alike (a closed form exists for Gaussian superresolution and blur only).

References:
    Zhu et al., Denoising diffusion models for plug-and-play image restoration, CVPR 2023 workshops,
    arXiv 2305.08995.
"""

from __future__ import annotations

import torch
from pydantic import Field

from ...config import Params
from .base import DIFFUSION_SAMPLERS, DiffusionSampler


class DiffPIRParams(Params):
    steps: int = Field(100, ge=2, description="diffusion steps from t = 1")
    lam: float = Field(7.0, gt=0, description="λ: weight of the prior in the proximal step (the paper's deblur 7)")
    zeta: float = Field(0.3, ge=0, le=1, description="ζ: share of fresh noise at each step (0: deterministic)")
    prox_steps: int = Field(10, ge=1, description="L-BFGS iterations of each proximal step")


def _prox(prob, y, z0, rho: float, iters: int) -> torch.Tensor:
    """argmin_z NLL(y | A x(z)) + ρ/2 ‖z − z0‖², all items at once (their objectives are separable)."""
    z = z0.detach().clone().requires_grad_(True)
    opt = torch.optim.LBFGS([z], lr=1.0, max_iter=iters, history_size=10, line_search_fn="strong_wolfe",
                            tolerance_grad=1e-9, tolerance_change=1e-12)

    def closure():
        opt.zero_grad()
        f = prob.nll(z, y).sum() + 0.5 * rho * (z - z0).pow(2).sum()
        f.backward()
        return f

    with torch.enable_grad():
        opt.step(closure)
    return z.detach()


@DIFFUSION_SAMPLERS.register("diffpir")
class DiffPIR(DiffusionSampler):
    name = "diffpir"
    Params = DiffPIRParams

    def run(self, prob, n, gen, track):
        from ..sde import time_grid

        prior, p = prob.prior, self.params
        y = self.expand(prob, n)
        ts = time_grid(p.steps, None)
        ms, ss = prior.marginal(ts)
        z = prob.noise_like(y.shape[0], gen)
        for i in track(range(p.steps), "diffpir", hint="-S steps=N"):
            t = float(ts[i])
            z0, _ = prior.denoise(z, t, prob.window)
            m, s = float(ms[i]), float(ss[i])
            z0 = _prox(prob, y, z0, p.lam / (s / m) ** 2, p.prox_steps)
            if i == p.steps - 1:
                z = z0
                break
            e = (z - m * z0) / s
            fresh = prob.noise_like(y.shape[0], gen)
            z = float(ms[i + 1]) * z0 + float(ss[i + 1]) * ((1 - p.zeta) ** 0.5 * e + p.zeta ** 0.5 * fresh)
        return prior.to_image(z).reshape(prob.y.shape[0], n, *prob.shape)
