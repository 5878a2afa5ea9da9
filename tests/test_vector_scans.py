"""Reading measured vectors (GIXRF scans, surrogate outputs) from CSV, NPY and HDF5, and the Gaussian noise
model with one standard deviation per measurement point."""

import math

import h5py
import numpy as np
import pytest
import torch

from invsolve.errors import ConfigError, DataError, ShapeError
from invsolve.noise import build_noise
from invsolve.sources.vectors import gixrf_layout, read_vector_scan

F64 = torch.float64


def write(path, text):
    path.write_text(text)
    return path


# -- tables ------------------------------------------------------------------------------------------------


def gixrf_table(angles, si, ni, si_std, ni_std, angle_col="angle_deg"):
    rows = [f"{angle_col},Si-Ka,Ni-Ka_std,Ni-Ka,Si-Ka_std"]
    rows += [",".join(repr(float(v)) for v in r) for r in zip(angles, si, ni_std, ni, si_std)]
    return "# a GIXRF angle scan\n# lines: Si-Ka, Ni-Ka (counts)\n\n" + "\n".join(rows) + "\n"


def test_gixrf_csv_with_two_lines_round_trips_to_the_operator_layout(tmp_path):
    pytest.importorskip("xraylib")
    from invsolve.operators import build_operator

    op = build_operator("gixrf", {"lines": ["Ni-Ka", "Si-Ka"], "angles": [0.1, 0.2, 0.35, 0.5, 0.8]}, (3,))
    f = op(torch.tensor([[20.0, 8.9, 1.0]], dtype=F64)).numpy()[0].astype(np.float32)  # (2 * 5,) line by line
    ni, si = f[:5], f[5:]
    ang = op.angles_deg
    p = write(tmp_path / "scan.csv", gixrf_table(ang, si, ni, 0.1 * si, 0.1 * ni))
    scan = read_vector_scan(str(p))
    assert scan.layout == "curves" and scan.names == ("Si-Ka", "Ni-Ka")
    assert scan.values.shape == (2, 5) and scan.values.dtype == np.float32
    np.testing.assert_array_equal(scan.values, np.stack([si, ni]))
    assert scan.grid.dtype == np.float64 and scan.units == "deg" and scan.grid_name == "angle_deg"
    np.testing.assert_allclose(scan.grid, ang, rtol=1e-15)
    assert scan.sigma.shape == (2, 5) and scan.sigma.dtype == np.float32
    np.testing.assert_allclose(scan.sigma, np.stack([0.1 * si, 0.1 * ni]), rtol=1e-7)
    y, s = gixrf_layout(scan, op.params.lines, angles=op.angles_deg)
    assert y.shape == s.shape == (1, 10) and y.dtype == s.dtype == np.float32
    np.testing.assert_array_equal(y[0], f)
    np.testing.assert_allclose(s[0], 0.1 * f, rtol=1e-7)
    # the noise model takes those per-point standard deviations as they are
    nm = build_noise({"name": "gaussian", "sigma": s[0].tolist()})
    assert torch.isfinite(nm.nll(torch.from_numpy(y), torch.from_numpy(y))).all()


def test_gixrf_layout_orders_by_name_else_file_order_and_checks_counts(tmp_path):
    p = write(tmp_path / "s.csv", "theta,first,second,R\n0.1,1,2,0.9\n0.2,3,4,0.5\n")
    scan = read_vector_scan(str(p))
    y, s = gixrf_layout(scan, ["Ni-Ka", "Si-Ka"], reflectivity=True)  # no line names: file order, R last
    np.testing.assert_array_equal(y, np.float32([[1, 3, 2, 4, 0.9, 0.5]]))
    assert s is None
    with pytest.raises(DataError, match=r"has 3 value columns \(first, second, R\), but the operator expects 2"):
        gixrf_layout(scan, ["Ni-Ka", "Si-Ka"])
    p = write(tmp_path / "t.csv", "angle,ni_ka,Fe-La,sigma\n0.1,1,2,0.5\n0.2,3,4,0.25\n")
    scan = read_vector_scan(str(p))
    assert scan.sigma.shape == (2,)  # one shared column: per point, for every line
    with pytest.raises(DataError, match="name the lines Ni-Ka but not Si-Ka"):
        gixrf_layout(scan, ["Ni-Ka", "Si-Ka"])
    y, s = gixrf_layout(scan, ["Fe-La", "Ni-Ka"])
    np.testing.assert_array_equal(y, [[2, 4, 1, 3]])
    np.testing.assert_array_equal(s, [[0.5, 0.25, 0.5, 0.25]])
    with pytest.raises(DataError, match="differ from the operator's"):
        gixrf_layout(scan, ["Fe-La", "Ni-Ka"], angles=[0.1, 0.3])
    with pytest.raises(DataError, match="has 2 angles, the operator 3"):
        gixrf_layout(scan, ["Fe-La", "Ni-Ka"], angles=[0.1, 0.2, 0.3])
    p = write(tmp_path / "u.csv", "Ni-Ka,Si-Ka\n1,2\n3,4\n")
    with pytest.raises(DataError, match="no angle column"):
        gixrf_layout(read_vector_scan(str(p)), ["Ni-Ka", "Si-Ka"])


