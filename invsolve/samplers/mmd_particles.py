"""Particle flows of the sliced MMD with the negative distance kernel (explicit Euler with momentum).

A flow step moves the particles x (N, d) against the sliced gradient ĝ of
F(x) = 1/(NM) sum ||x_i - y_j|| - 1/(2N^2) sum ||x_i - x_i'|| (the MMD^2 of the
1/2 convention up to a constant, see :mod:`.mmd_kernel`) with heavy-ball momentum:

    v <- ĝ + m v,    x <- x - tau N v.

The factor N makes the step independent of the particle count (ĝ is O(1/N) per
particle).  Directions are drawn afresh at every step from the generator.

Conditional flow: particles (z_i, c_i) and targets (x_j, c_j) live in the joint
space; the slices are drawn there (constant c_{d + dim c}) and only the first
d coordinates move: the c-part of the gradient is discarded, so the particles
keep their own conditions and flow toward the posterior for them.

References: Hertrich et al., Generative Sliced MMD Flows with Riesz Kernels, ICLR 2024
(arXiv 2305.11463), Alg. 1; Hagemann et al., Posterior Sampling Based on Gradient Flows
of the MMD with Negative Distance Kernel, ICLR 2024 (arXiv 2310.03054), Sec. 4.
"""

from __future__ import annotations

import math

import torch

from ..errors import ConfigError, ShapeError
from .mmd_kernel import DEFAULT_WORKSPACE, sliced_energy_gradient

__all__ = ["flow", "joint", "flow_schedule"]


def joint(x: torch.Tensor, c: torch.Tensor, weight: float = 1.0) -> torch.Tensor:
    """The joint vectors (x, weight * c), flattened: x (N, *a), c (N, *b) -> (N, |a| + |b|).

    References: Hagemann et al., arXiv 2310.03054, Sec. 4.
    """
    if x.shape[0] != c.shape[0]:
        raise ShapeError(f"{x.shape[0]} particles but {c.shape[0]} conditions")
    return torch.cat([x.reshape(len(x), -1), weight * c.reshape(len(c), -1).to(x.dtype)], dim=1)


def flow(particles: torch.Tensor, targets: torch.Tensor, steps: int, *, generator: torch.Generator,
         n_moving: int | None = None, step_size: float = 1.0, momentum: float = 0.0, n_slices: int = 500,
         velocity: torch.Tensor | None = None, workspace: int = DEFAULT_WORKSPACE,
         callback=None) -> torch.Tensor:
    """Run ``steps`` explicit Euler steps of the sliced MMD flow in place.

    Args:
        particles: (N, D) particles, updated in place (only the first ``n_moving`` columns).
        targets: (M, D) target samples.
        steps: number of flow steps.
        generator: draws the P directions of every step.
        n_moving: moving coordinates (conditional flow: d of the joint D); default D.
        step_size: tau in x <- x - tau N v.
        momentum: m in v <- ĝ + m v, in [0, 1).
        n_slices: P, directions per step.
        velocity: (N, n_moving) momentum buffer to continue from, or None (zero).
        workspace: passed to :func:`sliced_energy_gradient`.
        callback: called as ``callback(step)`` after every step (progress).

    Returns:
        (N, n_moving) the momentum buffer v after the last step.

    References: Hertrich et al., arXiv 2305.11463, Alg. 1 and App. (momentum).
    """
    if particles.ndim != 2 or targets.ndim != 2 or particles.shape[1] != targets.shape[1]:
        raise ShapeError(f"particles (N, D) and targets (M, D) needed, got {tuple(particles.shape)}, "
                         f"{tuple(targets.shape)}")
    if not 0.0 <= momentum < 1.0:
        raise ConfigError(f"momentum must be in [0, 1), got {momentum}")
    n, dim = particles.shape
    dm = dim if n_moving is None else int(n_moving)
    if not 1 <= dm <= dim:
        raise ShapeError(f"n_moving must be in 1..{dim}, got {dm}")
    v = torch.zeros(n, dm, dtype=particles.dtype, device=particles.device) if velocity is None else velocity
    for k in range(steps):
        g = sliced_energy_gradient(particles, targets, n_slices, generator=generator, n_moving=dm,
                                   workspace=workspace)
        v = g.add_(v, alpha=momentum) if momentum else g
        particles[:, :dm].sub_(v, alpha=step_size * n)
        if callback is not None:
            callback(k + 1)
    return v


def flow_schedule(first: int, nets: int, cap: int, inc_cap: int = 1024) -> list[int]:
    """Flow steps per block: T_0 = first, T_{l+1} = min(T_l + min(2^{e_l}, inc_cap), cap), e_0 = log2(first).

    Returns:
        [T_0, ..., T_{nets-1}].

    References: Hertrich et al., arXiv 2305.11463, App. (training schedule).
    """
    if first < 1 or nets < 1 or cap < 1:
        raise ConfigError("flow steps, networks and the step cap must be positive")
    out, t, e = [], min(first, cap), int(math.log2(first))
    for _ in range(nets):
        out.append(t)
        t, e = min(t + min(2**e, inc_cap), cap), e + 1
    return out
