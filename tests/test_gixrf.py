"""Physics checks of the GIXRF operator and its standing-wave kernels (gixrf.md §2–§4)."""

import math

import numpy as np
import pytest
import torch

pytest.importorskip("xraylib")

from invsolve.errors import ConfigError  # noqa: E402
from invsolve.functional import xsw  # noqa: E402
from invsolve.operators import LinearOperator, build_operator  # noqa: E402
from invsolve.operators.gixrf import material_tables  # noqa: E402

F64 = torch.float64


def stack(formulas, densities, energy, thick, rough, theta, beta_scale=1.0):
    """kz, X, A, B for a stack [vacuum, *layers, substrate] at angles theta (rad)."""
    tab = material_tables(formulas, densities, energy, ["Si-Ka"] if "Si" in formulas else ["Ni-Ka"])
    rho = np.asarray(densities)
    delta = torch.tensor(np.r_[0, tab["delta"] * rho], dtype=F64)
    beta = torch.tensor(np.r_[0, tab["beta"] * rho * beta_scale], dtype=F64)
    n2m1 = xsw.refractive_n2m1(delta, beta)[None]
    th = torch.as_tensor(theta, dtype=F64)
    kz = xsw.normal_wavevectors(n2m1, torch.sin(th)[:, None], xsw.wavenumber(energy))
    d = torch.tensor([[0.0, *thick, 0.0]], dtype=F64)
    X, A, _, B = xsw.parratt(kz, d, torch.tensor([rough], dtype=F64))
    return kz, X, A, B, d, delta


def test_critical_angles_match_the_tables():
    for f, rho, E, want in (("Si", 2.33, 8.048, 3.89e-3), ("Si", 2.33, 10.0, math.radians(0.179)),
                            ("Ni", 8.902, 10.0, math.radians(0.336))):
        tab = material_tables([f], [rho], E, ["Si-Ka"] if f == "Si" else ["Ni-Ka"])
        assert math.sqrt(2 * tab["delta"][0] * rho) == pytest.approx(want, rel=0.01)
    tab = material_tables(["Si"], [2.33], 8.048, ["Si-Ka"])
    assert tab["delta"][0] * 2.33 == pytest.approx(7.58e-6, rel=2e-3)
    assert tab["beta"][0] * 2.33 == pytest.approx(1.82e-7, rel=5e-3)


def test_surface_intensity_of_bare_si():
    tc = math.sqrt(2 * 7.5802e-6)
    th = np.array([0.02, 0.5, 1.0, 2.0, 10.0]) * tc
    _, X, _, _, _, _ = stack(["Si"], [2.33], 8.048, [], [0.0], th)
    surf = ((1 + X[:, 0]).abs() ** 2).numpy()
    assert surf[0] < 0.1  # → 0 at grazing incidence
    assert surf[1] == pytest.approx(0.99, abs=0.01)
    assert surf[2] == pytest.approx(3.22, abs=0.01)
    assert surf[3] == pytest.approx(1.15, abs=0.01)
    assert surf[4] == pytest.approx(1.005, abs=0.002)
    fine = np.linspace(0.8, 1.2, 401) * tc
    _, Xf, _, _, _, _ = stack(["Si"], [2.33], 8.048, [], [0.0], fine)
    assert fine[int(((1 + Xf[:, 0]).abs() ** 2).argmax())] == pytest.approx(tc, rel=0.03)  # peak near θ_c
    vals = [float(((1 + stack(["Si"], [2.33], 8.048, [], [0.0], [tc], s)[1][0, 0]).abs() ** 2)) for s in (0.1, 1e-3)]
    assert vals[0] > 3.7 and vals[1] > 3.95 and vals[1] > vals[0]  # → 4 as β → 0


def test_energy_conservation_without_absorption():
    th = np.linspace(0.5e-3, 15e-3, 60)
    kz, X, A, _, _, _ = stack(["Ni", "Si"], [8.902, 2.33], 8.048, [10.0], [0.0, 0.0], th, beta_scale=0.0)
    total = X[:, 0].abs() ** 2 + (kz[:, -1].real / kz[:, 0].real) * A[:, -1].abs() ** 2
    np.testing.assert_allclose(total.numpy(), 1.0, atol=1e-12)


