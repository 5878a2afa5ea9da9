"""Conditional samplers against exact posteriors and classical baselines.

Part ``gmm``: the Gaussian-mixture problem of the conditional Wasserstein paper
(arXiv 2403.18705): d = 5, 10 components of variance 0.01, A = diag(0.1/(i+1)),
σ = 0.1.  For cflow (mixture latent), cfm (independent), cfm (OT) and the
distilled conditional MMD flow (mmd-flow): energy
distance to exact posterior samples over 100 observations (and the
exact-vs-exact value at the same size), 90% interval coverage, training time,
sampling time per observation; and the energy distance against the number of
ODE steps for both couplings.

Part ``images``: ×4 superresolution and limited-angle CT on 64×64 crops of
the material slices: PSNR/SSIM of the posterior mean against bicubic / FBP /
TV and the coverage of mean ± 1.645 std, with the training time.

Usage:
    python benchmarks/conditional.py gmm --steps 3000 [--markdown benchmarks/RESULTS.md]
    python benchmarks/conditional.py images --steps 2000 --sampler-file-superres s.pt
The shared data folder is ``$INVSOLVE_SHARED_DATA`` (default ../shared/data).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _results import append_results, load_average

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("INVSOLVE_SHARED_DATA", ROOT / ".." / "shared" / "data"))
DIAG = [0.1 / (i + 1) for i in range(5)]


def gmm_table(steps: int, n_obs: int, n_samples: int, tmp: Path, only=None,
              mmd_particles: int = 20000) -> tuple[list[str], list[str]]:
    from invsolve.api_samplers import train_sampler, training_prior
    from invsolve.samplers import load_sampler
    from invsolve.samplers.exact import energy_distance, exact_posterior

    runs = [("cflow (mixture latent)", "cflow", {"hidden": 128, "latent": "mixture", "mixture_components": 10}),
            ("cfm (independent)", "cfm", {"hidden": 128, "coupling": "independent"}),
            ("cfm (OT, β=20)", "cfm", {"hidden": 128, "coupling": "ot"}),
            (f"mmd-flow (distilled, {mmd_particles} particles)", "mmd-flow", {"particles": mmd_particles})]
    runs = [r for r in runs if only is None or r[1] in only]
    rows = ["| sampler | steps | energy dist. | exact vs exact | ratio | 90% coverage | train [s] | sample [ms/obs] |",
            "|---|---|---|---|---|---|---|---|"]
    curve = {}
    for label, name, params in runs:
        out = tmp / f"{name}-{params.get('coupling', '')}.pt"
        info = train_sampler(name, "linear", {"diagonal": DIAG}, noise_params={"sigma": 0.1}, prior="gmm", dim=5,
                             sampler_params=params, steps=steps, batch_size=256, output=out, seed=0, device="cpu",
                             overwrite=True)
        smp = load_sampler(out, "cpu")
        prior = training_prior(smp)
        post = exact_posterior(smp.operator, smp.noise_spec, prior)
        g = torch.Generator().manual_seed(123)
        x_true = prior.sample(n_obs, g)
        y = smp.noise.sample(smp.operator(x_true), generator=g)
        e1, e2 = post.sample(y, n_samples, g), post.sample(y, n_samples, g)
        base = float(energy_distance(e2, e1).mean())
        t0 = time.perf_counter()
        xs = smp.sample(y, n_samples, torch.Generator().manual_seed(1))
        ms = 1000 * (time.perf_counter() - t0) / n_obs
        ed = float(energy_distance(xs, e1).mean())
        lo, hi = torch.quantile(xs.double(), torch.tensor([0.05, 0.95], dtype=torch.float64), dim=1)
        cov = float(((x_true >= lo) & (x_true <= hi)).double().mean())
        rows.append(f"| {label} | {steps} | {ed:.4f} | {base:.4f} | {ed / base:.2f} | {cov:.3f} | "
                    f"{info['seconds']:.0f} | {ms:.1f} |")
        print(rows[-1], flush=True)
        if name == "cfm":
            curve[label] = []
            for k in (1, 2, 4, 8, 16, 32):
                smp.set_ode("euler", k)
                xs = smp.sample(y, n_samples, torch.Generator().manual_seed(1))
                curve[label].append(float(energy_distance(xs, e1).mean()))
    head = "| coupling | " + " | ".join(f"{k} Euler steps" for k in (1, 2, 4, 8, 16, 32)) + " |"
    crows = [head, "|---" * 7 + "|"] + [f"| {lab} | " + " | ".join(f"{v:.4f}" for v in vals) + " |"
                                         for lab, vals in curve.items()]
    return rows, crows


def image_table(steps: int, n_test: int, tmp: Path, files: dict[str, str], problems=("superres", "ct-limited"),
                samplers=("cfm",)) -> list[str]:
    from invsolve import api
    from invsolve.api_samplers import train_sampler
    from invsolve.io.images import read_images
    from invsolve.samplers import load_sampler

    test = [read_images(p)[0][0] for p in sorted((SHARED / "material" / "testset").glob("img*.png"))]
    rng = np.random.default_rng(0)
    crops = []
    for i in range(n_test):
        im = test[i % len(test)]
        r, c = rng.integers(0, im.shape[0] - 64), rng.integers(0, im.shape[1] - 64)
        crops.append(im[r: r + 64, c: c + 64])
    x = np.stack(crops).astype(np.float32)
    rows = ["| problem | method | PSNR [dB] | SSIM | std coverage (90%) | train [s] |", "|---|---|---|---|---|---|"]
    for op, kw, classic in (("superres", {"factor": 4}, ["bicubic", "tv"]), ("ct-limited", {}, ["fbp", "tv"])):
        if op not in problems:
            continue
        m = api.simulate(x, op, kw, seed=1, device="cpu")
        for meth in classic:
            r = api.reconstruct(m, meth, device="cpu")
            s = api.evaluate(r.images, x)
            rows.append(f"| {op} | {meth} | {s['psnr']:.2f} | {s['ssim']:.4f} | – | – |")
        for name in samplers:
            path = files.get(op) if len(samplers) == 1 else None
            seconds = float("nan")
            if path is None:
                path = tmp / f"{op}-{name}.pt"
                info = train_sampler(name, op, kw, images=str(SHARED / "material" / "train"), crop=64, steps=steps,
                                     output=path, seed=0, device="cpu", overwrite=True)
                seconds = info["seconds"]
            smp = load_sampler(path, "cpu")
            seconds = smp.provenance.get("train_seconds", seconds)
            xs = smp.sample(torch.from_numpy(m.measurement), 32, torch.Generator().manual_seed(0)).numpy()
            mean, sd = xs.mean(1), xs.std(1, ddof=1)
            s = api.evaluate(mean, x)
            cov = float(np.mean(np.abs(x - mean) <= 1.645 * sd))
            rows.append(f"| {op} | {name} posterior mean (32 samples) | {s['psnr']:.2f} | {s['ssim']:.4f} | "
                        f"{cov:.3f} | {seconds:.0f} |")
            print(rows[-1], flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("part", choices=["gmm", "images"])
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--observations", type=int, default=100)
    ap.add_argument("--samples", type=int, default=500)
    ap.add_argument("--test-crops", type=int, default=8)
    ap.add_argument("--sampler-file-superres", default=None, help="reuse a trained superres sampler")
    ap.add_argument("--sampler-file-ct", default=None, help="reuse a trained ct-limited sampler")
    ap.add_argument("--problems", nargs="+", default=["superres", "ct-limited"], help="image problems to run")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--only", nargs="+", default=None, choices=["cflow", "cfm", "mmd-flow"],
                    help="gmm: only these samplers")
    ap.add_argument("--samplers", nargs="+", default=["cfm"], choices=["cflow", "cfm", "mmd-flow"],
                    help="images: samplers to train and evaluate (a --sampler-file-* needs exactly one)")
    ap.add_argument("--mmd-particles", type=int, default=20000, help="gmm: particles of the mmd-flow sampler")
    ap.add_argument("--markdown", default=None, help="append the tables to this file")
    a = ap.parse_args()
    load0, t0 = load_average(), time.perf_counter()
    torch.set_num_threads(a.threads)
    with tempfile.TemporaryDirectory() as d:
        if a.part == "gmm":
            rows, crows = gmm_table(a.steps, a.observations, a.samples, Path(d), a.only, a.mmd_particles)
            text = "\n".join(rows)
            if len(crows) > 2:
                text += "\n\nEnergy distance to the exact posterior against ODE steps (Euler):\n\n" + "\n".join(crows)
        else:
            files = {"superres": a.sampler_file_superres, "ct-limited": a.sampler_file_ct}
            text = "\n".join(image_table(a.steps, a.test_crops, Path(d), {k: v for k, v in files.items() if v},
                                         a.problems, a.samplers))
    print(text)
    if a.markdown:
        append_results(a.markdown, f"Conditional samplers: {a.part}", "conditional.py", None, text,
                       threads=a.threads, load0=load0, t0=t0)

if __name__ == "__main__":
    main()
