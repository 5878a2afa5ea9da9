"""The diffusion prior: a score model of whole images, trainable on several resolutions.

A noise-prediction network ε_θ(x_t, t) is trained by denoising score matching on the forward process of
:mod:`invsolve.diffusion.sde` (variance preserving, with white or trace-class noise):

    loss = E_{x₀, t, η} ‖ε_θ(m(t) x₀ + σ(t) η, t) − η‖²  (mean over pixels),  η ~ N(0, Q),

so that ε_θ ≈ E[η | x_t] and the preconditioned score is Q ∇ log p_t(x) ≈ −ε_θ(x, t) / σ(t), and Tweedie's
denoiser is x̂₀ = (x_t − σ ε_θ) / m.  Images in [0, 1] are modelled as z = 2x − 1.

The prior lives on a square window of ``window`` native pixels (the crops it was trained on).  Multilevel
training presents that window at the resolutions ``levels`` (coarse first); a grid of any other size is
sampled with the same network, the FNO acting at the same physical frequencies (:mod:`.networks`).

References:
    Hagemann, Mildenberger, Ruthotto et al., Multilevel diffusion: infinite dimensional score-based
    diffusion models for image generation, 2023, arXiv 2303.04772; Song et al., Score-based generative
    modeling through SDEs, ICLR 2021, arXiv 2011.13456; Ho et al., DDPM, NeurIPS 2020, arXiv 2006.11239.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import torch
from pydantic import Field, field_validator, model_validator

from ..config import Params
from .base import PRIORS, Prior

__all__ = ["DiffusionPrior", "DiffusionConfig", "DiffusionTraining"]


def _int_list(v: Any) -> Any:
    if isinstance(v, str):  # -P levels=32,64
        return [int(s) for s in v.replace(" ", "").split(",") if s]
    if isinstance(v, int) and not isinstance(v, bool):
        return [v]
    return v


class DiffusionConfig(Params):
    """The model (stored in the prior file)."""

    backbone: Literal["fno", "unet"] = Field("fno", description="fno transfers across resolutions; unet does not")
    noise: Literal["white", "laplace", "bessel"] = Field("laplace", description="covariance Q of the forward noise")
    smoothness: float = Field(1.1, gt=0, le=4, description="exponent s of (−Δ)^(−s) (laplace) or "
                              "(τ² − Δ)^(−s) (bessel); above 1 for trace class")
    length: float = Field(0.354, gt=0, le=10, description="bessel: 1/τ in windows (0.354: τ² = 8, as the "
                          "reference code)")
    window: int = Field(64, ge=8, le=1024, description="side of the training window in native pixels")
    width: int = Field(32, ge=4, le=256, description="channels of the network")
    modes: int = Field(12, ge=2, le=128, description="fno: Fourier modes per axis, in cycles per window")
    layers: int = Field(4, ge=1, le=12, description="fno: Fourier layers")
    depth: int = Field(2, ge=1, le=5, description="unet: down-sampling levels")
    beta_min: float = Field(0.1, gt=0, description="β(0) of the VP SDE")
    beta_max: float = Field(20.0, gt=0, description="β(1) of the VP SDE")

    @model_validator(mode="after")
    def _trace_class(self) -> "DiffusionConfig":
        if self.noise != "white" and self.smoothness <= 1:
            raise ValueError(f"smoothness {self.smoothness} gives no trace-class covariance in 2-D; use -P "
                             "smoothness= above 1 (e.g. 1.5) or -P noise=white")
        if self.beta_max <= self.beta_min:
            raise ValueError("beta_max must exceed beta_min")
        return self


class DiffusionTraining(Params):
    """Training options of the diffusion prior."""

    levels: list[int] = Field(default_factory=list, description="resolutions of the window, coarse first "
                              "(-P levels=32,64); empty: the window itself")
    level_split: list[float] | None = Field(None, description="share of the steps per level (default equal)")
    batch_size: int = Field(16, ge=1, description="crops per step")
    lr: float = Field(1e-3, gt=0, description="Adam learning rate (cosine decay to lr/100)")
    schedule: Literal["constant", "cosine"] = Field("cosine", description="learning-rate schedule")
    augment: bool = Field(True, description="random rotations and flips of the crops")
    val_every: int = Field(250, ge=1, description="steps between validation losses")
    val_crops: int = Field(64, ge=1, description="validation crops (fixed noise and times)")
    log_every: int = Field(50, ge=1, description="steps averaged into each training-loss record")

    _ints = field_validator("levels", mode="before")(_int_list)

    @field_validator("levels")
    @classmethod
    def _levels(cls, v: list[int]) -> list[int]:
        if any(n < 8 for n in v):
            raise ValueError(f"levels {v}: every resolution needs at least 8 pixels")
        if v != sorted(v):
            raise ValueError(f"levels {v} must go from coarse to fine (increasing)")
        return v

    @field_validator("level_split", mode="before")
    @classmethod
    def _split(cls, v: Any) -> Any:
        if isinstance(v, str):
            return [float(s) for s in v.split(",") if s]
        return v


@PRIORS.register("diffusion")
class DiffusionPrior(Prior):
    """A score-based diffusion prior of whole images (see the module docstring).

    Attributes:
        net: The noise-prediction network, (B, H, W), (B,) -> (B, H, W).
    """

    name = "diffusion"
    kind: ClassVar[str] = "score"
    checkpoints: ClassVar[bool] = True
    Config = DiffusionConfig
    Training = DiffusionTraining

    def __init__(self, config: DiffusionConfig | None = None):
        super().__init__(config)
        from ..diffusion.networks import FNO, UNet

        c = self.config
        self.net = FNO(c.width, c.modes, c.layers) if c.backbone == "fno" else UNet(c.width, c.depth)

    # -- the forward process on a grid ---------------------------------------------
    def spectrum(self, shape: tuple[int, int], window: float, device=None) -> torch.Tensor:
        """Eigenvalues of Q on an (H, W) grid with ``window`` pixels per training window (rfft layout)."""
        from ..diffusion.sde import spectrum

        c = self.config
        return spectrum(shape, c.noise, c.smoothness, c.length, max(shape) / window, device)

    def marginal(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(m(t), σ(t)) of the forward process."""
        from ..diffusion.sde import marginal

        return marginal(t, self.config.beta_min, self.config.beta_max)

    def beta(self, t: torch.Tensor) -> torch.Tensor:
        from ..diffusion.sde import beta

        return beta(t, self.config.beta_min, self.config.beta_max)

    # -- the network ---------------------------------------------------------------
    def eps(self, z: torch.Tensor, t: torch.Tensor, window: float) -> torch.Tensor:
        """Predicted noise E[η | z_t = z], (B, H, W); ``t`` (B,) or a scalar."""
        t = torch.as_tensor(t, dtype=torch.float32, device=z.device).expand(z.shape[0]).contiguous()
        return self.net(z, t, float(window)).to(z.dtype)

    def denoise(self, z: torch.Tensor, t: torch.Tensor, window: float) -> tuple[torch.Tensor, torch.Tensor]:
        """(ẑ₀, ε̂): Tweedie's estimate of the clean image (model units) and the predicted noise."""
        e = self.eps(z, t, window)
        m, s = self.marginal(torch.as_tensor(t, dtype=torch.float64))
        return (z - float(s) * e) / float(m), e

    @staticmethod
    def to_model(x: torch.Tensor) -> torch.Tensor:
        return 2 * x - 1

    @staticmethod
    def to_image(z: torch.Tensor) -> torch.Tensor:
        return (z + 1) / 2

    def loss(self, x0: torch.Tensor, t: torch.Tensor, eta: torch.Tensor, window: float) -> torch.Tensor:
        """Denoising score-matching loss per item (B,) for clean model-unit images x0 (B, H, W)."""
        m, s = self.marginal(t.double())
        zt = m.float()[:, None, None] * x0 + s.float()[:, None, None] * eta
        return (self.eps(zt, t, window) - eta).pow(2).flatten(1).mean(1)

    @classmethod
    def fit(cls, images, val, config, training, *, steps=None, seed=0, checkpoint_every=None,
            checkpoint_path=None, resume=False, track=None, callback=None, dist=None):
        """Train on images (N, H, W) or a list of (H, W) in [0, 1]: see :func:`invsolve.diffusion.training.train`."""
        from ..diffusion.training import train

        return train(cls, images, val, config, training, steps=steps, seed=seed, checkpoint_every=checkpoint_every,
                     checkpoint_path=checkpoint_path, resume=resume, track=track, callback=callback, dist=dist)
