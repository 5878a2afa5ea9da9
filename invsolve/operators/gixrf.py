"""Grazing-incidence X-ray fluorescence (GIXRF) of a planar thin-film stack.

The operator maps a vector of named sample/instrument parameters (d,) to
the angle-resolved fluorescence line intensities F_ℓ(θ_k), flattened line by
line (n_lines · n_angles,), optionally followed by the reflectivity R(θ_k).
Optical constants, attenuation and line-production cross sections come from
xraylib once, at construction; density enters δ, β and μ linearly, so the
whole model is a differentiable torch function (complex128 inside).
"""

from __future__ import annotations

import math
import re

import numpy as np
import torch
from pydantic import Field, model_validator

from ..config import Params
from ..errors import ConfigError, DataError, OperatorError
from ..functional import xsw
from .base import OPERATORS, Operator, OperatorEntry

__all__ = ["GixrfParams", "GixrfOperator", "Layer", "Substrate"]


class Layer(Params):
    formula: str = Field(description="chemical formula, e.g. Ni or SiO2")
    density: float = Field(gt=0, description="g/cm³")
    thickness: float = Field(ge=0, description="nm")
    roughness: float = Field(0.0, ge=0, description="rms roughness of the layer's top surface, nm")


class Substrate(Params):
    formula: str = "Si"
    density: float = Field(2.33, gt=0, description="g/cm³")
    roughness: float = Field(0.0, ge=0, description="rms roughness of the substrate's surface, nm")


class GixrfParams(Params):
    layers: list[Layer] = Field(default_factory=lambda: [Layer(formula="Ni", density=8.902, thickness=20.0,
                                                               roughness=0.5)])
    substrate: Substrate = Field(default_factory=Substrate)
    energy: float = Field(10.0, gt=0, description="excitation energy E₀, keV")
    angles: list[float] | None = Field(None, description="incidence angles in degrees (else a linspace)")
    angle_min: float = Field(0.05, gt=0, description="first angle of the default grid, degrees")
    angle_max: float = Field(1.0, gt=0, description="last angle of the default grid, degrees")
    num_angles: int = Field(40, ge=1, description="points of the default grid")
    lines: list[str] = Field(default_factory=lambda: ["Ni-Ka"], description="detected lines, e.g. Ni-Ka, Si-Ka, Fe-La")
    exit_angle: float = Field(90.0, gt=0, le=90, description="detector exit angle ψ, degrees")
    scale: float = Field(1.0, description="instrument scale s (flux · efficiency · Ω/4π)")
    line_scales: list[float] | None = Field(None, description="relative scale per line (default 1)")
    background: float = Field(0.0, description="constant background added to every line")
    offset: float = Field(0.0, description="angular offset θ_off, degrees")
    divergence: float = Field(0.0, ge=0, description="Gaussian angular spread (std), degrees")
    divergence_points: int = Field(7, ge=1, le=41, description="Gauss–Hermite nodes for the divergence")
    beam_height: float | None = Field(None, gt=0, description="beam height h (mm), with sample_length: footprint cap")
    sample_length: float | None = Field(None, gt=0, description="sample length L along the beam (mm)")
    reflectivity: bool = Field(False, description="append R(θ_k) to the output")
    params: list[str] = Field(default_factory=lambda: ["layers.0.thickness", "layers.0.density", "scale"],
                              description="fitted fields forming the input vector")
    bounds: list[list[float]] | None = Field(None, description="prior box [low, high] per fitted field")

    @model_validator(mode="after")
    def _check(self):
        if self.line_scales is not None and len(self.line_scales) != len(self.lines):
            raise ValueError(f"line_scales needs {len(self.lines)} entries, one per line")
        if self.bounds is not None and (len(self.bounds) != len(self.params) or any(len(b) != 2 or b[1] <= b[0]
                                                                                  for b in self.bounds)):
            raise ValueError("bounds needs one [low, high] with high > low per entry of params")
        if not self.lines:
            raise ValueError("give at least one detected line")
        if self.angles is None and self.num_angles > 1 and self.angle_min >= self.angle_max:
            raise ValueError(f"angle_min ({self.angle_min}) must be smaller than angle_max ({self.angle_max})")
        return self


#: Physical lower limits of the fitted fields: (limit, strict) for thickness >= 0, density > 0, ...
_LIMITS = {"thickness": (0.0, False), "density": (0.0, True), "roughness": (0.0, False), "divergence": (0.0, False)}

