"""Networks shared by the samplers: an MLP, sinusoidal time features, a small
UNet for 64×64 images with time and condition inputs, and a standardiser.

Shapes follow the samplers' conventions: vectors (B, d), images (B, C, H, W),
times (B,) in [0, 1].
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["MLP", "time_features", "UNet", "Standardizer"]


class MLP(nn.Module):
    """Linear(in, h) – [act – Linear(h, h)] × (depth − 1) – act – Linear(h, out).

    Arguments:
        zero_last: Initialise the last layer to zero (identity-start couplings).
    """

    def __init__(self, n_in: int, n_out: int, hidden: int = 256, depth: int = 3, zero_last: bool = False):
        super().__init__()
        layers: list[nn.Module] = [nn.Linear(n_in, hidden)]
        for _ in range(depth - 1):
            layers += [nn.LeakyReLU(0.1), nn.Linear(hidden, hidden)]
        layers += [nn.LeakyReLU(0.1), nn.Linear(hidden, n_out)]
        self.net = nn.Sequential(*layers)
        if zero_last:
            nn.init.zeros_(self.net[-1].weight)
            nn.init.zeros_(self.net[-1].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def time_features(t: torch.Tensor, n: int = 16) -> torch.Tensor:
    """Sinusoidal features of t (B,) -> (B, n): [t, sin(2^k π t), cos(2^k π t), ...] truncated to n."""
    k = torch.arange((n + 1) // 2, device=t.device, dtype=t.dtype)
    ang = t[:, None] * math.pi * (2.0 ** k)[None] / 2 ** (len(k) // 2)
    f = torch.cat([torch.sin(ang), torch.cos(ang)], dim=1)[:, : n - 1]
    return torch.cat([t[:, None], f], dim=1)


class _ResBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, t_dim: int):
        super().__init__()
        self.n1 = nn.GroupNorm(math.gcd(8, c_in), c_in)
        self.c1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.t = nn.Linear(t_dim, c_out)
        self.n2 = nn.GroupNorm(math.gcd(8, c_out), c_out)
        self.c2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x, temb):
        h = self.c1(F.silu(self.n1(x))) + self.t(temb)[:, :, None, None]
        h = self.c2(F.silu(self.n2(h)))
        return h + self.skip(x)


class UNet(nn.Module):
    """A small UNet v(x, c, t) for images, e.g. 64×64 velocity fields.

    The input (B, in_ch, H, W) and the condition (B, cond_ch, H, W) are
    concatenated and rearranged 2×2 space-to-depth (H/2 × W/2 × 4 channels,
    which keeps CPU training cheap); three resolution levels with one
    residual block each, time-embedding added in every block; the output
    (B, out_ch, H, W) starts at zero.  H and W must be divisible by 8.

    References:
        Ronneberger et al., U-Net, arXiv 1505.04597; Ho et al., Denoising
        diffusion probabilistic models, arXiv 2006.11239 (time-conditioned blocks).
    """

    def __init__(self, in_ch: int = 1, cond_ch: int = 1, out_ch: int = 1, base: int = 32, t_dim: int = 64):
        super().__init__()
        self.out_ch = out_ch
        self.temb = nn.Sequential(nn.Linear(16, t_dim), nn.SiLU(), nn.Linear(t_dim, t_dim))
        c0 = 4 * (in_ch + cond_ch)
        self.inp = nn.Conv2d(c0, base, 3, padding=1)
        self.d1 = _ResBlock(base, base, t_dim)
        self.d2 = _ResBlock(base, 2 * base, t_dim)
        self.mid = _ResBlock(2 * base, 2 * base, t_dim)
        self.u2 = _ResBlock(4 * base, 2 * base, t_dim)
        self.u1 = _ResBlock(3 * base, base, t_dim)
        self.out = nn.Conv2d(base, 4 * out_ch, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor, c: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        temb = self.temb(time_features(t))
        h = self.inp(F.pixel_unshuffle(torch.cat([x, c], dim=1), 2))
        h1 = self.d1(h, temb)
        h2 = self.d2(F.avg_pool2d(h1, 2), temb)
        m = self.mid(F.avg_pool2d(h2, 2), temb)
        u = self.u2(torch.cat([F.interpolate(m, scale_factor=2.0), h2], dim=1), temb)
        u = self.u1(torch.cat([F.interpolate(u, scale_factor=2.0), h1], dim=1), temb)
        return F.pixel_shuffle(self.out(F.silu(u)), 2)


class Standardizer(nn.Module):
    """An affine map t -> (t - shift) / scale with buffers set once from data.

    Arguments:
        shape: Shape of shift and scale, e.g. (d,) per entry or (1,) scalar.
    """

    def __init__(self, shape: tuple[int, ...]):
        super().__init__()
        self.register_buffer("shift", torch.zeros(shape))
        self.register_buffer("scale", torch.ones(shape))

    @torch.no_grad()
    def fit(self, t: torch.Tensor, per_entry: bool) -> None:
        """Set shift and scale from samples t (N, *shape) (per entry) or overall (scalar)."""
        t = t.float()
        if per_entry:
            self.shift.copy_(t.mean(0).reshape(self.shift.shape))
            self.scale.copy_(t.std(0).clamp_min(1e-6).reshape(self.scale.shape))
        else:
            self.shift.fill_(float(t.mean()))
            self.scale.fill_(max(float(t.std()), 1e-6))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return (t - self.shift) / self.scale

    def inverse(self, t: torch.Tensor) -> torch.Tensor:
        return t * self.scale + self.shift
