"""The posterior samplers of diffusion priors: registry, the problem they share, and the reverse-time step.

A :class:`Problem` holds a batch of measurements y, the operator A, the noise model and the prior; its
data term is the noise model's own negative log-likelihood NLL(y | A x) of model-unit images z (x = (z+1)/2),
so Gaussian, Poisson and mixed noise each enter through their own gradient, taken by autograd.

References:
    Song et al., Score-based generative modeling through SDEs, ICLR 2021, arXiv 2011.13456 (the reverse SDE
    and the probability-flow ODE); Hagemann et al., Multilevel diffusion, 2023, arXiv 2303.04772 (the
    reverse process preconditioned by the noise covariance Q).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, ClassVar

import torch

from ...config import Params
from ...registry import Registry

__all__ = ["DIFFUSION_SAMPLERS", "DiffusionSampler", "Problem", "reverse_step", "load_all"]

DIFFUSION_SAMPLERS: Registry[type["DiffusionSampler"]] = Registry("diffusion sampler")


def load_all() -> None:
    from . import annealed, diffpir, dps  # noqa: F401


@dataclass
class Problem:
    """Measurements (B, *range) with their operator and noise model, under a diffusion prior.

    ``window`` is the prior's training window in pixels of this grid (its native resolution by default).
    """

    prior: Any
    y: torch.Tensor
    operator: Any
    noise: Any
    shape: tuple[int, int]
    window: float

    def __post_init__(self):
        self.spec = self.prior.spectrum(self.shape, self.window, self.y.device)

    def nll(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """NLL(y | A x) per item (B,) of model-unit images z (B, H, W)."""
        return self.noise.nll(y, self.operator.forward(self.prior.to_image(z)))

    def nll_grad(self, z: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(NLL (B,), its gradient in z (B, H, W))."""
        with torch.enable_grad():
            zz = z.detach().requires_grad_(True)
            v = self.nll(zz, y)
            (g,) = torch.autograd.grad(v.sum(), zz)
        return v.detach(), g

    def covariance(self, x: torch.Tensor, power: float = 1.0) -> torch.Tensor:
        """Q^power x on this grid."""
        from ..sde import apply_covariance

        return apply_covariance(x, self.spec, power)

    def noise_like(self, n: int, gen: torch.Generator | None) -> torch.Tensor:
        """n draws of η ~ N(0, Q) on this grid, (n, H, W)."""
        from ..sde import colored_noise

        return colored_noise((n, *self.shape), self.spec, gen, self.y.device)


def reverse_step(prior, z: torch.Tensor, eps: torch.Tensor, t: float, dt: float, noise: torch.Tensor | None):
    """One Euler–Maruyama step of the reverse SDE (``noise`` a draw of N(0, Q)) or, with ``noise`` None, of the
    probability-flow ODE, from time t to t − dt, given the predicted noise ``eps`` at (z, t)."""
    tt = torch.tensor(t, dtype=torch.float64)
    b = float(prior.beta(tt))
    sigma = float(prior.marginal(tt)[1])
    score = -eps / sigma  # Q ∇ log p_t(z)
    if noise is None:
        return z + dt * b * (0.5 * z + 0.5 * score)
    return z + dt * b * (0.5 * z + score) + (b * dt) ** 0.5 * noise


class DiffusionSampler:
    """Base of the posterior samplers: ``Params`` and :meth:`run`."""

    name: ClassVar[str] = ""
    Params: ClassVar[type[Params]] = Params

    def __init__(self, params: Params):
        self.params = params

    def run(self, prob: Problem, n: int, gen: torch.Generator | None, track: Callable) -> torch.Tensor:
        """n posterior draws per measurement: (B, n, H, W) in image units."""
        raise NotImplementedError

    @staticmethod
    def expand(prob: Problem, n: int) -> torch.Tensor:
        """The measurements repeated for n chains each: (B·n, *range)."""
        return prob.y.repeat_interleave(n, 0)
