"""Diffusion priors: sample quality across resolutions; posterior quality on ×4 superresolution and limited-angle CT.

Sample quality: FNO and UNet score models are trained on random crops of the 30 slices of
``material/train``, on a window of ``--window`` native pixels (default 128), either multilevel (the window
shown at 32 then 64 pixels) or at the window's own resolution.  Each draws ``--samples`` samples at 64 and
at 128 pixels (reverse SDE), and their energy distance (Riesz-kernel MMD, ½ convention) to random crops of
the held-out ``material/testset`` slices is reported with the training time.  The reference crops at 64
pixels are the 128-pixel windows area-averaged to 64.  The Vendi score and the transport novelty distance
against the training crops are given too.

The energy distance is the V-statistic (it counts each set's zero self-distances), so it is biased upwards by
about the mean distance times (1/N + 1/M); every row uses the same N and M, and the floor row puts fresh
held-out crops in the place of the samples.

Posterior quality: ``--crops`` 64² crops of ``material/test.png`` under ``--problems``: ×4 superresolution
and limited-angle CT (``ct-limited``; the crop keeps LoDoPaB's pixel size, as in ``patch_priors.py``), with
the simulate defaults for noise (Gaussian σ = 0.01; Poisson counts, N₀ = 4096).  Rows: TV at its defaults;
patchNR MAP at its defaults, with a patchNR trained for ``--patchnr-steps`` steps on ``material/learn.png``
(validated on ``val.png``, as ``patch_priors.py``); the diffusion samplers DiffPIR and DPS (16 draws) with the
multilevel FNO prior retrained on a 64-pixel window for ``--posterior-steps`` steps, once with its default
laplace noise and, with ``--peers``, once with white noise.  ``--peers`` adds DeepInverse's DPS and DiffPIR
(``deepinv.sampling``) with that white-noise score network wrapped as a ``deepinv.models.Denoiser`` by
Tweedie's formula (D(x, σ) for x = x₀ + σn in [0, 1] is read at the VP time where s/m = 2σ, the factor 2 for
model units 2x − 1), on the same measurement arrays, through a ``LinearPhysics`` calling invsolve's operator
(its difference from the operator and its adjointness error are printed); ``--peer-draws`` runs of each give
the mean and the intervals.  DeepInverse's data terms are Gaussian: for the Poisson CT data its σ is the
root-mean-square post-log noise estimated from the data.  Columns: the posterior mean's PSNR and SSIM, the
90 % interval coverage (the pixels inside the 5–95 % quantiles of the draws) and the time per measurement
(prior training excluded; it is given in the row).

Usage: python benchmarks/diffusion.py [--parts quality posterior] [--steps 600] [--posterior-steps 3000]
       [--samples 48] [--crops 3] [--problems superres ct-limited] [--patchnr-steps 3000] [--peers | --no-peers]
       [--peer-draws 16] [--diffpir-steps 50] [--dps-steps 200] [--threads 2]
       python benchmarks/diffusion.py --parts posterior      # its own section, "Diffusion priors: posterior"
A run of both parts records the section "Diffusion priors", of one part "Diffusion priors: posterior" or
"Diffusion priors: sample quality".  ``--peers`` needs ``deepinv`` (0.5).
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


def _images(folder: str) -> list[np.ndarray]:
    from invsolve.api_priors import read_training_images

    return read_training_images(str(SHARED / "material" / folder))[0]


def _downsample(x: np.ndarray, size: int) -> np.ndarray:
    t = torch.from_numpy(x)[:, None]
    return torch.nn.functional.interpolate(t, size=(size, size), mode="area")[:, 0].numpy()


def quality_rows(args, train, held) -> list[str]:
    from invsolve import api_diffusion, api_priors
    from invsolve.api_diffusion import _crops

    rng = np.random.default_rng(0)
    ref128 = _crops(held, (args.window, args.window), args.samples * 2, rng)
    refs = {args.window: ref128, 64: _downsample(ref128, 64)}
    train_crops = _crops(train, (args.window, args.window), args.samples, rng)
    rows = []
    configs = [("fno", [32, 64]), ("fno", [args.window]), ("unet", [32, 64])]
    for backbone, levels in configs:
        params = {"window": args.window, "levels": levels, "backbone": backbone, "width": args.width,
                  "batch_size": args.batch}
        t = time.perf_counter()
        prior, _ = api_priors.train_prior("diffusion", train, params=params, steps=args.steps, device="cpu")
        seconds = time.perf_counter() - t
        for size in (64, args.window):
            t = time.perf_counter()
            xs = api_diffusion.sample_prior(prior, size, args.samples, steps=args.sample_steps, seed=1, device="cpu")
            ts = time.perf_counter() - t
            tr = train_crops if size == args.window else _downsample(train_crops, size)
            ev = api_diffusion.evaluate_samples(xs, list(refs[size]), list(tr), crops=len(refs[size]))
            rows.append(f"| {backbone} | {'/'.join(map(str, levels))} | {seconds:.0f} | {size} | "
                        f"{ev['energy_distance']:.3f} | {ev['vendi']:.1f} | {ev['tnovd']:.3f} | "
                        f"{ev['tnovd_memorization']:.3f} | {ts:.0f} |")
            print(rows[-1], flush=True)
    # the floor: fresh held-out crops in the place of the samples (the same set sizes, so the same bias of the
    # V-statistic, which counts each set's zero self-distances)
    fresh = _crops(held, (args.window, args.window), args.samples, rng)
    for size in (64, args.window):
        x = fresh if size == args.window else _downsample(fresh, size)
        ev = api_diffusion.evaluate_samples(x, list(refs[size]), crops=len(refs[size]))
        rows.append(f"| held-out crops in the place of samples | - | - | {size} | {ev['energy_distance']:.3f} | "
                    f"{ev['vendi']:.1f} | - | - | - |")
    return rows


def _material_crops(n: int) -> np.ndarray:
    """n 64² crops of ``material/test.png`` along its diagonal (rows and columns 100, 228, …)."""
    from PIL import Image

    test = np.asarray(Image.open(SHARED / "material" / "test.png"), dtype=np.float32) / 255
    return np.stack([test[r:r + 64, r:r + 64] for r in range(100, 100 + 128 * n, 128)])


def _op_params(problem: str) -> dict:
    """×4 for superresolution; for limited-angle CT the 64² crop keeps LoDoPaB's pixel size (as
    ``patch_priors.py``: 0.26 m over 362 pixels)."""
    from benchmarks.patch_priors import _op_params as params

    return params(problem, 64)


def _import_deepinv():
    """deepinv, imported.  A torchvision wheel built for CUDA beside a CPU-only torch cannot load its compiled
    operators, and its import then fails while registering fake kernels of ``torchvision::nms``/``qnms``; those
    two schemas are declared first in that case (nothing here calls them), so that the Python part imports."""
    try:
        import torchvision  # noqa: F401
    except RuntimeError as exc:
        if "torchvision::" not in str(exc):
            raise
        for k in [k for k in sys.modules if k == "torchvision" or k.startswith("torchvision.")]:
            del sys.modules[k]
        lib = torch.library.Library("torchvision", "FRAGMENT")
        for op in ("nms", "qnms"):
            lib.define(f"{op}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        _LIBS.append(lib)
        import torchvision  # noqa: F401
    import deepinv

    return deepinv


_LIBS: list = []


def _score_denoiser(dinv, prior, window: float):
    """invsolve's score network as a deepinv denoiser D(x, σ): x = x₀ + σ n, x₀ in [0, 1], n white.

    In model units z = 2x − 1 the input is z₀ + 2σ n.  The VP process has z_t = m z₀ + s η, so with t chosen
    such that s(t)/m(t) = 2σ, m·z is distributed as z_t; Tweedie's formula gives ẑ₀ = z − (s/m) ε_θ(m z, t).
    This is exact only for a prior trained with white noise (Q = I); the time solves log m(t) = −½ log(1 + γ²).
    """
    c = prior.config
    a, b = 0.25 * (c.beta_max - c.beta_min), 0.5 * c.beta_min

    class ScoreDenoiser(dinv.models.Denoiser):
        def forward(self, x, sigma, **kwargs):
            from invsolve.diffusion.sde import T_MIN

            n = x.shape[0]
            sig = torch.as_tensor(sigma, dtype=torch.float64, device=x.device).flatten()
            sig = sig.expand(n) if sig.numel() == 1 else sig
            gamma = 2 * sig
            rhs = 0.5 * torch.log1p(gamma ** 2)  # a t² + b t = rhs
            t = ((-b + torch.sqrt(b * b + 4 * a * rhs)) / (2 * a)).clamp(T_MIN, 1.0)
            m, s = prior.marginal(t)
            z = 2 * x[:, 0].float() - 1
            zt = m.float()[:, None, None] * z
            eps = prior.eps(zt, t.float(), window)
            z0 = (zt - s.float()[:, None, None] * eps) / m.float()[:, None, None]
            return ((z0 + 1) / 2)[:, None].to(x.dtype)

    return ScoreDenoiser(device="cpu")


def _physics(dinv, op, y: torch.Tensor, noise: dict):
    """A deepinv LinearPhysics calling invsolve's operator (forward and adjoint), with a Gaussian noise level:
    the preset's σ, or for Poisson CT data the root-mean-square std of the post-log data estimated from y
    (var ≈ e^{μy} / (μ² N₀))."""
    if noise["name"] == "gaussian":
        sigma = float(noise["sigma"])
    else:
        sigma = float(torch.sqrt(torch.exp(noise["mu"] * y.double()).mean() / (noise["mu"] ** 2 * noise["n0"])))
    return dinv.physics.LinearPhysics(A=lambda x, **k: op.forward(x[:, 0].float())[:, None],
                                      A_adjoint=lambda v, **k: op.adjoint(v[:, 0].float())[:, None],
                                      noise_model=dinv.physics.GaussianNoise(sigma=sigma)), sigma


def _peer_rows(args, problem, m, crops, prior_file: str, label: str) -> list[str]:
    """DeepInverse's DPS and DiffPIR with invsolve's score network as their denoiser, on the measurements of m."""
    from invsolve import api
    from invsolve.api_diffusion import load_diffusion_prior
    from invsolve.posterior import interval_coverage, summarize_samples

    dinv = _import_deepinv()
    prior = load_diffusion_prior(prior_file, torch.device("cpu"))
    for p in prior.net.parameters():
        p.requires_grad_(False)
    den = _score_denoiser(dinv, prior, float(prior.config.window))
    op = m.build_operator("cpu")
    y = torch.from_numpy(np.asarray(m.measurement, dtype=np.float32))[:, None]
    physics, sigma = _physics(dinv, op, y, m.noise)
    x = torch.from_numpy(crops)[:, None]
    diff = float((physics.A(x) - op.forward(x[:, 0])[:, None]).abs().max())
    v = torch.randn_like(y)
    adj = float(((physics.A(x) * v).sum() - (x * physics.A_adjoint(v)).sum()).abs() / (physics.A(x) * v).sum().abs())
    print(f"{problem}: deepinv physics against invsolve's forward: max |difference| {diff:.2e}; relative "
          f"adjointness error {adj:.1e}; σ {sigma:.4g}", file=sys.stderr, flush=True)
    n, (h, w) = args.peer_draws, crops.shape[1:]
    yy = y.repeat_interleave(n, 0)
    rows = []
    for name, steps in (("dps", args.dps_steps), ("diffpir", args.diffpir_steps)):
        t = time.perf_counter()
        if name == "dps":
            smp = dinv.sampling.DPS(den, num_steps=steps, device="cpu", rng=torch.Generator().manual_seed(0))
            xs = smp(yy, physics, x_init=(len(yy), 1, h, w), seed=0)
        else:
            torch.manual_seed(0)
            smp = dinv.sampling.DiffPIR(den, dinv.optim.data_fidelity.L2(), sigma=sigma, max_iter=steps,
                                        device="cpu")
            xs = smp(yy, physics)
        per = (time.perf_counter() - t) / len(crops)
        label_row = f"DeepInverse {'DPS' if name == 'dps' else 'DiffPIR'} ({steps} steps, {n} draws; {label})"
        if not torch.isfinite(xs).all():
            rows.append(f"| {problem} | {label_row} | non-finite draws | - | - | {per:.1f} |")
            print(rows[-1], flush=True)
            continue
        post = summarize_samples(xs.detach().float().reshape(len(crops), n, h, w), (0.05, 0.5, 0.95))
        s = api.evaluate(post.mean, crops)
        cov = interval_coverage(crops, post.quantiles, post.levels, 0.9)
        rows.append(f"| {problem} | {label_row} | {s['psnr']:.2f} | {s['ssim']:.3f} | {cov:.3f} | {per:.1f} |")
        print(rows[-1], flush=True)
    return rows


def _train_priors(args, train, tmp: Path) -> dict:
    """The posterior's priors, each trained once: the diffusion prior (laplace noise, as trained for the sample
    quality), with ``--peers`` a white-noise twin (the noise of deepinv's denoiser convention), and patchNR."""
    import warnings

    from invsolve import api_priors

    out = {}
    noises = ["laplace"] + (["white"] if args.peers else [])
    for noise in noises:
        params = {"window": 64, "levels": [32, 64], "width": args.width, "batch_size": args.batch, "noise": noise}
        t = time.perf_counter()
        prior, _ = api_priors.train_prior("diffusion", train, params=params, steps=args.posterior_steps,
                                          device="cpu")
        out[noise] = (str(api_priors.save_prior(prior, tmp / f"d_{noise}.pt")),
                      f"{noise} prior {args.posterior_steps} steps, {time.perf_counter() - t:.0f} s")
        print(f"trained the {noise} diffusion prior: {out[noise][1]}", file=sys.stderr, flush=True)
    if args.patchnr_steps:
        learn, _ = api_priors.read_training_images(str(SHARED / "material" / "learn.png"))
        val, _ = api_priors.read_training_images(str(SHARED / "material" / "val.png"))
        t = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pr, _ = api_priors.train_prior("patchnr", learn, val, {"batch_size": 32, "lr": 1e-4},
                                           steps=args.patchnr_steps, seed=0, device="cpu")
        out["patchnr"] = (str(api_priors.save_prior(pr, tmp / "patchnr.pt")),
                          f"prior {args.patchnr_steps} steps on learn.png, {time.perf_counter() - t:.0f} s")
        print(f"trained patchNR: {out['patchnr'][1]}", file=sys.stderr, flush=True)
    return out


def posterior_rows(args, train, tmp: Path) -> list[str]:
    import warnings

    from invsolve import api
    from invsolve.errors import DataError
    from invsolve.posterior import interval_coverage

    crops = _material_crops(args.crops)
    priors = _train_priors(args, train, tmp)
    rows = []

    def add(row):
        rows.append(row)
        print(row, flush=True)

    for problem in args.problems:
        m = api.simulate(crops, problem, _op_params(problem), device="cpu")
        t = time.perf_counter()
        rec = api.reconstruct(m, "tv", device="cpu")
        s = api.evaluate(rec.images, crops)
        add(f"| {problem} | TV (defaults) | {s['psnr']:.2f} | {s['ssim']:.3f} | - | "
            f"{(time.perf_counter() - t) / len(crops):.1f} |")
        if "patchnr" in priors:
            f, label = priors["patchnr"]
            t = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the brief-prior warning: the row gives the training length
                rec = api.reconstruct(m, None, {}, seed=0, device="cpu", prior="patchnr", prior_file=f)
            per = (time.perf_counter() - t) / len(crops)
            s = api.evaluate(rec.images, crops)
            add(f"| {problem} | patchNR MAP (defaults, {int(rec.iterations_run.max())} iterations; {label}) | "
                f"{s['psnr']:.2f} | {s['ssim']:.3f} | - | {per:.1f} |")
        for noise in [k for k in ("laplace", "white") if k in priors]:
            f, label = priors[noise]
            for sampler, sp in (("diffpir", {"steps": args.diffpir_steps}), ("dps", {"steps": args.dps_steps})):
                name = f"diffusion {sampler} ({sp['steps']} steps, 16 draws; {label})"
                t = time.perf_counter()
                try:
                    post = api.sample_posterior(m, sampler=sampler, prior="diffusion", prior_file=f,
                                                sampler_params=sp, num_samples=16, levels=(0.05, 0.5, 0.95),
                                                device="cpu")
                except DataError as exc:  # non-finite draws: the row says so, the other rows still run
                    print(f"{problem}, {name}: {exc}", file=sys.stderr, flush=True)
                    per = (time.perf_counter() - t) / len(crops)
                    add(f"| {problem} | {name} | non-finite draws | - | - | {per:.1f} |")
                    continue
                per = (time.perf_counter() - t) / len(crops)
                s = api.evaluate(post.summary.mean, crops)
                cov = interval_coverage(crops, post.summary.quantiles, post.summary.levels, 0.9)
                add(f"| {problem} | {name} | {s['psnr']:.2f} | {s['ssim']:.3f} | {cov:.3f} | {per:.1f} |")
        if args.peers:
            f, label = priors["white"]
            try:
                rows += _peer_rows(args, problem, m, crops, f, label)
            except Exception as exc:  # noqa: BLE001 - a peer that fails is a row, not a lost run
                import traceback

                traceback.print_exc()
                add(f"| {problem} | DeepInverse DPS/DiffPIR | failed: {type(exc).__name__} | - | - | - |")
    return rows


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parts", nargs="+", default=["quality", "posterior"], choices=["quality", "posterior"],
                    help="sample quality, posterior quality or both (posterior alone: its own section)")
    ap.add_argument("--steps", type=int, default=600, help="training steps of every prior")
    ap.add_argument("--posterior-steps", type=int, default=3000, help="training steps of the posterior's prior")
    ap.add_argument("--window", type=int, default=128)
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--samples", type=int, default=48)
    ap.add_argument("--sample-steps", type=int, default=100)
    ap.add_argument("--crops", type=int, default=3)
    ap.add_argument("--problems", nargs="+", default=["superres", "ct-limited"], choices=["superres", "ct-limited"])
    ap.add_argument("--patchnr-steps", type=int, default=3000, help="patchNR training steps (0: no patchNR row)")
    ap.add_argument("--peers", action=argparse.BooleanOptionalAction, default=True,
                    help="DeepInverse's DPS and DiffPIR with the score network (needs deepinv)")
    ap.add_argument("--peer-draws", type=int, default=16, help="DeepInverse samples per measurement")
    ap.add_argument("--diffpir-steps", type=int, default=50)
    ap.add_argument("--dps-steps", type=int, default=200)
    add_run_args(ap)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    load0, t0 = load_average(), time.perf_counter()
    train = _images("train")
    rows = []
    if "quality" in args.parts:
        rows += ["| backbone | levels | train [s] | sampled at | energy distance | Vendi | TNovD | memorisation | "
                 "sample [s] |", "|---|---|---|---|---|---|---|---|---|"]
        rows += quality_rows(args, train, _images("testset"))
    if "posterior" in args.parts:
        rows += ([""] if rows else []) + [
            f"| problem ({args.crops} material test crops, 64²) | method | PSNR [dB] | SSIM | 90 % coverage | "
            "s / measurement |", "|---|---|---|---|---|---|"]
        with tempfile.TemporaryDirectory() as d:
            rows += posterior_rows(args, train, Path(d))
    title = {("posterior",): "Diffusion priors: posterior", ("quality",): "Diffusion priors: sample quality"}.get(
        tuple(sorted(set(args.parts))), "Diffusion priors")
    report(args, title, "diffusion.py", argv if argv is not None else sys.argv[1:], "\n".join(rows),
           load0=load0, t0=t0)


if __name__ == "__main__":
    main()
