"""Metrology benchmarks: EM-DeepGEM noise estimation on the scatterometry
surrogate, GIXRF synthetic recovery, and conditional flow vs MCMC posteriors.

Usage::

    python benchmarks/metrology.py [--ns 1 2 4 8] [--seeds 5] [--iterations 100] [--estep forward_kl]
                                   [--mstep-importance 5] [--draws reference|invsolve] [--importance 20]
                                   [--parts scatterometry gixrf oracle marginal] [--threads 2] [--append]

The scatterometry part runs on the reference scripts' own data draws by
default (seed = run index), so its per-draw rows compare with the reference
run on the same data, next to the known-x maximum likelihood on each draw.
The GIXRF part compares EM-DeepGEM's posterior samples, a forward-KL cflow
(plain and importance-resampled) and two MCMC runs (split-R̂ reported).

Tables are printed as Markdown; ``--append`` adds them to benchmarks/RESULTS.md
with the command, date and machine.  The scatterometry part needs the shared
data folder (``INVSOLVE_SHARED_DATA``, default ../shared/data).

References:
    Hagemann, Gruhlke, Heidenreich, Steidl, Mixed noise and posterior
    estimation with conditional DeepGEM, arXiv 2402.02964; Andrle et al.,
    Invertible neural networks versus MCMC for posterior reconstruction in
    grazing incidence X-ray fluorescence, arXiv 2102.03189.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

from _results import append_results, load_average
from invsolve.em import EMSettings, mixed_nll, mstep_mixed, run_em
from invsolve.mcmc import MCMCParams, mcmc_sample
from invsolve.noise import build_noise
from invsolve.operators import build_operator
from invsolve.samplers.importance import importance_resample
from invsolve.samplers.priors import build_prior

#: |Δa| + |Δb| of the reference notebooks (3 -> 23, forward KL, 5 runs), N = 1, 2, 4, 8.
REFERENCE_ABS = {1: 0.0341, 2: 0.0149, 4: 0.0113, 8: 0.0082}

GIXRF = {"layers": [{"formula": "Ni", "density": 8.902, "thickness": 20.0, "roughness": 0.5}],
         "substrate": {"formula": "Si", "density": 2.33, "roughness": 0.3}, "energy": 10.0, "lines": ["Ni-Ka"],
         "angle_min": 0.05, "angle_max": 1.0, "num_angles": 40,
         "params": ["layers.0.thickness", "layers.0.density", "layers.0.roughness", "scale"],
         "bounds": [[5.0, 30.0], [7.0, 9.5], [0.1, 1.5], [5.0, 15.0]]}


def simulate(op, prior, n, a, b, seed):
    g = torch.Generator().manual_seed(1000 + seed)
    x = prior.sample(n, g)
    with torch.no_grad():
        f = op(x)
    return x, f + a * torch.randn(f.shape, generator=g) + b * f * torch.randn(f.shape, generator=g)


def reference_draws(op, n, a, b, seed):
    """The reference scripts' data (seed = run index): x = U[−1, 1]³ for 8 measurements from
    ``torch.manual_seed(seed)``, the relative noise drawn before the additive one, the first n kept."""
    torch.manual_seed(seed)
    x = torch.rand(8, 3) * 2 - 1
    with torch.no_grad():
        f = op(x)
        eta2 = torch.randn_like(f)
        eta1 = torch.randn_like(f)
    return x[:n], (f + b * eta2 * f + a * eta1)[:n]


def oracle(op, x, y):
    """The maximum-likelihood (a, b) with the true parameters x known: the statistical floor of the data."""
    with torch.no_grad():
        f = op(x)
    return mstep_mixed((y - f).double(), f.double(), 0.3, 0.3, 3000, tol=1e-10)


def surrogate_problem():
    """The scatterometry surrogate (3 -> 23) and its uniform prior on [-1, 1]^3."""
    return build_operator("surrogate", {}, (3,)), build_prior({"name": "uniform", "dim": 3})


def scatterometry(args) -> str:
    op, prior = surrogate_problem()
    rows = ["| (a*, b*) | N | EM \\|Δa\\|/a | EM \\|Δb\\|/b | EM \\|Δa\\|/a + \\|Δb\\|/b (mean ± sd) | "
            "oracle (true x known) \\|Δa\\|/a + \\|Δb\\|/b | EM \\|Δa\\| + \\|Δb\\| | oracle \\|Δa\\| + \\|Δb\\| | "
            "reference \\|Δa\\|+\\|Δb\\| | â (mean) | b̂ (mean) | s per run |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    draws = ["| draw (seed) | EM (â, b̂) | EM \\|Δa\\|/a + \\|Δb\\|/b | known-x (â, b̂) | known-x error | s |",
             "|---|---|---|---|---|---|"]
    settings = EMSettings(iterations=args.iterations, estep=args.estep, posterior_samples=8, select=args.select,
                          mstep_importance=args.mstep_importance)
    for a0, b0 in ((0.005, 0.1), (0.01, 0.2)):
        for n in args.ns:
            res, orc = [], []
            for seed in range(args.seeds):
                if args.draws == "reference":
                    x, y = reference_draws(op, n, a0, b0, seed)
                else:
                    x, y = simulate(op, prior, n, a0, b0, seed)
                t = time.perf_counter()
                r = run_em(op, y, prior, settings, seed=seed)
                res.append((r.a, r.b, time.perf_counter() - t))
                orc.append(oracle(op, x, y))
                print(f"scatterometry a*={a0} b*={b0} N={n} seed={seed}: a={r.a:.5f} b={r.b:.4f} "
                      f"(oracle {orc[-1][0]:.5f}, {orc[-1][1]:.4f}) {res[-1][2]:.0f}s", flush=True)
            a, b, s = (np.array(v) for v in zip(*res))
            oa, ob = (np.array(v) for v in zip(*orc))
            ea, eb = np.abs(a - a0) / a0, np.abs(b - b0) / b0
            rel, orel = ea + eb, np.abs(oa - a0) / a0 + np.abs(ob - b0) / b0
            ab, oab = np.abs(a - a0) + np.abs(b - b0), np.abs(oa - a0) + np.abs(ob - b0)
            if (a0, b0, n) == (0.005, 0.1, 4):
                draws += [f"| {k} | ({a[k]:.5f}, {b[k]:.4f}) | {rel[k]:.3f} | ({oa[k]:.5f}, {ob[k]:.4f}) | {orel[k]:.3f} | "
                          f"{s[k]:.0f} |" for k in range(len(a))]
            ref = REFERENCE_ABS.get(n, float("nan")) if (a0, b0) == (0.005, 0.1) else float("nan")
            rows.append(f"| ({a0}, {b0}) | {n} | {ea.mean():.3f} | {eb.mean():.3f} | {rel.mean():.3f} ± {rel.std():.3f} | "
                        f"{orel.mean():.3f} ± {orel.std():.3f} | {ab.mean():.4f} | {oab.mean():.4f} | {'–' if np.isnan(ref) else ref} | "
                        f"{a.mean():.5f} | {b.mean():.4f} | {s.mean():.0f} |")
    if len(draws) > 2:
        rows += ["", f"Per draw at N = 4, (a*, b*) = (0.005, 0.1), {args.draws} draws:", "", *draws]
    return "\n".join(rows)


def marginal_ml(op, prior, y, a0, b0, seed, proposals=20000):
    """The x-unknown maximum likelihood of (a, b): argmax Σ_i log ∫ p(y_i | x, a, b) p(x) dx, each integral by
    importance sampling (fixed proposals, so the objective is smooth in (a, b)) from a Gaussian kernel density on
    MCMC samples at (a0, b0), mixed with 10 % of the uniform prior.  This is what an exact EM converges to, the
    floor of any method that does not know x.  Returns (a, b, smallest effective sample size)."""
    from scipy.optimize import minimize

    g = torch.Generator().manual_seed(seed)
    post, _ = mcmc_sample(op, build_noise({"name": "mixed", "a": a0, "b": b0}), prior, y,
                          MCMCParams(chains=32, steps=1000, burn_in=1000, thin=5), g)
    lo, hi = prior.low.double(), prior.high.double()
    log_u = -torch.log(hi - lo).sum()
    fs, lqs = [], []
    for s in post:  # (S, d) per measurement; 400 kernel centres keep the density cheap
        s = s[torch.randperm(len(s), generator=g)[:400]]
        S, d = s.shape
        cov = torch.cov(s.T) * S ** (-2 / (d + 4)) + 1e-12 * torch.eye(d, dtype=s.dtype)  # Scott's rule
        chol = torch.linalg.cholesky(cov)
        n_kde = int(0.9 * proposals)
        xk = s[torch.randint(S, (n_kde,), generator=g)] + torch.randn(n_kde, d, generator=g).double() @ chol.T
        xu = lo + (hi - lo) * torch.rand(proposals - n_kde, d, generator=g).double()
        x = torch.cat([xk, xu])
        kde = torch.distributions.MultivariateNormal(torch.zeros(d, dtype=s.dtype), scale_tril=chol)
        lk = torch.logsumexp(kde.log_prob(x[:, None, :] - s[None]), 1) - math.log(S)
        lq = torch.logaddexp(lk + math.log(0.9), log_u + math.log(0.1))
        inside = ((x >= lo) & (x <= hi)).all(1)
        with torch.no_grad():
            fs.append(op(x.float()).double())
        lqs.append(torch.where(inside, log_u - lq, torch.tensor(-math.inf, dtype=lq.dtype)))
    F, LW = torch.stack(fs), torch.stack(lqs)  # (N, K, m), (N, K)
    Y = y.double()[:, None, :]

    def terms(theta):
        a, b = np.exp(theta)
        return LW - mixed_nll(Y, F, float(a), float(b))

    def nll(theta):
        return -float((torch.logsumexp(terms(theta), 1) - math.log(proposals)).sum())

    res = minimize(nll, np.log([a0, b0]), method="Nelder-Mead", options={"xatol": 1e-6, "fatol": 1e-8})
    w = torch.softmax(terms(res.x), 1)
    ess = float((1 / (w * w).sum(1)).min())
    a, b = np.exp(res.x)
    return float(a), float(b), ess


def marginal_floor(args) -> str:
    """Known-x and x-unknown maximum likelihood on the reference draws: the two floors of noise estimation."""
    op, prior = surrogate_problem()
    rows = ["| (a*, b*) | N | draws | known-x \\|Δa\\|/a | known-x \\|Δb\\|/b | x-unknown ML \\|Δa\\|/a | "
            "x-unknown ML \\|Δb\\|/b | x-unknown â (mean) | smallest ESS |", "|---|---|---|---|---|---|---|---|---|"]
    for a0, b0 in ((0.005, 0.1), (0.01, 0.2)):
        for n in args.ns:
            e, am, ess = [], [], []
            for seed in range(args.seeds):
                x, y = reference_draws(op, n, a0, b0, seed)
                ka, kb = oracle(op, x, y)
                ma, mb, es = marginal_ml(op, prior, y, ka, kb, seed)
                e.append((abs(ka - a0) / a0, abs(kb - b0) / b0, abs(ma - a0) / a0, abs(mb - b0) / b0))
                am.append(ma)
                ess.append(es)
                print(f"marginal {a0},{b0} N={n} draw {seed}: known-x ({ka:.5f}, {kb:.4f}) x-unknown ({ma:.5f}, "
                      f"{mb:.4f}) ESS {es:.0f}", file=sys.stderr, flush=True)
            e = np.array(e).mean(0)
            rows.append(f"| ({a0}, {b0}) | {n} | {args.seeds} | {e[0]:.3f} | {e[1]:.3f} | {e[2]:.3f} | {e[3]:.3f} | "
                        f"{np.mean(am):.5f} | {min(ess):.0f} |")
    return "\n".join(rows)


def oracle_floor(args) -> str:
    """The known-x maximum-likelihood (a, b) over many data draws: how close any estimator can be expected to get."""
    op, prior = surrogate_problem()
    a0, b0 = 0.005, 0.1
    rows = [f"Known-x maximum likelihood of (a, b), truth ({a0}, {b0}), {args.oracle_draws} data draws (seeds 0…):", "",
            "| N | mean \\|Δa\\|/a | mean \\|Δb\\|/b | mean sum | median sum | draws with both < 10 % |",
            "|---|---|---|---|---|---|"]
    for n in args.ns:
        e = []
        for seed in range(args.oracle_draws):
            x, y = simulate(op, prior, n, a0, b0, seed)
            a, b = oracle(op, x, y)
            e.append((abs(a - a0) / a0, abs(b - b0) / b0))
        e = np.array(e)
        rows.append(f"| {n} | {e[:, 0].mean():.3f} | {e[:, 1].mean():.3f} | {e.sum(1).mean():.3f} | "
                    f"{np.median(e.sum(1)):.3f} | {np.mean((e < 0.1).all(1)):.1%} |")
    return "\n".join(rows)


def energy_distance(x: torch.Tensor, y: torch.Tensor, width: torch.Tensor) -> float:
    """2E|X−Y| − E|X−X′| − E|Y−Y′| of samples (n, d), (k, d), coordinates divided by ``width``."""
    x, y = x.double() / width, y.double() / width
    return float(2 * torch.cdist(x, y).mean() - torch.cdist(x, x).mean() - torch.cdist(y, y).mean())


def gixrf(args) -> str:
    op = build_operator("gixrf", GIXRF, (4,))
    prior = build_prior(op.prior_spec())
    a0, b0, n = 0.01, 0.05, 4
    x, y = simulate(op, prior, n, a0, b0, 7)
    t = time.perf_counter()
    em = EMSettings(iterations=args.gixrf_iterations, estep=args.estep, posterior_samples=2000,
                    mstep_importance=args.mstep_importance)
    r = run_em(op, y, prior, em, seed=0)
    t_em = time.perf_counter() - t
    imp = r.info.get("mstep_importance", 0)
    em_label = f"{args.estep.replace('_', '-')}" + (f", M-step and samples importance-resampled ×{imp}" if imp else "")
    lines = [f"EM-DeepGEM ({em_label}, {args.gixrf_iterations} iterations, {t_em:.0f} s): "
             f"(â, b̂) = ({r.a:.5f}, {r.b:.4f}), truth ({a0}, {b0}); N = {n} Ni/Si samples, 40 angles 0.05–1.0°.", "",
             "| sample | field | truth | EM-DeepGEM mean ± sd | forward-KL flow mean ± sd | "
             "forward-KL flow, importance-resampled | MCMC mean ± sd |", "|---|---|---|---|---|---|---|"]
    noise = build_noise({"name": "mixed", "a": r.a, "b": r.b})
    p = MCMCParams(chains=64, burn_in=args.mcmc_burn, steps=args.mcmc_steps, thin=max(1, args.mcmc_steps * 64 // 2000))
    t = time.perf_counter()
    m1, i1 = mcmc_sample(op, noise, prior, y.double(), p, torch.Generator().manual_seed(1))
    t_mcmc = time.perf_counter() - t
    m2, i2 = mcmc_sample(op, noise, prior, y.double(), p, torch.Generator().manual_seed(2))
    rhat = max(i1["rhat"] + i2["rhat"])
    flow = torch.as_tensor(r.samples)
    # the trained conditional flow of `train-sampler` (forward KL on pairs simulated at the EM's (â, b̂)):
    # mass-covering, unlike the reverse-KL flow of the E-step, which is mode-seeking
    fk, t_fk = forward_kl_flow(args, r.a, r.b, y)
    width = prior.high - prior.low
    names = GIXRF["params"]
    ms = lambda t, i, j: f"{float(t[i, :, j].mean()):.3f} ± {float(t[i, :, j].std()):.3f}"  # noqa: E731
    for i in range(n):
        for j, name in enumerate(names):
            lines.append(f"| {i} | {name} | {float(x[i, j]):.3f} | {ms(flow, i, j)} | {ms(fk, i, j)} | "
                         f"{ms(t_fk['imp'], i, j)} | {ms(m1, i, j)} |")
    ed_f = [energy_distance(flow[i], m1[i], width) for i in range(n)]
    ed_k = [energy_distance(fk[i], m1[i], width) for i in range(n)]
    fi = t_fk["imp"]
    ed_i = [energy_distance(fi[i], m1[i], width) for i in range(n)]
    ed_m = [energy_distance(m2[i], m1[i], width) for i in range(n)]
    t_flow_sample = r.info["sample_seconds"] / n

    def agree(t):
        """Largest |mean − MCMC mean| / MCMC sd and the range of sd / MCMC sd over samples and fields."""
        z = ((t.double().mean(1) - m1.mean(1)) / m1.std(1)).abs().max()
        q = t.double().std(1) / m1.std(1)
        return f"{float(z):.2f} | {float(q.min()):.2f}–{float(q.max()):.2f}"

    lines += ["", "| posterior | energy distance to MCMC run 1 (mean over samples) | max \|Δmean\| / MCMC sd | "
              "sd / MCMC sd | time per measurement |", "|---|---|---|---|---|",
              f"| EM-DeepGEM's posterior samples ({em_label}; noise estimated jointly) | {np.mean(ed_f):.4f} | {agree(flow)} | {t_em / n:.1f} s EM incl. training (amortised over y), then {t_flow_sample:.2f} s sampling (2000 samples) |",
              f"| cflow by forward KL at (â, b̂), {args.flow_steps} steps | {np.mean(ed_k):.4f} | {agree(fk)} | {t_fk['train'] / n:.1f} s training (amortised over y), then {t_fk['sample'] / n:.2f} s sampling (2000 samples) |",
              f"| the same cflow, importance-resampled ({args.importance} × 2000 proposals; ESS {float(t_fk['ess'].min()):.0f}–{float(t_fk['ess'].max()):.0f}) | {np.mean(ed_i):.4f} | {agree(fi)} | the training above, then {t_fk['imp_sample'] / n:.2f} s sampling and weighting |",
              f"| MCMC run 2 (MALA, 64 chains, {args.mcmc_burn}+{args.mcmc_steps} steps; split-R̂ ≤ {rhat:.3f}) | {np.mean(ed_m):.4f} | {agree(m2)} | {t_mcmc / n:.1f} s |"]
    return "\n".join(lines)


def forward_kl_flow(args, a, b, y):
    """A cflow trained by ``train_sampler`` on GIXRF pairs at noise (a, b); 2000 samples per measurement,
    plain and importance-resampled from ``args.importance`` × 2000 proposals."""
    import tempfile

    from invsolve.api_samplers import train_sampler
    from invsolve.samplers import load_sampler

    spec = build_operator("gixrf", GIXRF, (4,)).prior_spec()
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "gixrf-cflow.pt"
        t = time.perf_counter()
        train_sampler("cflow", "gixrf", GIXRF, "mixed", {"a": a, "b": b}, prior="uniform", dim=4,
                      prior_params={"low": spec["low"], "high": spec["high"]}, steps=args.flow_steps,
                      output=out, seed=0, device="cpu")
        t_train = time.perf_counter() - t
        smp = load_sampler(out, "cpu")
        t = time.perf_counter()
        xs = smp.sample(y, 2000, torch.Generator().manual_seed(3))
        t_sample = time.perf_counter() - t
        # the same flow's proposals, importance-resampled against the likelihood at (â, b̂)
        t = time.perf_counter()
        xi, ess = importance_resample(smp, smp.operator, build_noise({"name": "mixed", "a": a, "b": b}),
                                      build_prior(spec), y, 2000, 2000 * args.importance, torch.Generator().manual_seed(4))
        return xs.detach().cpu(), {"train": t_train, "sample": t_sample, "imp": xi, "imp_sample": time.perf_counter() - t,
                                   "ess": ess}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ns", type=int, nargs="+", default=[1, 2, 4, 8])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--iterations", type=int, default=100)
    ap.add_argument("--gixrf-iterations", type=int, default=150)
    ap.add_argument("--mcmc-burn", type=int, default=1000)
    ap.add_argument("--flow-steps", type=int, default=4000, help="GIXRF: forward-KL cflow training steps")
    ap.add_argument("--mcmc-steps", type=int, default=2000)
    ap.add_argument("--importance", type=int, default=20, help="GIXRF: proposals per kept sample (forward-KL flow)")
    ap.add_argument("--estep", default="forward_kl", choices=["forward_kl", "reverse_kl", "cfm"])
    ap.add_argument("--mstep-importance", type=int, default=None,
                    help="EM: proposals per M-step sample (default: EMSettings' own, 5 for the flow E-steps)")
    ap.add_argument("--draws", default="reference", choices=["reference", "invsolve"],
                    help="scatterometry data: the reference scripts' draws (seed = run index) or invsolve's own")
    ap.add_argument("--select", default="average", choices=["last", "best_elbo", "average"])
    ap.add_argument("--parts", nargs="+", default=["scatterometry", "gixrf"],
                    choices=["scatterometry", "gixrf", "oracle", "marginal"])
    ap.add_argument("--oracle-draws", type=int, default=200, help="oracle: data draws per N")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--append", action="store_true")
    args = ap.parse_args()
    load0, t0 = load_average(), time.perf_counter()
    torch.set_num_threads(args.threads)
    out = []
    if "scatterometry" in args.parts:
        out += ["### Scatterometry surrogate (3 → 23): EM-DeepGEM noise estimation", "", scatterometry(args), ""]
    if "oracle" in args.parts:
        out += ["### Scatterometry surrogate: the statistical floor", "", oracle_floor(args), ""]
    if "marginal" in args.parts:
        out += ["### Scatterometry surrogate: known-x and x-unknown maximum likelihood", "", marginal_floor(args), ""]
    if "gixrf" in args.parts:
        out += ["### GIXRF (Ni on Si, Ni Kα at 10 keV): recovery and flow vs MCMC", "", gixrf(args), ""]
    text = "\n".join(out)
    print(text)
    if args.append:
        append_results(Path(__file__).with_name("RESULTS.md"), "Metrology", "metrology.py", None, text,
                       threads=args.threads, load0=load0, t0=t0)


if __name__ == "__main__":
    main()
