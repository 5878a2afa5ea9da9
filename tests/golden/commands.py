"""The commands whose outputs are kept in ``tests/golden/files``: small, seeded README-style runs.

``python tests/golden/commands.py OUT`` runs them into the folder OUT (the repo root is the working
directory); ``tests/test_golden.py`` reruns them with the current code and compares every array, and loads
every kept file with the current readers. The kept files were written by the code before the library
restructuring (commit 5dc8a2d), so the comparison checks that it changed no result.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path

import numpy as np
from PIL import Image

LINEAR = ["--operator", "linear", "-P", "diagonal=[1.0, 0.5, 0.2]", "--noise", "gaussian", "-N", "sigma=0.2"]
TINY_PATCHNR = ["-P", "patch_size=4", "-P", "blocks=2", "-P", "width=16"]
MAP = ["-M", "iterations=5", "-M", "n_patches=200", "-M", "precision=float32", "-M", "init=adjoint"]

COMMANDS: list[list[str]] = [
    ["simulate", "--operator", "ct-limited", "--input", "{D}/phantom.png", "--output", "{D}/ct.h5", "--seed", "0"],
    ["reconstruct", "{D}/ct.h5", "--method", "fbp", "--output", "{D}/fbp.h5"],
    ["reconstruct", "{D}/ct.h5", "--method", "tv", "-M", "iterations=20", "--output", "{D}/tv.h5",
     "--preview", "{D}/tv.png"],
    ["train-prior", "--prior", "patchnr", "--images", "data/learn.png", *TINY_PATCHNR, "--steps", "10",
     "--seed", "0", "--output", "{D}/patchnr.pt", "-q"],
    ["reconstruct", "{D}/ct.h5", "--prior", "patchnr", "--prior-file", "{D}/patchnr.pt", *MAP,
     "--output", "{D}/map.h5"],
    ["simulate", "--operator", "superres", "--scale", "4", "--input", "{D}/test.png", "--output", "{D}/sr.h5",
     "--seed", "1"],
    ["sample-posterior", "{D}/sr.h5", "--prior", "patchnr", "--prior-file", "{D}/patchnr.pt", "--sampler", "langevin",
     "--chains", "2", "-S", "steps=6", "-S", "burn_in=2", "-S", "thin=2", "--precision", "float32",
     "--output", "{D}/langevin.h5"],
    ["simulate", *LINEAR, "--input", "{D}/x.npy", "--output", "{D}/lin.h5", "--seed", "2"],
    ["train-sampler", "--sampler", "cfm", *LINEAR, "--prior", "gaussian", "--dim", "3", "-S", "hidden=32",
     "--steps", "30", "--val-every", "10", "--seed", "0", "--output", "{D}/cfm.pt", "-q"],
    ["sample-posterior", "{D}/lin.h5", "--sampler-file", "{D}/cfm.pt", "-n", "16", "--seed", "0",
     "--output", "{D}/cfm_post.h5"],
    ["sample-posterior", "{D}/lin.h5", "--sampler", "mcmc", "-S", 'prior={"name": "gaussian", "dim": 3}', "-S", "chains=4", "-S", "steps=40",
     "-S", "burn_in=40", "-S", "thin=2", "--seed", "0",
     "--output", "{D}/mcmc_post.h5"],
]


def machine() -> dict:
    """What bit-identity depends on: the same code gives the same bits only on the same stack and CPU kind."""
    import astra
    import h5py
    import matplotlib
    import torch

    return {"torch": torch.__version__, "numpy": np.__version__, "astra": astra.__version__,
            "h5py": h5py.__version__,
            "matplotlib": matplotlib.__version__, "python": platform.python_version(), "machine": platform.machine(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(), "threads": torch.get_num_threads()}


def run_all(out: Path, invoke) -> None:
    """Run every command into ``out`` through ``invoke(argv) -> exit code``."""
    out.mkdir(parents=True, exist_ok=True)
    for name in ("phantom", "test"):  # half-size copies keep the kept files small
        image = np.asarray(Image.open(f"data/{name}.png"), dtype=np.float32)
        half = image.reshape(image.shape[0] // 2, 2, image.shape[1] // 2, 2).mean(axis=(1, 3))
        Image.fromarray(np.round(half).astype(np.uint8)).save(out / f"{name}.png")
    np.save(out / "x.npy", np.array([[0.3, -0.2, 0.5], [1.0, 0.1, -0.7]], dtype=np.float32))
    for cmd in COMMANDS:
        argv = [a.replace("{D}", str(out)) for a in cmd]
        code = invoke(argv)
        if code != 0:
            raise SystemExit(f"golden command failed ({code}): invsolve {' '.join(argv)}")


def _invoke(argv: list[str]) -> int:
    from typer.testing import CliRunner

    from invsolve.cli import app

    res = CliRunner().invoke(app, argv)
    if res.exit_code != 0:
        print(res.output, res.stderr, file=sys.stderr)
    return res.exit_code


if __name__ == "__main__":
    import torch

    torch.set_num_threads(min(2, os.cpu_count() or 1))  # as tests/conftest.py
    target = Path(sys.argv[1])
    run_all(target, _invoke)
    import subprocess

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    record = {"machine": machine(), "folder": str(target), "commit": commit}
    (target / "machine.json").write_text(json.dumps(record, indent=1) + "\n")
