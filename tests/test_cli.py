"""End-to-end CLI tests on the Shepp-Logan phantom and bad-input handling."""

import json
import subprocess
import sys

import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import err_line
from invsolve.cli import app

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def simulate(tmp_path, src, operator, *extra, name="m.h5"):
    out = tmp_path / name
    res = run("simulate", "--operator", operator, "--input", src, "--output", out, "--seed", 0, *extra)
    assert res.exit_code == 0, res.output + res.stderr
    return out


def test_readme_pipeline_ct_limited_tv_beats_fbp(tmp_path, phantom_png):
    m = simulate(tmp_path, phantom_png, "ct-limited")
    assert run("reconstruct", m, "--method", "fbp", "--output", tmp_path / "fbp.h5").exit_code == 0
    r = run("reconstruct", m, "--method", "tv", "--output", tmp_path / "tv.h5", "-q", "-M", "iterations=120")
    assert r.exit_code == 0, r.stderr
    res = run("evaluate", tmp_path / "fbp.h5", tmp_path / "tv.h5", "--reference", phantom_png, "--json")
    assert res.exit_code == 0, res.stderr
    *rows, mean = [json.loads(line) for line in res.stdout.splitlines()]
    assert [r["input"] for r in rows] == [str(tmp_path / "fbp.h5"), str(tmp_path / "tv.h5")]
    assert all({"input", "psnr", "ssim"} <= set(r) for r in rows)
    assert all(r["reference"] == {"file": str(phantom_png), "dataset": None} for r in rows + [mean])
    assert mean["mean_of"] == [r["input"] for r in rows] and mean["n"] == 2
    for key in ("psnr", "ssim"):  # the mean line is the mean of the per-input lines
        assert mean[key] == pytest.approx(np.mean([r[key] for r in rows]), rel=1e-12)
    fbp, tv = rows
    assert tv["psnr"] > fbp["psnr"] + 1.0
    assert 0 < fbp["ssim"] < tv["ssim"] <= 1


@pytest.mark.parametrize(
    "operator,methods,floor",
    [("ct-lowdose", ["fbp", "tv"], 20.0), ("superres", ["bicubic", "tv"], 15.0), ("inpaint", ["tv", "tikhonov"], 18.0),
     ("blur", ["tikhonov", "tv"], 18.0)],
)
def test_end_to_end_operators(tmp_path, phantom_png, operator, methods, floor):
    m = simulate(tmp_path, phantom_png, operator)
    outs = []
    for meth in methods:
        out = tmp_path / f"{meth}.h5"
        res = run("reconstruct", m, "-m", meth, "-o", out, "--json", *(["-M", "iterations=120"] if meth == "tv" else []))
        assert res.exit_code == 0, res.stderr
        summary = json.loads(res.stdout.splitlines()[-1])
        assert summary["method"] == meth and summary["psnr"] > floor
        outs.append(out)
    res = run("evaluate", *outs, "--json")  # ground truth stored in the files
    assert res.exit_code == 0 and len(res.stdout.splitlines()) == len(methods) + 1  # and the mean line
    *rows, mean = [json.loads(line) for line in res.stdout.splitlines()]
    assert [r["reference"] for r in rows] == [{"file": str(p), "dataset": "/ground_truth"} for p in outs]
    assert mean["reference"] == [r["reference"] for r in rows]  # one per input when they differ
    assert mean["psnr"] == pytest.approx(np.mean([r["psnr"] for r in rows]), rel=1e-12)


