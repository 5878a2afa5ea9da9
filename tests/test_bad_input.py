"""Bad input gives one ``Error: ...`` line and exit code 1 (or the library's own error), never a traceback."""

import zipfile

import h5py
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from conftest import err_line
from invsolve.cli import app
from invsolve.errors import CheckpointError, ConfigError, DataError, ShapeError

runner = CliRunner()


pytestmark = pytest.mark.usefixtures("one_thread")


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def npy(tmp_path, name, arr):
    p = tmp_path / name
    np.save(p, np.asarray(arr, dtype=np.float32))
    return p


def image(tmp_path, size=16, name="x.npy"):
    return npy(tmp_path, name, np.random.default_rng(0).random((size, size)))


def simulate(tmp_path, src, operator, *extra, name="o.h5"):
    return run("simulate", "--operator", operator, "-i", src, "-o", tmp_path / name, *extra)


# -- 1, 2: image files -------------------------------------------------------------------------------------


def test_empty_arrays_are_refused(tmp_path):
    for name, shape in (("e2.npy", (0, 0)), ("e3.npy", (0, 16, 16))):
        src = npy(tmp_path, name, np.zeros(shape))
        line = err_line(simulate(tmp_path, src, "superres"))
        assert name in line and "empty" in line and str(shape) in line


def test_corrupt_png_is_one_line(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"hello, not an image")
    line = err_line(simulate(tmp_path, bad, "superres"))
    assert "cannot read image" in line and "bad.png" in line and "not a valid PNG file" in line
    assert "pip install" not in line


# -- 3: config files and messages -----------------------------------------------------------------------------


def test_binary_config_file_is_refused(tmp_path):
    blob = bytes(range(256)) * 4
    for name in ("c.toml", "c.json", "c.png"):
        (tmp_path / name).write_bytes(blob)
        line = err_line(run("simulate", "--config", tmp_path / name))
        assert name in line and "not a TOML, YAML or JSON text file" in line


def test_missing_argument_and_short_list_messages(tmp_path):
    line = err_line(run("reconstruct", "-o", tmp_path / "r.h5"))
    assert "missing the measurement file (the first argument)" in line and "--measurement" not in line
    line = err_line(simulate(tmp_path, image(tmp_path), "inpaint", "-P", "mask=box", "-P", "box=[1,2]"))
    assert "box needs 4 values, got 2" in line and "--box" not in line


def test_model_validator_text_reads_naturally(tmp_path):
    line = err_line(simulate(tmp_path, image(tmp_path), "ct", "-P", "angle_start=10", "-P", "angle_stop=5"))
    assert "angle_stop must be larger than angle_start" in line
    assert "(root)" not in line and "Value error" not in line


def test_unknown_key_lists_config_spelling(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'input = "{image(tmp_path)}"\noutput = "{tmp_path / "o.h5"}"\nbogus_key = 3\n')
    line = err_line(run("simulate", "--config", cfg))
    assert "unknown key 'bogus_key'" in line and "json" in line and "json_output" not in line


# -- 4: prior and sampler files -------------------------------------------------------------------------------


def _small_prior():
    from invsolve.priors.epll import EPLL, EPLLConfig

    prior = EPLL(EPLLConfig(patch_size=4, n_components=2))
    with torch.no_grad():
        prior.means.normal_(generator=torch.Generator().manual_seed(0))
    return prior


def _flip_tensor_bytes(path, entry_index=None):
    """Rewrite one tensor entry of a torch zip with changed bytes; the archive stays valid."""
    with zipfile.ZipFile(path) as z:
        infos = [(i, z.read(i.filename)) for i in z.infolist()]
    data = [k for k, (i, b) in enumerate(infos) if "/data/" in i.filename and len(b) >= 8]
    k = data[-1] if entry_index is None else data[entry_index]
    info, blob = infos[k]
    blob = bytearray(blob)
    blob[0:4] = np.float32(0.123).tobytes()  # a finite value, so only the checksum can tell
    infos[k] = (info, bytes(blob))
    with zipfile.ZipFile(path, "w") as z:
        for i, b in infos:
            z.writestr(i, b)


def test_unreadable_prior_and_sampler_files_give_one_line(tmp_path):
    from invsolve.priors.base import load_prior, save_prior
    from invsolve.samplers import read_checkpoint

    png = tmp_path / "x.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(200))
    good = save_prior(_small_prior(), tmp_path / "p.pt")
    trunc = tmp_path / "t.pt"
    trunc.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    for f in (png, trunc):
        with pytest.raises(CheckpointError) as info:
            load_prior(f)
        msg = str(info.value)
        assert "not a readable invsolve prior file" in msg and "invsolve train-prior" in msg and "\n" not in msg
        with pytest.raises(DataError) as info:
            read_checkpoint(f)
        msg = str(info.value)
        assert "not a readable sampler file" in msg and "invsolve train-sampler" in msg and "\n" not in msg
        assert "Weights only" not in msg and "miniz" not in msg