def test_ni_on_si_reflectivity_and_continuity():
    _, X, A, B, d, _ = stack(["Ni", "Si"], [8.902, 2.33], 8.048, [10.0], [0.0, 0.0], [3e-3, 6e-3, 10e-3])
    np.testing.assert_allclose((X[:, 0].abs() ** 2).numpy(), [0.978, 0.774, 0.00573], rtol=2e-3)
    kz, *_ = stack(["Ni", "Si"], [8.902, 2.33], 8.048, [10.0], [0.0, 0.0], [3e-3, 6e-3, 10e-3])
    I = xsw.field_intensity(kz, A, B, d, torch.tensor([10.0 - 1e-9, 10.0 + 1e-9], dtype=F64))
    np.testing.assert_allclose(I[:, 0].numpy(), I[:, 1].numpy(), rtol=1e-6)


def test_field_far_above_critical_angle_decays_exponentially():
    th = np.array([0.05])
    kz, X, A, B, d, _ = stack(["Si"], [2.33], 8.048, [], [0.0], th)
    z = torch.tensor([0.0, 500.0, 2000.0], dtype=F64)
    I = xsw.field_intensity(kz, A, B, d, z)[0].numpy()
    mu = 148.15e-7  # nm⁻¹ (gixrf.md §2)
    t0 = float((2 * kz[0, 0] / (kz[0, 0] + kz[0, 1])).abs() ** 2)
    np.testing.assert_allclose(I, t0 * np.exp(-mu * z.numpy() / math.sin(0.05)), rtol=2e-3)


def _ni(extra=None, params=("scale",), shape=None):
    cfg = {"layers": [], "substrate": {"formula": "Ni", "density": 8.902}, "energy": 10.0, "lines": ["Ni-Ka"],
           "params": list(params), **(extra or {})}
    return build_operator("gixrf", cfg, shape or (len(params),))


def test_sherman_limit_of_a_bulk_sample():
    import xraylib as xrl

    th = [20.0, 40.0, 60.0]
    op = _ni({"angles": th, "exit_angle": 45.0})
    F = op(torch.ones(1, dtype=F64)).numpy()
    El = xrl.LineEnergy(28, xrl.KA_LINE)
    sig = xrl.CS_FluorLine_Kissel(28, xrl.KA_LINE, 10.0)
    s = np.sin(np.radians(th))
    want = sig / (xrl.CS_Total_CP("Ni", 10.0) + xrl.CS_Total_CP("Ni", El) * s / math.sin(math.radians(45)))
    np.testing.assert_allclose(F, want, rtol=2e-3)


def test_thick_layer_equals_bulk_substrate():
    th = list(np.linspace(0.05, 1.0, 25))
    bulk = _ni({"angles": th})(torch.ones(1, dtype=F64))
    thick = build_operator("gixrf", {"layers": [{"formula": "Ni", "density": 8.902, "thickness": 50000.0}],
                                     "energy": 10.0, "lines": ["Ni-Ka"], "angles": th, "params": ["scale"]}, (1,))
    torch.testing.assert_close(thick(torch.ones(1, dtype=F64)), bulk, rtol=1e-9, atol=0)


