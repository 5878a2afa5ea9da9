"""Pure regularizer kernels."""

from __future__ import annotations

import torch

__all__ = ["finite_differences", "finite_differences_adjoint", "tv_smooth"]


def finite_differences(x: torch.Tensor) -> torch.Tensor:
    """Forward differences with Neumann boundary. (B, H, W) -> (B, 2, H, W)."""
    dx = torch.zeros_like(x)
    dy = torch.zeros_like(x)
    dx[:, :-1, :] = x[:, 1:, :] - x[:, :-1, :]
    dy[:, :, :-1] = x[:, :, 1:] - x[:, :, :-1]
    return torch.stack([dx, dy], dim=1)


def finite_differences_adjoint(g: torch.Tensor) -> torch.Tensor:
    """Adjoint of :func:`finite_differences`. (B, 2, H, W) -> (B, H, W)."""
    gx, gy = g[:, 0], g[:, 1]
    out = torch.zeros_like(gx)
    out[:, :-1, :] -= gx[:, :-1, :]
    out[:, 1:, :] += gx[:, :-1, :]
    out[:, :, :-1] -= gy[:, :, :-1]
    out[:, :, 1:] += gy[:, :, :-1]
    return out


def tv_smooth(x: torch.Tensor, eps: float) -> torch.Tensor:
    """Isotropic total variation, smoothed: sum sqrt(|grad x|^2 + eps^2) - eps. (B, H, W) -> (B,)."""
    d = finite_differences(x)
    return (torch.sqrt((d**2).sum(dim=1) + eps**2) - eps).flatten(1).sum(dim=1)
