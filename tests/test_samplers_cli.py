"""`invsolve train-sampler` end to end: image and vector problems, sample-posterior
on its output, exact resume, refusal of corrupted files and mismatched operators."""

import json

import h5py
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from invsolve.api_samplers import train_sampler
from conftest import err_line
from invsolve.cli import app
from invsolve.samplers import load_sampler

runner = CliRunner()
VEC = ["--operator", "linear", "-P", "diagonal=[1.0, 0.5, 0.2]", "--noise", "gaussian", "-N", "sigma=0.2",
       "--prior", "gaussian", "--dim", "3"]


pytestmark = pytest.mark.usefixtures("one_thread")


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def vec_sampler(tmp_path_factory):
    out = tmp_path_factory.mktemp("vec") / "s.pt"
    res = run("train-sampler", "--sampler", "cfm", *VEC, "-S", "hidden=32", "--steps", 30, "--val-every", 10,
              "--output", out, "--seed", 0, "--json")
    assert res.exit_code == 0, res.output + res.stderr
    info = json.loads(res.stdout)
    assert info["steps"] == 30 and info["sampler"] == "cfm" and info["val_loss"] > 0
    return out


@pytest.mark.parametrize("sampler", ["cfm", "cflow"])
def test_image_problem_end_to_end(tmp_path, phantom_png, sampler):
    out = tmp_path / "s.pt"
    extra = ["-S", "channels=4"] if sampler == "cfm" else ["-S", "blocks=2", "-S", "hidden=16", "-S", "cond_features=4"]
    res = run("train-sampler", "--sampler", sampler, "--operator", "superres", "--scale", 4, "--images", phantom_png,
              "--crop", 16, "--steps", 4, "--batch-size", 4, "--val-every", 2, "--output", out, "--seed", 0, "-q", *extra)
    assert res.exit_code == 0, res.output + res.stderr
    ckpt = torch.load(out, weights_only=True)
    assert ckpt["format"] == "invsolve-sampler" and ckpt["operator"]["image_shape"] == [16, 16]
    assert ckpt["provenance"]["seed"] == 0 and ckpt["training"]["source"]["crop"] == 16
    crop = tmp_path / "crop.npy"
    from skimage import io

    np.save(crop, io.imread(phantom_png)[24:40, 24:40].astype(np.float32) / 255)
    m = tmp_path / "m.h5"
    assert run("simulate", "--operator", "superres", "--scale", 4, "--input", crop, "--output", m).exit_code == 0
    post = tmp_path / "post.h5"
    res = run("sample-posterior", m, "--sampler-file", out, "-n", 8, "--output", post, "--json")
    assert res.exit_code == 0, res.output + res.stderr
    with h5py.File(post) as f:
        assert f["posterior_mean"].shape == (1, 16, 16) and f["posterior_std"].shape == (1, 16, 16)
    res = run("evaluate", post, "--reference", crop, "--json")
    assert res.exit_code == 0 and "psnr" in json.loads(res.stdout.splitlines()[0])


def test_vector_sample_posterior_and_shapes(tmp_path, vec_sampler):
    s = load_sampler(vec_sampler, "cpu")
    assert s.name == "cfm" and s.operator_spec["name"] == "linear" and s.noise_spec == {"name": "gaussian", "sigma": 0.2}
    xs = s.sample(torch.zeros(2, 3), 5, torch.Generator().manual_seed(0))
    assert xs.shape == (2, 5, 3)
    again = s.sample(torch.zeros(2, 3), 5, torch.Generator().manual_seed(0))
    assert torch.equal(xs, again)
    np.save(tmp_path / "x.npy", np.zeros((2, 3), np.float32))
    m = tmp_path / "m.h5"
    assert run("simulate", *VEC[:8], "--input", tmp_path / "x.npy", "--output", m).exit_code == 0
    res = run("sample-posterior", m, "--sampler-file", vec_sampler, "-n", 16, "--output", tmp_path / "p.h5", "--json")
    assert res.exit_code == 0, res.stderr
    with h5py.File(tmp_path / "p.h5") as f:
        assert f["posterior_mean"].shape == (2, 3)
    # options of the other samplers are refused, not ignored
    for extra, text in ((["--chains", 4], "--chains sets Langevin and MCMC chains; a trained sampler"),
                        (["-S", "steps=10"], "-S steps=... does not apply to the trained cfm sampler"),
                        (["-S", "ode_steps=0"], "ode_steps")):
        line = err_line(run("sample-posterior", m, "--sampler-file", vec_sampler, *extra, "--output", tmp_path / "q.h5"))
        assert text in line
    res = run("sample-posterior", m, "--sampler-file", vec_sampler, "-n", 16, "-S", "ode_steps=3", "-S", "solver=euler",
              "--output", tmp_path / "p3.h5")
    assert res.exit_code == 0, res.stderr
    with h5py.File(tmp_path / "p3.h5") as f:
        spec = json.loads(f.attrs["sampler"])
    assert spec["ode_steps"] == 3 and spec["solver"] == "euler"
    line = err_line(run("sample-posterior", m, "--sampler", "mcmc", "--importance", 7, "--output", tmp_path / "q.h5"))
    assert "--importance applies to trained samplers" in line
    assert not (tmp_path / "q.h5").exists()


