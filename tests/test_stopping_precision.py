"""The stopping rule of iterative methods, the presets that use it, and precision=auto."""

import json

import h5py
import numpy as np
import pytest
import torch

from invsolve.methods.stopping import STOP_CAP, STOP_CONVERGED, WindowStop
from invsolve.noise import build_noise
from invsolve.operators import build_operator


def test_window_rule_stops_once_the_window_means_settle():
    """x_k = 1 + 0.5^k: window means of 4 change by a factor 1/16 per window; the rule stops at the first
    window whose change (relative to the mean's norm) is below tol, and never with tol 0."""
    rule = WindowStop(tol=1e-3, window=4)
    stopped_at = None
    for k in range(1, 101):
        if rule.update(torch.full((2, 3), 1 + 0.5**k)):
            stopped_at = k
            break
    # change after window j (iterations 4j-3..4j) against the one before: ≈ mean(0.5^k) differences
    means = [np.mean([1 + 0.5**k for k in range(4 * j - 3, 4 * j + 1)]) for j in range(1, 26)]
    first = next(j for j in range(1, 25) if abs(means[j] - means[j - 1]) / means[j] < 1e-3)
    assert stopped_at == 4 * (first + 1)
    assert rule.reason == STOP_CONVERGED and rule.record(2)["iterations_run"] == [stopped_at] * 2
    assert rule.changes[-1] < 1e-3 <= rule.changes[-2]
    never = WindowStop(tol=0, window=4)
    assert not any(never.update(torch.ones(1, 2)) for _ in range(50))
    assert never.record()["stopped"] == [STOP_CAP] and np.isnan(never.record()["last_change"][0])


def test_window_rule_waits_for_every_item():
    """Item 0 is constant from the start, item 1 descends steadily (a linear descent has drift
    W·sqrt(6 / (W + 1)) > 2 however small its steps, and a change of 1e-2 per window here): the batch runs on,
    and the recorded change is the worst item's."""
    rule = WindowStop(tol=1e-3, window=4)
    for k in range(1, 41):
        x = torch.stack([torch.ones(3), torch.full((3,), 1.0 + 0.0025 * k)])
        assert not rule.update(x)
    assert rule.reason == STOP_CAP and rule.drifts[-1] == pytest.approx(4 * (6 / 5) ** 0.5, rel=1e-2)
    assert rule.changes[-1] == pytest.approx(0.01 / 1.0925, rel=0.05)


def _superres_problem(seed=0, size=32):
    from skimage import data

    img = data.camera()[200:200 + size, 200:200 + size].astype(np.float32) / 255
    op = build_operator("superres", {}, img.shape)
    noise = build_noise({"name": "gaussian", "sigma": 0.01})
    y = noise.sample(op(torch.from_numpy(img)[None]), generator=torch.Generator().manual_seed(seed))
    return img, op, noise, y


def test_tv_stops_early_within_a_hundredth_of_a_db_of_the_full_run():
    from invsolve.methods import build_method
    from invsolve.metrics import psnr

    img, op, noise, y = _superres_problem()
    info = {}
    early = build_method({"name": "tv"}).run(y, op, noise, info=info)[0].numpy()
    full = build_method({"name": "tv", "iterations": 1000, "tol": 0}).run(y, op, noise)[0].numpy()
    assert info["stopped"] == [STOP_CONVERGED] and 20 <= info["iterations_run"][0] < 200
    assert abs(psnr(img, early) - psnr(img, full)) < 0.05


def test_map_presets_default_and_paper():
    """The default preset adds the stopping rule (and TV's start with a 100-iteration cap for limited-angle CT);
    preset=paper runs the papers' settings: every iteration, their start, 3000 iterations for ct-limited."""
    from invsolve.methods.patch_map import PRESETS, STOPPING, PatchMAP, resolve_settings

    ct = build_operator("ct-limited", {}, (64, 64))
    sr = build_operator("superres", {}, (64, 64))
    d = resolve_settings(ct, "patchnr", PatchMAP.Params())
    assert (d["iterations"], d["init"], d["tol"]) == (100, "tv", STOPPING["tol"])
    p = resolve_settings(ct, "patchnr", PatchMAP.Params(preset="paper"))
    assert (p["iterations"], p["init"], p["tol"]) == (PRESETS[("ct-limited", "patchnr")]["iterations"],
                                                      "classical", 0.0)
    s = resolve_settings(sr, "patchnr", PatchMAP.Params())
    assert s["init"] == "classical" and s["iterations"] == 300 and s["tol"] > 0
    own = resolve_settings(ct, "patchnr", PatchMAP.Params(iterations=50, init="adjoint", tol=0.01))
    assert (own["iterations"], own["init"], own["tol"]) == (50, "adjoint", 0.01)  # explicit values win


