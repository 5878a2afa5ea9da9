"""Data-parallel training under torchrun: 2 CPU processes with gloo equal one process
with the same global batch; rank 0 writes; resume continues a checkpoint."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from invsolve import api_priors, api_samplers
from invsolve.distributed import Dist
from invsolve.errors import ConfigError

TINY = ["-P", "width=16", "-P", "blocks=2"]


def torchrun(*args, timeout=240):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           "-m", "invsolve", *map(str, args)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    assert res.returncode == 0, res.stderr[-3000:]
    lines = [ln for ln in res.stdout.splitlines() if ln.startswith("{")]
    assert len(lines) == 1, res.stdout  # rank 0 alone reports
    return json.loads(lines[0])


def test_shares_split_a_batch_exactly():
    n = 7
    shares = [Dist(r, 3).share(n) for r in range(3)]
    assert [(s.start, s.stop) for s in shares] == [(0, 3), (3, 5), (5, 7)]
    # the scaled share means average to the global mean
    v = torch.arange(n, dtype=torch.float64)
    avg = sum(v[s].mean() * Dist(r, 3).scale(n) for r, s in enumerate(shares)) / 3
    assert float(avg) == pytest.approx(float(v.mean()))
    assert Dist().share(5) == slice(0, 5) and Dist().scale(5) == 1.0
    with pytest.raises(ConfigError, match="batch-size of at least 3"):
        Dist(0, 3).share(2)


def test_one_process_fitters_refuse_torchrun():
    from invsolve.priors.training import train_prior

    with pytest.raises(ConfigError, match="without torchrun"):
        train_prior("epll", torch.rand(1, 16, 16), dist=Dist(0, 2))


def test_patchnr_on_two_processes_resumes_and_matches_one(tmp_path, phantom_png):
    ims, _ = api_priors.read_training_images(str(phantom_png))
    # a constant lr: a finished 8-step run is then the start of the 16-step one (a cosine decay depends on
    # the total steps, so it resumes only the run it was interrupted in; tests/test_priors.py covers that)
    params = {"width": 16, "blocks": 2, "batch_size": 16, "lr": 1e-3, "schedule": "constant"}
    ref, _ = api_priors.train_prior("patchnr", ims, params=params, steps=16, seed=3, device="cpu")
    ckpt = tmp_path / "p.pt.ckpt"  # one process writes the checkpoint at step 8, two processes finish
    api_priors.train_prior("patchnr", ims, params=params, steps=8, seed=3, device="cpu", checkpoint_every=8,
                           checkpoint_path=ckpt)
    out = torchrun("train-prior", "--images", phantom_png, "--steps", 16, "--batch-size", 16, "--lr", 1e-3, *TINY,
                   "-P", "schedule=constant", "--seed", 3, "--device", "cpu", "--checkpoint-every", 8, "--resume",
                   "-o", tmp_path / "p.pt",
                   "--json")
    assert out["resumed_from"] == 8 and out["steps"] == 16
    got = api_priors.load_prior(tmp_path / "p.pt")
    assert got.provenance["processes"] == 2
    for (k, a), (_, b) in zip(ref.state_dict().items(), got.state_dict().items()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5, msg=k)
    x = torch.rand(64, 36)
    torch.testing.assert_close(ref.nll(x), got.nll(x), rtol=1e-4, atol=1e-4)


def test_cfm_sampler_on_two_processes_matches_one(tmp_path):
    common = dict(operator_params={"diagonal": [1.0, 0.5, 0.2]}, noise="gaussian", noise_params={"sigma": 0.2},
                  prior="gaussian", dim=3, sampler_params={"hidden": 32}, steps=20, batch_size=15, val_every=10,
                  seed=0, device="cpu")
    ref = api_samplers.train_sampler("cfm", "linear", output=tmp_path / "one.pt", **common)
    out = torchrun("train-sampler", "--sampler", "cfm", "--operator", "linear", "-P", "diagonal=[1.0, 0.5, 0.2]",
                   "--noise", "gaussian", "-N", "sigma=0.2", "--prior", "gaussian", "--dim", 3, "-S", "hidden=32",
                   "--steps", 20, "--batch-size", 15, "--val-every", 10, "--seed", 0, "--device", "cpu",
                   "-o", tmp_path / "two.pt", "--json")
    assert out["processes"] == 2 and out["loss"] == pytest.approx(ref["loss"], rel=1e-4)
    a = torch.load(tmp_path / "one.pt", weights_only=True)["state_dict"]
    b = torch.load(tmp_path / "two.pt", weights_only=True)["state_dict"]
    for k in a:
        np.testing.assert_allclose(a[k].numpy(), b[k].numpy(), rtol=1e-4, atol=1e-5, err_msg=k)
