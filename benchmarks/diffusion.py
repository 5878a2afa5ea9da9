"""Diffusion priors: sample quality across resolutions, and posterior quality on ×4 superresolution.

Sample quality: FNO and UNet score models are trained on random crops of the 30 slices of
``material/train``, on a window of ``--window`` native pixels (default 128), either multilevel (the window
shown at 32 then 64 pixels) or at the window's own resolution.  Each draws ``--samples`` samples at 64 and
at 128 pixels (reverse SDE), and their energy distance (Riesz-kernel MMD, ½ convention) to random crops of
the held-out ``material/testset`` slices is reported with the training time.  The reference crops at 64
pixels are the 128-pixel windows area-averaged to 64.  The Vendi score and the transport novelty distance
against the training crops are given too.

Posterior quality: ×4 superresolution of ``--crops`` 64² crops of ``material/test.png`` (the simulate
defaults for noise), with the multilevel FNO prior retrained on a 64-pixel window: the DiffPIR posterior mean's
PSNR and SSIM, the 90 % interval coverage and the time per measurement, against TV at its defaults.
The energy distance is the V-statistic (it counts each set's zero self-distances), so it is biased upwards by
about the mean distance times (1/N + 1/M); every row uses the same N and M, and the floor row puts fresh
held-out crops in the place of the samples.

Usage: python benchmarks/diffusion.py [--steps 600] [--posterior-steps 3000] [--samples 48] [--crops 3]
       [--threads 2]
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


def posterior_rows(args, train, tmp: Path) -> list[str]:
    from PIL import Image

    from invsolve import api, api_priors
    from invsolve.api_priors import save_prior
    from invsolve.posterior import interval_coverage

    test = np.asarray(Image.open(SHARED / "material" / "test.png"), dtype=np.float32) / 255
    crops = np.stack([test[r:r + 64, r:r + 64] for r in range(100, 100 + 128 * args.crops, 128)])
    m = api.simulate(crops, "superres", {"factor": 4}, device="cpu")
    params = {"window": 64, "levels": [32, 64], "width": args.width, "batch_size": args.batch}
    t = time.perf_counter()
    prior, _ = api_priors.train_prior("diffusion", train, params=params, steps=args.posterior_steps, device="cpu")
    train_s = time.perf_counter() - t
    f = tmp / "d.pt"
    save_prior(prior, f)
    rows = []
    t = time.perf_counter()
    rec = api.reconstruct(m, "tv", device="cpu")
    tv_s = (time.perf_counter() - t) / len(crops)
    s = api.evaluate(rec.images, crops)
    rows.append(f"| TV (defaults) | {s['psnr']:.2f} | {s['ssim']:.3f} | - | {tv_s:.1f} |")
    for sampler, sp in (("diffpir", {"steps": 50}), ("dps", {"steps": 200})):
        t = time.perf_counter()
        post = api.sample_posterior(m, sampler=sampler, prior="diffusion", prior_file=str(f), sampler_params=sp,
                                    num_samples=16, levels=(0.05, 0.5, 0.95), device="cpu")
        per = (time.perf_counter() - t) / len(crops)
        s = api.evaluate(post.summary.mean, crops)
        cov = interval_coverage(crops, post.summary.quantiles, post.summary.levels, 0.9)
        rows.append(f"| diffusion {sampler} ({sp['steps']} steps, 16 draws; prior {args.posterior_steps} steps, "
                    f"{train_s:.0f} s) | {s['psnr']:.2f} | {s['ssim']:.3f} | {cov:.3f}"
                    f" | {per:.1f} |")
        print(rows[-1], flush=True)
    return rows


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=600, help="training steps of every prior")
    ap.add_argument("--posterior-steps", type=int, default=3000, help="training steps of the posterior's prior")
    ap.add_argument("--window", type=int, default=128)
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--samples", type=int, default=48)
    ap.add_argument("--sample-steps", type=int, default=100)
    ap.add_argument("--crops", type=int, default=3)
    add_run_args(ap)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    load0, t0 = load_average(), time.perf_counter()
    train, held = _images("train"), _images("testset")
    rows = ["| backbone | levels | train [s] | sampled at | energy distance | Vendi | TNovD | memorisation | "
            "sample [s] |", "|---|---|---|---|---|---|---|---|---|"]
    rows += quality_rows(args, train, held)
    rows += ["", "| ×4 superresolution, material test crops | PSNR [dB] | SSIM | 90 % coverage | s / measurement |",
             "|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as d:
        rows += posterior_rows(args, train, Path(d))
    report(args, "Diffusion priors", "diffusion.py", argv if argv is not None else sys.argv[1:], "\n".join(rows),
           load0=load0, t0=t0)


if __name__ == "__main__":
    main()
