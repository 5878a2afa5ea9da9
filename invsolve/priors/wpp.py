"""Wasserstein patch prior (WPP): a reference patch set and a semi-dual W₂² regulariser.

No training: the prior is M random patches y_j of the images (seeded).  For the
patches x_i of an estimate, the regulariser is the semi-dual of the squared
Wasserstein-2 distance between the empirical measures of {x_i} and {y_j}:

    R(x) = max_ψ  (1/N) Σ_i min_j (‖x_i − y_j‖² − ψ_j) + (1/M) Σ_j ψ_j,

with ψ improved by a few Adam ascent steps per call (warm-started across calls
unless ``restart_psi``) and the gradient in x taken at fixed ψ through the
c-transform assignment j(i) = argmin_j (‖x_i − y_j‖² − ψ_j):
∂R/∂x_i = (2/N)(x_i − y_{j(i)}).  R is a regulariser value, not a density;
``nll`` returns each patch's term of it at the current ψ.

References:
    Hertrich, Houdard, Redenbach, Wasserstein patch prior for image
    superresolution; the review of patch regularisers, arXiv 2312.16611.
"""

from __future__ import annotations

import torch
from pydantic import Field

from ..config import Params
from ..methods.base import no_track
from .base import PRIORS, PatchPrior, PriorConfig
from .patches import random_patches

__all__ = ["WPP", "WPPConfig", "WPPTraining"]

CHUNK = 2 ** 24  # elements of one block of the N × M cost matrix


class WPPConfig(PriorConfig):
    n_reference: int = Field(10000, ge=1, description="reference patches M drawn from the images")
    psi_steps: int = Field(2, ge=0, description="Adam ascent steps on ψ per regulariser call")
    psi_lr: float = Field(1e-3, gt=0, description="Adam step size of ψ")
    restart_psi: bool = Field(False, description="reset ψ to 0 at every call (the review code's choice)")


class WPPTraining(Params):
    eval_patches: int = Field(10000, ge=1, description="patches of the images/validation for the reported W2²")


def c_transform(x: torch.Tensor, y: torch.Tensor, psi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """min_j (‖x_i − y_j‖² − ψ_j) and its argmin: x (N, d), y (M, d), ψ (M,) -> ((N,), (N,) long).

    Computed in blocks of rows without gradients.
    """
    vals, idx = [], []
    y2 = y.pow(2).sum(1)
    step = max(1, CHUNK // max(1, y.shape[0]))
    with torch.no_grad():
        for i in range(0, x.shape[0], step):
            xb = x[i:i + step]
            c = xb.pow(2).sum(1, keepdim=True) + (y2 - psi)[None] - 2.0 * xb @ y.T
            v, j = c.min(1)
            vals.append(v)
            idx.append(j)
    return torch.cat(vals), torch.cat(idx)


@PRIORS.register("wpp")
class WPP(PatchPrior):
    """Wasserstein patch prior.  ``regularizer``: (N, p²) -> scalar W₂² estimate (updates ψ).

    Buffer: ``reference`` (M, p²); ψ (M,) and its Adam moments are working state,
    not saved.
    """

    name = "wpp"
    Config = WPPConfig
    Training = WPPTraining
    is_density = False

    def __init__(self, config: WPPConfig | None = None):
        super().__init__(config)
        self.register_buffer("reference", torch.zeros(self.config.n_reference, self.dim))
        self.reset()

    def prepare_state(self, state) -> None:
        ref = state.get("reference")
        if isinstance(ref, torch.Tensor) and ref.dim() == 2 and ref.shape[1] == self.dim:
            self.reference = torch.zeros_like(ref)  # fewer patches than n_reference when images were small
        self.reset()

    def after_load(self) -> None:
        self.reset()

    stateful = True

    def reset(self) -> None:
        """Set ψ and its Adam state to zero (the next call starts the dual afresh)."""
        m = self.reference.shape[0]
        kw = dict(dtype=self.reference.dtype, device=self.reference.device)
        self.psi, self._m1, self._m2, self._t = torch.zeros(m, **kw), torch.zeros(m, **kw), torch.zeros(m, **kw), 0

    def _ascent(self, grad: torch.Tensor) -> None:
        b1, b2, lr = 0.9, 0.999, self.config.psi_lr
        self._t += 1
        self._m1.mul_(b1).add_(grad, alpha=1 - b1)
        self._m2.mul_(b2).addcmul_(grad, grad, value=1 - b2)
        m1, m2 = self._m1 / (1 - b1 ** self._t), self._m2 / (1 - b2 ** self._t)
        self.psi.add_(lr * m1 / (m2.sqrt() + 1e-8))

    def _terms(self, patches: torch.Tensor, j: torch.Tensor, psi: torch.Tensor) -> torch.Tensor:
        y = self.reference.to(patches.dtype)
        return (patches - y[j]).pow(2).sum(1) - psi[j] + psi.mean()

    def _assign(self, patches: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.psi.device != patches.device:
            self.psi, self._m1, self._m2 = (t.to(patches.device) for t in (self.psi, self._m1, self._m2))
        psi = self.psi.to(patches.dtype)
        return c_transform(patches.detach(), self.reference.to(patches.dtype), psi)[1], psi

    def nll(self, patches: torch.Tensor) -> torch.Tensor:
        """Per-patch term ‖x_i − y_{j(i)}‖² − ψ_{j(i)} + mean(ψ) at the current ψ: (N, d) -> (N,).

        Its mean is the semi-dual objective; not a log density.
        """
        self.check_patches(patches)
        j, psi = self._assign(patches)
        return self._terms(patches, j, psi)

    def regularizer(self, patches: torch.Tensor) -> torch.Tensor:
        """Semi-dual W₂² between the patches (N, d) and the reference set: a scalar.

        Each of the ``psi_steps`` passes assigns every patch to its c-transform
        minimiser and takes an Adam ascent step on ψ (gradient 1/M − share of
        the patches assigned to j).  The value returned is the objective at the
        ψ of the last pass, differentiable in the patches through that fixed
        assignment; ψ keeps its last update for the next call.
        """
        self.check_patches(patches)
        if self.config.restart_psi:
            self.reset()
        m = self.reference.shape[0]
        value = None
        for s in range(max(1, self.config.psi_steps)):
            j, psi = self._assign(patches)
            if s == max(1, self.config.psi_steps) - 1:
                value = self._terms(patches, j, psi).mean()
            if self.config.psi_steps:
                share = torch.bincount(j, minlength=m).to(self.psi.dtype) / patches.shape[0]
                self._ascent(1.0 / m - share)
        return value

    @classmethod
    def fit(cls, images, val, config, training, steps=None, seed=0, track=no_track, callback=None):
        """Draw the reference set (no training); report W₂² of other image and validation patches."""
        dev = images.device if isinstance(images, torch.Tensor) else images[0].device
        gen = torch.Generator(device=dev).manual_seed(seed)
        prior = cls(config).to(dev)
        prior.reference = random_patches(images, config.patch_size, config.n_reference, gen).detach().clone()
        prior.reset()
        hist = {"train": [], "val": [], "steps": 0}
        with torch.no_grad():
            for key, ims in (("train", images), ("val", val)):
                if ims is None:
                    continue
                prior.reset()
                r = float("nan")
                for _ in track(range(1), f"wpp {key} W2²"):
                    r = prior.regularizer(random_patches(ims, config.patch_size, training.eval_patches, gen)).item()
                hist[key].append([0, r])
                if callback is not None:
                    callback({"step": 0, f"{key}_nll": r})
        prior.reset()
        return prior.freeze(), hist