def _numpy_gixrf(layers, sub, energy, theta_deg, line, psi_deg):
    """Independent evaluation: a per-angle Parratt loop in numpy and numerical depth quadrature."""
    import xraylib as xrl

    sym, name = line.split("-")
    Z, code = xrl.SymbolToAtomicNumber(sym), getattr(xrl, name.upper() + "_LINE")
    El = xrl.LineEnergy(Z, code)
    media = [*layers, sub]
    n = [1.0 + 0j] + [complex(xrl.Refractive_Index_Re(m[0], energy, m[1]), xrl.Refractive_Index_Im(m[0], energy, m[1]))
                      for m in media]
    mu_l = [0.0] + [m[1] * xrl.CS_Total_CP(m[0], El) * 1e-7 / math.sin(math.radians(psi_deg)) for m in media]
    prod = [0.0]
    for m in media:
        c = xrl.CompoundParser(m[0])
        w = dict(zip(c["Elements"], c["massFractions"])).get(Z, 0.0)
        prod.append(m[1] * w * xrl.CS_FluorLine_Kissel(Z, code, energy) * 1e-7 if w else 0.0)
    d = [0.0] + [m[2] for m in layers] + [0.0]
    sig = [m[3] for m in layers] + [sub[2]]
    k = 2 * np.pi * energy / 1.239841984
    out = []
    for th in np.radians(theta_deg):
        kz = [k * np.sqrt(nj**2 - np.cos(th) ** 2 + 0j) for nj in n]
        kz = [q if q.imag >= 0 else -q for q in kz]
        M = len(kz)
        r = [(kz[j] - kz[j + 1]) / (kz[j] + kz[j + 1]) * np.exp(-2 * kz[j] * kz[j + 1] * sig[j] ** 2) for j in range(M - 1)]
        t = [2 * kz[j] / (kz[j] + kz[j + 1]) * np.exp((kz[j] - kz[j + 1]) ** 2 * sig[j] ** 2 / 2) for j in range(M - 1)]
        X = [0j] * M
        for j in range(M - 2, -1, -1):
            X[j] = np.exp(2j * kz[j] * d[j]) * (r[j] + X[j + 1]) / (1 + r[j] * X[j + 1])
        A = [1 + 0j] + [0j] * (M - 1)
        for j in range(M - 1):
            A[j + 1] = t[j] * A[j] * np.exp(1j * kz[j] * d[j]) / (1 + r[j] * X[j + 1])
        total, above = 0.0, 0.0
        for j in range(1, M):
            depth = d[j] if j < M - 1 else 40.0 / (2 * kz[j].imag + mu_l[j])
            zeta = np.linspace(0, depth, 20001)
            E = A[j] * np.exp(1j * kz[j] * zeta) + X[j] * A[j] * np.exp(-1j * kz[j] * zeta)
            f = np.abs(E) ** 2 * np.exp(-mu_l[j] * zeta)
            total += prod[j] * np.exp(-above) * np.trapezoid(f, zeta)
            above += mu_l[j] * d[j]
        out.append(total / np.sin(th))
    return np.array(out)


def test_agreement_with_independent_numpy_evaluation():
    th = [0.1, 0.2, 0.3, 0.45, 0.7]
    layers = [("SiO2", 2.2, 2.0, 0.3), ("Ni", 8.902, 15.0, 0.6)]
    cfg = {"layers": [{"formula": f, "density": r, "thickness": d, "roughness": s} for f, r, d, s in layers],
           "substrate": {"formula": "Si", "density": 2.33, "roughness": 0.4}, "energy": 10.0, "lines": ["Ni-Ka"],
           "angles": th, "exit_angle": 60.0, "params": ["scale"]}
    F = build_operator("gixrf", cfg, (1,))(torch.ones(1, dtype=F64)).numpy()
    ref = _numpy_gixrf(layers, ("Si", 2.33, 0.4), 10.0, th, "Ni-Ka", 60.0)
    np.testing.assert_allclose(F, ref, rtol=1e-6)


def test_gradients_match_finite_differences():
    op = build_operator("gixrf", {"params": ["layers.0.thickness", "layers.0.density", "layers.0.roughness",
                                             "scale", "offset", "divergence", "background"], "num_angles": 12},
                        (7,))
    x = torch.tensor([[18.0, 8.5, 0.6, 2.0, 0.01, 0.01, 0.05]], dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda z: op(z), (x,), eps=1e-6, atol=1e-6, rtol=1e-4)


def test_outputs_shapes_and_errors():
    op = build_operator("gixrf", {"lines": ["Ni-Ka", "Si-Ka"], "reflectivity": True, "num_angles": 10}, (3,))
    y = op(torch.tensor([[20.0, 8.9, 1.0], [10.0, 8.0, 2.0]]))
    assert y.shape == (2, 30) and y.dtype == torch.float32 and torch.isfinite(y).all()
    assert not op.linear and not isinstance(op, LinearOperator)
    assert not hasattr(op, "adjoint") and not hasattr(op, "T")  # a nonlinear operator has no adjoint at all
    with pytest.raises(ConfigError, match="unknown gixrf parameter"):
        build_operator("gixrf", {"params": ["layers.0.colour"]}, (1,))
    with pytest.raises(ConfigError, match="inputs must be vectors"):
        build_operator("gixrf", {}, (4,))
    with pytest.raises(ConfigError, match="not excited"):
        build_operator("gixrf", {"energy": 8.0}, (3,))
    with pytest.raises(ConfigError, match="unknown fluorescence line"):
        build_operator("gixrf", {"lines": ["Ni-Kz"]}, (3,))
    with pytest.raises(ConfigError, match="formula"):
        build_operator("gixrf", {"layers": [{"formula": "Xq", "density": 1.0, "thickness": 1.0}]}, (3,))
