"""Centre-of-rotation accuracy and speed of ``invsolve.functional.rotation_center`` on ASTRA sinograms.

Sinograms of three phantoms (Shepp-Logan, an off-centre asymmetric one, random ellipses) are projected by ASTRA's
``linear`` CPU projector with the axis moved by ``astra.geom_postalignment`` to known offsets from −8 to +8 px, and
optionally passed through Poisson counts (I0 photons per ray, the thickest ray attenuated to e^−2, then −log).
The table gives |estimate − truth| in pixels (mean, max, and the share within 0.5 px) and the median time per
estimate on one thread.  If ``algotom`` is importable, its ``find_center_vo`` runs on the same sinograms in the
same run, each estimator at its defaults (search ±N/4 for invsolve, ±N/16 for algotom, both 0.25-px steps;
algotom with ``ncore=1``).  Full-turn scans and the projection-pair estimator get rows of
their own at the small size.

Usage:
    python benchmarks/center.py            # full run, appends to benchmarks/RESULTS.md
    python benchmarks/center.py --quick    # 16 offsets, small size only
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np


def phantoms(n: int) -> dict[str, np.ndarray]:
    """Three (n, n) phantoms in [0, ~1]: Shepp-Logan, asymmetric off-centre shapes, eight random ellipses."""
    from skimage.data import shepp_logan_phantom
    from skimage.transform import resize

    y, x = np.mgrid[:n, :n] / n
    asym = 1.0 * ((x - 0.62) ** 2 + (y - 0.35) ** 2 < 0.04)
    asym += 0.6 * (((x - 0.55) + (y - 0.6)) ** 2 / 0.03 + ((x - 0.55) - (y - 0.6)) ** 2 / 0.006 < 1)
    asym[int(0.7 * n):int(0.85 * n), int(0.6 * n):int(0.8 * n)] += 0.8
    rng = np.random.default_rng(0)
    ell = np.zeros((n, n))
    for _ in range(8):
        cx, cy = rng.uniform(0.25, 0.75, 2)
        a, b = rng.uniform(0.03, 0.2, 2)
        t = rng.uniform(0, np.pi)
        u, v = (x - cx) * np.cos(t) + (y - cy) * np.sin(t), -(x - cx) * np.sin(t) + (y - cy) * np.cos(t)
        ell += rng.uniform(0.2, 1.0) * ((u / a) ** 2 + (v / b) ** 2 < 1)
    return {"shepp": resize(shepp_logan_phantom(), (n, n), anti_aliasing=True), "asymmetric": asym, "ellipses": ell}


def sinogram(img: np.ndarray, angles: np.ndarray, ndet: int, center: float) -> np.ndarray:
    """(angles, ndet) sinogram with the axis at pixel-centre index ``center`` ((ndet−1)/2: centred)."""
    import astra

    pg = astra.create_proj_geom("parallel", 1.0, ndet, angles)
    pg = astra.geom_postalignment(pg, (ndet - 1) / 2 - center)
    pid = astra.create_projector("linear", pg, astra.create_vol_geom(*img.shape))
    sid, s = astra.create_sino(img, pid)
    astra.data2d.delete(sid)
    astra.projector.delete(pid)
    return s.astype(np.float64)


def counts(s: np.ndarray, i0: float, rng) -> np.ndarray:
    """Post-log data from Poisson counts, I0 photons per ray, the largest line integral scaled to 2."""
    mu = 2.0 / s.max()
    return -np.log(np.maximum(rng.poisson(i0 * np.exp(-mu * s)), 1) / i0) / mu


def run_case(estimators: dict, img: np.ndarray, angles: np.ndarray, ndet: int, offsets, i0: float, rng,
             pick=lambda s: (s,)) -> dict:
    """{name: (errors, seconds)} of each estimator over ``offsets``; ``pick`` turns a sinogram into its inputs."""
    out = {k: ([], []) for k in estimators}
    mid = (ndet - 1) / 2
    for off in offsets:
        s = sinogram(img, angles, ndet, mid + off)
        s = counts(s, i0, rng) if i0 else s
        for name, fn in estimators.items():
            t = time.perf_counter()
            c = fn(*pick(s))
            out[name][1].append(time.perf_counter() - t)
            out[name][0].append(abs(c - mid - off))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="16 offsets, small size only")
    ap.add_argument("--results", type=Path, default=Path(__file__).with_name("RESULTS.md"))
    ap.add_argument("--no-append", action="store_true", help="print only; do not append to RESULTS.md")
    args = ap.parse_args(argv)

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import astra
    import torch

    from benchmarks._results import append_results, load_average
    from invsolve.functional.rotation_center import center_from_pair, find_center

    torch.set_num_threads(1)
    load0, t0 = load_average(), time.perf_counter()
    try:
        from algotom.prep.calculation import find_center_vo
    except ImportError:
        find_center_vo = None

    def estimators(angles, ndet):
        est = {"invsolve find_center": lambda s: find_center(s, angles).center}
        if find_center_vo is not None:
            est["algotom find_center_vo"] = lambda s: float(find_center_vo(s, ncore=1))
        return est

    # offsets −8 … +8 px in steps that are not multiples of 0.25 px, so the truth falls at every phase of the grid
    sizes = [(128, 183, 180, 16 if args.quick else 61)] + ([] if args.quick else [(512, 727, 720, 7)])
    noise = [0, 1e4, 1e3]
    rows = []
    for n, ndet, n_ang, n_off in sizes:
        offsets = np.linspace(-8, 8, n_off)
        half = np.linspace(0, np.pi, n_ang, endpoint=False)
        imgs = phantoms(n)
        est = estimators(half, ndet)
        for fn in est.values():  # warm-up (numba compiles algotom's kernels on the first call)
            fn(sinogram(imgs["shepp"], half, ndet, (ndet - 1) / 2))
        for i0 in noise:
            rng = np.random.default_rng(int(i0))
            res = {k: ([], []) for k in est}
            for img in imgs.values():
                for k, (e, t) in run_case(est, img, half, ndet, offsets, i0, rng).items():
                    res[k][0].extend(e)
                    res[k][1].extend(t)
            for k, (e, t) in res.items():
                rows.append((f"{n}², {n_ang} angles × {ndet}", "180°", i0, k, np.array(e), np.median(t)))
                print(rows[-1][:4], f"mean {np.mean(e):.3f} max {np.max(e):.3f}", flush=True)
    n, ndet, n_ang, n_off = sizes[0]
    imgs, offsets = phantoms(n), np.linspace(-8, 8, n_off)
    full = np.linspace(0, 2 * np.pi, 2 * n_ang, endpoint=False)
    pair = np.array([0.0, np.pi])
    for i0 in noise:
        rng = np.random.default_rng(int(i0) + 1)
        extra = {("360°", "invsolve find_center (pairs-360)"): ({"f": lambda s: find_center(s, full).center}, full,
                                                              lambda s: (s,)),
                 ("0°/180° rows", "invsolve center_from_pair"): ({"f": lambda a, b: center_from_pair(a, b).center},
                                                               pair, lambda s: (s[0], s[1]))}
        for (scan, name), (fn, angles, pick) in extra.items():
            e, t = [], []
            for img in imgs.values():
                r = run_case(fn, img, angles, ndet, offsets, i0, rng, pick)["f"]
                e.extend(r[0])
                t.extend(r[1])
            rows.append((f"{n}², {len(angles)} angles × {ndet}", scan, i0, name, np.array(e), np.median(t)))

    lines = [
        "Offsets of the axis from (N−1)/2: " + " and ".join(f"{s[3]} (step {16 / (s[3] - 1):.3g} px)" for s in sizes)
        + " evenly spaced from −8 to +8 px by size, so the truth falls at all phases of the 0.25-px search grid; "
        f"{len(imgs)} phantoms each, ASTRA `linear` projector; noise: Poisson counts with I0 photons per ray (thickest "
        "ray e^−2), then −log; each estimator at its defaults (search ±N/4 invsolve, ±N/16 algotom; step 0.25 px); "
        "time: median per estimate, one thread"
        + ("" if find_center_vo else "; algotom not importable, so no algotom rows") + ".",
        "",
        "| sinogram | scan | I0 | estimator | cases | mean \\|err\\| px | max \\|err\\| px | ≤ 0.5 px | ms / estimate |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for size, scan, i0, name, e, t in rows:
        noise_txt = f"{i0:.0e}" if i0 else "none"
        lines.append(f"| {size} | {scan} | {noise_txt} | {name} | {e.size} | {e.mean():.3f} | {e.max():.3f} | "
                     f"{100 * np.mean(e <= 0.5):.0f}% | {1e3 * t:.1f} |")
    lines.append("")
    text = "\n".join(lines)
    print(text)
    if not args.no_append:
        extra = f"; astra-toolbox {astra.__version__}, Python {platform.python_version()}"
        if find_center_vo is not None:
            from importlib.metadata import version

            extra += f", algotom {version('algotom')}"
        append_results(args.results, "Centre of rotation", "center.py", argv, text, load0=load0, t0=t0,
                       threads=1, extra=extra)
        print(f"appended to {args.results}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
