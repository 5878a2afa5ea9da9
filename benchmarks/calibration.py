"""Calibration of every sampler: SBC, TARP, and raw against conformally calibrated 90 % coverage on fresh pairs.

For each problem, each sampler is trained (or, for MCMC, configured), calibrated by ``invsolve calibrate``'s
API on ``--pairs`` pairs drawn from the prior, and then run with ``--calibration`` on as many fresh pairs
(another seed), whose raw and calibrated 90 % coverage are measured against the truth.  Columns: the SBC
uniformity p-value (χ² per statistic, Bonferroni over the statistics), the TARP area between the curve and the
diagonal, raw and conformal 90 % coverage on the fresh pairs, posterior contraction, and the seconds the
calibration took.  The row "exact" draws from the closed-form posterior (gmm only): what a perfect sampler gives.

Problems:
  gmm            the conditional Wasserstein paper's mixture (d = 5, 10 components, A = diag(0.1/(i+1)), σ = 0.1);
  scatterometry  the surrogate (3 → 23, uniform prior on [-1, 1]³, mixed noise a = 0.005, b = 0.1);
  superres       ×4 superresolution of 32² crops of the material slices (train/ for training and the val and
                 test images for the pairs), the cfm sampler.

With ``--sbi`` (sbi 0.27 installed, the ``bench`` extra) the SBC ranks, KS p-values and TARP curve of the gmm
cfm run are recomputed by sbi on the same draws, and the largest differences reported.

Usage:
    python benchmarks/calibration.py --problems gmm scatterometry superres --steps 2000 --pairs 400 --sbi
The shared data folder is ``$INVSOLVE_SHARED_DATA`` (default ../shared/data).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks._results import add_run_args, load_average, report  # noqa: E402

SHARED = Path(os.environ.get("INVSOLVE_SHARED_DATA", ROOT / ".." / "shared" / "data"))
GMM = dict(operator="linear", operator_params={"diagonal": [0.1 / (i + 1) for i in range(5)]},
           noise="gaussian", noise_params={"sigma": 0.1}, prior="gmm", dim=5)
SCAT = dict(operator="surrogate", operator_params={}, noise="mixed", noise_params={"a": 0.005, "b": 0.1},
            prior="uniform", dim=3)
MCMC = {"chains": 16, "steps": 500, "burn_in": 500, "thin": 5}


def _fresh_coverage(post_fn, fresh) -> tuple[float, float]:
    """Raw and calibrated 90 % coverage of a posterior run on the fresh pairs."""
    from invsolve.posterior import interval_coverage

    post = post_fn(fresh)
    s, t = post.summary, fresh.ground_truth
    return (interval_coverage(t, s.quantiles, s.levels, 0.9),
            interval_coverage(t, s.calibrated_quantiles, s.levels, 0.9))


def _row(label, problem, cal, raw, calib, seconds) -> str:
    s = cal.summary()
    return (f"| {problem} | {label} | {s['pairs']} | {s['num_samples']} | {s['sbc_pvalue']:.2g} | "
            f"{s['tarp_area']:.3f} | {raw:.3f} | {calib:.3f} | {s['contraction']:.3f} | {seconds:.0f} |")


def _calibrate_and_test(label, problem, kw, pairs, fresh, tmp) -> tuple[str, object]:
    """Calibrate with sample-posterior settings ``kw`` on ``pairs``, test on ``fresh``: a table row."""
    from invsolve import api
    from invsolve.api_calibrate import calibrate
    from invsolve.calibration.files import save_calibration

    t0 = time.perf_counter()
    cal = calibrate(pairs, device="cpu", batch_size=64, **kw)
    seconds = time.perf_counter() - t0
    path = save_calibration(cal, tmp / f"{problem}-{label.split()[0]}.h5", overwrite=True)
    # the fresh pairs are sampled with another seed than the calibration pairs: no draw is shared between them
    raw, calib = _fresh_coverage(lambda m: api.sample_posterior(m, device="cpu", batch_size=64, calibration=str(path),
                                                                levels=(0.05, 0.5, 0.95), seed=1, **kw), fresh)
    row = _row(label, problem, cal, raw, calib, seconds)
    print(row, flush=True)
    return row, cal


def vector_problem(problem, spec, args, tmp) -> tuple[list[str], dict]:
    from invsolve.api_calibrate import simulate_pairs
    from invsolve.api_samplers import train_sampler

    rows, cals = [], {}
    pairs = fresh = None
    for name in args.samplers:
        if name == "mcmc":
            continue
        out = tmp / f"{problem}-{name}.pt"
        info = train_sampler(name, spec["operator"], spec["operator_params"], spec["noise"], spec["noise_params"],
                             prior=spec["prior"], dim=spec["dim"], steps=args.steps, output=out, seed=0, device="cpu",
                             overwrite=True)
        print(f"# {problem} {name}: trained {args.steps} steps in {info['seconds']:.0f} s", flush=True)
        if pairs is None:
            pairs = simulate_pairs(str(out), args.pairs, seed=1, device="cpu")
            fresh = simulate_pairs(str(out), args.pairs, seed=2, device="cpu")
        row, cals[name] = _calibrate_and_test(f"{name} ({args.steps} steps)", problem,
                                              {"sampler_file": str(out), "num_samples": args.samples}, pairs, fresh, tmp)
        rows.append(row)
    if "mcmc" in args.samplers and pairs is not None:
        prior = {"name": spec["prior"], "dim": spec["dim"]}
        row, cals["mcmc"] = _calibrate_and_test(
            f"mcmc ({MCMC['chains']} chains × {MCMC['steps']} steps)", problem,
            {"sampler": "mcmc", "sampler_params": {**MCMC, "prior": prior}}, pairs, fresh, tmp)
        rows.append(row)
    if problem == "gmm" and pairs is not None:
        rows.append(_exact_row(pairs, args))
    return rows, cals


def _exact_row(pairs, args) -> str:
    """The closed-form posterior's draws through the same diagnostics (no conformal test: nothing to repair)."""
    from invsolve.calibration.statistics import coverage_curve, rank_chi2_pvalues, sbc_ranks, tarp, tarp_area
    from invsolve.operators import build_operator
    from invsolve.samplers.exact import exact_posterior
    from invsolve.samplers.priors import build_prior

    op = build_operator("linear", GMM["operator_params"], (5,))
    post = exact_posterior(op, {"name": "gaussian", "sigma": 0.1}, build_prior({"name": "gmm", "dim": 5}))
    y = torch.as_tensor(pairs.measurement, dtype=torch.float64)
    s = post.sample(y, args.samples, torch.Generator().manual_seed(3)).numpy()
    x = pairs.ground_truth.astype(np.float64)
    p = rank_chi2_pvalues(sbc_ranks(s, x), args.samples)
    a, e = tarp(s, x, 0)
    cov = coverage_curve(s, x, (0.9,)).mean()
    row = (f"| gmm | exact posterior | {len(x)} | {args.samples} | {min(1, len(p) * p.min()):.2g} | "
           f"{tarp_area(a, e):.3f} | {cov:.3f} (on the pairs) | – | – | – |")
    print(row, flush=True)
    return row


