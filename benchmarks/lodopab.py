"""LoDoPaB-CT's FBP protocol through the CLI, on files in exactly LoDoPaB's layout.

The material slices (``$INVSOLVE_SHARED_DATA/material``: test.png, val.png, learn.png, testset/img*.png,
train/slice*.png; pixel-identical duplicates dropped) are cut to their central 362² (as LoDoPaB cuts its 512²
DICOM slices to the central 362²; ``--fit resize`` resizes the whole 600² slice instead), taken as μ/μ_max in
[0, 1], optionally scaled (``--scales``), and simulated with invsolve's ``ct-lowdose`` (seeded: 1000 ODL
angles, 513 detectors spanning the diagonal, Poisson N0 = 4096, μ_max = 81.35858 m⁻¹).  They are written as
``ground_truth_test_000.hdf5`` and ``observation_test_000.hdf5`` (dataset ``data``, float32, h5py's automatic
chunks, no other attributes), and reconstructed and evaluated with the CLI as a LoDoPaB user would:

    invsolve reconstruct --operator ct-lowdose --method fbp -M filter=hann -M frequency_scaling=0.641025641025641 \\
        observation_test_000.hdf5:/data -o fbp.h5
    invsolve evaluate fbp.h5 --reference ground_truth_test_000.hdf5:/data --json

plus Ram-Lak at frequency scaling 1.0 (dival's ``FBPReconstructor`` defaults) for comparison.  PSNR and SSIM
are given with data range 1 (``invsolve evaluate``) and with dival's per-image data range max(gt) − min(gt)
(computed here with scikit-image on the stored arrays).

LoDoPaB's own test-set FBP baseline (Hann 0.641: about 30.5 dB mean as reported by dival users; 27.3 dB on
test sample 0, dival issue #27) is on human chest CT.  The material slices are a different image class, and the
simulation here runs on the 362² grid itself (LoDoPaB projects a bilinear 1000² upsampling), so the figures
are the protocol's, not LoDoPaB's.  At full contrast the slices attenuate far more than a body does (mean
μ/μ_max ≈ 0.45 against ≈ 0.25 for water): rays through 0.26 m of them keep well under one of the 4096 photons,
and the zero-count share is reported; ``--scales 0.25`` puts them at water-like attenuation.

Usage:
    python benchmarks/lodopab.py                        # all unique slices, scales 1.0 and 0.25
    python benchmarks/lodopab.py --slices 4 --no-append  # a quick look
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

N_IMG = 362
ZERO_COUNT_OBS = 0.11639  # dival flags observations at or above this as replaced zero counts
FILTERS = {"Hann 0.641": ("hann", "0.641025641025641"), "Ram-Lak 1.0": ("ram-lak", "1.0")}


def _natural(p: Path):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", p.name)]


def material_files(root: Path) -> list[Path]:
    """The material slices in a fixed order: test, val, learn, testset/img*, train/slice* (numeric order)."""
    files = [root / n for n in ("test.png", "val.png", "learn.png")]
    files += sorted((root / "testset").glob("img*.png"), key=_natural)
    files += sorted((root / "train").glob("slice*.png"), key=_natural)
    return [f for f in files if f.is_file()]


def load_slices(root: Path, count: int | None, fit: str) -> tuple[np.ndarray, list[str], list[str]]:
    """(N, 362, 362) float32 in [0, 1], the names used, and the duplicates dropped (pixel-identical)."""
    from skimage.transform import resize

    from invsolve.io.images import read_images

    seen: dict[str, str] = {}
    out, names, dropped = [], [], []
    for f in material_files(root):
        a = read_images(str(f))[0][0]
        name = str(f.relative_to(root))
        key = hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()
        if key in seen:
            dropped.append(f"{name} = {seen[key]}")
            continue
        seen[key] = name
        if fit == "crop":
            top, left = (a.shape[0] - N_IMG) // 2, (a.shape[1] - N_IMG) // 2
            a = a[top:top + N_IMG, left:left + N_IMG]
        else:
            a = resize(a, (N_IMG, N_IMG), anti_aliasing=True)
        out.append(np.clip(a, 0, 1).astype(np.float32))
        names.append(name)
        if count is not None and len(out) == count:
            break
    if not out:
        raise SystemExit(f"no material slices under {root} (set INVSOLVE_SHARED_DATA)")
    return np.stack(out), names, dropped


def write_lodopab(folder: Path, gt: np.ndarray, obs: np.ndarray) -> None:
    """The pair of test files exactly as LoDoPaB stores them: dataset 'data', float32, chunks=True."""
    import h5py

    with h5py.File(folder / "ground_truth_test_000.hdf5", "w") as f:
        f.create_dataset("data", data=gt.astype(np.float32), chunks=True)
    with h5py.File(folder / "observation_test_000.hdf5", "w") as f:
        f.create_dataset("data", data=obs.astype(np.float32), chunks=True)


def cli(folder: Path, *args: str) -> tuple[str, float]:
    """Run ``invsolve ARGS`` in ``folder``; (stdout, wall seconds)."""
    t = time.perf_counter()
    res = subprocess.run([sys.executable, "-m", "invsolve", *args], cwd=folder, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if res.returncode != 0:
        raise SystemExit(f"invsolve {' '.join(args)} failed ({res.returncode}):\n{res.stderr}")
    return res.stdout, wall


def run_protocol(folder: Path, label: str, filt: str, scaling: str) -> dict:
    """Reconstruct and evaluate through the CLI; metrics with both data ranges, seconds per slice."""
    import h5py
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    out = f"fbp_{filt}.h5"
    _, wall = cli(folder, "reconstruct", "--operator", "ct-lowdose", "--method", "fbp", "-M", f"filter={filt}",
                  "-M", f"frequency_scaling={scaling}", "observation_test_000.hdf5:/data", "-o", out, "-q")
    stdout, _ = cli(folder, "evaluate", out, "--reference", "ground_truth_test_000.hdf5:/data", "--json")
    row = json.loads(stdout.splitlines()[-1])
    with h5py.File(folder / out, "r") as f:
        rec = f["reconstruction"][()].astype(np.float64)
        compute = json.loads(f.attrs["timings"]).get("reconstruct", float("nan"))
    with h5py.File(folder / "ground_truth_test_000.hdf5", "r") as f:
        gt = f["data"][()].astype(np.float64)
    per = row.get("psnr_per_slice", [row["psnr"]])
    p1 = [peak_signal_noise_ratio(g, r, data_range=1.0) for g, r in zip(gt, rec)]
    pr = [peak_signal_noise_ratio(g, r, data_range=g.max() - g.min()) for g, r in zip(gt, rec)]
    sr = [structural_similarity(g, r, data_range=g.max() - g.min()) for g, r in zip(gt, rec)]
    n = len(gt)
    return {"filter": label, "psnr1": row["psnr"], "ssim1": row["ssim"], "psnr_r": float(np.mean(pr)),
            "ssim_r": float(np.mean(sr)), "psnr1_min": float(np.min(per)), "psnr1_max": float(np.max(per)),
            "check": float(np.max(np.abs(np.asarray(per) - p1))), "compute": compute / n, "wall": wall / n}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--slices", type=int, default=None, help="first N unique material slices (default: all)")
    ap.add_argument("--fit", choices=("crop", "resize"), default="crop",
                    help="600² -> 362²: the central crop (default, like LoDoPaB's 512² -> 362²) or a resize")
    ap.add_argument("--scales", type=float, nargs="+", default=[1.0, 0.25],
                    help="multiply the [0, 1] slices by each (0.25: water-like attenuation); default 1.0 0.25")
    ap.add_argument("--seed", type=int, default=0, help="seed of the Poisson simulation")
    ap.add_argument("--out", type=Path, default=None, help="keep the files in this folder (default: a temp folder)")
    ap.add_argument("--results", type=Path, default=Path(__file__).with_name("RESULTS.md"))
    ap.add_argument("--no-append", action="store_true", help="print only; do not append to RESULTS.md")
    args = ap.parse_args(argv)

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import torch

    from benchmarks._results import append_results, load_average

    from invsolve import api

    load0, t0 = load_average(), time.perf_counter()
    default = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
    shared = Path(os.environ.get("INVSOLVE_SHARED_DATA", default))
    gt0, names, dropped = load_slices(shared / "material", args.slices, args.fit)
    print(f"{len(gt0)} slices ({args.fit}), duplicates dropped: {', '.join(dropped) or 'none'}", flush=True)
    tmp = None if args.out else tempfile.TemporaryDirectory(prefix="lodopab-")
    base = args.out or Path(tmp.name)
    rows = []
    try:
        for scale in args.scales:
            folder = base / f"scale{scale:g}"
            folder.mkdir(parents=True, exist_ok=True)
            gt = np.clip(gt0 * scale, 0, 1).astype(np.float32)
            t = time.perf_counter()
            obs = np.asarray(api.simulate(gt, operator="ct-lowdose", seed=args.seed).measurement, dtype=np.float32)
            sim = (time.perf_counter() - t) / len(gt)
            write_lodopab(folder, gt, obs)
            zero = float((obs >= ZERO_COUNT_OBS).mean())
            for label, (filt, scaling) in FILTERS.items():
                r = run_protocol(folder, label, filt, scaling)
                r.update(scale=scale, zero=zero, sim=sim, mean_gt=float(gt.mean()))
                rows.append(r)
                print(f"scale {scale:g}, {label}: {r['psnr1']:.2f} dB (range 1), {r['psnr_r']:.2f} dB (dival range)",
                      flush=True)
    finally:
        if tmp is not None:
            tmp.cleanup()

    check = max(r["check"] for r in rows)
    lines = [
        f"{len(gt0)} material slices at 362² ({'central crop' if args.fit == 'crop' else 'resize'} of 600²"
        + (f"; pixel-identical duplicates dropped: {', '.join(dropped)}" if dropped else "")
        + f"), simulated with invsolve's `ct-lowdose` (seed {args.seed}), written in "
        "LoDoPaB's layout and run through `invsolve reconstruct --operator ct-lowdose --method fbp -M filter=… "
        "-M frequency_scaling=… observation_test_000.hdf5:/data -o fbp.h5` and `invsolve evaluate fbp.h5 "
        "--reference ground_truth_test_000.hdf5:/data --json`. Range 1: `invsolve evaluate` (scikit-image on the "
        f"same arrays agrees to {check:.1e} dB); dival range: max(gt) − min(gt) per image (`dival.measure`). "
        "Zero-count rays: share of observations ≥ 0.11639 (N = 0 replaced by 0.1). Seconds per slice: the FBP "
        "as the output file's timings record it, and the whole CLI command (start-up and I/O included) / slices.",
        "",
        "| scale | mean μ/μ_max | zero-count rays | filter | PSNR, range 1 | SSIM, range 1 | PSNR, dival range | "
        "SSIM, dival range | PSNR range 1, min–max | FBP s/slice | CLI s/slice | simulate s/slice |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['scale']:g} | {r['mean_gt']:.3f} | {100 * r['zero']:.1f}% | {r['filter']} | "
                     f"{r['psnr1']:.2f} | {r['ssim1']:.4f} | {r['psnr_r']:.2f} | {r['ssim_r']:.4f} | "
                     f"{r['psnr1_min']:.2f}–{r['psnr1_max']:.2f} | {r['compute']:.2f} | {r['wall']:.2f} | "
                     f"{r['sim']:.2f} |")
    lines += [
        "",
        "LoDoPaB's own test-set FBP baseline (Hann 0.641: about 30.5 dB mean as reported by dival users; 27.3 dB "
        "on test sample 0) is on human chest CT. The material slices are another image class, simulated on the "
        "362² grid rather than LoDoPaB's 1000² upsampling, so these figures are the protocol's, not LoDoPaB's.",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if not args.no_append:
        append_results(args.results, "LoDoPaB-CT protocol (FBP through the CLI)", "lodopab.py", argv, text,
                       load0=load0, t0=t0, threads=f"{torch.get_num_threads()} thread(s) per CLI process")
        print(f"appended to {args.results}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
