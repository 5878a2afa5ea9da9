"""Tiny invsolve files of every kind, made with the CLI, for the figure and report tests (seconds each)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from conftest import phantom
from invsolve.cli import app

runner = CliRunner()

GIXRF = ["-P", 'params=["layers.0.thickness","layers.0.density","scale"]', "-P", "bounds=[[5,30],[7,9.5],[5,15]]",
         "-P", "num_angles=12"]
LINEAR = ["-P", "diagonal=[1.0, 0.5, 0.2]", "-N", "sigma=0.2"]
MCMC = ["--sampler", "mcmc", "-S", "chains=4", "-S", "steps=120", "-S", "burn_in=40"]


def run(*args):
    res = runner.invoke(app, [str(a) for a in args])
    assert res.exit_code == 0, (args, res.output)
    return res


def image_files(folder: Path) -> dict[str, Path]:
    """CT measurement and reconstructions (one without a stored truth, from a raw sinogram), a superres
    posterior with and without samples, a prior file and a sampler file."""
    from skimage import io

    f: dict[str, Path] = {}
    png = folder / "phantom.png"
    io.imsave(png, (np.clip(phantom(32), 0, 1) * 255).round().astype(np.uint8), check_contrast=False)
    f["png"] = png
    f["measurement"] = folder / "m.h5"
    run("simulate", "--operator", "ct", "-P", "angles=20", "-i", png, "-o", f["measurement"], "-q")
    f["reconstruction"] = folder / "r.h5"
    run("reconstruct", f["measurement"], "-m", "fbp", "-o", f["reconstruction"], "-q")
    import h5py

    with h5py.File(f["measurement"]) as h:
        np.save(folder / "sino.npy", h["measurement"][0])
    f["no_truth"] = folder / "r_raw.h5"
    run("reconstruct", folder / "sino.npy", "--operator", "ct", "-P", "angles=20", "--image-size", 32, "-m", "fbp",
        "-o", f["no_truth"], "-q")
    f["sampler"] = folder / "s.pt"
    run("train-sampler", "--sampler", "cfm", "--operator", "superres", "--scale", 2, "--images", png, "--crop", 32,
        "--steps", 6, "-S", "hidden=8", "-S", "depth=1", "-S", "channels=4", "--output", f["sampler"], "-q")
    f["sr"] = folder / "msr.h5"
    run("simulate", "--operator", "superres", "--scale", 2, "-i", png, "-o", f["sr"], "-q")
    f["posterior"] = folder / "post.h5"
    run("sample-posterior", f["sr"], "--sampler-file", f["sampler"], "-n", 4, "-o", f["posterior"], "-q")
    f["posterior_samples"] = folder / "posts.h5"
    run("sample-posterior", f["sr"], "--sampler-file", f["sampler"], "-n", 4, "--save-samples", "-o",
        f["posterior_samples"], "-q")
    f["prior"] = folder / "prior.pt"
    run("train-prior", "--prior", "patchnr", "-i", png, "--val", png, "--steps", 30, "-P", "width=16", "-P", "blocks=1",
        "-P", "val_every=10", "-P", "log_every=5", "-o", f["prior"], "-q")
    return f


def vector_files(folder: Path) -> dict[str, Path]:
    """Linear and GIXRF measurements with MCMC posteriors (with and without samples), a linear Tikhonov
    reconstruction and a GIXRF noise estimate."""
    f: dict[str, Path] = {}
    np.save(folder / "lx.npy", np.random.default_rng(0).normal(size=(2, 3)).astype(np.float32))
    f["linear"] = folder / "lm.h5"
    run("simulate", "--operator", "linear", *LINEAR, "-i", folder / "lx.npy", "-o", f["linear"], "-q")
    f["linear_rec"] = folder / "lr.h5"
    run("reconstruct", f["linear"], "-o", f["linear_rec"], "-q")
    prior = ["-S", 'prior={"name": "gaussian", "dim": 3}']
    f["linear_post"] = folder / "lpost.h5"
    run("sample-posterior", f["linear"], *MCMC, *prior, "-o", f["linear_post"], "-q")
    f["linear_post_samples"] = folder / "lposts.h5"
    run("sample-posterior", f["linear"], *MCMC, *prior, "-S", "keep_samples=true", "--save-samples", "-o",
        f["linear_post_samples"], "-q")
    np.save(folder / "ni.npy", np.array([[18, 8.9, 12], [24, 8.2, 9]], np.float32))
    f["gixrf"] = folder / "g.h5"
    run("simulate", "--operator", "gixrf", *GIXRF, "--noise", "mixed", "-N", "a=0.01", "-N", "b=0.05", "-i",
        folder / "ni.npy", "-o", f["gixrf"], "-q")
    f["gixrf_post"] = folder / "gpost.h5"
    run("sample-posterior", f["gixrf"], *MCMC, "-S", "keep_samples=true", "--save-samples", "-o", f["gixrf_post"],
        "-q")
    f["noise"] = folder / "em.h5"
    run("estimate-noise", "--operator", "gixrf", "--measurements", f["gixrf"], "--output", f["noise"],
        "--iterations", 2, "-E", "estep_steps=2", "-E", "batch_size=32", "-E", "mstep_samples=32", "-E",
        "elbo_samples=32", "-E", "posterior_samples=8", "-E", "elbo_every=1", "-E",
        'sampler={"blocks": 1, "hidden": 8, "cond_features": 4}', "-q")
    return f