def test_simulate_output_is_complete_input_of_reconstruct(tmp_path, phantom_png):
    m = simulate(tmp_path, phantom_png, "ct", "-P", "angles=60", "-P", "geometry=fan", "--noise", "gaussian",
                 "-N", "sigma=0.5")
    with h5py.File(m) as f:
        op = json.loads(f.attrs["operator"])
        assert op["name"] == "ct" and op["params"]["angles"] == 60 and op["params"]["geometry"] == "fan"
        assert json.loads(f.attrs["noise"]) == {"name": "gaussian", "sigma": 0.5}
        assert f["measurement"].shape[1] == 60
        assert f.attrs["seed"] == 0 and f.attrs["invsolve_version"]
    out = tmp_path / "r.h5"
    assert run("reconstruct", m, "-o", out, "-q").exit_code == 0
    with h5py.File(out) as f:
        assert f["reconstruction"].shape == (1, 64, 64)
        assert json.loads(f.attrs["method"])["name"] == "fbp"
        assert json.loads(f.attrs["operator"]) == op
        assert "reconstruct" in json.loads(f.attrs["timings"])


def test_same_seed_same_measurement(tmp_path, phantom_png):
    a = simulate(tmp_path, phantom_png, "superres", name="a.h5")
    b = simulate(tmp_path, phantom_png, "superres", name="b.h5")
    c = simulate(tmp_path, phantom_png, "superres", "--seed", 1, name="c.h5")
    with h5py.File(a) as fa, h5py.File(b) as fb, h5py.File(c) as fc:
        assert np.array_equal(fa["measurement"][()], fb["measurement"][()])
        assert not np.array_equal(fa["measurement"][()], fc["measurement"][()])


def test_config_file_with_flags_overriding(tmp_path, phantom_png):
    cfg = tmp_path / "sim.toml"
    cfg.write_text(f'input = "{phantom_png}"\noperator = "ct"\nseed = 3\n[operator_params]\nangles = 30\n'
                   '[noise_params]\nsigma = 0.2\n')
    out = tmp_path / "m.h5"
    res = run("simulate", "--config", cfg, "-o", out, "-P", "angles=40")
    assert res.exit_code == 0, res.stderr
    with h5py.File(out) as f:
        assert f["measurement"].shape[1] == 40 and f.attrs["seed"] == 3
        assert json.loads(f.attrs["noise"])["sigma"] == 0.2
    ycfg = tmp_path / "rec.yaml"
    ycfg.write_text("method: tikhonov\nmethod_params:\n  alpha: 0.05\n")
    res = run("reconstruct", out, "--config", ycfg, "-o", tmp_path / "r.h5", "--json")
    assert res.exit_code == 0 and json.loads(res.stdout.splitlines()[-1])["method"] == "tikhonov"


def test_preview_png_is_the_figure_of_show(tmp_path, phantom_png):
    from skimage import io

    m = simulate(tmp_path, phantom_png, "superres", "--preview", tmp_path / "sim.png")
    res = run("reconstruct", m, "-m", "bicubic", "-o", tmp_path / "r.h5", "--preview", tmp_path / "r.png")
    assert res.exit_code == 0
    for result, preview in ((m, "sim.png"), (tmp_path / "r.h5", "r.png")):
        assert run("show", result, "-o", tmp_path / f"show_{preview}").exit_code == 0
        img = io.imread(tmp_path / preview)
        np.testing.assert_array_equal(img, io.imread(tmp_path / f"show_{preview}"))
    assert io.imread(tmp_path / "r.png").shape[1] == 4 * 310  # measurement, reconstruction, truth, error
    np.save(tmp_path / "x.npy", np.array([[0.5, -0.2, 0.8]], np.float32))  # parameter vectors get a preview too
    res = run("simulate", "--operator", "linear", "-P", "diagonal=[1.0, 2.0, 3.0]", "-i", tmp_path / "x.npy", "-o",
              tmp_path / "v.h5", "--preview", tmp_path / "v.png")
    assert res.exit_code == 0 and io.imread(tmp_path / "v.png").shape[1] > 600