def superres_problem(args, tmp) -> list[str]:
    from invsolve.api_calibrate import simulate_pairs
    from invsolve.api_samplers import train_sampler

    out = tmp / "superres-cfm.pt"
    info = train_sampler("cfm", "superres", {"factor": 4}, images=[str(SHARED / "material" / "train")], crop=32,
                         steps=args.image_steps, output=out, seed=0, device="cpu", overwrite=True)
    print(f"# superres cfm: trained {args.image_steps} steps in {info['seconds']:.0f} s", flush=True)
    held = [str(SHARED / "material" / f) for f in ("val.png", "test.png")]
    pairs = simulate_pairs(str(out), args.image_pairs, images=held, seed=1, device="cpu")
    fresh = simulate_pairs(str(out), args.image_pairs, images=held, seed=2, device="cpu")
    row, _ = _calibrate_and_test(f"cfm ({args.image_steps} steps, 32² crops)", "superres ×4",
                                 {"sampler_file": str(out), "num_samples": args.image_samples}, pairs, fresh, tmp)
    return [row]


class _Drawn:
    """Fixed posterior draws behind sbi's ``sample_batched``: sbi's run_sbc and run_tarp then see exactly the
    draws invsolve's diagnostics saw."""

    def __init__(self, draws: torch.Tensor):
        self.draws = draws  # (S, N, d), sbi's axis order

    def sample_batched(self, sample_shape, x, **_):
        return self.draws


