"""The forward process of the diffusion prior: a variance-preserving SDE driven by (possibly trace-class) noise.

Images are functions on a square window [0, 1]² sampled on an N×N grid (pixel size h = 1/N).  The forward
SDE is the variance-preserving one of Song et al. (2021) with its noise coloured by a covariance Q:

    dX = −½ β(t) X dt + √β(t) Q^{1/2} dW,    β(t) = β₀ + t (β₁ − β₀),  t ∈ [0, 1],

so X_t = m(t) X₀ + σ(t) η with η ~ N(0, Q), m(t) = exp(−¼ t² (β₁ − β₀) − ½ t β₀) and σ² = 1 − m².
Q is diagonal in the Fourier basis of the window; its eigenvalue at the frequency k (cycles per window) is

    white:    Q = I on the pixels                (the standard discrete process; not trace class)
    laplace:  c · (4π² |k|²)^(−s), k ≠ 0          (−Δ)^(−s); the mean (k = 0) gets the value of |k| = 1
    bessel:   c · (ℓ⁻² + 4π² |k|²)^(−s)          the Bessel potential (τ²I − Δ)^(−s), τ = 1/ℓ (Matérn)

Both are trace class in 2-D for s > 1.  The reference code removes the mean from its Laplace noise; then
the mean of an image could never be noised nor learned, so here it diffuses like the lowest frequency.
c is chosen so that the variance of one pixel is 1 in the limit of fine grids (the sum over the whole
frequency lattice is 1).  On a coarse grid the pixel variance is a little below 1, and it converges as the
grid is refined: that is what makes one model usable across resolutions.  These are pure functions.

References:
    Song et al., Score-based generative modeling through stochastic differential equations, ICLR 2021,
    arXiv 2011.13456; Hagemann, Mildenberger, Ruthotto et al., Multilevel diffusion: infinite dimensional
    score-based diffusion models for image generation, 2023, arXiv 2303.04772.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch

__all__ = ["NOISES", "marginal", "beta", "spectrum", "colored_noise", "apply_covariance", "time_grid",
           "T_MIN"]

NOISES = ("white", "laplace", "bessel")
#: The smallest diffusion time used (the score is not learned at t = 0).
T_MIN = 1e-3
#: Lattice half-width over which the normalisation constant c is summed (the tail beyond is negligible for s > 1).
_NORM_LATTICE = 512


def beta(t: torch.Tensor, beta_min: float, beta_max: float) -> torch.Tensor:
    """β(t), the noise rate of the forward SDE."""
    return beta_min + t * (beta_max - beta_min)


def marginal(t: torch.Tensor, beta_min: float, beta_max: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(m(t), σ(t)): X_t = m X₀ + σ η with η ~ N(0, Q)."""
    log_m = -0.25 * t ** 2 * (beta_max - beta_min) - 0.5 * t * beta_min
    m = torch.exp(log_m)
    return m, torch.sqrt(-torch.expm1(2 * log_m))


def time_grid(steps: int, device=None) -> torch.Tensor:
    """``steps + 1`` decreasing times from 1 to :data:`T_MIN`, for the reverse-time samplers."""
    return torch.linspace(1.0, T_MIN, steps + 1, device=device, dtype=torch.float64)


def _raw(k2: torch.Tensor, noise: str, smoothness: float, length: float) -> torch.Tensor:
    if noise == "white":
        return torch.ones_like(k2)
    if noise == "laplace":
        return (4 * math.pi ** 2 * k2.clamp(min=1.0)) ** (-smoothness)
    if noise == "bessel":
        return ((1 / length) ** 2 + 4 * math.pi ** 2 * k2) ** (-smoothness)
    raise ValueError(f"unknown noise {noise!r} (valid: {', '.join(NOISES)})")


@lru_cache(maxsize=32)
def _norm(noise: str, smoothness: float, length: float) -> float:
    """c such that the eigenvalues summed over the whole integer lattice are 1."""
    if noise == "white":
        return 1.0
    r = _NORM_LATTICE
    k = torch.arange(-r, r + 1, dtype=torch.float64)
    k2 = k[:, None] ** 2 + k[None, :] ** 2
    inside = _raw(k2, noise, smoothness, length)[k2 <= r * r].sum()
    # beyond radius r both decay as (4π²|k|²)^(−s): the tail as the integral of that over the plane outside r
    tail = 2 * math.pi * (4 * math.pi ** 2) ** (-smoothness) * r ** (2 - 2 * smoothness) / (2 * smoothness - 2)
    return float(1.0 / (inside + tail))


def spectrum(shape: tuple[int, int], noise: str, smoothness: float, length: float, extent: float = 1.0,
             device=None) -> torch.Tensor:
    """The eigenvalues of Q on the ``rfft2`` frequencies of an (H, W) grid whose longer side spans ``extent``
    windows: (H, W // 2 + 1), float64.

    Arguments:
        shape: (H, W) of the grid.
        noise: ``white``, ``laplace`` or ``bessel``.
        smoothness: The exponent s (> 1 for a trace-class covariance in 2-D).
        length: 1/τ of bessel, in windows (laplace has no length).
        extent: Length of the longer side in windows (1: the grid is one window).
    """
    h, w = shape
    if noise == "white":  # Q = I on the pixels: each of the h·w modes carries 1/(h·w) of a pixel's variance
        return torch.full((h, w // 2 + 1), 1.0 / (h * w), dtype=torch.float64, device=device)
    pix = extent / max(h, w)  # pixel size in windows
    fy = torch.fft.fftfreq(h, d=pix, dtype=torch.float64, device=device)
    fx = torch.fft.rfftfreq(w, d=pix, dtype=torch.float64, device=device)
    k2 = fy[:, None] ** 2 + fx[None, :] ** 2
    # the lattice of one window has unit spacing; a grid over ``extent`` windows samples it ``extent`` times as
    # densely, so each of its modes stands for 1/extent² of the lattice's: the pixel variance stays 1
    return _raw(k2, noise, smoothness, length) * _norm(noise, smoothness, length) / extent ** 2


def apply_covariance(x: torch.Tensor, spec: torch.Tensor, power: float = 1.0) -> torch.Tensor:
    """Q^power x for images x (..., H, W), with ``spec`` from :func:`spectrum` for that grid."""
    if power == 0:
        return x
    h, w = x.shape[-2:]
    # the eigenvalues of Q as a matrix on the h·w pixel values are h·w times the per-mode ones
    scale = ((spec * (h * w)) ** power).to(torch.float64 if x.dtype == torch.float64 else torch.float32)
    xf = torch.fft.rfft2(x, norm="ortho") * scale
    return torch.fft.irfft2(xf, s=(h, w), norm="ortho").to(x.dtype)


def colored_noise(shape: tuple[int, ...], spec: torch.Tensor, generator: torch.Generator | None = None,
                  device=None, dtype=torch.float32) -> torch.Tensor:
    """η ~ N(0, Q) on the grid of ``spec``: (..., H, W) = Q^{1/2} applied to white noise."""
    xi = torch.randn(shape, generator=generator, device=device, dtype=dtype)
    return apply_covariance(xi, spec, 0.5)
