"""Pieces shared by the normalizing flows of invsolve: the patchNR prior (:mod:`invsolve.priors.patchnr`) and the
conditional coupling flow sampler (:mod:`invsolve.samplers.cflow`, also DeepGEM's E-step flow)."""

from __future__ import annotations

import torch

__all__ = ["ATAN_SCALE", "soft_clamp"]

ATAN_SCALE = 0.636  # ≈ 2/π: c · 0.636 · atan(s/c) saturates just below ±c


def soft_clamp(s: torch.Tensor, c: float) -> torch.Tensor:
    """ŝ = c · 0.636 · atan(s / c) of the log-scales s of an affine coupling: identity-like near 0, |ŝ| < c.

    References:
        Ardizzone et al., Guided image generation with conditional invertible neural networks,
        arXiv 1907.02392 (2019) (the soft clamp of the coupling scales).
    """
    return c * ATAN_SCALE * torch.atan(s / c)