_FIELD = re.compile(r"^(layers\.(\d+)\.(thickness|density|roughness)|substrate\.(density|roughness)|scale|"
                    r"line_scales\.(\d+)|background|offset|divergence)$")


def _xrl():
    try:
        import xraylib
    except ImportError:  # pragma: no cover - a declared dependency
        raise OperatorError("operator 'gixrf' needs xraylib: pip install 'xraylib>=4.1'") from None
    return xraylib


def _line(xrl, spec: str) -> tuple[int, int, str]:
    sym, _, name = re.sub(r"[\s_]", "-", spec.strip()).partition("-")
    code = getattr(xrl, f"{name.upper()}_LINE", None)
    try:
        z = xrl.SymbolToAtomicNumber(sym)
    except ValueError:
        z = 0
    if not z or code is None:
        raise ConfigError(f"unknown fluorescence line {spec!r}; write ELEMENT-LINE, e.g. Ni-Ka, Si-Ka, Fe-La")
    return z, code, spec


def material_tables(formulas, densities, energy: float, lines) -> dict[str, np.ndarray]:
    """Per-unit-density optical and fluorescence tables from xraylib (float64).

    Returns ``delta``/``beta`` (M,) at E₀ per g/cm³, ``mu_line`` (n_lines, M) in cm²/g at
    each line energy and ``production`` (n_lines, M) = W_i·σ^F_i,ℓ(E₀) in cm²/g.
    """
    xrl = _xrl()
    parsed = [_line(xrl, s) for s in lines]
    M = len(formulas)
    out = {k: np.zeros(M) for k in ("delta", "beta")}
    out["mu_line"] = np.zeros((len(parsed), M))
    out["production"] = np.zeros((len(parsed), M))
    for j, (f, rho) in enumerate(zip(formulas, densities)):
        try:
            comp = xrl.CompoundParser(f)
        except ValueError as exc:
            raise ConfigError(f"invalid chemical formula {f!r}: {exc}") from None
        out["delta"][j] = (1 - xrl.Refractive_Index_Re(f, energy, rho)) / rho
        out["beta"][j] = xrl.Refractive_Index_Im(f, energy, rho) / rho
        frac = dict(zip(comp["Elements"], comp["massFractions"]))
        for i, (z, code, _) in enumerate(parsed):
            out["mu_line"][i, j] = xrl.CS_Total_CP(f, xrl.LineEnergy(z, code))
            if z in frac:
                try:
                    out["production"][i, j] = frac[z] * xrl.CS_FluorLine_Kissel(z, code, energy)
                except ValueError:
                    out["production"][i, j] = 0.0
    for i, (_, _, spec) in enumerate(parsed):
        if not out["production"][i].any():
            raise ConfigError(f"line {spec} is not excited at {energy} keV in this stack "
                              "(element absent or energy below its edge)")
    return out


