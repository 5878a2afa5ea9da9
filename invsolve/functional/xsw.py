"""X-ray standing waves in a planar stack: pure, differentiable torch kernels.

Media are indexed j = 0 (ambient), 1..L (layers), L+1 (semi-infinite
substrate); depths z point into the sample and lengths are in nm.  Angles are
grazing angles θ from the surface.  All kernels broadcast over leading batch
dimensions: with B parameter vectors, A angles and M = L + 2 media the usual
shapes are n² − 1 (B, 1, M), sin θ (B, A, 1), wave-vector components
k_z (B, A, M), thicknesses (B, 1, M) and roughnesses (B, 1, M − 1).

The time dependence is e^{−iωt}, so n = 1 − δ + iβ with β ≥ 0 and every
normal component is taken with Im k_z ≥ 0 (decaying downwards); both Parratt
recursions then multiply by decaying exponentials only and are stable.

References:
    Parratt, Surface studies of solids by total reflection of X-rays,
    Phys. Rev. 95 (1954) 359; Névot & Croce, Caractérisation des surfaces par
    réflexion rasante de rayons X, Rev. Phys. Appl. 15 (1980) 761; de Boer,
    Glancing-incidence x-ray fluorescence of layered materials, Phys. Rev. B
    44 (1991) 498.
"""

from __future__ import annotations

import math

import torch

__all__ = ["wavenumber", "normal_wavevectors", "parratt", "field_intensity", "depth_integrals",
           "refractive_n2m1"]

#: h·c in keV·nm: λ[nm] = HC_KEV_NM / E[keV].
HC_KEV_NM = 1.239841984


def wavenumber(energy_kev: float) -> float:
    """Vacuum wavenumber k = 2π/λ in nm⁻¹ for a photon energy in keV."""
    return 2 * math.pi * energy_kev / HC_KEV_NM


