"""Conditional normalizing flow (``cflow``): conditional affine coupling blocks
trained by maximum likelihood (forward KL) on simulated pairs.

Vectors: each block permutes the entries (a fixed random permutation), keeps
the first half x₁ and maps x₂ -> x₂ ⊙ exp(s) + t with (s, t) = MLP([x₁, h(y)]),
h a learned encoder of y.  Images (B, 1, H, W): two 2×2 squeezes (to 4 and 16
channels) with coupling blocks whose subnets are convolutional and take
features of the condition image (initial guess x₀(y)) at that resolution.
Scales are soft-clamped, s -> 0.636·c·atan(s / c).  The latent is N(0, I) or,
with ``latent="mixture"``, a Gaussian mixture Σ_k p_k(y) N(μ_k, σ² I) with
fixed means and y-dependent weights (vectors only).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from ..config import Params
from ..errors import ConfigError
from ..flows import soft_clamp
from .base import SAMPLERS, Sampler
from .networks import MLP

__all__ = ["CFlowConfig", "ConditionalFlow"]


class CFlowConfig(Params):
    blocks: int = Field(8, ge=1, description="coupling blocks (images: per scale)")
    hidden: int = Field(256, ge=8, description="subnet width (vectors) or channels (images: hidden // 4)")
    depth: int = Field(2, ge=1, description="vectors: hidden layers per subnet")
    cond_features: int = Field(64, ge=1, description="size of the learned condition embedding / feature maps")
    clamp: float = Field(2.0, gt=0, description="soft clamp c of the log-scales")
    latent: Literal["gaussian", "mixture"] = Field("gaussian", description="latent law (mixture: Hagemann & Neumayer)")
    mixture_components: int = Field(8, ge=2, description="mixture latent: number of components")
    mixture_std: float = Field(0.5, gt=0, description="mixture latent: component std")
    mixture_radius: float = Field(2.0, gt=0, description="mixture latent: distance of the fixed means from 0")
    condition: Literal["guess", "adjoint"] = Field("guess", description="images: condition on the initial guess or Aᵀy")
    residual: bool = Field(True, description="images: model x − x₀(y) instead of x")


class _Coupling(nn.Module):
    """One conditional affine coupling on dim 1 after a fixed permutation of dim 1."""

    def __init__(self, n: int, subnet_fn, seed: int, clamp: float):
        super().__init__()
        self.n1 = n // 2
        self.clamp = clamp
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
        self.register_buffer("perm", perm)
        self.register_buffer("inv", torch.argsort(perm))
        self.sub = subnet_fn(self.n1, n - self.n1)

    def _st(self, x1, h):
        s, t = self.sub(torch.cat([x1, h], dim=1)).chunk(2, dim=1)
        return soft_clamp(s, self.clamp), t

    def forward(self, x, h):
        """x -> z direction; returns (z, log|det|) with log|det| (B,)."""
        x = x[:, self.perm]
        x1, x2 = x[:, : self.n1], x[:, self.n1:]
        s, t = self._st(x1, h)
        return torch.cat([x1, x2 * torch.exp(s) + t], dim=1), s.flatten(1).sum(1)

    def inverse(self, z, h):
        z1, z2 = z[:, : self.n1], z[:, self.n1:]
        s, t = self._st(z1, h)
        return torch.cat([z1, (z2 - t) * torch.exp(-s)], dim=1)[:, self.inv]


def _conv_subnet(hidden: int, feats: int):
    def make(c_in, c_out):
        net = nn.Sequential(nn.Conv2d(c_in + feats, hidden, 3, padding=1), nn.ReLU(),
                            nn.Conv2d(hidden, hidden, 1), nn.ReLU(), nn.Conv2d(hidden, 2 * c_out, 3, padding=1))
        nn.init.zeros_(net[-1].weight)
        nn.init.zeros_(net[-1].bias)
        return net

    return make


class _ImageCondNet(nn.Module):
    """Features of the condition image (B, 1, H, W) at H/2 and H/4."""

    def __init__(self, f: int):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 16, 3, padding=1), nn.ReLU())
        self.to2 = nn.Conv2d(64, f, 3, padding=1)
        self.to4 = nn.Conv2d(4 * f, f, 3, padding=1)

    def forward(self, c):
        f2 = self.to2(F.pixel_unshuffle(self.stem(c), 2))
        return f2, self.to4(F.pixel_unshuffle(F.relu(f2), 2))


@SAMPLERS.register("cflow")
class ConditionalFlow(Sampler):
    """Conditional normalizing flow x = T(z; y), trained by forward KL.

    Loss per pair: −log p_Z(T⁻¹(x; y) | y) − log|det ∇T⁻¹(x; y)|, divided by the
    number of entries.  Shapes: c (R, m) or (R, 1, H, W); samples as ``work_shape``.

    References:
        Ardizzone et al., Guided image generation with conditional invertible
        neural networks, arXiv 1907.02392; Dinh et al., Density estimation
        using Real NVP, arXiv 1605.08803; Hagemann & Neumayer, Stabilizing
        invertible neural networks using mixture models, arXiv 2009.02994.
    """

    name = "cflow"
    Config = CFlowConfig

    def build_model(self) -> nn.Module:
        c = self.config
        mods = nn.ModuleDict()
        if self.vector:
            d, m = self.operator.domain_shape[0], self.operator.range_shape[0]
            if d < 2:
                raise ConfigError("cflow needs at least 2 parameters; use cfm for 1-D problems")
            mods["cond"] = MLP(m, c.cond_features, c.hidden, 1)
            mods["blocks"] = nn.ModuleList(
                _Coupling(d, lambda a, b: MLP(a + c.cond_features, 2 * b, c.hidden, c.depth, zero_last=True), k, c.clamp)
                for k in range(c.blocks))
            if c.latent == "mixture":
                u = torch.randn((c.mixture_components, d), generator=torch.Generator().manual_seed(12345))
                mods.register_buffer("means", c.mixture_radius * u / u.norm(dim=1, keepdim=True))
                mods["weights"] = MLP(c.cond_features, c.mixture_components, 64, 1)
            return mods
        if c.latent == "mixture":
            raise ConfigError("cflow latent=mixture is available for vector problems; use latent=gaussian for images")
        H, W = self.operator.domain_shape
        if H % 4 or W % 4:
            raise ConfigError(f"cflow on images needs H and W divisible by 4; got {H}x{W} (change --crop)")
        mods["cond"] = _ImageCondNet(c.cond_features)
        sub = _conv_subnet(max(c.hidden // 4, 16), c.cond_features)
        mods["s1"] = nn.ModuleList(_Coupling(4, sub, k, c.clamp) for k in range(c.blocks))
        mods["s2"] = nn.ModuleList(_Coupling(16, sub, 100 + k, c.clamp) for k in range(c.blocks))
        return mods

    def _to_latent(self, xw, c):
        m = self.net["model"]
        logdet = torch.zeros(len(xw), device=xw.device)
        if self.vector:
            h = m["cond"](c)
            z = xw
            for b in m["blocks"]:
                z, ld = b(z, h)
                logdet = logdet + ld
            return z, logdet, h
        f2, f4 = m["cond"](c)
        z = F.pixel_unshuffle(xw, 2)
        for b in m["s1"]:
            z, ld = b(z, f2)
            logdet = logdet + ld
        z = F.pixel_unshuffle(z, 2)
        for b in m["s2"]:
            z, ld = b(z, f4)
            logdet = logdet + ld
        return z, logdet, None

    def _log_pz(self, z, h):
        zf = z.flatten(1)
        D = zf.shape[1]
        if self.config.latent == "gaussian":
            return -0.5 * (zf**2).sum(1) - 0.5 * D * math.log(2 * math.pi)
        m, s = self.net["model"], self.config.mixture_std
        logp = torch.log_softmax(m["weights"](h), dim=1)
        d2 = torch.cdist(zf, m.means) ** 2
        return torch.logsumexp(logp - d2 / (2 * s * s), dim=1) - D * math.log(s) - 0.5 * D * math.log(2 * math.pi)

    def log_q_vector(self, z, logdet, h):
        """log q(x | y) (R,) of a vector flow from its latent pass ``_to_latent(to_work(x), c)``: the latent
        density and log|det ∂z/∂w|, less the log-scale of the per-entry standardiser w = (x − shift) / scale."""
        return self._log_pz(z, h) + logdet - torch.log(self.net["xstd"].scale).sum()

    @property
    def exact_weights(self) -> bool:  # a vector flow's density is exact; image flows are not resampled
        return self.vector

    @torch.no_grad()
    def proposals(self, y, n, generator):
        """n draws per measurement y (B, m) and their exact log densities log q(x | y): (B, n, d), (B·n,)."""
        from .importance import flow_log_prob

        xs = self.sample(y, n, generator)
        flat, yr = xs.reshape(-1, xs.shape[-1]), y.to(self.device, torch.float32).repeat_interleave(n, 0)
        log_q = torch.cat([flow_log_prob(self, xc, yc) for xc, yc in
                           zip(torch.split(flat, self.chunk_rows), torch.split(yr, self.chunk_rows))])
        return xs, log_q

    def loss(self, xw, c, generator, part=None):
        z, logdet, h = self._to_latent(xw, c)
        return (-(self._log_pz(z, h) + logdet) / z[0].numel()).mean()

    def sample_work(self, c, generator):
        m = self.net["model"]
        R = len(c)
        if self.vector:
            h = m["cond"](c)
            d = self.operator.domain_shape[0]
            z = torch.randn((R, d), generator=generator, device=c.device)
            if self.config.latent == "mixture":
                k = torch.multinomial(torch.softmax(m["weights"](h), dim=1), 1, generator=generator)[:, 0]
                z = m.means[k] + self.config.mixture_std * z
            for b in reversed(m["blocks"]):
                z = b.inverse(z, h)
            return z
        H, W = self.operator.domain_shape
        f2, f4 = m["cond"](c)
        z = torch.randn((R, 16, H // 4, W // 4), generator=generator, device=c.device)
        for b in reversed(m["s2"]):
            z = b.inverse(z, f4)
        z = F.pixel_shuffle(z, 2)
        for b in reversed(m["s1"]):
            z = b.inverse(z, f2)
        return F.pixel_shuffle(z, 2)
