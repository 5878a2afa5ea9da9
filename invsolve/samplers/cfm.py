"""Conditional flow matching (``cfm``) with mini-batch OT coupling under a
conditional cost, or independent coupling, and ODE sampling.

Training (working coordinates, see :class:`invsolve.samplers.base.Sampler`):
source points (z_i, y_i) with z_i ~ N(0, I) reuse the batch's own conditions;
with ``coupling="ot"`` the targets are re-ordered by the exact OT plan (POT
``ot.emd``, uniform weights) for the cost C_ij = ‖z_i − x_j‖² + β²‖y_i − y_j‖²,
a permutation j(i); ``"independent"`` keeps j(i) = i.  With t ~ U[0, 1] and
x_t = (1 − t) z_i + t x_j(i) the network v(x_t, y_i, t) regresses the velocity
x_j(i) − z_i.  Sampling integrates dx/dt = v(x, y, t) from t = 0 to 1 with
Euler, midpoint or RK4 steps.  The y-part of the cost is measured in the data's
own units: the measurement for vectors, the initial-guess image for images.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from pydantic import Field
from torch import nn

from ..config import Params
from .base import SAMPLERS, Sampler
from .networks import MLP, UNet, time_features

__all__ = ["CFMConfig", "ConditionalFlowMatching", "ot_permutation"]


class CFMConfig(Params):
    coupling: Literal["ot", "independent"] = Field("ot", description="mini-batch OT under the conditional cost, or independent")
    beta: float = Field(20.0, ge=0, description="weight β of the condition in the OT cost ‖x−x′‖² + β²‖y−y′‖²")
    solver: Literal["euler", "midpoint", "rk4"] = Field("midpoint", description="ODE solver for sampling")
    ode_steps: int = Field(10, ge=1, description="ODE steps for sampling")
    hidden: int = Field(256, ge=8, description="vectors: MLP width")
    depth: int = Field(3, ge=1, description="vectors: hidden layers of the MLP")
    channels: int = Field(16, ge=4, description="images: UNet base channels")
    condition: Literal["guess", "adjoint"] = Field("guess", description="images: condition on the initial guess (bicubic/FBP) or Aᵀy")
    residual: bool = Field(True, description="images: learn x − x₀(y) instead of x")


def ot_permutation(cost: torch.Tensor) -> torch.Tensor:
    """The exact OT permutation of a square cost (B, B) with uniform weights: j(i) (B,).

    References:
        Flamary et al., POT: Python Optimal Transport, JMLR 22 (2021).
    """
    import ot  # lazy: POT is only needed for OT-coupled training

    c = cost.detach().cpu().double().numpy()
    w = np.full(c.shape[0], 1.0 / c.shape[0])
    plan = ot.emd(w, w, c)
    return torch.as_tensor(plan.argmax(axis=1), device=cost.device)


@SAMPLERS.register("cfm")
class ConditionalFlowMatching(Sampler):
    """Conditional (Bayesian OT) flow matching: x = Φ₁(z; y), z ~ N(0, I).

    Shapes: conditions c (R, m) for vectors or (R, 1, H, W) for images;
    working samples (R, d) or (R, 1, H, W).

    References:
        Chemseddine, Hagemann, Wald, Steidl, Conditional Wasserstein distances
        with applications in Bayesian OT flow matching, arXiv 2403.18705;
        Lipman et al., Flow matching for generative modeling, arXiv 2210.02747;
        Tong et al., Improving and generalizing flow-based generative models
        with minibatch optimal transport, arXiv 2302.00482.
    """

    name = "cfm"
    sampling_settings = ("solver", "ode_steps")
    Config = CFMConfig

    def __init__(self, config, operator, noise):
        super().__init__(config, operator, noise)
        self.solver, self.ode_steps = config.solver, config.ode_steps

    def build_model(self) -> nn.Module:
        c = self.config
        if self.vector:
            d, m = self.operator.domain_shape[0], self.operator.range_shape[0]
            return MLP(d + m + 16, d, c.hidden, c.depth)
        return UNet(1, 1, 1, base=c.channels)

    def velocity(self, x: torch.Tensor, c: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """v(x, y, t): x (R, *work), c (R, *cond), t (R,) -> (R, *work)."""
        model = self.net["model"]
        if self.vector:
            return model(torch.cat([x, c, time_features(t)], dim=1))
        return model(x, c, t)

    def pair(self, z: torch.Tensor, xw: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """Target index j(i) for each source (z_i, c_i)."""
        if self.config.coupling == "independent":
            return torch.arange(len(z), device=z.device)
        with torch.no_grad():
            raw = self.net["cstd"].inverse(c).flatten(1)
            cost = torch.cdist(z.flatten(1), xw.flatten(1)) ** 2 + self.config.beta**2 * torch.cdist(raw, raw) ** 2
        return ot_permutation(cost)

    batch_coupled = True  # the OT pairing and the draws span the whole batch

    def loss(self, xw, c, generator, part=None):
        z = torch.randn(xw.shape, generator=generator, device=xw.device)
        j = self.pair(z, xw, c)
        x1 = xw[j]
        t = torch.rand((len(z),), generator=generator, device=xw.device)
        if part is not None:  # this rank's rows, after the whole batch's draws and pairing
            z, x1, t, c = z[part], x1[part], t[part], c[part]
        tb = t.reshape(-1, *([1] * (xw.dim() - 1)))
        xt = (1 - tb) * z + tb * x1
        return ((self.velocity(xt, c, t) - (x1 - z)) ** 2).mean()

    def set_sampling(self, config) -> None:
        self.config = config
        self.set_ode(config.solver, config.ode_steps)

    def set_ode(self, solver: str | None = None, steps: int | None = None) -> None:
        """Change the sampling solver or step count of this loaded sampler."""
        self.solver = solver or self.solver
        self.ode_steps = int(steps or self.ode_steps)

    def sample_work(self, c, generator):
        x = torch.randn((len(c), *self.work_shape), generator=generator, device=c.device)
        h = 1.0 / self.ode_steps
        ones = torch.ones(len(c), device=c.device)
        for k in range(self.ode_steps):
            t = ones * (k * h)
            if self.solver == "euler":
                x = x + h * self.velocity(x, c, t)
            elif self.solver == "midpoint":
                x = x + h * self.velocity(x + 0.5 * h * self.velocity(x, c, t), c, t + 0.5 * h)
            else:
                k1 = self.velocity(x, c, t)
                k2 = self.velocity(x + 0.5 * h * k1, c, t + 0.5 * h)
                k3 = self.velocity(x + 0.5 * h * k2, c, t + 0.5 * h)
                k4 = self.velocity(x + h * k3, c, t + h)
                x = x + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        return x