def test_flipped_prior_weights_fail_the_checksum(tmp_path):
    from invsolve.priors.base import load_prior, read_prior_file, save_prior

    prior = _small_prior()
    good = save_prior(prior, tmp_path / "p.pt")
    assert isinstance(read_prior_file(good)["sha256"], str)
    back = load_prior(good, name="epll")
    assert torch.equal(back.means, prior.means)
    bad = tmp_path / "bad.pt"
    bad.write_bytes(good.read_bytes())
    _flip_tensor_bytes(bad)
    assert zipfile.ZipFile(bad).testzip() is None  # a valid archive
    with pytest.raises(CheckpointError, match=r"bad.pt is damaged \(checksum mismatch"):
        load_prior(bad)
    ckpt = save_prior(prior, tmp_path / "p.pt.ckpt", training={"step": 1})  # --resume reads the state directly
    _flip_tensor_bytes(ckpt)
    with pytest.raises(CheckpointError, match="checksum mismatch"):
        read_prior_file(ckpt)
    # files written before the digest (no sha256 entry) still load
    payload = torch.load(good, weights_only=True)
    del payload["sha256"]
    torch.save(payload, tmp_path / "old.pt")
    assert torch.equal(load_prior(tmp_path / "old.pt").means, prior.means)


def test_flipped_sampler_weights_fail_the_checksum(tmp_path):
    from invsolve.noise import build_noise
    from invsolve.operators import build_operator
    from invsolve.samplers import SAMPLERS, load_all, read_checkpoint
    from invsolve.samplers.base import write_atomic

    load_all()
    op = build_operator("linear", {"diagonal": [1.0, 0.5, 0.2]}, (3,))
    smp = SAMPLERS.get("cfm").create({"hidden": 16}, op, build_noise({"name": "gaussian", "sigma": 0.2}))
    good = write_atomic(smp.checkpoint(), tmp_path / "s.pt")
    assert read_checkpoint(good)["sha256"]
    bad = tmp_path / "bad.pt"
    bad.write_bytes(good.read_bytes())
    _flip_tensor_bytes(bad)
    with pytest.raises(CheckpointError, match=r"bad.pt is damaged \(checksum mismatch"):
        read_checkpoint(bad)
    ckpt = torch.load(good, weights_only=True)
    del ckpt["sha256"]
    torch.save(ckpt, tmp_path / "old.pt")
    assert read_checkpoint(tmp_path / "old.pt")["sampler"] == "cfm"


# -- 5, 6: EPLL fitting, images smaller than the patches ---------------------------------------------------------


def test_epll_with_too_many_components_is_refused(tmp_path):
    src = image(tmp_path, 16)
    line = err_line(run("train-prior", "--prior", "epll", "--images", src, "-P", "n_components=100000",
                        "-o", tmp_path / "p.pt"))
    assert "EPLL" in line and "100000 components" in line and "-P n_components=" in line


def test_epll_singular_covariance_is_a_config_error():
    from invsolve.priors.epll import EPLL, EPLLConfig

    flat = torch.full((1, 12, 12), 0.5)
    with pytest.raises(ConfigError, match="not positive definite; use fewer components"):
        EPLL.fit(flat, None, EPLLConfig(patch_size=4, n_components=1, reg_covar=0.0),
                 EPLL.Training(n_patches=50, max_iter=2), seed=0)


def test_patch_methods_refuse_images_smaller_than_the_patches(tmp_path):
    from invsolve.priors import patches as P
    from invsolve.priors.base import save_prior
    from invsolve.priors.epll import EPLL, EPLLConfig

    prior = save_prior(EPLL(EPLLConfig(patch_size=6, n_components=1)), tmp_path / "p.pt")
    assert simulate(tmp_path, image(tmp_path, 4), "inpaint", name="m.h5").exit_code == 0
    m = tmp_path / "m.h5"
    line = err_line(run("reconstruct", m, "--prior", "epll", "--prior-file", prior, "-M", "iterations=2",
                        "-M", "padding=0", "-o", tmp_path / "r.h5"))
    assert "images of 4x4 are smaller than the prior's 6×6 patches (with padding 0)" in line
    assert "-M padding=1" in line
    line = err_line(run("reconstruct", m, "--prior", "epll", "--prior-file", prior, "-M", "iterations=2",
                        "-M", "padding=5", "-o", tmp_path / "r.h5"))
    assert "too small for reflect padding 5" in line
    line = err_line(run("sample-posterior", m, "--prior", "epll", "--prior-file", prior, "-S", "steps=3",
                        "-S", "burn_in=1", "-S", "padding=0", "-o", tmp_path / "s.h5"))
    assert "smaller than the prior's 6×6 patches" in line and "-S padding=1" in line
    with pytest.raises(ShapeError):
        P.extract_patches(torch.zeros(1, 3, 3), 4)
    with pytest.raises(ShapeError):
        P.reflect_pad(torch.zeros(1, 3, 3), 3)


