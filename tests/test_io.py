import h5py
import numpy as np
import pytest

from invsolve import api
from invsolve.errors import DataError, OutputExistsError, ShapeError
from invsolve.io.hdf5 import read_result, write_result
from invsolve.io.images import read_images, split_spec


def test_split_spec():
    assert split_spec("a/b.h5:/x/y") == (__import__("pathlib").Path("a/b.h5"), "/x/y")
    assert split_spec("b.hdf5")[1] is None
    assert split_spec("img.png")[1] is None


def test_result_round_trip_with_all_attributes(tmp_path):
    x = np.random.default_rng(0).random((2, 32, 32)).astype(np.float32)
    m = api.simulate(x, "inpaint", {"fraction": 0.4}, seed=7, device="cpu", source="mem")
    r = api.reconstruct(m, "tv", {"iterations": 5}, seed=3, device="cpu")
    p = api.save_reconstruction(r, tmp_path / "r.h5")
    st = read_result(p)
    a = st.attrs
    assert a["format"] == "invsolve" and a["format_version"] == 1 and a["kind"] == "reconstruction"
    assert a["operator"] == m.operator and a["noise"] == {"name": "gaussian", "sigma": 0.01}
    assert a["method"]["name"] == "tv" and a["method"]["iterations"] == 5
    assert a["seed"] == 3 and a["measurement_seed"] == 7 and a["device"] == "cpu" and a["source"] == "mem"
    assert set(a["timings"]) == {"simulate", "reconstruct"} and a["invsolve_version"]
    np.testing.assert_array_equal(st.datasets["reconstruction"], r.images)
    np.testing.assert_array_equal(st.datasets["measurement"], m.measurement)
    np.testing.assert_array_equal(st.datasets["ground_truth"], x)
    np.testing.assert_array_equal(st.groups["operator_arrays"]["mask"], m.arrays["mask"])
    back = api.load_measurement(p)
    assert back.operator == m.operator and back.seed == 7
    np.testing.assert_array_equal(back.build_operator().mask.numpy(), m.arrays["mask"])


def test_mask_file_is_stored_so_reconstruct_needs_no_file(tmp_path):
    mask = np.ones((16, 16), np.uint8)
    mask[4:8, 4:8] = 0
    np.save(tmp_path / "mask.npy", mask)
    m = api.simulate(np.ones((16, 16), np.float32), "inpaint", {"mask": "file", "mask_file": str(tmp_path / "mask.npy")})
    p = api.save_measurement(m, tmp_path / "m.h5")
    (tmp_path / "mask.npy").unlink()
    op = api.load_measurement(p).build_operator()
    assert float(op.mask.sum()) == 256 - 16


def test_overwrite_protection(tmp_path):
    p = write_result(tmp_path / "a.h5", {"x": np.zeros(2)}, {"kind": "t"})
    with pytest.raises(OutputExistsError, match="--overwrite"):
        write_result(p, {"x": np.ones(2)}, {"kind": "t"})
    write_result(p, {"x": np.ones(2)}, {"kind": "t"}, overwrite=True)
    with h5py.File(p) as f:
        assert f["x"][0] == 1


def test_foreign_hdf5_refused_as_measurement(tmp_path):
    p = tmp_path / "x.h5"
    with h5py.File(p, "w") as f:
        f["a"] = np.zeros((4, 4))
    with pytest.raises(DataError, match="not an invsolve result"):
        api.load_measurement(p)


def test_image_readers(tmp_path):
    from skimage import io

    img = (np.arange(256).reshape(16, 16)).astype(np.uint8)
    io.imsave(tmp_path / "a.png", img, check_contrast=False)
    io.imsave(tmp_path / "a.tif", img.astype(np.uint16) * 257, check_contrast=False)
    rgb = np.stack([img] * 3, -1)
    io.imsave(tmp_path / "c.png", rgb, check_contrast=False)
    a, single = read_images(tmp_path / "a.png")
    assert single and a.shape == (1, 16, 16) and a.max() == pytest.approx(1.0)
    t, _ = read_images(tmp_path / "a.tif")
    np.testing.assert_allclose(t, a, atol=1e-3)
    c, _ = read_images(tmp_path / "c.png")
    np.testing.assert_allclose(c, a, atol=2e-3)
    with h5py.File(tmp_path / "s.h5", "w") as f:
        f.create_dataset("g/stack", data=np.zeros((3, 8, 8)))
    s, single = read_images(f"{tmp_path / 's.h5'}")
    assert s.shape == (3, 8, 8) and not single
    with pytest.raises(ShapeError):
        np.save(tmp_path / "v.npy", np.zeros(5))
        read_images(tmp_path / "v.npy")


def test_outputs_get_the_usual_file_permissions(tmp_path):
    import os
    import stat

    from invsolve.io.atomic import atomic_output

    old = os.umask(0o022)
    try:
        with atomic_output(tmp_path / "f.bin") as tmp:
            open(tmp, "wb").write(b"x")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "f.bin").st_mode) == 0o644


@pytest.mark.parametrize("edit,text", [
    (lambda f: f.attrs.__setitem__("operator", "{not json"), "damaged 'operator' attribute"),
    (lambda f: f.attrs.__setitem__("format_version", 99), "format version 99, newer"),
    (lambda f: f.attrs.__setitem__("kind", "banana"), "unknown kind 'banana'"),
    (lambda f: (f.__delitem__("measurement"), f.create_dataset("measurement", data=np.array([[b"a", b"b"]]))),
     "not a non-empty numeric stack"),
    (lambda f: (f.__delitem__("measurement"), f.create_dataset("measurement", data=np.zeros((0, 8, 8)))),
     "not a non-empty numeric stack"),
    (lambda f: f["ground_truth"].__setitem__((0, 0, 0), np.nan), "ground_truth holds NaN or infinite values"),
    (lambda f: (f.__delitem__("ground_truth"), f.create_dataset("ground_truth", data=np.zeros((1, 4, 4)))),
     r"ground_truth has items of shape \(4, 4\), the operator.s images \(16, 16\)"),
])
def test_damaged_measurement_files_are_refused(tmp_path, edit, text):
    m = api.simulate(np.random.default_rng(0).random((16, 16)), "blur", {"sigma": 1.0}, seed=0)
    path = api.save_measurement(m, tmp_path / "m.h5")
    with h5py.File(path, "a") as f:
        edit(f)
    with pytest.raises(DataError, match=text):
        api.load_measurement(path)
    with pytest.raises(DataError, match="is a folder"):
        api.load_measurement(tmp_path)


def test_prior_file_alone_selects_its_prior(tmp_path):
    from invsolve.api_priors import save_prior, train_prior
    from invsolve.errors import OperatorError

    img = np.random.default_rng(1).random((32, 32)).astype(np.float32)
    prior, _ = train_prior("patchnr", img, None, {"blocks": 1, "width": 8}, steps=2, seed=0)
    save_prior(prior, tmp_path / "p.pt")
    m = api.simulate(img, "blur", {"sigma": 1.0}, seed=0)
    r = api.reconstruct(m, method_params={"iterations": 2}, prior_file=str(tmp_path / "p.pt"))
    assert r.method["name"] == "map" and r.method["prior"] == "patchnr"
    with pytest.raises(OperatorError, match="--prior-file uses the MAP method; drop --method tv"):
        api.reconstruct(m, "tv", prior_file=str(tmp_path / "p.pt"))
    with pytest.raises(OperatorError, match="unknown prior 'nope'; valid: diffusion, epll, patchnr, wpp"):
        api.reconstruct(m, prior="nope", prior_file=str(tmp_path / "p.pt"))