@pytest.mark.parametrize("sampler", ["cfm", "cflow"])
def test_resume_equals_uninterrupted(tmp_path, sampler):
    kw = dict(operator_params={"diagonal": [1.0, 0.5, 0.2]}, noise_params={"sigma": 0.2}, prior="gmm", dim=3,
              prior_params={"components": 3}, sampler_params={"hidden": 16}, steps=8, batch_size=16, val_every=3,
              val_size=16, checkpoint_every=4, seed=3, device="cpu")
    train_sampler(sampler, "linear", output=tmp_path / "full.pt", **kw)

    def interrupt(step, total, loss, val):
        if step == 6:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_sampler(sampler, "linear", output=tmp_path / "part.pt", progress=interrupt, **kw)
    assert not (tmp_path / "part.pt").exists()  # the checkpoint goes beside the output, never into it
    assert torch.load(tmp_path / "part.pt.ckpt", weights_only=True)["training"]["step"] == 4
    res = run("train-sampler", "--sampler", sampler, "--operator", "linear", "-P", "diagonal=[1.0, 0.5, 0.2]",
              "-N", "sigma=0.2", "--prior", "gmm", "--prior-param", "components=3", "--dim", 3, "-S", "hidden=16",
              "--steps", 8, "--batch-size", 16, "--val-every", 3, "--checkpoint-every", 4, "--seed", 3,
              "--output", tmp_path / "part.pt", "--resume", "--device", "cpu", "-q")
    assert res.exit_code == 0, res.stderr
    a = torch.load(tmp_path / "full.pt", weights_only=True)
    b = torch.load(tmp_path / "part.pt", weights_only=True)
    assert b["training"]["step"] == 8 and b["training"]["complete"] is True
    assert not (tmp_path / "part.pt.ckpt").exists()
    for k, v in a["state_dict"].items():
        assert torch.equal(v, b["state_dict"][k]), k


def test_resume_refuses_a_different_problem(tmp_path, vec_sampler):
    import shutil

    out = tmp_path / "s.pt"
    shutil.copy(vec_sampler, out)
    res = run("train-sampler", "--sampler", "cfm", *VEC[:6], "-N", "sigma=0.3", *VEC[8:], "-S", "hidden=32",
              "--steps", 40, "--output", out, "--resume")
    assert "cannot resume" in err_line(res) and "noise" in err_line(res)
    for flags, text in ((["--lr", 0.05], "trained with lr 0.001, this run asks 0.05; give --lr 0.001"),
                        (["--seed", 1], "trained with seed 0"), (["--batch-size", 64], "trained with batch_size 256")):
        res = run("train-sampler", "--sampler", "cfm", *VEC, "-S", "hidden=32", "--steps", 40, "--val-every", 10,
                  *flags, "--output", out, "--resume")
        assert text in err_line(res)
    res = run("train-sampler", "--sampler", "cfm", *VEC, "-S", "hidden=32", "--steps", 40, "--output", out)
    assert "already exists" in err_line(res)


