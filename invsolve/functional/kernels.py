"""Convolution kernels and their pure helpers."""

from __future__ import annotations

import torch

__all__ = ["gaussian_kernel", "periodic_pad", "fold_periodic"]


def gaussian_kernel(size: int, sigma: float, dtype=torch.float32) -> torch.Tensor:
    """A normalised (size, size) Gaussian kernel centred at ((size-1)/2, (size-1)/2).

    For even ``size`` the centre lies between pixels, as in the patchNR ×4
    operator (16×16, sigma 2).
    """
    c = (size - 1) / 2.0
    t = torch.arange(size, dtype=torch.float64) - c
    g = torch.exp(-(t**2) / (2.0 * sigma**2))
    k = g[:, None] * g[None, :]
    return (k / k.sum()).to(dtype)


def periodic_pad(x: torch.Tensor, bottom: int, right: int) -> torch.Tensor:
    """Append the first ``bottom`` rows and ``right`` columns periodically. (B, H, W) -> (B, H+bottom, W+right)."""
    if bottom:
        x = torch.cat([x, x[:, :bottom, :]], dim=1)
    if right:
        x = torch.cat([x, x[:, :, :right]], dim=2)
    return x


def fold_periodic(x: torch.Tensor, bottom: int, right: int) -> torch.Tensor:
    """Adjoint of :func:`periodic_pad`: add the appended margins back onto the start."""
    if right:
        w = x.shape[2] - right
        x = torch.cat([x[:, :, :right] + x[:, :, w:], x[:, :, right:w]], dim=2)
    if bottom:
        h = x.shape[1] - bottom
        x = torch.cat([x[:, :bottom, :] + x[:, h:, :], x[:, bottom:h, :]], dim=1)
    return x