def test_list_and_info(tmp_path):
    res = run("list", "--json")
    data = json.loads(res.stdout)
    ops = {o["name"]: o for o in data["operators"]}
    assert ops["ct-lowdose"]["noise"]["name"] == "poisson"
    angles = {p["name"]: p["default"] for p in ops["ct-limited"]["params"]}["angles"]
    assert angles == 800
    assert {m["name"] for m in data["methods"]} == {"fbp", "tv", "bicubic", "tikhonov", "map"}
    assert {n["name"] for n in data["noise"]} == {"gaussian", "poisson", "mixed"}
    res = run("info", "--json")
    info = json.loads(res.stdout)
    assert info["astra"].startswith("2.5") and info["cuda_available"] in (True, False)
    assert run("list", "operators").exit_code == 0


# -- bad input -----------------------------------------------------------------


def test_missing_file(tmp_path):
    res = run("simulate", "--operator", "ct", "-i", tmp_path / "nope.png", "-o", tmp_path / "m.h5")
    assert res.exit_code == 1
    assert "input file not found" in err_line(res) and "nope.png" in res.stderr
    assert not (tmp_path / "m.h5").exists()


def test_wrong_hdf5_dataset(tmp_path):
    p = tmp_path / "stack.h5"
    with h5py.File(p, "w") as f:
        f["images"] = np.zeros((2, 16, 16), np.float32)
    res = run("simulate", "--operator", "inpaint", "-i", f"{p}:/imgs", "-o", tmp_path / "m.h5")
    assert res.exit_code == 1
    assert "no dataset '/imgs'" in err_line(res) and "/images" in res.stderr
    res = run("simulate", "--operator", "inpaint", "-i", f"{p}:/images", "-o", tmp_path / "m.h5", "--json")
    assert res.exit_code == 0 and json.loads(res.stdout)["images"] == 2


@pytest.mark.parametrize("shape", [(16,), (1, 2, 16, 16)])
def test_wrong_rank(tmp_path, shape):
    p = tmp_path / "a.npy"
    np.save(p, np.zeros(shape, np.float32))
    res = run("simulate", "--operator", "blur", "-i", p, "-o", tmp_path / "m.h5")
    assert res.exit_code == 1
    assert f"{len(shape)}-D" in err_line(res) and "expected an image (H, W) or a stack (N, H, W)" in res.stderr


def test_nan_input(tmp_path):
    p = tmp_path / "a.npy"
    a = np.zeros((16, 16), np.float32)
    a[3, 4] = np.nan
    np.save(p, a)
    res = run("simulate", "--operator", "blur", "-i", p, "-o", tmp_path / "m.h5")
    assert res.exit_code == 1 and "NaN" in err_line(res)


def test_unknown_operator_and_method(tmp_path, phantom_png):
    res = run("simulate", "--operator", "ct-limted", "-i", phantom_png, "-o", tmp_path / "m.h5")
    assert res.exit_code == 1
    line = err_line(res)
    assert "unknown operator 'ct-limted'" in line and "valid: " in line and "ct-limited" in line
    m = simulate(tmp_path, phantom_png, "superres")
    res = run("reconstruct", m, "-m", "tvv", "-o", tmp_path / "r.h5")
    assert res.exit_code == 1 and "valid: bicubic, fbp, map, tikhonov, tv" in err_line(res)
    res = run("reconstruct", m, "-m", "fbp", "-o", tmp_path / "r.h5")
    assert res.exit_code == 1 and "needs a ct operator" in err_line(res) and "bicubic" in res.stderr


def test_config_with_unknown_key(tmp_path, phantom_png):
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"input": str(phantom_png), "operater": "ct"}))
    res = run("simulate", "-c", cfg, "-o", tmp_path / "m.h5")
    assert res.exit_code == 1 and "unknown key 'operater'" in err_line(res)
    res = run("simulate", "-i", phantom_png, "--operator", "ct", "-P", "angels=3", "-o", tmp_path / "m.h5")
    assert res.exit_code == 1 and "unknown key 'angels'" in err_line(res) and "angles" in res.stderr


def test_device_cuda_without_cuda(tmp_path, phantom_png):
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA is present")
    res = run("simulate", "--operator", "ct", "-i", phantom_png, "-o", tmp_path / "m.h5", "--device", "cuda")
    assert res.exit_code == 1 and "CUDA is not available" in err_line(res)


