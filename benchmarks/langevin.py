"""Langevin with a patch prior at its defaults: seconds, PSNR of the mean, coverage of the 90 % intervals.

One ×4 superresolution measurement of a ``--crop``² centre crop of the material
test slice (the operator's default noise, seed 0) is sampled by ``api.sample_posterior(...,
sampler="langevin")`` with nothing but its defaults, then with each ``--runs``
override set.  Per run the table gives the wall time, the PSNR of the posterior
mean, the share of pixels whose 90 % interval (the 5 % and 95 % quantiles)
covers the true image (the issue's target: 85–95 %), and the convergence check
(split-R̂ share, starting-noise share, and whether the mixing warning fired).

Usage:
    python benchmarks/langevin.py --patchnr-file prior.pt --crop 256 --runs "" "steps=1000,burn_in=300"

References:
    Roberts & Tweedie, Exponential convergence of Langevin distributions and their
    discrete approximations, Bernoulli 2(4) (1996); Altekrüger et al., PatchNR,
    Inverse Problems 39 (2023), arXiv 2205.12021.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks._results import add_run_args, load_average, report  # noqa: E402
from benchmarks.patch_priors import _crops, _op_params  # noqa: E402


def _overrides(text: str) -> dict:
    """``"k=v,k=v"`` -> {k: number or text}; "" -> {} (the defaults)."""
    out = {}
    for part in filter(None, text.split(",")):
        k, _, v = part.partition("=")
        try:
            out[k] = int(v)
        except ValueError:
            try:
                out[k] = float(v)
            except ValueError:
                out[k] = v
    return out


def run_one(m, truth: np.ndarray, prior_file: str, overrides: dict, device: str) -> dict:
    """One Langevin run: seconds, PSNR of the mean, 90 % coverage and the convergence check."""
    from invsolve import api

    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        post = api.sample_posterior(m, sampler="langevin", prior="patchnr", prior_file=prior_file,
                                    sampler_params=overrides, levels=(0.05, 0.95), seed=0, device=device)
    sec = time.perf_counter() - t0
    s, info = post.summary, post.sampler  # the settings used and the mixing diagnostics
    lo, hi = s.quantiles[0, 0], s.quantiles[0, 1]
    cover = float(((truth >= lo) & (truth <= hi)).mean())
    psnr = api.evaluate(s.mean, truth[None])["psnr"]
    unmixed = [w for w in caught if "have not mixed" in str(w.message)]
    return {"seconds": sec, "psnr": psnr, "coverage": cover, "std": float(s.std.mean()),
            "unmixed_share": info["unmixed_share"][0], "start_share": info["start_noise_share"][0],
            "ess_median": info["ess_median"][0], "warned": bool(unmixed),
            "settings": {k: info[k] for k in ("step_size", "n_patches") if k in info}}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patchnr-file", type=Path, required=True)
    ap.add_argument("--crop", type=int, default=256)
    ap.add_argument("--runs", nargs="+", default=[""], help='override sets "k=v,k=v" ("" = the defaults)')
    add_run_args(ap)
    args = ap.parse_args(argv)
    import torch

    from invsolve import api

    torch.set_num_threads(args.threads)
    load0, t0 = load_average(), time.perf_counter()
    (name, img), = _crops(1, args.crop)
    m = api.simulate(img[None], "superres", _op_params("superres", args.crop), seed=0, device="cpu")
    rows = ["| settings (-S) | s | PSNR of the mean | 90 % coverage | mean std | split-R̂ > 1.1 share | "
            "start-noise share | median ESS | mixing warning |", "|---|---|---|---|---|---|---|---|---|"]
    for text in args.runs:
        r = run_one(m, img, str(args.patchnr_file), _overrides(text), args.device)
        rows.append(f"| {text or 'defaults'} | {r['seconds']:.0f} | {r['psnr']:.2f} | {r['coverage']:.3f} | "
                    f"{r['std']:.4f} | {r['unmixed_share']} | {r['start_share']} | {r['ess_median']} | "
                    f"{'yes' if r['warned'] else 'no'} |")
        print(rows[-1], file=sys.stderr, flush=True)
    rows.append(f"\n×4 superresolution of the {args.crop}² centre crop {name} (default noise), {args.threads} torch "
                "threads; coverage: share of pixels inside the 5–95 % quantile interval (target 85–95 %).")
    table = "\n".join(rows)
    report(args, "Langevin at the defaults", "langevin.py", argv, table, load0=load0, t0=t0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
