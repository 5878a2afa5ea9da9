"""Patch priors: speed against the reference patchNR code, and reconstruction quality.

Part ``speed`` (each case in its own process, for a clean peak-memory figure):
patchNR training time per step (paper architecture: 6×6 patches, 5 blocks of
width 512, batch 32) and MAP time per iteration and peak memory at the paper's
×4 superresolution setting (600×600, 130,000 patches per step) and at 10,000
patches.  Reference figures on a machine like ours (2 CPU cores, torch 2.13 CPU):
52 ms per training step; 27 s per MAP iteration and 7.4 GB at 130,000 patches;
0.94 s per iteration at 10,000 patches.

Part ``epll-speed``: EPLL's EM iteration and MAP regulariser (K = 200, 6×6
patches) with the row blocks in use against the former 2**23-element blocks.

Part ``superres``: ×4 superresolution (the paper's operator and noise) of the
material slices: priors trained on ``material/learn.png`` (patchNR validated on
``val.png``), evaluated on 256×256 centre crops of ``material/test.png`` and
``material/testset/*`` (the presets carried to the crop size by the library:
λ by the share of measurement values, N_p by the share of pixels):
PSNR/SSIM of bicubic, TV, WPP, EPLL, patchNR and zero-shot patchNR, and the
seconds per image.

Part ``ct``: limited-angle and low-dose CT of the same crops: FBP, TV, EPLL, patchNR.

Part ``budget``: what a training budget buys: one patchNR trained on
``learn.png`` and stopped at each of ``--budgets`` (a resumed checkpoint, so the
runs are one run), or the checkpoint files given with ``--budget-files``, then ×4
superresolution MAP of the crops with each; training seconds, validation NLL on
``val.png`` and PSNR/SSIM per budget.

Part ``iterations``: PSNR of TV and of the patchNR MAP estimate at
``--checkpoints`` iteration counts of one run per crop and method, beside the
classical method (``--methods tv`` for TV alone): is each one converged?

Part ``lam``: PSNR against the prior weight (``--lam-factors`` times the preset)
for TV and patchNR, on crops of the held-out ``val.png`` (``--source val``).

Usage:
    python benchmarks/patch_priors.py speed
    python benchmarks/patch_priors.py epll-speed --threads 1
    python benchmarks/patch_priors.py superres --images 3 --train-steps 5000 [--iterations 300]
    python benchmarks/patch_priors.py ct --images 3 --train-steps 5000 [--iterations 300]
    python benchmarks/patch_priors.py budget --budgets 1000 5000 20000 --images 2 --iterations 40
    python benchmarks/patch_priors.py budget --budget-files ck5000.pt ck20000.pt --images 2 --iterations 60
    python benchmarks/patch_priors.py lam --source val --images 1 --patchnr-file prior.pt --iterations 60
    python benchmarks/patch_priors.py iterations --images 2 --patchnr-file prior.pt --checkpoints 60 150 300
The shared data folder is ``$INVSOLVE_SHARED_DATA`` (default ../shared/data).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = Path(os.environ.get("INVSOLVE_SHARED_DATA", ROOT / ".." / "shared" / "data"))
from benchmarks._results import append_results, load_average  # noqa: E402
from benchmarks.patch_speed import epll_speed, speed  # noqa: E402


# -- quality -------------------------------------------------------------------------


def _crops(n_images: int, size: int, source: str = "test") -> list[tuple[str, np.ndarray]]:
    """Centre crops of test.png and testset/img1.. (``source="test"``), or of val.png (``"val"``: the centre, then
    the four corners), the held-out image on which settings may be tuned without touching the test images."""
    from invsolve.io.images import read_images

    if source == "val":
        im = read_images(str(SHARED / "material" / "val.png"))[0][0]
        h, w = im.shape
        at = [((h - size) // 2, (w - size) // 2), (0, 0), (0, w - size), (h - size, 0), (h - size, w - size)]
        return [(f"val.png@{r},{c}", np.ascontiguousarray(im[r: r + size, c: c + size])) for r, c in at[:n_images]]
    files = [SHARED / "material" / "test.png"] + sorted((SHARED / "material" / "testset").glob("*.png"),
                                                       key=lambda p: int("".join(c for c in p.stem if c.isdigit())))
    out = []
    for f in files[:n_images]:
        im = read_images(str(f))[0][0]
        r, c = (im.shape[0] - size) // 2, (im.shape[1] - size) // 2
        out.append((f.name, np.ascontiguousarray(im[r: r + size, c: c + size])))
    return out


def _op_params(op_name: str, crop: int) -> dict:
    """Operator parameters for a crop: ×4 for superresolution; for CT the crop keeps LoDoPaB's pixel size (0.26 m
    over 362 pixels), since the whole 0.26 m field on a small crop would lengthen every ray by 362/crop and starve
    the detector of photons."""
    if op_name == "superres":
        return {"factor": 4}
    return {"domain_size": round(0.26 * crop / 362, 6)}


def _train_priors(args, tmp: Path, names: list[str]) -> dict[str, str]:
    from invsolve import api_priors

    learn, _ = api_priors.read_training_images(str(SHARED / "material" / "learn.png"))
    val, _ = api_priors.read_training_images(str(SHARED / "material" / "val.png"))
    files = {}
    for name in names:
        t0 = time.perf_counter()
        given = {"patchnr": args.patchnr_file, "epll": args.epll_file}.get(name)
        if given:
            files[name] = str(given)
            continue
        if name == "patchnr":
            pr, _ = api_priors.train_prior("patchnr", learn, val, {"batch_size": 32, "lr": 1e-4},
                                           steps=args.train_steps, seed=0, device=args.device)
        elif name == "epll":
            pr, _ = api_priors.train_prior("epll", learn, None, {}, seed=0, device=args.device)
        else:
            pr, _ = api_priors.train_prior("wpp", learn, None, {}, seed=0, device=args.device)
        files[name] = str(api_priors.save_prior(pr, tmp / f"{name}.pt"))
        print(f"trained {name} in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return files


def quality(args, problem: str) -> list[str]:
    from invsolve import api

    crops = _crops(args.images, args.crop)
    if problem == "superres":
        ops = [("superres", {"factor": 4})]
        methods = [("bicubic", None), ("tv", None), ("wpp", "wpp"), ("epll", "epll"), ("patchnr", "patchnr"),
                   ("zero-shot patchnr", "zero")]
    else:
        ops = [(o, _op_params(o, args.crop)) for o in (args.operators or ["ct-limited", "ct-lowdose"])]
        methods = [("fbp", None), ("tv", None), ("epll", "epll"), ("patchnr", "patchnr")]
    if args.methods:
        methods = [(lb, pr) for lb, pr in methods if lb.split()[0] in args.methods]
    rows = _live(args, ["| operator | method | PSNR | SSIM | s/image | λ, N_p, iterations |", "|---|---|---|---|---|---|"])
    with tempfile.TemporaryDirectory() as tmp:
        priors = _train_priors(args, Path(tmp), [p for _, p in methods if p not in (None, "zero")])
        for op_name, op_params in ops:
            stack = np.stack([c for _, c in crops])
            m = api.simulate(stack, op_name, op_params, seed=0, device="cpu")
            for label, pr in methods:
                t0 = time.perf_counter()
                mp = dict(args.map_params) if pr is not None else {}
                if pr is not None and args.iterations:
                    mp["iterations"] = args.iterations
                if pr is None:
                    r = api.reconstruct(m, label, {}, seed=0, device=args.device, batch_size=1)
                elif pr == "zero":
                    r = api.reconstruct(m, None, mp, seed=0, device=args.device, batch_size=1, zero_shot=True,
                                        prior_params={"steps": args.zero_shot_steps})
                else:
                    r = api.reconstruct(m, None, mp, seed=0, device=args.device, batch_size=1, prior=pr,
                                        prior_file=priors[pr])
                sec = (time.perf_counter() - t0) / len(crops)
                sc = api.evaluate(r.images, stack)
                st = r.method.get("settings")
                st = f"{st['lam']:.4g}, {st['n_patches']}, {st['iterations']}" if st else "–"
                rows.append(f"| {op_name} | {label} | {sc['psnr']:.2f} | {sc['ssim']:.4f} | {sec:.1f} | {st} |")
                print(f"  per image PSNR: {np.round(sc['psnr_per_slice'], 2).tolist()}", file=sys.stderr)
                print(rows[-1], file=sys.stderr, flush=True)
    if args.map_params:
        rows.append(f"\nMAP parameters given for the prior rows: {args.map_params}.")
    if args.patchnr_file:
        rows += _prior_line(args)
    if args.epll_file:
        rows.append(f"\nEPLL prior: `{args.epll_file.name}` (fitted beforehand with `invsolve train-prior --prior epll`).")
    return rows


def budget(args) -> list[str]:
    import torch

    from invsolve import api, api_priors
    from invsolve.device import resolve_device
    from invsolve.priors.training import train_patchnr

    learn, _ = api_priors.read_training_images(str(SHARED / "material" / "learn.png"))
    val, _ = api_priors.read_training_images(str(SHARED / "material" / "val.png"))
    dev = resolve_device(args.device)
    learn_t, val_t = [torch.from_numpy(im).to(dev) for im in learn], [torch.from_numpy(im).to(dev) for im in val]
    crops = _crops(args.images, args.crop)
    stack = np.stack([c for _, c in crops])
    m = api.simulate(stack, "superres", {"factor": 4}, seed=0, device="cpu")
    mp = dict(args.map_params)
    if args.iterations:
        mp["iterations"] = args.iterations
    bic = api.evaluate(api.reconstruct(m, "bicubic", {}, device=args.device).images, stack)
    rows = _live(args, ["| training steps | train s (cumulative) | val NLL | PSNR | SSIM | MAP s/image |",
                        "|---|---|---|---|---|---|",
                        f"| bicubic (no prior) | – | – | {bic['psnr']:.2f} | {bic['ssim']:.4f} | – |"])
    def run_map(pf):  # MAP of the crops with one prior file: (scores, seconds per image)
        t0 = time.perf_counter()
        r = api.reconstruct(m, None, mp, seed=0, device=args.device, batch_size=1, prior="patchnr",
                            prior_file=str(pf))
        return api.evaluate(r.images, stack), (time.perf_counter() - t0) / len(crops)

    if args.budget_files:  # checkpoints of one earlier run, e.g. train-prior --checkpoint-every, copied per step
        for pf in args.budget_files:
            steps, val, _, _ = _prior_facts(pf)
            sc, sec = run_map(pf)
            val = "–" if val is None else f"{val:.2f}"
            rows.append(f"| {steps} | – | {val} | {sc['psnr']:.2f} | {sc['ssim']:.4f} | {sec:.1f} |")
            print(f"  per image PSNR: {np.round(sc['psnr_per_slice'], 2).tolist()}", file=sys.stderr)
            print(rows[-1], file=sys.stderr, flush=True)
        rows.append(f"\nPrior files: {', '.join(f'`{Path(f).name}`' for f in args.budget_files)} (training "
                    "time per step: the speed part).")
    else:
        with tempfile.TemporaryDirectory() as tmp:
            ck, train_s = Path(tmp) / "ck.pt", 0.0
            for i, steps in enumerate(sorted(args.budgets)):
                t0 = time.perf_counter()
                prior, hist = train_patchnr(learn_t, val_t, steps=steps, batch_size=32, lr=1e-4, seed=0,
                                            checkpoint_every=steps, checkpoint_path=ck, resume=i > 0)
                train_s += time.perf_counter() - t0
                sc, sec = run_map(api_priors.save_prior(prior, Path(tmp) / f"p{steps}.pt"))
                rows.append(f"| {steps} | {train_s:.0f} | {hist['final']['val_nll']:.2f} | {sc['psnr']:.2f} | "
                            f"{sc['ssim']:.4f} | {sec:.1f} |")
                print(rows[-1], file=sys.stderr, flush=True)
    if args.map_params:
        rows.append(f"\nMAP parameters given: {args.map_params}.")
    return rows


def iterations(args) -> list[str]:
    """PSNR against the iteration count of TV and the patchNR MAP (one run per crop and method, iterates read at
    ``--checkpoints``), beside the classical method: whether each method has converged before the two are compared."""
    import torch

    from invsolve import api
    from invsolve.api_priors import load_prior
    from invsolve.device import batch_generator
    from invsolve.methods.patch_map import MapParams, PatchMAP
    from invsolve.methods.tv import TV, TVParams
    from invsolve.noise import build_noise

    labels = [m for m in (args.methods or ["tv", "patchnr"]) if m in ("tv", "patchnr")]
    if "patchnr" in labels and args.patchnr_file is None:
        raise SystemExit("iterations: give --patchnr-file PRIOR.pt (or --methods tv)")
    op_name = (args.operators or ["superres"])[0]
    crops = _crops(args.images, args.crop, args.source)
    stack = np.stack([c for _, c in crops])
    m = api.simulate(stack, op_name, _op_params(op_name, args.crop), seed=0, device="cpu")
    classical = "bicubic" if op_name == "superres" else "fbp"
    rows = ["| method | iterations | PSNR | SSIM | − TV at the same iterations (dB) | s/image (cumulative) |",
            "|---|---|---|---|---|---|"]
    sc = api.evaluate(api.reconstruct(m, classical, {}, seed=0, device="cpu", batch_size=1).images, stack)
    rows.append(f"| {classical} | – | {sc['psnr']:.2f} | {sc['ssim']:.4f} | – | – |")
    marks = sorted(set(args.checkpoints))
    op, nm = m.build_operator("cpu"), build_noise(m.noise)
    methods = {}
    if "tv" in labels:
        methods["tv"] = TV(TVParams(iterations=marks[-1]))
    if "patchnr" in labels:
        methods["patchnr"] = PatchMAP(MapParams(**{**args.map_params, "iterations": marks[-1]}),
                                      prior=load_prior(str(args.patchnr_file), device="cpu"))
    y = torch.as_tensor(m.measurement)
    scores: dict[str, dict[int, dict]] = {}
    for label, method in methods.items():
        snaps: dict[int, list[np.ndarray]] = {k: [] for k in marks}
        t_at: dict[int, float] = {k: 0.0 for k in marks}
        for i in range(len(crops)):
            t0 = time.perf_counter()

            def on_step(k, x):
                if k in snaps:
                    snaps[k].append(x[0].cpu().numpy().copy())
                    t_at[k] += time.perf_counter() - t0

            method.run(y[i: i + 1], op, nm, generator=batch_generator(0, i, torch.device("cpu")), on_step=on_step)
            print(f"  {label} crop {i}: {[round(float(api.evaluate(snaps[k][-1], stack[i])['psnr']), 2) for k in marks]}",
                  file=sys.stderr, flush=True)
        scores[label] = {k: api.evaluate(np.stack(snaps[k]), stack) | {"s": t_at[k] / len(crops)} for k in marks}
    for label, per in scores.items():
        for k, sc in per.items():
            vs = f"{sc['psnr'] - scores['tv'][k]['psnr']:+.2f}" if "tv" in scores and label != "tv" else "–"
            rows.append(f"| {label} | {k} | {sc['psnr']:.2f} | {sc['ssim']:.4f} | {vs} | {sc['s']:.0f} |")
    notes = []
    if "tv" in methods:
        notes.append(f"TV λ {methods['tv'].lam_for(op):.4g}, lr {methods['tv'].lr_for(op)}")
    if "patchnr" in methods:
        st = methods["patchnr"].settings(op)
        init = methods["patchnr"].params.init
        notes.append(f"patchNR λ {st['lam']:.4g}, N_p {st['n_patches']}, lr {st['lr']}, padding {st['padding']}, "
                     f"started from {'TV (its time included)' if init == 'tv' else init}; the rows are the iterate "
                     f"at each count (the preset's tail mean, average {st['average']:.3g}, is not applied)")
    rows.append(f"\n{'; '.join(notes)} (the presets, carried to {args.crop}² crops); per-crop PSNR on stderr.")
    if "patchnr" in methods:
        rows += _prior_line(args)
    return rows


def lam(args) -> list[str]:
    """PSNR against the prior weight λ (a factor times the preset) for TV and patchNR on held-out crops.

    Tuning λ on the test crops would flatter whichever method is tuned; this part sweeps both methods on crops of
    val.png (``--source val``), so a factor chosen here can be carried to the test crops fairly.
    """
    from invsolve import api
    from invsolve.api_priors import load_prior
    from invsolve.methods.patch_map import MapParams, PatchMAP
    from invsolve.methods.tv import TV, TVParams

    op_name = (args.operators or ["superres"])[0]
    crops = _crops(args.images, args.crop, args.source)
    stack = np.stack([c for _, c in crops])
    m = api.simulate(stack, op_name, _op_params(op_name, args.crop), seed=0, device="cpu")
    op = m.build_operator("cpu")
    methods = args.methods or ["tv", "patchnr"]
    base = {}
    if "tv" in methods:
        base["tv"] = TV(TVParams()).lam_for(op)
    if "patchnr" in methods:
        if args.patchnr_file is None:
            raise SystemExit("lam: give --patchnr-file PRIOR.pt for patchnr")
        prior = load_prior(str(args.patchnr_file), device="cpu")
        base["patchnr"] = PatchMAP(MapParams(), prior=prior).settings(op)["lam"]
    rows = _live(args, ["| method | λ factor | λ | PSNR | SSIM | s/image |", "|---|---|---|---|---|---|"])
    for label, lam0 in base.items():
        for f in args.lam_factors:
            t0 = time.perf_counter()
            mp = {"lam": lam0 * f}
            if args.iterations:
                mp["iterations"] = args.iterations
            if label == "tv":
                r = api.reconstruct(m, "tv", mp, seed=0, device="cpu", batch_size=1)
            else:
                r = api.reconstruct(m, None, {**args.map_params, **mp}, seed=0, device="cpu", batch_size=1,
                                    prior="patchnr", prior_file=str(args.patchnr_file))
            sc = api.evaluate(r.images, stack)
            rows.append(f"| {label} | {f:g} | {lam0 * f:.4g} | {sc['psnr']:.2f} | {sc['ssim']:.4f} | "
                        f"{(time.perf_counter() - t0) / len(crops):.1f} |")
            print(rows[-1], f" per crop {np.round(sc['psnr_per_slice'], 2).tolist()}", file=sys.stderr, flush=True)
    rows.append(f"\n{op_name} on {', '.join(n for n, _ in crops)} ({args.crop}²); factor 1 is the preset "
                f"(carried to the crop size for patchNR); iterations: {args.iterations or 'the presets'}"
                f"{f'; patchNR MAP parameters given: {args.map_params}' if args.map_params else ''}.")
    if "patchnr" in base:
        rows += _prior_line(args)
    return rows


def _map_params(args) -> dict:
    """The MAP parameters given on the command line (``--map-param KEY=VALUE``, ``--map-init``) for the prior rows."""
    out = {} if args.map_init == "classical" else {"init": args.map_init}
    for item in args.map_param:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--map-param {item!r}: write KEY=VALUE, e.g. padding=3")
        try:
            out[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip()] = value  # a word, e.g. init=tv
    return out


def _live(args, header: list[str]) -> list[str]:
    """The part's table as it grows: a stopped run (Ctrl-C, SIGTERM) still appends the rows finished so far."""
    args.rows = list(header)
    args.header_rows = len(header)
    return args.rows


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def _prior_facts(path: Path) -> tuple:
    """(training steps, validation NLL or None, "prior" or "checkpoint", image names) of a patchNR file."""
    from invsolve.priors.base import read_prior_file

    f = read_prior_file(path)
    prov, tr = f.get("provenance") or {}, f.get("training") or {}
    steps = prov.get("steps", tr.get("step"))
    val = prov.get("val_nll", (tr.get("history", {}).get("val") or [[None, None]])[-1][1])
    images = prov.get("images") or []  # a checkpoint stores image fingerprints, not names
    return steps, val, "checkpoint" if not prov and tr else "prior", images


