"""patchNR: a normalizing flow on flattened image patches.

The flow T maps a latent z ~ N(0, I_d) to a patch x (d = p²).  It is a chain of
``blocks`` GLOW-type two-sided affine coupling blocks, each followed by a fixed
random permutation.  One block on u = (u₁, u₂) (halves of ⌊d/2⌋ and ⌈d/2⌉):

    (s₂, t₂) = g₂(u₂),  v₁ = exp(ŝ₂) ⊙ u₁ + t₂
    (s₁, t₁) = g₁(v₁),  v₂ = exp(ŝ₁) ⊙ u₂ + t₁

with the soft clamp ŝ = c · 0.636 · atan(s / c) (|ŝ| < c) and subnets
Linear–ReLU–Linear–ReLU–Linear (default init; the last layer is not zeroed).
Both halves are transformed in every block.  This is the coupling of the
paper's FrEIA ``GLOWCouplingBlock``; ``zuko``'s coupling transforms one half
per layer and is not the same model, so the block is written out here.

The patch NLL uses the inverse T⁻¹ (patch → latent), as the paper does:
    nll(x) = ½‖T⁻¹(x)‖² − log|det ∇T⁻¹(x)|   (the constant (d/2)·log 2π dropped).

References:
    Altekrüger et al., PatchNR: learning from very few images by patch
    normalizing flow regularization, Inverse Problems 39 (2023), arXiv 2205.12021.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from pydantic import Field
from torch import nn

from ..config import Params
from ..flows import soft_clamp
from ..precision import Precision
from .base import PRIORS, PatchPrior, PriorConfig

__all__ = ["PatchNR", "PatchNRConfig", "PatchNRTraining", "Coupling", "soft_clamp"]


def subnet(c_in: int, c_out: int, width: int) -> nn.Sequential:
    """Linear(c_in, w) – ReLU – Linear(w, w) – ReLU – Linear(w, c_out), PyTorch default init."""
    return nn.Sequential(nn.Linear(c_in, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(),
                         nn.Linear(width, c_out))


class Coupling(nn.Module):
    """One two-sided GLOW affine coupling block on vectors (n, d)."""

    def __init__(self, d: int, width: int, clamp: float):
        super().__init__()
        self.n1, self.n2 = d // 2, d - d // 2
        self.clamp = float(clamp)
        self.g2 = subnet(self.n2, 2 * self.n1, width)  # conditions the first half on the second
        self.g1 = subnet(self.n1, 2 * self.n2, width)

    def _st(self, g: nn.Module, u: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        r = g(u).to(u.dtype)  # under bf16 autocast only the subnets' products run in bf16
        return soft_clamp(r[:, :n], self.clamp), r[:, n:]

    def forward(self, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Latent side → patch side: (n, d) -> ((n, d), log|det| (n,))."""
        u1, u2 = u[:, :self.n1], u[:, self.n1:]
        s2, t2 = self._st(self.g2, u2, self.n1)
        v1 = torch.exp(s2) * u1 + t2
        s1, t1 = self._st(self.g1, v1, self.n2)
        v2 = torch.exp(s1) * u2 + t1
        return torch.cat([v1, v2], 1), s1.sum(1) + s2.sum(1)

    def inverse(self, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Patch side → latent side: (n, d) -> ((n, d), log|det| of the inverse (n,))."""
        v1, v2 = v[:, :self.n1], v[:, self.n1:]
        s1, t1 = self._st(self.g1, v1, self.n2)
        u2 = (v2 - t1) * torch.exp(-s1)
        s2, t2 = self._st(self.g2, u2, self.n1)
        u1 = (v1 - t2) * torch.exp(-s2)
        return torch.cat([u1, u2], 1), -(s1.sum(1) + s2.sum(1))


class PatchNRConfig(PriorConfig):
    """Architecture of the patch flow (stored in the prior file)."""

    blocks: int = Field(5, ge=1, le=64, description="coupling blocks")
    width: int = Field(512, ge=1, description="hidden units of each subnet")
    clamp: float = Field(1.6, gt=0, description="soft clamp c of the log-scales")
    permutation_seed: int = Field(1, description="block k is followed by randperm(d) seeded with this + k")


class PatchNRTraining(Params):
    """Training options of :func:`invsolve.priors.training.train_patchnr`."""

    batch_size: int = Field(128, ge=1, description="patches per Adam step")
    lr: float = Field(1e-3, gt=0, description="Adam learning rate (the start of the cosine decay)")
    augment: bool = Field(True, description="random rotations/flips of the patches")
    val_every: int = Field(1000, ge=1, description="validation NLL every N steps")
    val_patches: int = Field(2048, ge=1, description="random validation patches per evaluation")
    log_every: int = Field(50, ge=1, description="training NLL averaged over N steps for the log")
    compile: bool = Field(False, description="compile the loss with torch.compile (a start-up of seconds to a "
                          "minute; 3 % shorter steps on a 2-core CPU; needs a C++ compiler)")
    schedule: Literal["constant", "cosine"] = Field(
        "cosine", description="learning rate over the steps: cosine decay from lr to lr/100 at the last step "
        "(--steps), or constant")
    precision: Precision = Field("auto", description="bf16 runs the subnets' products under bfloat16 autocast "
                                 "(log-determinants and the loss stay float32); auto: bf16 where the device "
                                 "computes it fast")
    until_plateau: bool = Field(False, description="stop when the validation NLL has not improved by "
                                "plateau_delta over plateau_patience validations (needs --val; --steps is a cap)")
    plateau_delta: float = Field(0.05, ge=0, description="improvement of the best validation NLL (nats per "
                                 "patch) that counts as progress")
    plateau_patience: int = Field(3, ge=1, description="validations without progress before stopping")


@PRIORS.register("patchnr")
class PatchNR(PatchPrior):
    """Patch normalizing flow (patchNR): 5 two-sided affine coupling blocks on 6×6 patches.

    Shapes: ``nll`` (n, p²) -> (n,); ``inverse`` (n, p²) -> ((n, p²), (n,));
    ``forward``/``sample`` latent (n, p²) -> patches (n, p²).
    """

    name = "patchnr"
    checkpoints = True
    supports_bf16 = True
    #: benchmarks/RESULTS.md, "Training to a target" (2026-12-02): at the default recipe (batch 128, lr 1e-3
    #: with a cosine decay) 12,000 steps pass the validation NLL of the earlier recipe's 40,000 steps (batch 32,
    #: constant lr 1e-4), which "Patch priors: superres" (2026-11-29) found +0.21 dB above TV
    advice = {"steps": 12000, "source": "benchmarks/RESULTS.md (Training to a target, 2026-12-02)"}
    Config = PatchNRConfig
    Training = PatchNRTraining

    def __init__(self, config: PatchNRConfig | None = None):
        super().__init__(config)
        c = self.config
        d = self.dim
        self.couplings = nn.ModuleList(Coupling(d, c.width, c.clamp) for _ in range(c.blocks))
        for k in range(c.blocks):
            g = torch.Generator().manual_seed(int(c.permutation_seed) + k)
            perm = torch.randperm(d, generator=g)
            self.register_buffer(f"perm{k}", perm)
            self.register_buffer(f"inv_perm{k}", torch.argsort(perm))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """T: latent (n, d) -> patches (n, d)."""
        x = z
        for k, cpl in enumerate(self.couplings):
            x, _ = cpl(x)
            x = x[:, getattr(self, f"perm{k}")]
        return x

    def inverse(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """T⁻¹: patches (n, d) -> (latent (n, d), log|det ∇T⁻¹(x)| (n,))."""
        logdet = x.new_zeros(x.shape[0])
        for k in reversed(range(len(self.couplings))):
            x = x[:, getattr(self, f"inv_perm{k}")]
            x, ld = self.couplings[k].inverse(x)
            logdet = logdet + ld
        return x, logdet

    def nll(self, patches: torch.Tensor) -> torch.Tensor:
        """½‖T⁻¹(x)‖² − log|det ∇T⁻¹(x)|, (n, d) -> (n,); add (d/2)·log 2π for the exact NLL."""
        self.check_patches(patches)
        z, logdet = self.inverse(patches)
        return 0.5 * z.pow(2).sum(1) - logdet

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None, temperature: float = 1.0) -> torch.Tensor:
        """n patches T(τ·z), z ~ N(0, I): (n, p²)."""
        p0 = next(self.parameters())
        dev = generator.device if generator is not None else p0.device
        z = torch.randn((n, self.dim), generator=generator, device=dev).to(p0.device, p0.dtype)
        return self.forward(temperature * z)

    @staticmethod
    def exact_nll_constant(d: int) -> float:
        """(d/2)·log 2π, the constant left out of :meth:`nll`."""
        return 0.5 * d * math.log(2 * math.pi)
