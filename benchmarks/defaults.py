"""Learned priors at the defaults: patchNR MAP against TV, each as a user runs it, side by side per crop.

For every crop the measurement is reconstructed by TV and by patchNR MAP, each
with nothing but its defaults (``api.reconstruct(m, "tv")`` and
``api.reconstruct(m, prior="patchnr", prior_file=...)``: the presets, the
stopping rule, ``precision=auto``, the MAP's own start, which for limited-angle
CT is TV's reconstruction, its time included).  The two runs of a crop follow
each other, so the time ratio is measured under the same load.

Problems (the issue's targets in brackets):
- ``ct-limited``: 128² centre crops of the material test slices at LoDoPaB's
  pixel size (patchNR ≤ 8× TV's time, ≥ 1 dB above TV on the mean);
- ``superres``: ×4 superresolution of the whole 600² slices (≤ 10× TV's time,
  ≥ 0.5 dB above TV).

Usage:
    python benchmarks/defaults.py --patchnr-file p40k.pt --problems ct-limited --images 11 --crop 128
    python benchmarks/defaults.py --patchnr-file p40k.pt --problems superres --images 4 --crop 600
    python benchmarks/defaults.py --patchnr-file p.pt --problems superres --images 1 --crop 600 --patchnr-iterations 2

References:
    Altekrüger et al., PatchNR: learning from very few images by patch normalizing
    flow regularization, Inverse Problems 39 (2023), arXiv 2205.12021.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks._results import add_run_args, load_average, report  # noqa: E402
from benchmarks.patch_priors import _crops, _op_params, _prior_line  # noqa: E402


def _run(m, stack, method: str | None, prior_file: str | None, device: str, cap: int | None = None) -> dict:
    """One reconstruction at the defaults (patchNR capped at ``cap`` iterations when given): scores, seconds,
    iterations run, whether the stopping rule ended it, and the precision used."""
    from invsolve import api

    t0 = time.perf_counter()
    if prior_file is None:
        r = api.reconstruct(m, method, {}, seed=0, device=device, batch_size=1)
    else:
        r = api.reconstruct(m, None, {} if cap is None else {"iterations": cap}, seed=0, device=device,
                            batch_size=1, prior="patchnr", prior_file=prior_file)
    sec = time.perf_counter() - t0
    sc = api.evaluate(r.images, stack)
    used = r.method.get("used", {})
    return {"psnr": sc["psnr"], "ssim": sc["ssim"], "seconds": sec,
            "iterations": None if r.iterations_run is None else int(r.iterations_run[0]),
            "converged": None if r.converged is None else bool(r.converged[0]),
            "precision": used.get("precision", "–")}


def problem_rows(args, op_name: str) -> tuple[list[str], dict]:
    """Per-crop rows of TV and patchNR for one problem, and the means."""
    import warnings

    from invsolve import api

    crop = args.crop if op_name != "superres" or args.crop else 600
    crops = _crops(args.images, crop)
    per = {"tv": [], "patchnr": []}
    rows = []
    for name, img in crops:
        m = api.simulate(img[None], op_name, _op_params(op_name, crop), seed=0, device="cpu")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the long-run and brief-prior warnings: the table says it all
            tv = _run(m, img[None], "tv", None, args.device)
            pn = _run(m, img[None], None, str(args.patchnr_file), args.device, args.patchnr_iterations)
        per["tv"].append(tv)
        per["patchnr"].append(pn)
        rows.append(f"| {op_name} | {name} | {tv['psnr']:.2f} | {pn['psnr']:.2f} | {pn['psnr'] - tv['psnr']:+.2f} | "
                    f"{tv['seconds']:.1f} ({tv['iterations']}) | {pn['seconds']:.1f} ({pn['iterations']}"
                    f"{'' if pn['converged'] else ', cap'}) | {pn['seconds'] / tv['seconds']:.1f}× | "
                    f"{pn['precision']} |")
        print(rows[-1], file=sys.stderr, flush=True)
    mean = {k: {q: float(np.mean([r[q] for r in v])) for q in ("psnr", "ssim", "seconds")} for k, v in per.items()}
    return rows, mean


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patchnr-file", type=Path, required=True)
    ap.add_argument("--problems", nargs="+", default=["ct-limited"], choices=["ct-limited", "superres"])
    ap.add_argument("--images", type=int, default=11, help="crops: test.png, then testset/img1..")
    ap.add_argument("--crop", type=int, default=128, help="crop size (superres: 600 for the whole slices)")
    ap.add_argument("--patchnr-iterations", type=int, default=None,
                    help="cap patchNR's MAP at N iterations (a probe where the defaults would take hours: the "
                         "row then times N iterations, not the whole run)")
    add_run_args(ap)
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    load0, t0 = load_average(), time.perf_counter()
    rows = ["| problem | crop | TV PSNR | patchNR PSNR | Δ dB | TV s (iterations) | patchNR s (iterations) | "
            "time ratio | precision |", "|---|---|---|---|---|---|---|---|---|"]
    means = []
    for op_name in args.problems:
        r, mean = problem_rows(args, op_name)
        rows += r
        tv, pn = mean["tv"], mean["patchnr"]
        means.append(f"| {op_name} | mean of {args.images} | {tv['psnr']:.2f} | {pn['psnr']:.2f} | "
                     f"{pn['psnr'] - tv['psnr']:+.2f} | {tv['seconds']:.1f} | {pn['seconds']:.1f} | "
                     f"{pn['seconds'] / tv['seconds']:.1f}× | SSIM {tv['ssim']:.4f} / {pn['ssim']:.4f} |")
    rows += means
    rows.append(f"\nBoth methods at their defaults ({args.threads} torch threads; crops {args.crop}²); the time "
                "ratio is patchNR's seconds (TV start included where the preset starts from TV) over TV's.")
    if args.patchnr_iterations is not None:
        rows.append(f"\nA probe: patchNR capped at {args.patchnr_iterations} MAP iterations (`--patchnr-iterations`), so "
                    "its PSNR and time are those of the first iterations, not of a finished run.")
    rows += _prior_line(args)
    table = "\n".join(rows)
    title = f"Learned priors at the defaults: {', '.join(args.problems)}"  # a summary section per problem set
    if args.patchnr_iterations is not None:  # a probe has its own section, beside the finished runs'
        title += f", a probe of {args.patchnr_iterations} MAP iterations"
    report(args, title, "defaults.py", argv, table, load0=load0, t0=t0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