def test_corrupted_and_unsafe_files_are_refused(tmp_path, vec_sampler):
    np.save(tmp_path / "x.npy", np.zeros((1, 3), np.float32))
    m = tmp_path / "m.h5"
    assert run("simulate", *VEC[:8], "--input", tmp_path / "x.npy", "--output", m).exit_code == 0
    bad = tmp_path / "bad.pt"
    bad.write_bytes(vec_sampler.read_bytes()[:2000])
    line = err_line(run("sample-posterior", m, "--sampler-file", bad, "--output", tmp_path / "p.h5"))
    assert "not a readable sampler file" in line and not (tmp_path / "p.h5").exists()
    unsafe = tmp_path / "unsafe.pt"
    torch.save({"format": "invsolve-sampler", "payload": np.dtype("float32")}, unsafe)  # needs pickled globals
    assert "not a readable sampler file" in err_line(run("sample-posterior", m, "--sampler-file", unsafe,
                                                         "--output", tmp_path / "p.h5"))
    other = tmp_path / "other.pt"
    torch.save({"format": "something-else"}, other)
    assert "not an invsolve sampler file" in err_line(run("sample-posterior", m, "--sampler-file", other,
                                                          "--output", tmp_path / "p.h5"))


def test_mismatched_operator_or_noise_is_refused(tmp_path, vec_sampler):
    np.save(tmp_path / "x.npy", np.zeros((1, 3), np.float32))
    m1, m2 = tmp_path / "m1.h5", tmp_path / "m2.h5"
    assert run("simulate", "--operator", "linear", "-P", "diagonal=[1.0, 0.5, 0.3]", "-N", "sigma=0.2",
               "--input", tmp_path / "x.npy", "--output", m1).exit_code == 0
    line = err_line(run("sample-posterior", m1, "--sampler-file", vec_sampler, "--output", tmp_path / "p.h5"))
    assert "operator params" in line and "differs from the sampler's" in line
    assert run("simulate", *VEC[:6], "-N", "sigma=0.1", "--input", tmp_path / "x.npy", "--output", m2).exit_code == 0
    line = err_line(run("sample-posterior", m2, "--sampler-file", vec_sampler, "--output", tmp_path / "p.h5"))
    assert "noise" in line and "differs" in line


def test_train_sampler_usage_errors(tmp_path, phantom_png):
    out = tmp_path / "s.pt"
    assert "either --images" in err_line(run("train-sampler", "--operator", "superres", "--output", out))
    assert "acts on vectors" in err_line(run("train-sampler", "--operator", "linear", "-P", "diagonal=[1.0]",
                                             "--images", phantom_png, "--output", out))
    assert "unknown sampler" in err_line(run("train-sampler", "--sampler", "nope", *VEC, "--output", out))
    assert "instead of --dim" in err_line(run("train-sampler", "--operator", "superres", "--images", phantom_png,
                                              "--dim", 3, "--output", out))
    cfg = tmp_path / "c.toml"
    cfg.write_text('preview = "p.png"\n')
    assert "preview" in err_line(run("train-sampler", *VEC, "--config", cfg, "--output", out))
    assert "nothing to resume" in err_line(run("train-sampler", *VEC, "--output", out, "--resume"))
    assert "larger than an image" in err_line(run("train-sampler", "--operator", "superres", "--images", phantom_png,
                                                  "--crop", 128, "--output", out))


def test_bf16_sampling_stays_close_to_fp32(tmp_path, vec_sampler):
    m = tmp_path / "m.h5"
    x = np.random.default_rng(2).normal(size=(2, 3)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    assert run("simulate", *VEC[:8], "--input", tmp_path / "x.npy", "--output", m).exit_code == 0
    outs = {}
    for prec in ("fp32", "bf16"):
        res = run("sample-posterior", m, "--sampler-file", vec_sampler, "-n", 64, "--precision", prec,
                  "--output", tmp_path / f"{prec}.h5", "-q")
        assert res.exit_code == 0, res.stderr
        with h5py.File(tmp_path / f"{prec}.h5") as f:
            outs[prec] = (f["posterior_mean"][()], f["posterior_std"][()], f["posterior_mean"].dtype)
    assert outs["bf16"][2] == np.float32
    np.testing.assert_allclose(outs["bf16"][0], outs["fp32"][0], atol=0.05)
    np.testing.assert_allclose(outs["bf16"][1], outs["fp32"][1], rtol=0.1, atol=0.02)
    assert not np.array_equal(outs["bf16"][0], outs["fp32"][0])  # bf16 really ran
    res = run("sample-posterior", m, "--sampler", "mcmc", "--precision", "bf16", "--output", tmp_path / "x.h5")
    assert res.exit_code == 1 and "MCMC evaluates likelihoods in float32" in res.output