def test_existing_output_needs_overwrite(tmp_path, phantom_png):
    m = simulate(tmp_path, phantom_png, "inpaint")
    before = m.read_bytes()
    res = run("simulate", "--operator", "inpaint", "-i", phantom_png, "-o", m, "--seed", 5)
    assert res.exit_code == 1 and "--overwrite" in err_line(res)
    assert m.read_bytes() == before
    res = run("simulate", "--operator", "inpaint", "-i", phantom_png, "-o", m, "--seed", 5, "--overwrite")
    assert res.exit_code == 0 and m.read_bytes() != before


def test_usage_error_exit_2():
    res = run("simulate", "--no-such-flag")
    assert res.exit_code == 2
    # the installed command: one line naming the problem and where to look, results on a pipe unwrapped
    res = subprocess.run([sys.executable, "-m", "invsolve", "simulate", "--seed", "abc"], capture_output=True,
                         text=True)
    assert res.returncode == 2 and res.stdout == ""
    assert res.stderr.splitlines() == ["Error: Invalid value for '--seed': Input should be a valid integer, unable to "
                                       "parse string as an integer (see `invsolve simulate --help`)"]


def test_output_checks_before_any_work(tmp_path, phantom_png):
    m = simulate(tmp_path, phantom_png, "blur")
    m2 = simulate(tmp_path, phantom_png, "blur", name="m2.h5")
    cases = [(["reconstruct", m, "-o", m, "--overwrite"], "is also an input"),
             (["reconstruct", m, "-o", tmp_path / "r.txt"], "must end in .h5 or .hdf5"),
             (["reconstruct", m, "-o", f"{tmp_path}/no/nodir/"], "does not exist"),
             (["reconstruct", m, "-m", "tv", "-o", tmp_path / "r.h5", "--preview", tmp_path / "p.jpg"], ".png"),
             (["reconstruct", m, "-o", tmp_path / "r.h5", "--preview", tmp_path / "no" / "p.png"], "does not exist"),
             (["reconstruct", m, m2, "-o", tmp_path / "multi.h5"], "give a folder name"),
             (["simulate", "--operator", "superres", "--scale", 4, "-P", "factor=2", "-i", phantom_png, "-o",
               tmp_path / "s.h5"], "disagree"),
             (["simulate", "--operator", "blur", "-i", phantom_png, "-o", tmp_path / "s.h5", "--preview",
               tmp_path / "no" / "p.png"], "preview folder")]
    for args, text in cases:
        assert text in err_line(run(*args)), args
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.h5", "m2.h5", "phantom.png"]  # nothing written


def test_output_folder_by_trailing_slash_is_created(tmp_path, phantom_png):
    m = simulate(tmp_path, phantom_png, "blur")
    res = run("reconstruct", m, "-m", "tikhonov", "-o", f"{tmp_path}/rec/", "-q")
    assert res.exit_code == 0, res.stderr
    assert (tmp_path / "rec" / "m.h5").is_file()


def test_non_finite_results_are_not_written(tmp_path, phantom_png):
    line = err_line(run("simulate", "--operator", "blur", "-N", "sigma=inf", "-i", phantom_png, "-o", tmp_path / "a.h5"))
    assert "sigma: Input should be a finite number" in line  # no setting is inf or NaN
    line = err_line(run("simulate", "--operator", "blur", "-N", "sigma=1e39", "-i", phantom_png, "-o", tmp_path / "a.h5"))
    assert "non-finite values" in line and "-N" in line  # beyond float32
    m = simulate(tmp_path, phantom_png, "blur")
    line = err_line(run("reconstruct", m, "-m", "tv", "-M", "lr=1e20", "-M", "iterations=3", "-o", tmp_path / "r.h5"))
    assert "tv reconstruction has non-finite values" in line and "-M lr" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.h5", "phantom.png"]