# -- 7: operators ---------------------------------------------------------------------------------------------


def test_superres_on_images_smaller_than_its_kernel_is_correct(tmp_path):
    from invsolve.operators import build_operator

    assert simulate(tmp_path, image(tmp_path, 8), "superres").exit_code == 0
    with h5py.File(tmp_path / "o.h5") as f:
        assert f["measurement"].shape[-2:] == (2, 2)
    x = torch.rand(2, 8, 8, dtype=torch.float64)
    small = build_operator("superres", {}, (8, 8)).double()
    big = build_operator("superres", {}, (32, 32)).double()
    assert torch.allclose(small(x), big(x.repeat(1, 4, 4))[:, :2, :2])  # periodic: a tiled image
    y = torch.rand(2, 2, 2, dtype=torch.float64)
    assert torch.allclose((small(x) * y).sum(), (x * small.adjoint(y)).sum())


def test_superres_bad_factor_reports_only_the_factor(tmp_path):
    for args in (["-P", "factor=0"], ["--scale", "-2"]):
        line = err_line(simulate(tmp_path, image(tmp_path), "superres", *args))
        assert "factor" in line and "kernel_size" not in line and "sigma" not in line


def test_inpaint_mask_file_and_blur_kernel_file_are_used(tmp_path):
    from invsolve.operators import build_operator

    mask = npy(tmp_path, "mask.npy", np.eye(16))
    op = build_operator("inpaint", {"mask_file": str(mask)}, (16, 16))
    assert op.params.mask == "file" and torch.equal(op.mask, torch.eye(16))
    src = image(tmp_path)
    line = err_line(simulate(tmp_path, src, "inpaint", "-P", f"mask_file={tmp_path / 'nope.png'}"))
    assert "inpaint mask file not found" in line and "nope.png" in line
    line = err_line(simulate(tmp_path, src, "inpaint", "-P", "mask=box", "-P", f"mask_file={mask}"))
    assert "mask_file needs -P mask=file" in line
    kernel = npy(tmp_path, "k.npy", np.ones((3, 3)))
    op = build_operator("blur", {"kernel_file": str(kernel)}, (16, 16))
    assert op.params.kernel == "file" and torch.allclose(op.kernel, torch.full((3, 3), 1 / 9))
    line = err_line(simulate(tmp_path, src, "blur", "-P", f"kernel_file={tmp_path / 'nope.npy'}"))
    assert "blur kernel file not found" in line and "nope.npy" in line
    line = err_line(simulate(tmp_path, src, "blur", "-P", "kernel=gaussian", "-P", f"kernel_file={kernel}"))
    assert "kernel_file needs -P kernel=file" in line
    line = err_line(simulate(tmp_path, src, "blur", "-P", f"kernel_file={npy(tmp_path, 'n.npy', [[np.nan]])}"))
    assert "n.npy" in line and "NaN" in line


def test_blur_on_an_image_smaller_than_its_kernel_suggests_a_size(tmp_path):
    line = err_line(simulate(tmp_path, image(tmp_path, 4), "blur"))
    assert "blur kernel 9x9 is larger than the 4x4 image" in line and "-P kernel_size=4" in line


def test_gixrf_refuses_an_empty_angle_range_and_inputs_outside_bounds(tmp_path):
    from invsolve.operators import build_operator

    x = npy(tmp_path, "p.npy", [[20.0, 8.9, 1.0]])
    line = err_line(simulate(tmp_path, x, "gixrf", "-P", "angle_min=1.5", "-P", "angle_max=0.5"))
    assert "angle_min (1.5) must be smaller than angle_max (0.5)" in line and "(root)" not in line
    op = build_operator("gixrf", {"bounds": [[0, 50], [1, 20], [0.5, 2]]}, (3,))
    op.check_inputs(np.array([[20.0, 8.9, 1.0]]))
    with pytest.raises(DataError, match=r"layers.0.thickness = 60 lies outside its bounds \[0, 50\]"):
        op.check_inputs(np.array([[20.0, 8.9, 1.0], [60.0, 8.9, 1.0]]))
    with pytest.raises(DataError, match=r"layers.0.thickness = -1 is not physical \(needs >= 0\)"):
        build_operator("gixrf", {}, (3,)).check_inputs(np.array([-1.0, 8.9, 1.0]))
    x = npy(tmp_path, "bad.npy", [[60.0, 8.9, 1.0]])  # simulate checks its inputs
    line = err_line(simulate(tmp_path, x, "gixrf", "-P", "bounds=[[0,50],[1,20],[0.5,2]]"))
    assert "layers.0.thickness = 60 lies outside its bounds [0, 50]" in line


