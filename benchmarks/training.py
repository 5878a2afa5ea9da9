"""Training patchNR to a target: recipes raced against the 40,000-step run, on the material slices.

Every recipe trains patchNR on ``material/learn.png`` in a fresh process with one
torch thread; the recipes run ``--parallel`` at a time, so the reference and the
candidates share the machine's load.  Each run validates every ``--val-every``
steps on ``--val-patches`` random patches of ``val.png`` and records the wall
time of each validation.

The target is the reference recipe's validation NLL at its last step.  For each
recipe the table gives the wall time at which its validation NLL first reaches
the target, that time over the reference's whole wall time (the issue asks for
≤ 0.5), and a comparable final figure: every saved prior is scored on one fixed
set of ``--score-patches`` validation patches drawn with one seed.

Recipes (``--recipes``; NAME=steps:batch:lr:schedule:precision), for example
``ref=40000:32:1e-4:constant:fp32`` (the 40,000-step run at the old settings) and
``fast=12000:128:1e-3:cosine:bf16``.

Usage:
    python benchmarks/training.py --recipes ref=40000:32:1e-4:constant:fp32 fast=12000:128:1e-3:cosine:bf16

References:
    Altekrüger et al., PatchNR: learning from very few images by patch normalizing
    flow regularization, Inverse Problems 39 (2023), arXiv 2205.12021.
    Loshchilov and Hutter, SGDR: stochastic gradient descent with warm restarts,
    ICLR 2017 (the cosine schedule).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks._results import load_average, report  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
FIELDS = ("steps", "batch_size", "lr", "schedule", "precision")


def parse_recipe(text: str) -> tuple[str, dict]:
    """``NAME=steps:batch:lr:schedule:precision`` -> (name, settings)."""
    name, _, spec = text.partition("=")
    parts = spec.split(":")
    if not name or len(parts) != len(FIELDS):
        raise SystemExit(f"recipe {text!r}: write NAME=steps:batch:lr:schedule:precision")
    steps, batch, lr, schedule, precision = parts
    return name, {"steps": int(steps), "batch_size": int(batch), "lr": float(lr), "schedule": schedule,
                  "precision": precision}


def _images():
    import torch

    from invsolve import api_priors

    learn, _ = api_priors.read_training_images(str(SHARED / "material" / "learn.png"))
    val, _ = api_priors.read_training_images(str(SHARED / "material" / "val.png"))
    return [torch.from_numpy(im) for im in learn], [torch.from_numpy(im) for im in val]


def one(args) -> int:
    """Child process: train one recipe, save the prior, write the validation curve with wall times as JSON."""
    import torch

    from invsolve.priors.base import save_prior
    from invsolve.priors.training import train_patchnr

    torch.set_num_threads(1)
    _, r = parse_recipe(args.one)
    learn, val = _images()
    curve, t0 = [], time.perf_counter()

    def callback(record):
        if record.get("val_nll") is not None:
            curve.append([record["step"], time.perf_counter() - t0, record["val_nll"]])

    prior, hist = train_patchnr(learn, val, steps=r["steps"], batch_size=r["batch_size"], lr=r["lr"], seed=0,
                                schedule=r["schedule"], precision=r["precision"], val_every=args.val_every,
                                val_patches=args.val_patches, callback=callback)
    wall = time.perf_counter() - t0
    save_prior(prior, args.prior_out, overwrite=True)
    Path(args.json_out).write_text(json.dumps({"curve": curve, "seconds": wall,
                                               "ms_per_step": 1000 * hist["seconds_per_step"]}))
    return 0


def score(prior_file: Path, n: int) -> float:
    """Validation NLL per patch of one prior on a fixed set of ``n`` val.png patches (seed 12345)."""
    import torch

    from invsolve.priors.base import load_prior
    from invsolve.priors.training import _val_nll

    _, val = _images()
    prior = load_prior(prior_file)
    return _val_nll(prior, val, n, torch.Generator().manual_seed(12345))


def _child(args, name: str, spec: str, tmp: Path) -> dict:
    cmd = [sys.executable, __file__, "--one", f"{name}={spec}", "--val-every", str(args.val_every),
           "--val-patches", str(args.val_patches), "--prior-out", str(tmp / f"{name}.pt"),
           "--json-out", str(tmp / f"{name}.json")]
    print(f"start {name}: {spec}", file=sys.stderr, flush=True)
    if subprocess.run(cmd).returncode != 0:  # a diverged recipe is a row of the table, not the end of the race
        print(f"failed {name}", file=sys.stderr, flush=True)
        return {"failed": True}
    out = json.loads((tmp / f"{name}.json").read_text())
    print(f"done {name}: {out['seconds']:.0f} s", file=sys.stderr, flush=True)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipes", nargs="+", default=["ref=40000:32:1e-4:constant:fp32",
                                                      "fast=12000:128:1e-3:cosine:bf16"])
    ap.add_argument("--parallel", type=int, default=2, help="recipes trained at once (one thread each)")
    ap.add_argument("--val-every", type=int, default=500)
    ap.add_argument("--val-patches", type=int, default=8192)
    ap.add_argument("--score-patches", type=int, default=32768)
    ap.add_argument("--keep", type=Path, default=None, help="folder that keeps the trained priors")
    ap.add_argument("--results", type=Path, default=Path(__file__).with_name("RESULTS.md"))
    ap.add_argument("--no-append", action="store_true")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    ap.add_argument("--prior-out", help=argparse.SUPPRESS)
    ap.add_argument("--json-out", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.one:
        return one(args)
    import tempfile

    recipes = [r.partition("=")[::2] for r in args.recipes]
    [parse_recipe(r) for r in args.recipes]
    load0, t0 = load_average(), time.perf_counter()
    with tempfile.TemporaryDirectory() as td:
        tmp = args.keep or Path(td)
        tmp.mkdir(parents=True, exist_ok=True)
        with ThreadPoolExecutor(args.parallel) as pool:
            runs = dict(zip([n for n, _ in recipes], pool.map(lambda r: _child(args, r[0], r[1], tmp), recipes)))
        scores = {n: score(tmp / f"{n}.pt", args.score_patches) for n, _ in recipes if not runs[n].get("failed")}
    ref_name = recipes[0][0]
    ref = runs[ref_name]
    if ref.get("failed"):
        raise SystemExit(f"the reference recipe {ref_name} failed")
    target = ref["curve"][-1][2]
    rows = [f"Target: {ref_name}'s validation NLL at its last step, {target:.2f} ({args.val_patches} patches).",
            "", "| recipe | steps:batch:lr:schedule:precision | ms/step | wall s | val NLL at the end | "
            "s to the target | ÷ reference wall s | fixed-set NLL |", "|---|---|---|---|---|---|---|---|"]
    for name, spec in recipes:
        r = runs[name]
        if r.get("failed"):
            rows.append(f"| {name} | {spec} | – | – | diverged | – | – | – |")
            continue
        hit = next((t for _, t, v in r["curve"] if v <= target), None)
        share = "not reached" if hit is None else f"{hit / ref['seconds']:.2f}"
        rows.append(f"| {name} | {spec} | {r['ms_per_step']:.1f} | {r['seconds']:.0f} | {r['curve'][-1][2]:.2f} | "
                    f"{'–' if hit is None else f'{hit:.0f}'} | "
                    f"{share} | {scores[name]:.2f} |")
    rows.append(f"\nOne torch thread per recipe, {args.parallel} at a time; validation every {args.val_every} steps; "
                f"fixed-set NLL on {args.score_patches} val.png patches (seed 12345), lower is better.")
    table = "\n".join(rows)
    report(args, "Training to a target", "training.py", argv, table, load0=load0, t0=t0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
