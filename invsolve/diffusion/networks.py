"""Noise-prediction networks of the diffusion prior: a Fourier neural operator and a small UNet.

Both map (x_t (B, H, W), t (B,)) to the predicted noise η̂ (B, H, W).  Time enters through a sinusoidal
embedding and a small MLP, added per channel in every block.

The FNO's spectral weights are a function of the physical frequency (cycles per training window), stored
on the integer frequencies 0 … modes − 1 and interpolated bilinearly at the frequencies of the grid it runs
on.  On the training window that is the plain FNO; on a grid over a larger region (a whole measurement at
native resolution, or the reflect padding around it) the same weights act at the same physical
frequencies, so the operator does not depend on the grid.  No library provides a time-conditioned FNO with
this parametrisation, hence the code here.

References:
    Li et al., Fourier neural operator for parametric partial differential equations, ICLR 2021,
    arXiv 2010.08895; Ronneberger et al., U-Net, MICCAI 2015, arXiv 1505.04597; Hagemann, Mildenberger,
    Ruthotto et al., Multilevel diffusion, 2023, arXiv 2303.04772 (FNO score networks across resolutions).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["FNO", "UNet", "time_embedding"]


def time_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of diffusion times t (B,) in [0, 1]: (B, dim)."""
    half = dim // 2
    freqs = torch.exp(-math.log(1000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    a = 1000.0 * t.float()[:, None] * freqs[None]
    return torch.cat([torch.sin(a), torch.cos(a)], 1)


class _TimeMLP(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim
        self.net = nn.Sequential(nn.Linear(dim, dim), nn.GELU(), nn.Linear(dim, dim))

    def forward(self, t):
        return self.net(time_embedding(t, self.dim))


class SpectralConv(nn.Module):
    """Fourier layer: per physical frequency (|f_y| < modes, 0 ≤ f_x < modes) a complex channel mixing."""

    def __init__(self, channels: int, modes: int):
        super().__init__()
        self.modes = modes
        scale = 1.0 / channels
        # (in, out, f_y = −(modes−1) … modes−1, f_x = 0 … modes−1, re/im)
        self.weight = nn.Parameter(scale * torch.randn(channels, channels, 2 * modes - 1, modes, 2))

    def _weights_at(self, fy: torch.Tensor, fx: torch.Tensor) -> torch.Tensor:
        """Bilinear interpolation of the weights at frequencies fy (n,), fx (m,) in cycles per window."""
        m = self.modes
        w = torch.view_as_complex(self.weight)
        gy, gx = fy + (m - 1), fx  # positions on the stored grid

        def lerp(pos, size):
            lo = pos.floor().clamp(0, size - 1)
            hi = (lo + 1).clamp(max=size - 1)
            return lo.long(), hi.long(), (pos - lo).to(torch.float32)

        y0, y1, ay = lerp(gy, 2 * m - 1)
        x0, x1, ax = lerp(gx, m)
        wy = w[:, :, y0] * (1 - ay)[:, None] + w[:, :, y1] * ay[:, None]
        return wy[..., x0] * (1 - ax) + wy[..., x1] * ax

    def forward(self, x: torch.Tensor, extent: tuple[float, float]) -> torch.Tensor:
        b, c, h, w = x.shape
        xf = torch.fft.rfft2(x.float(), norm="ortho")
        fy = torch.fft.fftfreq(h, d=1.0 / h, device=x.device) / extent[0]  # cycles per window
        fx = torch.fft.rfftfreq(w, d=1.0 / w, device=x.device) / extent[1]
        ky = (fy.abs() < self.modes - 1 + 1e-6).nonzero().squeeze(1)
        kx = (fx < self.modes - 1 + 1e-6).nonzero().squeeze(1)
        wk = self._weights_at(fy[ky], fx[kx])  # (in, out, ny, nx)
        out = torch.zeros(b, c, h, w // 2 + 1, dtype=xf.dtype, device=x.device)
        sub = xf[:, :, ky][:, :, :, kx]
        out[:, :, ky[:, None], kx[None, :]] = torch.einsum("bixy,ioxy->boxy", sub, wk)
        return torch.fft.irfft2(out, s=(h, w), norm="ortho")


class FNO(nn.Module):
    """A time-conditioned Fourier neural operator, (B, H, W) -> (B, H, W).

    Arguments:
        width: Channels of the hidden layers.
        modes: Frequencies kept per axis, in cycles per training window.
        layers: Fourier layers.
        pad: Reflect padding, as a fraction of the image side (FFTs are periodic; images are not).
    """

    def __init__(self, width: int = 32, modes: int = 12, layers: int = 4, pad: float = 0.125):
        super().__init__()
        self.pad = pad
        self.lift = nn.Conv2d(1, width, 1)
        self.time = _TimeMLP(width)
        self.spectral = nn.ModuleList(SpectralConv(width, modes) for _ in range(layers))
        self.local = nn.ModuleList(nn.Conv2d(width, width, 1) for _ in range(layers))
        self.temb = nn.ModuleList(nn.Linear(width, width) for _ in range(layers))
        self.project = nn.Sequential(nn.Conv2d(width, 2 * width, 1), nn.GELU(), nn.Conv2d(2 * width, 1, 1))

    def forward(self, x: torch.Tensor, t: torch.Tensor, window: float) -> torch.Tensor:
        """``window``: the side of one training window in pixels of this grid (its resolution)."""
        h, w = x.shape[-2:]
        p = max(1, int(round(self.pad * max(h, w))))
        p = min(p, h - 1, w - 1)
        z = F.pad(x[:, None], (p, p, p, p), mode="reflect")
        extent = ((h + 2 * p) / window, (w + 2 * p) / window)
        z = self.lift(z)
        emb = self.time(t)
        for k, (spec, loc, te) in enumerate(zip(self.spectral, self.local, self.temb)):
            z = spec(z, extent) + loc(z) + te(emb)[:, :, None, None]
            if k < len(self.spectral) - 1:
                z = F.gelu(z)
        return self.project(z)[:, 0, p:p + h, p:p + w]


class _Block(nn.Module):
    def __init__(self, c_in: int, c_out: int, temb: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.norm1, self.norm2 = nn.GroupNorm(min(8, c_out), c_out), nn.GroupNorm(min(8, c_out), c_out)
        self.temb = nn.Linear(temb, c_out)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x, emb):
        h = F.silu(self.norm1(self.conv1(x))) + self.temb(emb)[:, :, None, None]
        h = F.silu(self.norm2(self.conv2(h)))
        return h + self.skip(x)


class UNet(nn.Module):
    """A small time-conditioned UNet, (B, H, W) -> (B, H, W), with ``depth`` halvings (H, W divisible by
    2^depth after the internal reflect padding to the next multiple).

    Arguments:
        width: Channels at full resolution (doubled at each level).
        depth: Down/up-sampling levels.
    """

    def __init__(self, width: int = 32, depth: int = 2):
        super().__init__()
        self.depth = depth
        self.time = _TimeMLP(width)
        chans = [width * 2 ** k for k in range(depth + 1)]
        self.inc = nn.Conv2d(1, width, 3, padding=1)
        self.down = nn.ModuleList(_Block(chans[k], chans[k + 1], width) for k in range(depth))
        self.mid = _Block(chans[-1], chans[-1], width)
        self.up = nn.ModuleList(_Block(chans[k + 1] + chans[k + 1], chans[k], width) for k in reversed(range(depth)))
        self.out = nn.Conv2d(width, 1, 3, padding=1)

    def forward(self, x: torch.Tensor, t: torch.Tensor, window: float) -> torch.Tensor:
        h, w = x.shape[-2:]
        m = 2 ** self.depth
        ph, pw = (-h) % m, (-w) % m
        z = F.pad(x[:, None], (0, pw, 0, ph), mode="reflect") if ph or pw else x[:, None]
        emb = self.time(t)
        z = self.inc(z)
        skips = []
        for blk in self.down:
            z = blk(z, emb)
            skips.append(z)
            z = F.avg_pool2d(z, 2)
        z = self.mid(z, emb)
        for blk in self.up:
            z = F.interpolate(z, scale_factor=2, mode="nearest")
            z = blk(torch.cat([z, skips.pop()], 1), emb)
        return self.out(z)[:, 0, :h, :w]
