"""``invsolve train-prior`` end to end: inputs, summary, resume, bad files and names."""

import json

import h5py
import numpy as np
import pytest
import torch
from skimage import io
from typer.testing import CliRunner

from invsolve.api_priors import load_prior
from conftest import err_line
from invsolve.cli import app

runner = CliRunner()
TINY = ["-P", "patch_size=4", "-P", "blocks=2", "-P", "width=16", "-P", "val_every=5", "-P", "log_every=5"]


pytestmark = pytest.mark.usefixtures("one_thread")


def run(*args):
    return runner.invoke(app, ["train-prior", *[str(a) for a in args]])


def texture(seed, size=32):
    yy, xx = np.mgrid[0:size, 0:size] / size
    rng = np.random.default_rng(seed)
    img = 0.5 + 0.3 * np.sin(7 * xx + 3 * yy + seed) + 0.02 * rng.standard_normal((size, size))
    return np.clip(img, 0, 1).astype(np.float32)


@pytest.fixture
def pngs(tmp_path):
    d = tmp_path / "imgs"
    d.mkdir()
    for i in range(3):
        io.imsave(d / f"im{i}.png", (texture(i) * 255).round().astype(np.uint8), check_contrast=False)
    io.imsave(tmp_path / "val.png", (texture(7) * 255).round().astype(np.uint8), check_contrast=False)
    return d


def test_patchnr_end_to_end_with_val(tmp_path, pngs):
    out = tmp_path / "prior.pt"
    res = run("--prior", "patchnr", "--images", pngs / "im0.png", "--val", tmp_path / "val.png", "--steps", 10,
              "--batch-size", 16, "--lr", 1e-3, *TINY, "--output", out, "--seed", 0, "--json")
    assert res.exit_code == 0, res.stderr
    s = json.loads(res.stdout)
    assert s["prior"] == "patchnr" and s["steps"] == 10 and s["images"] == 1 and s["patch_size"] == 4
    assert np.isfinite(s["train_nll"]) and np.isfinite(s["val_nll"]) and s["seconds"] > 0
    prior = load_prior(out, name="patchnr")
    assert prior.provenance["val"] == [str(tmp_path / "val.png")] and prior.provenance["steps"] == 10
    assert prior.num_parameters() == s["parameters"]
    again = run("--images", pngs / "im0.png", "--steps", 1, *TINY, "--output", out, "-q")
    assert again.exit_code == 1 and "--overwrite" in err_line(again)


def test_images_from_glob_folder_and_hdf5(tmp_path, pngs):
    stack = np.stack([texture(i) for i in range(4)])
    with h5py.File(tmp_path / "s.h5", "w") as f:
        f["stack"] = stack
    for spec, n in ((str(pngs / "*.png"), 3), (pngs, 3), (f"{tmp_path / 's.h5'}:/stack", 4)):
        out = tmp_path / f"p{n}.pt"
        res = run("--prior", "wpp", "--images", spec, "-P", "patch_size=4", "-P", "n_reference=100",
                  "-P", "eval_patches=50", "--output", out, "--json", "--overwrite")
        assert res.exit_code == 0, res.stderr
        assert json.loads(res.stdout)["images"] == n
        assert load_prior(out).reference.shape == (100, 16)
    res = run("--prior", "wpp", "--images", tmp_path / "nothing*.png", "--output", tmp_path / "x.pt")
    assert res.exit_code == 1 and "no files match" in err_line(res)
    res = run("--prior", "wpp", "--images", pngs, "--steps", 100, "--output", tmp_path / "x.pt")
    assert res.exit_code == 1 and "drop --steps" in err_line(res) and not (tmp_path / "x.pt").exists()


def test_epll_through_the_cli(tmp_path, pngs):
    out = tmp_path / "g.pt"
    res = run("--prior", "epll", pngs / "im0.png", pngs / "im1.png", "--val", tmp_path / "val.png",
              "-P", "patch_size=4", "-P", "n_components=2", "-P", "n_patches=400", "--steps", 4,
              "--output", out, "--json")
    assert res.exit_code == 0, res.stderr
    s = json.loads(res.stdout)
    assert s["images"] == 2 and s["steps"] <= 4 and np.isfinite(s["val_nll"])
    assert load_prior(out).means.shape == (2, 16)
    res = run("--prior", "epll", "--images", pngs / "im0.png", "--lr", 0.1, "--output", tmp_path / "h.pt")
    assert res.exit_code == 1 and "--lr applies to patchnr" in err_line(res)