def test_unexpected_errors_are_one_line(tmp_path, phantom_png, monkeypatch):
    from invsolve import api

    def boom(*a, **k):
        raise RuntimeError("something deep\nwith a second line")

    monkeypatch.setattr(api, "simulate", boom)
    line = err_line(run("simulate", "--operator", "blur", "-i", phantom_png, "-o", tmp_path / "a.h5"))
    assert line == ("Error: unexpected RuntimeError: something deep; rerun with INVSOLVE_DEBUG=1 for the traceback "
                    "and report it with the command")


def test_interrupted_write_leaves_no_file(tmp_path, monkeypatch):
    from invsolve.io import hdf5

    out = tmp_path / "r.h5"

    class Boom:
        def __array__(self, *a, **k):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        hdf5.write_result(out, {"a": np.zeros(3), "b": Boom()}, {"kind": "x"})
    assert list(tmp_path.iterdir()) == []


def _wait_for_handler(pid, sig, timeout=120.0):
    """Wait until process ``pid`` catches ``sig`` (Linux: the SigCgt mask in /proc/PID/status)."""
    import time

    t0 = time.time()
    while time.time() - t0 < timeout:
        status = open(f"/proc/{pid}/status").read()
        caught = int(next(ln.split()[1] for ln in status.splitlines() if ln.startswith("SigCgt")), 16)
        if caught >> (int(sig) - 1) & 1:
            return
        time.sleep(0.1)
    raise AssertionError(f"process {pid} never installed a handler for {sig!r}")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_second_signal_aborts_batch_and_leaves_no_output(tmp_path, phantom_png, sig):
    import os
    import signal
    import time

    sig = getattr(signal, sig)

    m = simulate(tmp_path, phantom_png, "ct-limited", "-i", phantom_png)  # two slices: two batches of one
    out = tmp_path / "tv.h5"
    proc = subprocess.Popen([sys.executable, "-m", "invsolve", "reconstruct", str(m), "-m", "tv", "-M",
                             "iterations=100000", "--batch-size", "1", "-o", str(out), "-q"], stderr=subprocess.PIPE,
                            text=True)
    try:
        _wait_for_handler(proc.pid, signal.SIGTERM)
        t = time.monotonic()  # the batch loop has started once it holds the output's lock
        while not (tmp_path / ".tv.h5.lock").exists() and time.monotonic() - t < 60:
            time.sleep(0.05)
        time.sleep(1)
        proc.send_signal(sig)  # the first asks to stop after the batch, the second aborts it
        time.sleep(1)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 128 + int(sig), err
    assert "finishing the current batch" in err and f"aborted during a batch on {sig.name}" in err
    assert "nothing was written" in err
    assert sorted(os.listdir(tmp_path)) == ["m.h5", "phantom.png"]


def test_evaluate_small_and_exact_images(tmp_path):
    g = np.random.default_rng(0)
    a, b = g.random((5, 5)).astype(np.float32), g.random((5, 5)).astype(np.float32)
    np.save(tmp_path / "a.npy", a)
    np.save(tmp_path / "b.npy", b)
    res = run("evaluate", tmp_path / "a.npy", "--reference", tmp_path / "b.npy", "--json")
    assert res.exit_code == 0, res.stderr  # SSIM with the 5×5 window that fits
    from skimage.metrics import structural_similarity
    want = structural_similarity(b.astype(np.float64), a.astype(np.float64), data_range=1.0, win_size=5)
    assert json.loads(res.stdout.splitlines()[0])["ssim"] == pytest.approx(want, abs=1e-6)
    res = run("evaluate", tmp_path / "a.npy", "--reference", tmp_path / "a.npy", "--json")
    assert res.exit_code == 0 and res.stderr == ""
    ref = {"file": str(tmp_path / "a.npy"), "dataset": None}
    row, mean = map(json.loads, res.stdout.splitlines())
    assert row == {"input": str(tmp_path / "a.npy"), "psnr": None, "ssim": 1.0, "n": 1, "reference": ref}
    assert mean == {"mean_of": [str(tmp_path / "a.npy")], "psnr": None, "ssim": 1.0, "n": 1, "reference": ref}
    np.save(tmp_path / "c.npy", np.zeros((2, 2), np.float32))
    assert "at least 3x3" in err_line(run("evaluate", tmp_path / "c.npy", "--reference", tmp_path / "c.npy"))


