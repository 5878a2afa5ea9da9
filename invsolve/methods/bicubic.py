"""Bicubic upsampling registered to the superresolution operator's grid."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..config import Params
from .base import METHODS, Method, no_track


class BicubicParams(Params):
    pass


def bicubic_upsample(y: torch.Tensor, out_shape: tuple[int, int], factor: int, offset: float, periodic: bool):
    """Bicubic interpolation of (B, h, w) low-resolution samples located at the
    high-resolution positions factor*i + offset, evaluated at every HR pixel.

    Returns (B, H, W).  Periodic data are wrapped; otherwise the border is replicated.
    """
    B, h, w = y.shape
    H, W = out_shape
    pad = 3 if periodic else 0
    src = F.pad(y[:, None], (pad, pad, pad, pad), mode="circular")[:, 0] if periodic else y
    dt = y.dtype if y.dtype in (torch.float32, torch.float64) else torch.float32
    u = (torch.arange(H, dtype=dt, device=y.device) - offset) / factor + pad
    v = (torch.arange(W, dtype=dt, device=y.device) - offset) / factor + pad
    gu = 2 * u / (src.shape[1] - 1) - 1
    gv = 2 * v / (src.shape[2] - 1) - 1
    grid = torch.stack(torch.meshgrid(gv, gu, indexing="xy"), dim=-1)  # (H, W, 2) as (x=col, y=row)
    grid = grid.expand(B, H, W, 2)
    return F.grid_sample(src[:, None], grid, mode="bicubic", padding_mode="border", align_corners=True)[:, 0]


@METHODS.register("bicubic")
class Bicubic(Method):
    """Bicubic upsampling onto the superresolution operator's sampling grid
    (low-resolution sample i sits at s·i + (k-1)/2), so the result is not shifted.
    (B, h, w) -> (B, H, W).

    References:
        Keys, Cubic convolution interpolation for digital image processing,
        IEEE Trans. ASSP 29 (1981).
    """

    Params = BicubicParams
    name = "bicubic"
    operators = ("superres",)

    def run(self, y, operator, noise, *, generator=None, track=no_track, info=None):
        p = operator.params
        return bicubic_upsample(y, operator.image_shape, p.factor, operator.offset, p.boundary == "periodic")