def test_surrogate_input_of_the_wrong_length(tmp_path):
    from invsolve.operators.surrogate import build_mlp

    model = tmp_path / "f.pt"
    torch.save(build_mlp([3, 4, 2], "relu").state_dict(), model)
    args = ("-P", f"model={model}", "-P", "widths=[3,4,2]")
    for src, got in ((npy(tmp_path, "p4.npy", np.zeros((2, 4))), "got 4"), (image(tmp_path), "got 16")):
        line = err_line(simulate(tmp_path, src, "surrogate", *args))
        assert "the surrogate model takes 3 parameters per item, " + got in line and "mat1" not in line
    assert simulate(tmp_path, npy(tmp_path, "p3.npy", np.zeros((2, 3))), "surrogate", *args).exit_code == 0
    with pytest.raises(ShapeError):
        from invsolve.operators import build_operator

        build_operator("surrogate", {"model": str(model), "widths": [3, 4, 2]}, (5,))



# -- second review round -----------------------------------------------------------------------------------

def test_settings_and_inputs_from_the_second_review(tmp_path):
    x = image(tmp_path)
    assert "--scale applies to the superres operator, not 'blur'" in err_line(
        simulate(tmp_path, x, "blur", "--scale", 4))
    assert "Input should be a finite number" in err_line(simulate(tmp_path, x, "blur", "-N", "sigma=nan"))
    assert simulate(tmp_path, x, "superres", "--scale", 2).exit_code == 0
    m = tmp_path / "o.h5"
    assert "(it takes no parameters)" in err_line(run("reconstruct", m, "-m", "bicubic", "-M", "x=1", "-o",
                                                      tmp_path / "r.h5"))
    png = tmp_path / "p.png"
    from skimage import io as skio
    skio.imsave(png, (np.ones((16, 16)) * 255).astype(np.uint8), check_contrast=False)
    assert "FILE:/DATASET applies to HDF5 files" in err_line(simulate(tmp_path, f"{png}:/x", "blur", name="q.h5"))
    with h5py.File(tmp_path / "e.h5", "w") as f:  # a measurement file whose stack is empty
        with h5py.File(m) as src:
            for k, v in src.attrs.items():
                f.attrs[k] = v
        f["measurement"] = np.zeros((0, 8, 8), np.float32)
    line = err_line(run("reconstruct", tmp_path / "e.h5", "-m", "tv", "-o", tmp_path / "r.h5"))
    assert "not a non-empty stack" in line and not (tmp_path / "r.h5").exists()


def test_estimate_noise_names_a_wrong_vector_length(tmp_path):
    from invsolve.operators.surrogate import build_mlp

    model = tmp_path / "f.pt"
    torch.save(build_mlp([3, 8, 5], "relu").state_dict(), model)
    y = npy(tmp_path, "y.npy", np.zeros((2, 7)))
    line = err_line(run("estimate-noise", "--operator", "surrogate", "-P", f"model={model}", "-P", "widths=[3,8,5]",
                        "-m", y, "-o", tmp_path / "e.h5"))
    assert "holds vectors of 7 values, and operator 'surrogate' produces 5" in line


def test_diverged_sampler_training_writes_no_non_finite_checkpoint(tmp_path):
    out = tmp_path / "s.pt"
    line = err_line(run("train-sampler", "--sampler", "cfm", "--operator", "linear", "-P", "diagonal=[1,2]",
                        "--prior", "gaussian", "--dim", 2, "-S", "hidden=8", "-S", "depth=1", "--lr", 1e30,
                        "--steps", 5, "--checkpoint-every", 1, "-o", out))
    assert "training diverged at step 2" in line and "lower --lr" in line
    assert f"{out}.ckpt keeps its last finite checkpoint" in line and not out.exists()
    ckpt = torch.load(f"{out}.ckpt", weights_only=True)  # the step-1 checkpoint: huge but finite weights
    assert all(torch.isfinite(v).all() for v in ckpt["state_dict"].values() if v.is_floating_point())
    assert ckpt["training"]["step"] == 1 and ckpt["training"]["complete"] is False