def _prior_line(args) -> list[str]:
    """The prior file's training steps, images and validation NLL (a final file or a training checkpoint)."""
    steps, val, kind, images = _prior_facts(args.patchnr_file)
    val = "no validation image" if val is None else f"val NLL {val:.2f}"
    return [f"\npatchNR {kind}: `{args.patchnr_file.name}`, trained {steps} steps on "
            f"{', '.join(Path(str(i)).name for i in images) or 'its training images'} ({val})."]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("part", choices=["speed", "epll-speed", "superres", "ct", "budget", "iterations", "lam"])
    ap.add_argument("--checkpoints", type=int, nargs="+", default=[30, 60, 100, 150, 200, 300],
                    help="iterations: the iteration counts to report (the largest is run)")
    ap.add_argument("--budgets", type=int, nargs="+", default=[1000, 5000, 20000], help="budget: training steps")
    ap.add_argument("--budget-files", type=Path, nargs="+", default=None,
                    help="budget: evaluate these patchNR files (checkpoints of one run) instead of training")
    ap.add_argument("--images", type=int, default=11, help="test crops (test.png, then testset/img1..)")
    ap.add_argument("--crop", type=int, default=256)
    ap.add_argument("--source", choices=["test", "val"], default="test",
                    help="lam and iterations: crops of the test images or of the held-out val.png")
    ap.add_argument("--lam-factors", type=float, nargs="+", default=[0.5, 1.0, 2.0],
                    help="lam: multiples of the preset λ to try")
    ap.add_argument("--train-steps", type=int, default=5000, help="patchNR training steps (quality parts)")
    ap.add_argument("--train-steps-speed", type=int, default=60)
    ap.add_argument("--train-only", action="store_true", help="speed: training cases only (no MAP cases)")
    ap.add_argument("--compiled", action="store_true", help="speed: also time training with -P compile=true")
    ap.add_argument("--methods", nargs="+", default=None,
                    choices=["bicubic", "fbp", "tv", "wpp", "epll", "patchnr", "zero-shot"],
                    help="superres/ct: only these methods (default: all of the part)")
    ap.add_argument("--operators", nargs="+", default=None, choices=["ct-limited", "ct-lowdose", "superres"],
                    help="ct: only these operators (default: both); iterations: the operator (default superres)")
    ap.add_argument("--patchnr-file", type=Path, default=None,
                    help="superres/ct: a patchNR prior file to use instead of training one (--train-steps)")
    ap.add_argument("--epll-file", type=Path, default=None,
                    help="superres/ct: an EPLL prior file to use instead of fitting one on learn.png")
    ap.add_argument("--iterations", type=int, default=None,
                    help="MAP iterations (default: the presets); the lam part gives them to TV as well")
    ap.add_argument("--map-init", choices=["classical", "tv"], default="classical",
                    help="the prior MAP's starting point (tv: TV's reconstruction); as --map-param init=…")
    ap.add_argument("--map-param", action="append", default=[], metavar="KEY=VALUE",
                    help="a MAP parameter for the prior rows (repeatable), e.g. padding=3; "
                         "the lam and iterations parts' own settings take precedence")
    ap.add_argument("--zero-shot-steps", type=int, default=2000)
    ap.add_argument("--map-reps", type=int, default=3, help="timed MAP iterations per speed case")
    ap.add_argument("--results", type=Path, default=Path(__file__).with_name("RESULTS.md"))
    ap.add_argument("--no-append", action="store_true")
    ap.add_argument("--threads", type=int, default=2, help="torch threads (quality parts)")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"],
                    help="superres, ct and budget: train and reconstruct there (the measurements are simulated "
                         "on the CPU, so every device sees the same data)")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(min(args.threads, os.cpu_count() or 1))
    load0 = load_average()
    t0 = time.perf_counter()
    parts = {"speed": speed, "epll-speed": epll_speed, "budget": budget, "iterations": iterations, "lam": lam}
    args.map_params = _map_params(args)  # parsed once; every part reads args.map_params
    args.rows, args.header_rows, title, code = [], 0, f"Patch priors: {args.part}", 0
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        rows = parts[args.part](args) if args.part in parts else quality(args, args.part)
    except KeyboardInterrupt:
        if len(args.rows) <= args.header_rows:
            print("stopped before the first row was complete; nothing appended", file=sys.stderr)
            return 130
        rows = args.rows + ["\nStopped before the end: the rows above are complete, the rest were not run."]
        title, code = f"{title}, stopped", 130
    if args.device != "cpu" and args.part in ("superres", "ct", "budget"):
        from invsolve.device import resolve_device

        dev = resolve_device(args.device)
        where = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "the CPU"
        rows.append(f"\nTrained and reconstructed on {where} (measurements simulated on the CPU).")
    table = "\n".join(rows)
    print(table)
    if not args.no_append:
        append_results(args.results, title, "patch_priors.py", argv, table, load0=load0, t0=t0)
    return code


if __name__ == "__main__":
    sys.exit(main())