def test_more_bad_inputs_name_the_fix(tmp_path, phantom_png):
    m = simulate(tmp_path, phantom_png, "blur")
    assert "N, the number of shards, must be at least 1" in err_line(run("reconstruct", m, "-o", tmp_path / "r.h5",
                                                                         "--shard", "1/0"))
    assert "unknown operator 'nope'; valid: blur" in err_line(run("estimate-noise", "--operator", "nope", "-m", m,
                                                                  "-o", tmp_path / "e.h5"))
    assert "mcmc" in run("list", "samplers").stdout
    np.save(tmp_path / "big.npy", np.full((16, 16), 200.0, np.float32))
    with pytest.warns(UserWarning, match=r"values in \[200, 200\]; .* assume images in \[0, 1\]"):
        assert run("simulate", "--operator", "blur", "-i", tmp_path / "big.npy", "-o", tmp_path / "b.h5").exit_code == 0


def test_config_file_and_flags_third_review(tmp_path, phantom_png):
    m = simulate(tmp_path, phantom_png, "blur")
    cfg = tmp_path / "r.yaml"
    cfg.write_text("method: tv\nmethod_params: {lam: 10, iterations: 3}\njson: true\n")
    res = run("reconstruct", m, "--config", cfg, "-m", "tikhonov", "--no-json", "-q", "-o", tmp_path / "r.h5")
    assert res.exit_code == 0 and res.stdout == "", res.stderr  # --no-json beats the file; tv's lam is dropped
    with h5py.File(tmp_path / "r.h5") as f:
        assert json.loads(f.attrs["method"])["name"] == "tikhonov"
    ev = tmp_path / "e.toml"
    ev.write_text(f'inputs = "{tmp_path / "r.h5"}"\njson = true\n')
    assert json.loads(run("evaluate", "--config", ev).stdout.splitlines()[0])["n"] == 1  # one path, not a list
    for seed, text in (("-1", "greater than or equal to 0"), (str(2**70), "less than or equal to")):
        assert text in err_line(run("simulate", "--operator", "blur", "-i", phantom_png, "-o", tmp_path / "s.h5",
                                    "--seed", seed))
    assert "--num-samples sets the draws of a trained sampler" in err_line(
        run("sample-posterior", m, "--sampler", "mcmc", "-n", 10, "-o", tmp_path / "p.h5"))
    assert "--prior-param sets the training of a --zero-shot prior" in err_line(
        run("reconstruct", m, "--prior-file", tmp_path / "x.pt", "--prior-param", "steps=5", "-o", tmp_path / "z.h5"))
    assert "--scale applies to the superres operator, not 'blur'" in err_line(
        run("train-sampler", "--operator", "blur", "--scale", 4, "--images", phantom_png, "-o", tmp_path / "s.pt"))


def test_api_seeds_are_checked():
    from invsolve import api
    from invsolve.errors import ConfigError

    for seed in (-1, 2**70, 1.5, True):
        with pytest.raises(ConfigError, match="seed must be an integer from 0 to 2\\*\\*62"):
            api.simulate(np.zeros((16, 16)), "blur", seed=seed)


def test_simulate_without_operator_lists_them(tmp_path, phantom_png):
    line = err_line(run("simulate", "-i", phantom_png, "-o", tmp_path / "m.h5"))
    assert "missing 'operator' (give --operator" in line and "valid: blur, ct, ct-limited" in line
    assert not (tmp_path / "m.h5").exists()
    assert "The operator has no default: give --operator" in run("simulate", "--help").stdout