def refractive_n2m1(delta: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    """n² − 1 for n = 1 − δ + iβ, computed without cancellation: (−δ + iβ)(2 − δ + iβ).

    Args:
        delta, beta: Real tensors of the same shape.

    Returns:
        Complex tensor of that shape.
    """
    eps = torch.complex(-delta, beta)
    return eps * (2 + eps)


def normal_wavevectors(n2m1: torch.Tensor, sin_theta: torch.Tensor, k: float) -> torch.Tensor:
    """k_z,j = k·√(n_j² − cos²θ) = k·√(sin²θ + n_j² − 1), the root with Im ≥ 0.

    Args:
        n2m1: n² − 1 per medium, complex (..., 1, M); 0 for vacuum.
        sin_theta: sin θ, real (..., A, 1).
        k: Vacuum wavenumber (nm⁻¹).

    Returns:
        k_z (..., A, M), complex.
    """
    q = sin_theta.to(n2m1.real.dtype) ** 2 + n2m1
    root = torch.sqrt(q)
    root = torch.where(root.imag < 0, -root, root)
    return k * root


def parratt(kz: torch.Tensor, thickness: torch.Tensor, roughness: torch.Tensor):
    """Reflection ratios and field amplitudes of the stack (Parratt recursion, Névot–Croce roughness).

    In medium j the field is E_j(z) = A_j e^{i k_j (z − z_j)} + B_j e^{−i k_j (z − z_j)}
    with z_j the top of the medium (z_0 = z_1 = 0); the incident amplitude is A_0 = 1.

    Args:
        kz: Normal wave-vector components (..., A, M).
        thickness: d_j (..., 1, M) in nm; entries 0 (ambient) and M − 1 (substrate) are ignored.
        roughness: rms roughness σ_j (..., 1, M − 1) of the interface between j and j + 1, nm.

    Returns:
        (X, amp_down, amp_up, up_bottom), each (..., A, M): X_j = B_j / A_j at the top of
        medium j (X_0 is the reflection coefficient, R = |X_0|²), A_j, B_j, and the
        upward amplitude B_j e^{−i k_j d_j} at the bottom of medium j, computed as
        A_j e^{i k_j d_j}·(r̃_j + X_{j+1})/(1 + r̃_j X_{j+1}) so that it never overflows
        in thick absorbing layers (0 in the substrate).
    """
    M = kz.shape[-1]
    d = torch.cat([torch.zeros_like(thickness[..., :1]), thickness[..., 1:M - 1], torch.zeros_like(thickness[..., :1])],
                  dim=-1)
    k0, k1 = kz[..., :-1], kz[..., 1:]
    s2 = roughness.to(kz.real.dtype) ** 2
    r = (k0 - k1) / (k0 + k1) * torch.exp(-2 * k0 * k1 * s2)
    t = 2 * k0 / (k0 + k1) * torch.exp((k0 - k1) ** 2 * s2 / 2)
    phase = torch.exp(1j * kz * d)  # e^{i k_j d_j}, |.| ≤ 1
    X = [torch.zeros_like(kz[..., 0])]
    rho = []  # up/down ratio at the bottom of medium j
    for j in range(M - 2, -1, -1):
        rj = r[..., j]
        rho.append((rj + X[-1]) / (1 + rj * X[-1]))
        X.append(phase[..., j] ** 2 * rho[-1])
    X = torch.stack(X[::-1], dim=-1)
    rho = torch.stack(rho[::-1] + [torch.zeros_like(kz[..., 0])], dim=-1)
    A = [torch.ones_like(kz[..., 0])]
    for j in range(M - 1):
        A.append(t[..., j] * A[-1] * phase[..., j] / (1 + r[..., j] * X[..., j + 1]))
    A = torch.stack(A, dim=-1)
    return X, A, X * A, A * phase * rho


def field_intensity(kz: torch.Tensor, amp_down: torch.Tensor, up_bottom: torch.Tensor, thickness: torch.Tensor,
                    depth: torch.Tensor) -> torch.Tensor:
    """|E(θ, z)|² at depths z ≥ 0 below the surface, normalised to the incident intensity.

    Args:
        kz, amp_down, up_bottom: From :func:`normal_wavevectors` and :func:`parratt`, (..., A, M).
        thickness: (..., 1, M) layer thicknesses (nm); entries 0 and M − 1 are ignored.
        depth: Depths z (Z,) in nm.

    Returns:
        Intensities (..., A, Z).
    """
    M = kz.shape[-1]
    d = torch.cat([thickness[..., 1:M - 1], torch.zeros_like(thickness[..., :1])], dim=-1)  # media 1 .. L+1
    tops = torch.cat([torch.zeros_like(thickness[..., :1]), torch.cumsum(d[..., :-1], dim=-1)], dim=-1)
    z = depth.to(tops.dtype)
    j = 1 + (z[..., None, :] >= tops[..., 1:][..., None]).sum(-2)  # medium index per depth (..., 1, Z)
    j = j.expand(*kz.shape[:-1], z.shape[-1])
    zt = torch.gather(tops.expand(*kz.shape[:-1], M - 1), -1, j - 1)
    dj = torch.gather(d.expand(*kz.shape[:-1], M - 1), -1, j - 1)
    kk, a, b = (torch.gather(v, -1, j) for v in (kz, amp_down, up_bottom))
    u = z - zt
    e = a * torch.exp(1j * kk * u) + b * torch.exp(1j * kk * (dj - u).clamp_min(0))
    return e.real**2 + e.imag**2


def _phi(u: torch.Tensor) -> torch.Tensor:
    """(1 − e^{−u}) / u for real u ≥ 0, with φ(0) = 1 (safe for autograd)."""
    small = u < 1e-10
    us = torch.where(small, torch.ones_like(u), u)
    return torch.where(small, 1 - u / 2, -torch.expm1(-us) / us)


def _ramp(c: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    """∫₀^d e^{cζ} dζ = (e^{cd} − 1)/c for complex c with Re c ≤ 0 (→ d as c → 0)."""
    cd = c * d
    small = cd.abs() < 1e-4
    cs = torch.where(small, torch.ones_like(c), c)
    series = d * (1 + cd / 2 + cd**2 / 6)
    return torch.where(small, series, (torch.exp(cs * d) - 1) / cs)


def depth_integrals(kz: torch.Tensor, amp_down: torch.Tensor, up_bottom: torch.Tensor, thickness: torch.Tensor,
                    mu_exit: torch.Tensor) -> torch.Tensor:
    """∫ |E_j(z)|²·e^{−m_j (z − z_j)} dz over each medium, in closed form.

    In layer j with k = k′ + ik″ and m = m_j ≥ 0 the integrand is
    |A|²e^{−(2k″+m)ζ} + |B|²e^{(2k″−m)ζ} + 2Re(A B̄ e^{(2ik′−m)ζ}); the first two
    terms are written as ∫₀^d e^{−pζ − q(d−ζ)} dζ = e^{−min(p,q)d}·d·φ(|p−q|d),
    which never overflows.  The substrate integral runs to ∞ (B = 0):
    |A|²/(2k″ + m).  The ambient (j = 0) contributes 0.

    Args:
        kz, amp_down, up_bottom: (..., A, M) from :func:`normal_wavevectors` and :func:`parratt`.
        thickness: (..., 1, M) thicknesses in nm (entries 0 and M − 1 ignored).
        mu_exit: m_j = μ_j(E_line)/sin ψ in nm⁻¹, (..., 1, M).

    Returns:
        Integrals (..., A, M) in nm (the attenuation above medium j is not included).
    """
    M = kz.shape[-1]
    k, a, b_bot = kz[..., 1:M - 1], amp_down[..., 1:M - 1], up_bottom[..., 1:M - 1]
    d = thickness[..., 1:M - 1].to(kz.real.dtype)
    m = mu_exit[..., 1:M - 1].to(kz.real.dtype)
    kr, ki = k.real, k.imag
    a2 = a.real**2 + a.imag**2
    b2 = b_bot.real**2 + b_bot.imag**2

    def sym(p, q):
        lo, hi = torch.minimum(p, q), torch.maximum(p, q)
        return torch.exp(-lo * d) * d * _phi((hi - lo) * d)

    term_a = a2 * sym(2 * ki + m, torch.zeros_like(m))
    term_b = b2 * sym(m, 2 * ki)
    cross = a * torch.conj(b_bot) * torch.exp(-1j * torch.conj(k) * d) * _ramp(2j * kr - m, d)
    layers = term_a + term_b + 2 * cross.real
    ks, asub = kz[..., -1], amp_down[..., -1]
    sub = (asub.real**2 + asub.imag**2) / (2 * ks.imag + mu_exit[..., -1].to(ks.real.dtype))
    zero = torch.zeros_like(sub)
    return torch.cat([zero[..., None], layers, sub[..., None]], dim=-1)
