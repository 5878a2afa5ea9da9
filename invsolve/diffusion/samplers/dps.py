"""Diffusion posterior sampling (DPS): the reverse SDE with a likelihood gradient through the denoiser.

At each step from t to t − Δt the predicted noise ε̂ = ε_θ(z_t, t) gives Tweedie's estimate
ẑ₀ = (z_t − σ ε̂)/m; after the prior's reverse step the iterate moves against the gradient, with respect to
z_t (through the network), of the whitened residual norm r(z_t) = √(2 NLL(y | A x̂₀)), brought back to the
units of the data by s = ‖y − A x̂₀‖ / r:

    z ← z − ζ s Q ∇_{z_t} r.

For Gaussian noise s∇r = ∇‖y − A x̂₀‖, the reference code's step (the paper's ζ'/‖y − A x̂₀‖ on the squared
residual, ζ = 2ζ'); for Poisson and mixed noise r comes from their own NLL.  The default ζ = 0.6 is the
reference's 0.3 for images in [−1, 1], carried to data of images in [0, 1].  Q (the noise covariance; identity for
white noise) keeps the step in the space the prior's noise lives in.  DPS approximates the posterior: it
is not exact even with the exact score.

References:
    Chung et al., Diffusion posterior sampling for general noisy inverse problems, ICLR 2023,
    arXiv 2209.14687.
"""

from __future__ import annotations

import torch
from pydantic import Field

from ...config import Params
from .base import DIFFUSION_SAMPLERS, DiffusionSampler, reverse_step


class DPSParams(Params):
    steps: int = Field(200, ge=2, description="reverse-time steps from t = 1")
    zeta: float = Field(0.6, gt=0, description="guidance step ζ (see the module docstring)")


@DIFFUSION_SAMPLERS.register("dps")
class DPS(DiffusionSampler):
    name = "dps"
    Params = DPSParams

    def run(self, prob, n, gen, track):
        from ..sde import time_grid

        prior, p = prob.prior, self.params
        y = self.expand(prob, n)
        ts = time_grid(p.steps, None).tolist()
        z = prob.noise_like(y.shape[0], gen)
        for i in track(range(p.steps), "dps", hint="-S steps=N"):
            t, dt = ts[i], ts[i] - ts[i + 1]
            with torch.enable_grad():
                zz = z.detach().requires_grad_(True)
                z0, eps = prior.denoise(zz, t, prob.window)
                x0 = prior.to_image(z0)
                f = prob.operator.forward(x0)
                r = torch.sqrt(2 * prob.noise.nll(y, f).clamp(min=0) + 1e-12)
                scale = (y - f).detach().flatten(1).norm(dim=1) / r.detach()  # s, per chain
                (g,) = torch.autograd.grad((scale * r).sum(), zz)
            z = reverse_step(prior, zz.detach(), eps.detach(), t, dt, prob.noise_like(y.shape[0], gen))
            z = z - p.zeta * prob.covariance(g)
        z0, _ = prior.denoise(z, ts[-1], prob.window)
        return prior.to_image(z0).reshape(prob.y.shape[0], n, *prob.shape)