def test_resume_equals_uninterrupted_run(tmp_path, pngs):
    # a constant lr makes the finished 6-step run the start of the 12-step one (tests/test_priors.py resumes an
    # interrupted run under the default cosine decay, whose lr depends on the total steps)
    common = ["--images", pngs / "im0.png", "--val", tmp_path / "val.png", *TINY, "-P", "schedule=constant",
              "--lr", 1e-3, "--seed", 3, "-q"]
    assert run(*common, "--steps", 12, "--output", tmp_path / "full.pt").exit_code == 0
    part = run(*common, "--steps", 6, "--checkpoint-every", 6, "--output", tmp_path / "r.pt")
    assert part.exit_code == 0, part.stderr
    assert (tmp_path / "r.pt.ckpt").is_file()
    res = run(*common, "--steps", 12, "--checkpoint-every", 6, "--resume", "--output", tmp_path / "r.pt")
    assert res.exit_code == 0, res.stderr  # --resume replaces the 6-step output without --overwrite
    a, b = load_prior(tmp_path / "full.pt"), load_prior(tmp_path / "r.pt")
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert b.provenance["resumed_from"] == 6


def test_bad_checkpoint_and_names_fail_cleanly(tmp_path, pngs):
    (tmp_path / "p.pt.ckpt").write_bytes(b"PK\x03\x04 truncated")
    res = run("--images", pngs / "im0.png", *TINY, "--steps", 5, "--resume", "--output", tmp_path / "p.pt")
    assert res.exit_code == 1 and "damaged" in err_line(res)
    res = run("--images", pngs / "im0.png", "--steps", 5, "--resume", "--output", tmp_path / "q.pt")
    assert res.exit_code == 1 and "no checkpoint" in err_line(res)
    res = run("--prior", "glow", "--images", pngs / "im0.png", "--output", tmp_path / "g.pt")
    line = err_line(res)
    assert res.exit_code == 1 and "epll, patchnr, wpp" in line
    res = run("--images", pngs / "im0.png", "-P", "depth=3", "--output", tmp_path / "g.pt")
    assert res.exit_code == 1 and "valid:" in err_line(res) and "blocks" in res.stderr
    res = run("--images", tmp_path / "missing.png", "--output", tmp_path / "g.pt")
    assert res.exit_code == 1 and "not found" in err_line(res)


def test_shared_material_image_trains(tmp_path, shared_data):
    d = shared_data / "material"
    res = run("--images", d / "learn.png", "--val", d / "val.png", "--steps", 5, "-P", "blocks=1", "-P", "width=16",
              "--output", tmp_path / "m.pt", "--json")
    assert res.exit_code == 0, res.stderr
    s = json.loads(res.stdout)
    assert s["patch_size"] == 6 and np.isfinite(s["val_nll"])


def test_bf16_prior_term_runs_for_patchnr_and_is_refused_for_wpp(tmp_path, pngs):
    """-M/-S precision=bf16 (and sample-posterior --precision bf16) run patchNR's subnets in bfloat16;
    with another prior it is one clear error and no output."""
    common = ["--images", pngs / "im0.png", "-P", "patch_size=4", "-q"]
    flow = ["--steps", 10, "-P", "blocks=2", "-P", "width=16"]
    assert run("--prior", "patchnr", *common, *flow, "--output", tmp_path / "p.pt").exit_code == 0
    assert run("--prior", "wpp", *common, "-P", "n_reference=100", "--output", tmp_path / "w.pt").exit_code == 0
    m = tmp_path / "m.h5"
    cli = lambda *a: runner.invoke(app, [str(x) for x in a])  # noqa: E731
    assert cli("simulate", "--operator", "superres", "--scale", 4, "--input", pngs / "im1.png", "--output", m,
               "--seed", 0).exit_code == 0
    fast = ["-M", "iterations=5", "-M", "n_patches=200", "-M", "precision=bf16"]
    res = cli("reconstruct", m, "--prior", "patchnr", "--prior-file", tmp_path / "p.pt", *fast, "--output",
              tmp_path / "r.h5")
    assert res.exit_code == 0, res.stderr
    with h5py.File(tmp_path / "r.h5") as f:
        assert json.loads(f.attrs["method"])["precision"] == "bf16"
        assert np.isfinite(f["reconstruction"][()]).all()
    res = cli("sample-posterior", m, "--prior", "patchnr", "--prior-file", tmp_path / "p.pt", "--sampler", "langevin",
              "--chains", 2, "-S", "steps=6", "-S", "burn_in=2", "-S", "thin=2", "--precision", "bf16",
              "--output", tmp_path / "s.h5")
    assert res.exit_code == 0, res.stderr
    with h5py.File(tmp_path / "s.h5") as f:
        assert json.loads(f.attrs["sampler"])["precision"] == "bf16"
    res = cli("reconstruct", m, "--prior", "wpp", "--prior-file", tmp_path / "w.pt", *fast, "--output",
              tmp_path / "w.h5")
    assert res.exit_code == 1 and "precision=bf16 applies to priors with a network (patchnr), not 'wpp'" in err_line(res)
    assert not (tmp_path / "w.h5").exists()