def sbi_agreement(sampler_file: str, pairs, num_samples: int) -> str:
    """invsolve's SBC ranks, KS p-values and TARP curve against sbi's run_sbc / check_sbc / run_tarp on the
    same draws of a trained sampler over ``pairs``."""
    import sbi
    from sbi.diagnostics import check_sbc, run_sbc, run_tarp
    from sbi.diagnostics.tarp import get_tarp_references

    from invsolve import api
    from invsolve.calibration.statistics import rank_pvalues, sbc_ranks, tarp

    post = api.sample_posterior(pairs, sampler_file=sampler_file, num_samples=num_samples, levels=(),
                                keep_samples=True, device="cpu", batch_size=64)
    s, x = post.summary.samples, pairs.ground_truth.astype(np.float32)
    xt, st = torch.as_tensor(x), torch.as_tensor(s).permute(1, 0, 2).contiguous()
    ranks, dap = run_sbc(xt, xt, _Drawn(st), num_posterior_samples=num_samples, show_progress_bar=False)
    ours = sbc_ranks(s, x)
    ks = check_sbc(ranks, xt, dap, num_posterior_samples=num_samples)["ks_pvals"].numpy()
    torch.manual_seed(0)
    refs = get_tarp_references(xt)
    bins = 7  # no edge j/7 on a possible f = k/S for S = 100: float32 and float64 edges bin alike
    ecp, alpha = run_tarp(xt, xt, _Drawn(st), references=refs, num_posterior_samples=num_samples, num_bins=bins,
                          show_progress_bar=False)
    a, e = tarp(s, x, 0, bins=bins, references=refs.numpy())
    same_grid = bool(alpha[0] == 0 and alpha[-1] == 1)
    tarp_note = (f"largest TARP ECP difference {np.abs(e - ecp.numpy()).max():.2g}" if same_grid else
                 f"TARP grids differ (sbi's spans [{alpha[0]:.3f}, {alpha[-1]:.3f}], the range of f)")
    return (f"Against sbi {sbi.__version__} on the same {len(x)} × {num_samples} draws of the gmm cfm sampler: "
            f"SBC ranks equal in {np.mean(ours == ranks.numpy()):.0%} of entries, largest KS p-value difference "
            f"{np.abs(rank_pvalues(ours, num_samples) - ks).max():.2g}, {tarp_note} (sbi's run_sbc, check_sbc, "
            f"run_tarp with the same references, {bins} bins).")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--problems", nargs="+", default=["gmm", "scatterometry", "superres"],
                    choices=["gmm", "scatterometry", "superres"])
    ap.add_argument("--samplers", nargs="+", default=["cflow", "cfm", "mmd-flow", "csnf", "mcmc"])
    ap.add_argument("--steps", type=int, default=2000, help="training steps of the vector samplers")
    ap.add_argument("--pairs", type=int, default=400)
    ap.add_argument("--samples", type=int, default=100)
    ap.add_argument("--image-steps", type=int, default=1000)
    ap.add_argument("--image-pairs", type=int, default=100)
    ap.add_argument("--image-samples", type=int, default=32)
    ap.add_argument("--sbi", action="store_true")
    add_run_args(ap)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    load0, t0 = load_average(), time.perf_counter()
    rows = ["| problem | sampler | pairs | draws | SBC p | TARP area | raw 90 % coverage (fresh) | "
            "conformal 90 % coverage (fresh) | contraction | calibrate [s] |", "|---|---|---|---|---|---|---|---|---|---|"]
    notes = []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        for problem in args.problems:
            if problem == "superres":
                rows += superres_problem(args, tmp)
                continue
            r, cals = vector_problem(problem, GMM if problem == "gmm" else SCAT, args, tmp)
            rows += r
            if args.sbi and problem == "gmm" and "cfm" in cals:
                from invsolve.api_calibrate import simulate_pairs

                f = str(tmp / "gmm-cfm.pt")
                notes.append(sbi_agreement(f, simulate_pairs(f, args.pairs, seed=1, device="cpu"), args.samples))
                print(notes[-1], flush=True)
    table = "\n".join(rows + ([""] + notes if notes else []))
    report(args, "Calibration of the samplers", "calibration.py", argv if argv is not None else sys.argv[1:], table,
           load0=load0, t0=t0)


if __name__ == "__main__":
    main()