class GixrfOperator(Operator):
    """Angle-resolved fluorescence F_ℓ(θ) of a layered sample; nonlinear, (B, d) -> (B, m).

    F_ℓ(θ) = s·s_ℓ·G(θ)·Σ_j ρ_j W_ij σ^F_ℓ(E₀) ∫_j |E(θ, z)|² e^{−M_ℓ(z)} dz + background,
    with |E|² from the Parratt recursion (Névot–Croce roughness), M_ℓ the
    exit-path attenuation at the line energy over sin ψ, and G = 1/sin θ
    (capped at L/h when beam height and sample length are given).  With
    s = 1 the signal is line photons (into 4π) per incident photon.

    Neglected: secondary fluorescence, refraction/standing waves of the
    outgoing radiation (only relevant at grazing exit), scattering background
    and spectral deconvolution; polarisation (s and p differ by O(δ)).

    References:
        de Boer, Glancing-incidence x-ray fluorescence of layered materials,
        Phys. Rev. B 44 (1991) 498; Parratt, Phys. Rev. 95 (1954) 359; Névot &
        Croce, Rev. Phys. Appl. 15 (1980) 761; Andrle et al., Invertible neural
        networks versus MCMC for posterior reconstruction in grazing incidence
        X-ray fluorescence, arXiv 2102.03189.
    """

    Params = GixrfParams
    kind = "gixrf"
    domain_ndim = 1

    def __init__(self, params: GixrfParams, image_shape, arrays=None):
        super().__init__(params, image_shape, arrays)
        p = params
        if self.image_shape != (len(p.params),):
            raise ConfigError(f"operator 'gixrf' fits {len(p.params)} parameters {p.params}; inputs must be vectors "
                              f"({len(p.params)},), got {self.image_shape}")
        L = len(p.layers)
        self._fields = []
        for name in p.params:
            mt = _FIELD.match(name)
            if mt is None:
                raise ConfigError(f"unknown gixrf parameter {name!r}; use layers.I.thickness|density|roughness, "
                                  "substrate.density|roughness, scale, line_scales.I, background, offset, divergence")
            idx = mt.group(2) or mt.group(5)
            if mt.group(2) is not None and int(idx) >= L:
                raise ConfigError(f"gixrf parameter {name!r}: the stack has {L} layer(s)")
            if mt.group(5) is not None and int(idx) >= len(p.lines):
                raise ConfigError(f"gixrf parameter {name!r}: there are {len(p.lines)} line(s)")
            self._fields.append(name)
        if len(set(self._fields)) != len(self._fields):
            raise ConfigError("gixrf params lists a field twice")
        media = [*p.layers, p.substrate]
        tab = material_tables([m.formula for m in media], [m.density for m in media], p.energy, p.lines)
        z = np.zeros(1)
        f64 = torch.float64
        self.register_buffer("c_delta", torch.tensor(np.r_[z, tab["delta"]], dtype=f64), persistent=False)
        self.register_buffer("c_beta", torch.tensor(np.r_[z, tab["beta"]], dtype=f64), persistent=False)
        self.register_buffer("c_mu", torch.tensor(np.c_[np.zeros((len(p.lines), 1)), tab["mu_line"]] * 1e-7, dtype=f64),
                             persistent=False)  # nm⁻¹ per g/cm³
        self.register_buffer("c_prod", torch.tensor(np.c_[np.zeros((len(p.lines), 1)), tab["production"]] * 1e-7,
                                                    dtype=f64), persistent=False)
        ang = np.asarray(p.angles, dtype=np.float64) if p.angles is not None else np.linspace(
            p.angle_min, p.angle_max, p.num_angles)
        if (ang <= 0).any() or (ang >= 90).any():
            raise ConfigError("gixrf angles must lie in (0, 90) degrees")
        self.register_buffer("theta", torch.tensor(np.deg2rad(ang), dtype=f64), persistent=False)
        q = p.divergence_points if (p.divergence > 0 or "divergence" in self._fields) else 1
        nodes, weights = np.polynomial.hermite.hermgauss(q)
        self.register_buffer("gh_x", torch.tensor(nodes * math.sqrt(2), dtype=f64), persistent=False)
        self.register_buffer("gh_w", torch.tensor(weights / math.sqrt(math.pi), dtype=f64), persistent=False)
        self.k = xsw.wavenumber(p.energy)
        self.sin_psi = math.sin(math.radians(p.exit_angle))

    @classmethod
    def image_shape_for(cls, params, range_shape):
        """(len(params),): one entry per fitted field."""
        return (len(params.params),)

    @property
    def range_shape(self):
        return ((len(self.params.lines) + int(self.params.reflectivity)) * len(self.theta),)

    @property
    def angles_deg(self) -> np.ndarray:
        return np.rad2deg(self.theta.cpu().numpy())

    def prior_spec(self) -> dict | None:
        """The uniform prior box of the fitted fields (``bounds``), or None."""
        b = self.params.bounds
        return None if b is None else {"name": "uniform", "dim": len(b), "low": [v[0] for v in b],
                                       "high": [v[1] for v in b]}

    def check_inputs(self, x) -> None:
        """Refuse input vectors (d,) or (N, d) outside ``bounds`` or the physical limits of their field
        (thickness, roughness and divergence >= 0, density > 0): :class:`DataError` naming the first one.

        For simulation inputs; the forward map itself accepts any value (samplers step outside the box).
        """
        arr = np.asarray(x.detach().cpu() if isinstance(x, torch.Tensor) else x, dtype=np.float64)
        arr = arr.reshape(-1, len(self._fields))
        bounds = self.params.bounds
        for col, name in enumerate(self._fields):
            v = arr[:, col]
            if bounds is not None:
                low, high = bounds[col]
                bad = np.flatnonzero((v < low) | (v > high))
                if bad.size:
                    raise DataError(f"gixrf input {int(bad[0])}: {name} = {v[bad[0]]:g} lies outside its bounds "
                                    f"[{low:g}, {high:g}]; give values inside the bounds or widen -P bounds")
            limit = _LIMITS.get(name.rsplit(".", 1)[-1])
            if limit is not None:
                low, strict = limit
                bad = np.flatnonzero(v <= low if strict else v < low)
                if bad.size:
                    rel = ">" if strict else ">="
                    raise DataError(f"gixrf input {int(bad[0])}: {name} = {v[bad[0]]:g} is not physical "
                                    f"(needs {rel} {low:g}); give a valid value")

    def _values(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every field as a (B,) float64 tensor: the fitted ones from x, the rest from the config."""
        p, B = self.params, x.shape[0]
        vals: dict[str, torch.Tensor] = {}
        const = {"scale": p.scale, "background": p.background, "offset": p.offset, "divergence": p.divergence,
                 "substrate.density": p.substrate.density, "substrate.roughness": p.substrate.roughness}
        for i, layer in enumerate(p.layers):
            for key in ("thickness", "density", "roughness"):
                const[f"layers.{i}.{key}"] = getattr(layer, key)
        for i in range(len(p.lines)):
            const[f"line_scales.{i}"] = 1.0 if p.line_scales is None else p.line_scales[i]
        for name, v in const.items():
            vals[name] = torch.full((B,), float(v), dtype=torch.float64, device=x.device)
        for col, name in enumerate(self._fields):
            vals[name] = x[:, col].to(torch.float64)
        return vals

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        p, v = self.params, self._values(x)
        L, B = len(p.layers), x.shape[0]
        rho = torch.stack([torch.zeros_like(v["scale"])] + [v[f"layers.{i}.density"] for i in range(L)]
                          + [v["substrate.density"]], dim=1).clamp_min(0)  # (B, M)
        thick = torch.stack([torch.zeros_like(v["scale"])] + [v[f"layers.{i}.thickness"] for i in range(L)]
                            + [torch.zeros_like(v["scale"])], dim=1).clamp_min(0)
        sig = torch.stack([v[f"layers.{i}.roughness"] for i in range(L)] + [v["substrate.roughness"]], dim=1).abs()
        n2m1 = xsw.refractive_n2m1(rho * self.c_delta, rho * self.c_beta)[:, None, :]  # (B, 1, M)
        theta = self.theta[None, :, None] + torch.deg2rad(v["offset"])[:, None, None]
        theta = theta + torch.deg2rad(v["divergence"])[:, None, None] * self.gh_x  # (B, A, Q)
        A, Q = theta.shape[1], theta.shape[2]
        sin_t = torch.sin(theta.clamp_min(1e-6)).reshape(B, A * Q, 1)
        kz = xsw.normal_wavevectors(n2m1, sin_t, self.k)
        X, a, _, b = xsw.parratt(kz, thick[:, None, :], sig[:, None, :])
        G = 1 / sin_t[..., 0]
        if p.beam_height is not None and p.sample_length is not None:
            G = G.clamp_max(p.sample_length / p.beam_height)
        outs = []
        for i in range(len(p.lines)):
            m = (rho * self.c_mu[i] / self.sin_psi)[:, None, :]  # (B, 1, M) nm⁻¹
            J = xsw.depth_integrals(kz, a, b, thick[:, None, :], m)  # (B, A·Q, M)
            above = torch.cumsum(m[..., :-1] * thick[:, None, :-1], dim=-1)
            atten = torch.exp(-torch.cat([torch.zeros_like(above[..., :1]), above], dim=-1))
            y = G * (J * atten * (rho * self.c_prod[i])[:, None, :]).sum(-1)
            y = (y.reshape(B, A, Q) * self.gh_w).sum(-1)
            outs.append(v["scale"][:, None] * v[f"line_scales.{i}"][:, None] * y + v["background"][:, None])
        if p.reflectivity:
            R = (X[..., 0].real ** 2 + X[..., 0].imag ** 2).reshape(B, A, Q)
            outs.append((R * self.gh_w).sum(-1))
        return torch.cat(outs, dim=1).to(x.dtype)



OPERATORS.add(
    "gixrf",
    OperatorEntry(
        GixrfOperator,
        {},
        noise={"name": "mixed", "a": 0.005, "b": 0.05},
        summary="vectors: angle-resolved X-ray fluorescence of a thin-film stack (nonlinear; layer parameters)",
    ),
)