def test_radian_and_milliradian_angles_convert_to_degrees(tmp_path):
    p = write(tmp_path / "r.txt", "theta_rad;counts;sigma\n0.001;5;0.5\n0.01;6;0.6\n")
    scan = read_vector_scan(str(p))
    np.testing.assert_allclose(scan.grid, np.rad2deg([0.001, 0.01]), rtol=1e-15)
    assert scan.units == "deg" and scan.grid_name == "theta_rad"
    assert any("radians to degrees" in n for n in scan.notes)
    np.testing.assert_array_equal(scan.values, [[5, 6]])
    np.testing.assert_allclose(scan.sigma, [0.5, 0.6])
    p = write(tmp_path / "m.tsv", "Angle [mrad]\tintensity\n2.0\t1\n4.0\t2\n")
    np.testing.assert_allclose(read_vector_scan(str(p)).grid, np.rad2deg([0.002, 0.004]), rtol=1e-15)


def test_surrogate_rows_give_a_stack_of_vectors(tmp_path):
    rng = np.random.default_rng(0)
    y = rng.random((6, 23)).astype(np.float32)
    p = tmp_path / "eff.csv"
    np.savetxt(p, y, delimiter=",", header=",".join(f"eff_{i}" for i in range(23)))  # header as a # line
    scan = read_vector_scan(str(p))
    assert scan.layout == "vectors" and scan.values.shape == (6, 23) and scan.grid is None
    assert scan.names[:2] == ("eff_0", "eff_1")
    np.testing.assert_allclose(scan.values, y, rtol=1e-7)
    np.savetxt(tmp_path / "plain.dat", y)  # white space, no header
    scan = read_vector_scan(str(tmp_path / "plain.dat"))
    assert scan.values.shape == (6, 23) and scan.names is None
    # per-point standard deviations of a row layout, and value columns picked by name
    cols = ["a", "b", "a_std", "b_std"]
    p = write(tmp_path / "w.csv", ",".join(cols) + "\n1,2,0.1,0.2\n3,4,0.3,0.4\n5,6,0.5,0.6\n")
    scan = read_vector_scan(str(p))
    np.testing.assert_array_equal(scan.values, [[1, 2], [3, 4], [5, 6]])
    np.testing.assert_allclose(scan.sigma, [[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]])
    scan = read_vector_scan(str(p), columns={"values": ["b", "a"], "sigma": None})
    np.testing.assert_array_equal(scan.values, [[2, 1], [4, 3], [6, 5]])
    assert scan.sigma is None
    y, _ = gixrf_layout(scan, ["Ni-Ka", "Si-Ka"])
    np.testing.assert_array_equal(y, scan.values)  # vectors are taken as already in the layout


def test_npy_vectors_and_hdf5_with_sibling_angles_and_sigma(tmp_path):
    v = np.arange(5, dtype=np.float64)
    np.save(tmp_path / "one.npy", v)
    scan = read_vector_scan(str(tmp_path / "one.npy"))
    assert scan.values.shape == (1, 5) and scan.values.dtype == np.float32 and scan.grid is None
    np.save(tmp_path / "stack.npy", np.ones((3, 23), np.int32))
    assert read_vector_scan(str(tmp_path / "stack.npy")).values.shape == (3, 23)
    np.save(tmp_path / "cube.npy", np.ones((2, 3, 4)))
    with pytest.raises(ShapeError, match=r"shape \(2, 3, 4\); expected one vector"):
        read_vector_scan(str(tmp_path / "cube.npy"))

    p = tmp_path / "scan.h5"
    ang = np.linspace(0.1, 1.0, 8)
    with h5py.File(p, "w") as f:
        g = f.create_group("scan")
        g["ni_ka"] = np.stack([np.linspace(1, 2, 8), np.linspace(3, 4, 8)])  # two lines over the angles
        g["ni_ka_std"] = np.full((2, 8), 0.1)
        g["angle_rad"] = np.deg2rad(ang)
        f["other/flat"] = np.ones((4, 16))
        f["other/angles"] = ang
        f["other/sigma"] = np.full(16, 0.2)
    scan = read_vector_scan(f"{p}:/scan/ni_ka")
    assert scan.dataset == "/scan/ni_ka" and scan.source == str(p) and scan.grid_name == "angle_rad"
    np.testing.assert_allclose(scan.grid, ang, rtol=1e-14)
    assert scan.values.shape == scan.sigma.shape == (2, 8)
    y, s = gixrf_layout(scan, ["Ni-Ka", "Si-Ka"], angles=ang)  # two lines, file order
    assert y.shape == s.shape == (1, 16)
    np.testing.assert_allclose(y[0, 8:], np.linspace(3, 4, 8), rtol=1e-6)
    scan = read_vector_scan(f"{p}:/other/flat")  # 8 angles for 16 points: already flattened, grid left aside
    assert scan.grid is None and any("not used as the grid" in n for n in scan.notes)
    assert scan.sigma.shape == (16,)
    y, s = gixrf_layout(scan, ["Ni-Ka", "Si-Ka"], angles=ang)
    assert y.shape == s.shape == (4, 16)
    with pytest.raises(DataError, match=r"2 × 5 = 10"):
        gixrf_layout(scan, ["Ni-Ka", "Si-Ka"], angles=ang[:5])
    with h5py.File(p, "a") as f:
        f["bad/v"] = np.ones((2, 8))
        f["bad/std"] = np.ones(7)
        f["neg/v"] = np.ones(3)
        f["neg/sigma"] = np.array([0.1, 0.0, 0.1])
    with pytest.raises(DataError, match=r"bad/std has shape \(7,\), but the values /bad/v have \(2, 8\)"):
        read_vector_scan(f"{p}:/bad/v")
    with pytest.raises(DataError, match="standard deviation 0 at vector 0, point 1 is not positive"):
        read_vector_scan(f"{p}:/neg/v")
    with pytest.raises(DataError, match="holds .* datasets; name one"):
        read_vector_scan(str(p))


