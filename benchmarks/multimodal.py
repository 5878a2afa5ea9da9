"""Posteriors with separated modes, and the scatterometry posterior: the conditional stochastic normalizing
flow (csnf) beside the plain conditional flow (cflow), flow matching (cfm) and MCMC.

Part ``bimodal``: the linear operator diag(0, 1) with σ = 0.1 on a prior of two Gaussians (variance 0.01) at
x = (−1, 0) and (1, 0) with weights 0.3 and 0.7.  y sees only x₂, so each posterior keeps both modes, 20
standard deviations apart, with weights 0.3 and 0.7 (closed form: :mod:`invsolve.samplers.exact`).  For
``--obs`` test measurements and 1000 draws each: the error of the weight of the mode x₁ > 0 against the exact
posterior's draws (mean and max over the measurements), the energy distance to exact draws against that of
two exact sets (ratio), and the training and sampling times.

Part ``scatterometry``: the surrogate (3 → 23) with mixed noise a = 0.005, b = 0.1 and the uniform prior on
[−1, 1]³.  The reference is a long MCMC run (64 chains, 4000 steps after 2000 of burn-in); the energy distance of
each sampler's draws to it, beside that of a second long MCMC run with another seed.

Usage:
    python benchmarks/multimodal.py --parts bimodal scatterometry --steps 2000
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks._results import add_run_args, load_average, report  # noqa: E402

BIMODAL = dict(operator="linear", operator_params={"diagonal": [0.0, 1.0]}, noise="gaussian",
               noise_params={"sigma": 0.1}, prior="gmm", dim=2,
               prior_params={"means": [[-1.0, 0.0], [1.0, 0.0]], "weights": [0.3, 0.7], "variance": 0.01})
SCAT = dict(operator="surrogate", operator_params={}, noise="mixed", noise_params={"a": 0.005, "b": 0.1},
            prior="uniform", dim=3, prior_params={})
DRAWS = 1000


def _train(name, spec, steps, tmp) -> tuple[Path, float]:
    from invsolve.api_samplers import train_sampler

    out = tmp / f"{name}.pt"
    info = train_sampler(name, spec["operator"], spec["operator_params"], spec["noise"], spec["noise_params"],
                         prior=spec["prior"], dim=spec["dim"], prior_params=spec["prior_params"], steps=steps,
                         output=out, seed=0, device="cpu", overwrite=True)
    print(f"# {name}: trained {steps} steps in {info['seconds']:.0f} s", flush=True)
    return out, info["seconds"]


def _measurements(spec, n, seed):
    from invsolve import api
    from invsolve.samplers.priors import build_prior

    prior = build_prior({"name": spec["prior"], "dim": spec["dim"], **spec["prior_params"]})
    x = prior.sample(n, torch.Generator().manual_seed(seed)).numpy()
    return api.simulate(x, operator=spec["operator"], operator_params=spec["operator_params"], noise=spec["noise"],
                        noise_params=spec["noise_params"], seed=seed + 1000, device="cpu")


def _draws(m, seed, **kw) -> tuple[torch.Tensor, float]:
    """Posterior draws (N, S, d) float64 of measurement ``m`` and the seconds per measurement."""
    from invsolve import api

    t0 = time.perf_counter()
    post = api.sample_posterior(m, levels=(), keep_samples=True, seed=seed, device="cpu", batch_size=64, **kw)
    return torch.as_tensor(post.summary.samples, dtype=torch.float64), (time.perf_counter() - t0) / len(m.measurement)


def _mcmc(spec, chains, steps, burn_in, thin):
    return {"sampler": "mcmc", "sampler_params": {"chains": chains, "steps": steps, "burn_in": burn_in, "thin": thin,
                                                  "prior": {"name": spec["prior"], "dim": spec["dim"],
                                                            **spec["prior_params"]}}}


def bimodal(args, tmp) -> str:
    from invsolve.operators import build_operator
    from invsolve.samplers.exact import energy_distance, exact_posterior
    from invsolve.samplers.priors import build_prior

    m = _measurements(BIMODAL, args.obs, seed=7)
    prior = build_prior({"name": "gmm", "dim": 2, **BIMODAL["prior_params"]})
    post = exact_posterior(build_operator("linear", BIMODAL["operator_params"], (2,)), {"name": "gaussian",
                                                                                        "sigma": 0.1}, prior)
    g = torch.Generator().manual_seed(3)
    y = torch.as_tensor(m.measurement, dtype=torch.float64)
    e1, e2 = post.sample(y, DRAWS, g), post.sample(y, DRAWS, g)
    base = float(energy_distance(e2, e1).mean())
    w_exact = (e1[..., 0] > 0).double().mean(1)
    rows = ["| sampler | training | weight error (mean) | weight error (max) | energy distance | exact vs exact | "
            "ratio | train [s] | sample [ms/obs] |", "|---|---|---|---|---|---|---|---|---|"]

    def row(label, training, xs, train_s, per_obs):
        w = (xs[..., 0] > 0).double().mean(1)
        ed = float(energy_distance(xs, e1).mean())
        rows.append(f"| {label} | {training} | {float((w - w_exact).abs().mean()):.3f} | "
                    f"{float((w - w_exact).abs().max()):.3f} | {ed:.4f} | {base:.4f} | {ed / base:.2f} | "
                    f"{train_s:.0f} | {1000 * per_obs:.1f} |")
        print(rows[-1], flush=True)

    for name in args.samplers:
        f, secs = _train(name, BIMODAL, args.steps, tmp)
        xs, per = _draws(m, 1, sampler_file=str(f), num_samples=DRAWS)
        row(name, f"{args.steps} steps", xs, secs, per)
        if name in ("cflow", "csnf") and args.importance:
            xs, per = _draws(m, 1, sampler_file=str(f), num_samples=DRAWS, importance=args.importance)
            row(f"{name} --importance {args.importance}", f"{args.steps} steps", xs, secs, per)
    xs, per = _draws(m, 1, **_mcmc(BIMODAL, 20, 500, 500, 10))
    row("mcmc (MALA, 20 chains × 500 steps after 500)", "–", xs, 0, per)
    xs = post.sample(y, DRAWS, g)
    row("exact (closed form)", "–", xs, 0, 0)
    return "### Separated modes (weights 0.3 / 0.7)\n\n" + "\n".join(rows)


def scatterometry(args, tmp) -> str:
    from invsolve.samplers.exact import energy_distance

    m = _measurements(SCAT, args.scat_obs, seed=11)
    ref, _ = _draws(m, 21, **_mcmc(SCAT, 64, 4000, 2000, 128))  # 64 × 31 draws
    ref2, per_ref = _draws(m, 22, **_mcmc(SCAT, 64, 4000, 2000, 128))
    base = float(energy_distance(ref2, ref).mean())
    rows = ["| sampler | training | energy distance to long MCMC | long MCMC vs long MCMC | ratio | train [s] | "
            "sample [ms/obs] |", "|---|---|---|---|---|---|---|"]
    for name in args.samplers:
        f, secs = _train(name, SCAT, args.steps, tmp)
        xs, per = _draws(m, 1, sampler_file=str(f), num_samples=DRAWS)
        ed = float(energy_distance(xs, ref).mean())
        rows.append(f"| {name} | {args.steps} steps | {ed:.4f} | {base:.4f} | {ed / base:.2f} | {secs:.0f} | "
                    f"{1000 * per:.1f} |")
        print(rows[-1], flush=True)
        if name in ("cflow", "csnf") and args.importance:
            xs, per = _draws(m, 1, sampler_file=str(f), num_samples=DRAWS, importance=args.importance)
            ed = float(energy_distance(xs, ref).mean())
            rows.append(f"| {name} --importance {args.importance} | {args.steps} steps | {ed:.4f} | {base:.4f} | "
                        f"{ed / base:.2f} | {secs:.0f} | {1000 * per:.1f} |")
            print(rows[-1], flush=True)
    rows.append(f"| mcmc (MALA, 64 chains × 4000 steps after 2000, thin 128) | – | {base:.4f} | {base:.4f} | 1.00 | "
                f"– | {1000 * per_ref:.0f} |")
    return "### Scatterometry surrogate (3 → 23), mixed noise\n\n" + "\n".join(rows)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parts", nargs="+", default=["bimodal", "scatterometry"], choices=["bimodal", "scatterometry"])
    ap.add_argument("--samplers", nargs="+", default=["cflow", "cfm", "csnf"])
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--obs", type=int, default=50, help="bimodal test measurements")
    ap.add_argument("--scat-obs", type=int, default=20, help="scatterometry test measurements")
    ap.add_argument("--importance", type=int, default=10, help="also cflow and csnf with --importance K (0: not)")
    add_run_args(ap)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    load0, t0 = load_average(), time.perf_counter()
    parts = []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        if "bimodal" in args.parts:
            parts.append(bimodal(args, tmp))
        if "scatterometry" in args.parts:
            parts.append(scatterometry(args, tmp))
    report(args, "Multimodal posteriors", "multimodal.py", argv if argv is not None else sys.argv[1:],
           "\n\n".join(parts), load0=load0, t0=t0)


if __name__ == "__main__":
    main()