def test_precision_auto_follows_the_hardware(monkeypatch):
    import invsolve.precision as prec

    prec.fast_bf16.cache_clear()
    monkeypatch.setattr(prec, "_cpu_flags", lambda path="/proc/cpuinfo": {"avx512f", "avx512_bf16"})
    assert prec.resolve_precision("auto", torch.device("cpu")) == ("bf16", "auto: AVX-512 BF16")
    assert prec.resolve_precision("auto", "cpu", applies=False)[0] == "fp32"
    assert prec.resolve_precision("float32", "cpu") == ("fp32", "given")
    prec.fast_bf16.cache_clear()
    monkeypatch.setattr(prec, "_cpu_flags", lambda path="/proc/cpuinfo": {"avx2", "amx_bf16"})
    assert prec.resolve_precision("auto", "cpu") == ("bf16", "auto: AMX")
    prec.fast_bf16.cache_clear()
    monkeypatch.setattr(prec, "_cpu_flags", lambda path="/proc/cpuinfo": {"avx2"})
    assert prec.resolve_precision("auto", "cpu") == ("fp32", "auto: no fast bf16 on this cpu")
    prec.fast_bf16.cache_clear()
    from invsolve.methods.patch_map import MapParams

    assert MapParams(precision="float32").precision == "fp32" and MapParams().precision == "auto"
    with pytest.raises(Exception, match="auto"):
        MapParams(precision="fp16")


def test_cli_records_iterations_stopping_and_precision(tmp_path, monkeypatch):
    """reconstruct stores iterations_run and converged per slice, the used precision and its reason, and says
    on stdout how many iterations ran."""
    from typer.testing import CliRunner

    import invsolve.precision as prec
    from invsolve.cli import app

    prec.fast_bf16.cache_clear()
    monkeypatch.setattr(prec, "_cpu_flags", lambda path="/proc/cpuinfo": set())
    img, op, noise, y = _superres_problem()
    from skimage.io import imsave

    imsave(tmp_path / "x.png", (img * 255).astype(np.uint8), check_contrast=False)
    run = CliRunner().invoke
    m = tmp_path / "m.h5"
    assert run(app, ["simulate", "--operator", "superres", "--input", str(tmp_path / "x.png"), "-o", str(m)]).exit_code == 0
    res = run(app, ["reconstruct", str(m), "-m", "tv", "-o", str(tmp_path / "tv.h5")])
    assert res.exit_code == 0, res.output
    assert "tv ran" in res.stdout and "1 of 1 item(s) stopped by the stopping rule" in res.stdout
    with h5py.File(tmp_path / "tv.h5") as f:
        assert 0 < f["iterations_run"][0] < 200 and f["converged"][0] == 1
        assert json.loads(f.attrs["method"])["used"]["tol"] == pytest.approx(2e-3)
    res = run(app, ["reconstruct", str(m), "-m", "tv", "-M", "tol=0", "-M", "iterations=30",
                    "-o", str(tmp_path / "tv0.h5"), "--json"])
    assert res.exit_code == 0, res.output
    line = json.loads(res.stdout.strip().splitlines()[-1])
    assert line["iterations_run"] == [30, 30] and line["converged"] == 0 and "tol=0" in line["stopping"]
    prec.fast_bf16.cache_clear()


def test_plateau_rule_and_cosine_schedule():
    from invsolve.priors.training import on_plateau, scheduled_lr

    falling = [[k, -float(k)] for k in range(1, 8)]
    assert not on_plateau(falling, 0.05, 3)
    flat = falling[:4] + [[5, -4.02], [6, -4.01], [7, -3.9]]
    assert on_plateau(flat, 0.05, 3) and not on_plateau(flat, 0.01, 3)
    assert not on_plateau(flat[:3], 0.05, 3)  # too few records to tell
    assert scheduled_lr(1e-3, 1, 100, "cosine") == pytest.approx(1e-3)
    assert scheduled_lr(1e-3, 100, 100, "cosine") == pytest.approx(1e-5)
    assert scheduled_lr(1e-3, 50, 100, "constant") == 1e-3
    lrs = [scheduled_lr(1e-3, k, 100, "cosine") for k in range(1, 101)]
    assert all(a > b for a, b in zip(lrs, lrs[1:]))


def test_train_prior_until_plateau_makes_steps_a_cap(tmp_path):
    """--until-plateau ends patchNR training at the first validation plateau: with a required gain larger than
    any NLL change, after plateau_patience + 1 validations; the prior file says why it stopped."""
    from skimage import data
    from skimage.io import imsave
    from typer.testing import CliRunner

    from invsolve.api_priors import load_prior
    from invsolve.cli import app

    img = data.camera()[:64, :64]
    imsave(tmp_path / "a.png", img, check_contrast=False)
    imsave(tmp_path / "b.png", data.camera()[64:128, :64], check_contrast=False)
    args = ["train-prior", "--images", str(tmp_path / "a.png"), "--val", str(tmp_path / "b.png"), "--steps", "5000",
            "-P", "blocks=2", "-P", "width=16", "-P", "val_every=10", "-P", "plateau_delta=1000", "--until-plateau",
            "-o", str(tmp_path / "p.pt"), "--json"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["steps"] == 40 and out["stopped"] == "plateau"
    prior = load_prior(str(tmp_path / "p.pt"), torch.device("cpu"))
    assert prior.provenance["steps"] == 40
    res = CliRunner().invoke(app, [a for a in args if a not in ("--val", str(tmp_path / "b.png"))][:-3]
                             + ["-o", str(tmp_path / "q.pt")])
    assert res.exit_code != 0 and "until_plateau stops on the validation NLL: give validation images (--val)" \
        in res.output