@pytest.mark.parametrize("text, expected", [
    ("angle,y\n0.1,1\n0.2,2,3\n0.3,3\n", r"t\.csv, line 3: 3 fields, but the header \(line 1\) has 2; give every row"),
    ("angle,y\n0.1,1\n0.2,abc\n", r"t\.csv, line 3, column 'y': 'abc' is not a number"),
    ("angle;y\n0.1;1,5\n", r"line 2, column 'y': '1,5' is not a number \(the decimal point is '\.'\)"),
    ("angle,y\n0.1,\n", r"line 2, column 'y': an empty cell"),
    ("", r"t\.csv is empty"),
    ("# only a comment\n\n", r"t\.csv is empty"),
    ("angle,y\n", r"has a header but no data rows"),
    ("# x\nangle,y\n0.1,1\n0.2,nan\n", r"t\.csv, line 4, column 'y': nan is not a finite number"),
    ("angle,y\n0.1,inf\n", r"line 2, column 'y': inf is not a finite number"),
    ("angle,y,y_std\n0.1,1,0.5\n0.2,2,0\n", r"line 3, column 'y_std': standard deviation 0 is not positive"),
    ("angle,y,sigma\n0.1,1,-0.5\n", r"line 2, column 'sigma': standard deviation -0.5 is not positive"),
    ("angle,y\n0.1,1e39\n", r"line 2, column 'y': 1e\+39 is beyond the float32 range"),
    ("a,b,sigma\n1,2,0.1\n", r"shared column 'sigma' in a table without a grid column is ambiguous"),
    ("angle,a,b,a_std\n0.1,1,2,0.1\n", r"value column\(s\) b have no standard-deviation column"),
    ("angle,theta,y\n1,1,1\n", r"several grid columns \(angle, theta\)"),
    ("angle,y,Y\n1,1,1\n", r"columns 'y' and 'Y' have the same name"),
])
def test_bad_tables_raise_one_line_data_errors(tmp_path, text, expected):
    p = write(tmp_path / "t.csv", text)
    with pytest.raises(DataError, match=expected) as info:
        read_vector_scan(str(p))
    msg = str(info.value)
    assert "\n" not in msg and str(p) in msg


def test_bad_arguments_and_files(tmp_path):
    with pytest.raises(DataError, match="vector file not found"):
        read_vector_scan(str(tmp_path / "missing.csv"))
    p = write(tmp_path / "ok.csv", "angle,y\n0.1,1\n")
    with pytest.raises(DataError, match="has no column 'z'; columns: angle, y"):
        read_vector_scan(str(p), columns=["z"])
    with pytest.raises(ConfigError, match="unknown columns key"):
        read_vector_scan(str(p), columns={"value": ["y"]})
    np.save(tmp_path / "v.npy", np.ones(3))
    with pytest.raises(ConfigError, match="columns applies to CSV/text tables"):
        read_vector_scan(str(tmp_path / "v.npy"), columns=["y"])
    np.save(tmp_path / "nan.npy", np.array([[1.0, np.nan]]))
    with pytest.raises(DataError, match=r"first: vector 0, point 1"):
        read_vector_scan(str(tmp_path / "nan.npy"))
    (tmp_path / "b.csv").write_bytes(b"\x93NUMPY\x00\x01")
    with pytest.raises(DataError, match="binary data"):
        read_vector_scan(str(tmp_path / "b.csv"))
    with pytest.raises(DataError, match="unsupported vector file type .json"):
        read_vector_scan(str(write(tmp_path / "x.json", "{}")))


# -- Gaussian noise with one sigma per point ------------------------------------------------------------------


def test_per_point_gaussian_nll_equals_the_hand_computed_value():
    sig = [0.1, 0.5, 2.0]
    nm = build_noise({"name": "gaussian", "sigma": sig})
    assert nm.spec() == {"name": "gaussian", "sigma": sig}
    f = torch.tensor([[1.0, 2.0, 3.0], [0.0, -1.0, 4.0]], dtype=F64)
    y = torch.tensor([[1.1, 1.0, 5.0], [0.05, -1.0, 0.0]], dtype=F64)
    hand = []
    for b in range(2):
        hand.append(sum((y[b, i].item() - f[b, i].item()) ** 2 / (2 * s**2) + 0.5 * math.log(2 * math.pi * s**2)
                        for i, s in enumerate(sig)))
    np.testing.assert_allclose(nm.nll(y, f).numpy(), hand, rtol=1e-13)
    # float32 inputs, a batch of one, and gradients
    f32 = f.float().requires_grad_(True)
    out = nm.nll(y.float(), f32)
    assert out.dtype == torch.float32 and out.shape == (2,)
    out.sum().backward()
    torch.testing.assert_close(f32.grad, ((f - y) / torch.tensor(sig, dtype=F64) ** 2).float())


def test_per_point_gaussian_samples_have_the_per_point_std():
    sig = [0.01, 0.1, 1.0, 3.0]
    nm = build_noise({"name": "gaussian", "sigma": sig})
    f = torch.tensor([0.0, 1.0, -2.0, 5.0]).expand(50_000, 4)
    s = nm.sample(f, generator=torch.Generator().manual_seed(0))
    assert s.shape == f.shape and s.dtype == torch.float32
    np.testing.assert_allclose(s.std(0).numpy(), sig, rtol=0.02)
    np.testing.assert_allclose((s.mean(0) - f[0]).numpy(), 0, atol=4 * 3.0 / math.sqrt(5e4))


def test_scalar_sigma_is_unchanged():
    nm = build_noise({"name": "gaussian", "sigma": 0.3})
    assert nm.spec() == {"name": "gaussian", "sigma": 0.3} and isinstance(nm.params.sigma, float)
    g = torch.Generator().manual_seed(4)
    f = torch.randn(3, 7, generator=g)
    y = f + 0.2 * torch.randn(3, 7, generator=g)
    s2 = 0.3**2
    old = ((y - f) ** 2).reshape(3, -1).sum(dim=1) / (2 * s2) + 0.5 * 7 * math.log(2 * math.pi * s2)
    assert torch.equal(nm.nll(y, f), old)
    a = nm.sample(f, generator=torch.Generator().manual_seed(1))
    b = f + 0.3 * torch.randn(f.shape, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b)
    assert build_noise({"name": "gaussian", "sigma": 1}).spec()["sigma"] == 1.0


def test_per_point_sigma_checks():
    nm = build_noise({"name": "gaussian", "sigma": [0.1, 0.2, 0.3]})
    with pytest.raises(ConfigError, match=r"has 3 standard deviations \(sigma\) but each measurement has 4 points; "
                                          r"give sigma as one number or as a list of 4"):
        nm.nll(torch.zeros(2, 4), torch.zeros(2, 4))
    with pytest.raises(ConfigError, match="each measurement has 5 points"):
        nm.sample(torch.zeros(1, 5))
    with pytest.raises(ConfigError, match=r"sigma: entry 1 \(0\): Input should be greater than 0"):
        build_noise({"name": "gaussian", "sigma": [0.1, 0]})
    with pytest.raises(ConfigError, match="sigma: give one number, or a list"):
        build_noise({"name": "gaussian", "sigma": []})
    with pytest.raises(ConfigError, match="sigma: Input should be a finite number"):
        build_noise({"name": "gaussian", "sigma": float("nan")})
    with pytest.raises(ConfigError, match="sigma: Input should be greater than 0"):
        build_noise({"name": "gaussian", "sigma": -1})
    # an image item (H, W) takes H*W standard deviations in its flattened order
    nm = build_noise({"name": "gaussian", "sigma": [1.0, 2.0, 3.0, 4.0]})
    f = torch.zeros(1, 2, 2, dtype=F64)
    ref = 0.5 * (1 + 1 / 4 + 1 / 9 + 1 / 16) + sum(0.5 * math.log(2 * math.pi * s * s) for s in (1, 2, 3, 4))
    assert nm.nll(f + 1, f).item() == pytest.approx(ref, rel=1e-13)
