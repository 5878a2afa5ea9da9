"""Operator throughput: invsolve's ``ct`` against direct ASTRA calls, and thread scaling.

For each image size, angle count and batch size, the forward projection and
the adjoint of ``build_operator("ct", ...)`` are timed against a raw baseline
that calls ``astra.experimental.direct_FP2D/BP2D`` serially over the batch on
preallocated float32 tensors, with the same projector and geometry.  The
ratio invsolve/raw is measured with one thread, so it shows the bridge's
overhead; a second table gives batch-8 throughput with 1 and 2 threads.  All
times are the minimum over ``--repeats`` runs (three times as many for batch 1,
which is cheap).  ``superres`` and ``inpaint`` are timed too when registered.

Usage:
    python benchmarks/operators.py            # full run, appends to benchmarks/RESULTS.md
    python benchmarks/operators.py --quick    # 256² and 180 angles only
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import torch

TARGET_RATIO = 1.15
TARGET_SPEEDUP = 1.7


def best_times(fns: dict, repeats: int) -> dict:
    """Minimum wall and process-CPU time of each function, as {name: (wall, cpu)}.

    The runs are interleaved so that drifting load from other processes hits
    all functions alike; the CPU time of single-threaded runs is insensitive to
    such load.
    """
    best = {k: (float("inf"), float("inf")) for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            w, c = time.perf_counter(), time.process_time()
            fn()
            w, c = time.perf_counter() - w, time.process_time() - c
            best[k] = (min(best[k][0], w), min(best[k][1], c))
    return best


def threaded(threads: int, fn):
    """``fn`` run with ``threads`` torch threads (invsolve's ASTRA pool follows this count)."""

    def run():
        torch.set_num_threads(threads)
        fn()

    return run


def raw_astra(op):
    """An ASTRA projector with the operator's geometry, and serial FP/BP loops over a batch."""
    import astra
    import astra.experimental

    H, W = op.image_shape
    geom = astra.create_proj_geom("parallel", op.detector_spacing, op.detector_count, op.angles_rad)
    pid = astra.create_projector(op.params.projector, geom, astra.create_vol_geom(H, W))

    def fp(x, y):
        for i in range(x.shape[0]):
            astra.experimental.direct_FP2D(pid, x[i], y[i])

    def bp(y, x):
        for i in range(x.shape[0]):
            astra.experimental.direct_BP2D(pid, x[i], y[i])

    return pid, fp, bp


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="only 256x256 with 180 angles")
    ap.add_argument(
        "--repeats", type=int, default=None, help="timed runs per case (default 3; three times as many for batch 1)"
    )
    ap.add_argument("--threads", type=int, default=2, help="thread count for the scaling table (default 2)")
    ap.add_argument("--scaling-only", action="store_true",
                    help="only the batch-8 thread-scaling table (no raw-ASTRA ratios); pair with --repeats")
    ap.add_argument("--results", type=Path, default=Path(__file__).with_name("RESULTS.md"))
    ap.add_argument("--no-append", action="store_true", help="print only; do not append to RESULTS.md")
    args = ap.parse_args(argv)
    repeats = args.repeats or 3
    sizes = [256] if args.quick else [256, 512]
    angle_counts = [180] if args.quick else [180, 1000]

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import astra

    from benchmarks._results import append_results, load_average

    from invsolve.operators import OPERATORS, build_operator, load_all

    load_all()
    load0, t0 = load_average(), time.perf_counter()
    default_threads = torch.get_num_threads()
    g = torch.Generator().manual_seed(0)
    rows, scaling, failures = [], [], []
    for n in sizes:
        for n_angles in angle_counts:
            op = build_operator("ct", {"angles": n_angles}, (n, n))
            pid, raw_fp, raw_bp = raw_astra(op)
            for batch in ((8,) if args.scaling_only else (1, 8)):
                x = torch.rand((batch, n, n), generator=g)
                y = op(x)  # also the warm-up: ASTRA projector, pool threads
                xb = op.adjoint(y)
                fns = {"fp": threaded(1, lambda: op(x)), "bp": threaded(1, lambda: op.adjoint(y))}
                if not args.scaling_only:
                    fns.update(raw_fp=threaded(1, lambda: raw_fp(x, y)), raw_bp=threaded(1, lambda: raw_bp(y, xb)))
                if batch == 8:
                    fns["fp_n"] = threaded(args.threads, lambda: op(x))
                    fns["bp_n"] = threaded(args.threads, lambda: op.adjoint(y))
                tc = best_times(fns, repeats * (3 if batch == 1 else 1))  # batch 1 is cheap: more runs
                t = {k: v[0] for k, v in tc.items()}
                if batch == 8:
                    t1, tn = t["fp"] + t["bp"], t["fp_n"] + t["bp_n"]
                    scaling.append((f"ct {n}², {n_angles} angles", batch / t1, batch / tn, t1 / tn))
                    if t1 / tn < TARGET_SPEEDUP:
                        failures.append(f"ct {n}²/{n_angles} speedup {t1 / tn:.2f} < {TARGET_SPEEDUP}")
                if args.scaling_only:
                    continue
                ratio = (t["fp"] + t["bp"]) / (t["raw_fp"] + t["raw_bp"])
                cpu_ratio = (tc["fp"][1] + tc["bp"][1]) / (tc["raw_fp"][1] + tc["raw_bp"][1])
                rows.append((n, n_angles, batch, t["raw_fp"], t["fp"], t["raw_bp"], t["bp"], ratio, cpu_ratio))
                print(f"ct {n}² {n_angles} angles batch {batch}: ratio {ratio:.3f} (CPU {cpu_ratio:.3f})", flush=True)
                if ratio > TARGET_RATIO:
                    failures.append(f"ct {n}²/{n_angles}/B{batch} ratio {ratio:.3f} > {TARGET_RATIO}")
            astra.projector.delete(pid)
    for name in ("superres", "inpaint"):
        if name not in OPERATORS:
            print(f"{name}: not registered, skipped")
            continue
        for n in sizes:
            op = build_operator(name, {}, (n, n))
            x = torch.rand((8, n, n), generator=g)
            y = op(x)
            both = lambda: (op(x), op.adjoint(y))  # noqa: E731
            both()
            t = best_times({1: threaded(1, both), 2: threaded(args.threads, both)}, repeats)
            t = {k: v[0] for k, v in t.items()}
            scaling.append((f"{name} {n}²", 8 / t[1], 8 / t[2], t[1] / t[2]))
    torch.set_num_threads(default_threads)

    ms = lambda t: f"{t * 1e3:.1f}"  # noqa: E731
    lines = []
    if args.scaling_only:
        lines.append(f"Minimum over {repeats} interleaved runs; thread scaling only (the ratio table is in the full run).")
    else:
        lines += [
            f"Minimum over {repeats} runs ({3 * repeats} for batch 1); "
            "ct: parallel beam, `linear` projector, detectors covering the diagonal; "
            "ratio = invsolve (FP + adjoint, 1 thread) / raw ASTRA direct_FP2D/BP2D looped over the batch, "
            f"in wall time (target <= {TARGET_RATIO}) and in process CPU time (robust to other load).",
            "",
            "| size | angles | batch | raw FP ms | invsolve FP ms | raw BP ms | invsolve BP ms | ratio | ratio, CPU time |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
    for n, a, b, rf, f, rb, bb, r, rc in rows:
        lines.append(f"| {n}² | {a} | {b} | {ms(rf)} | {ms(f)} | {ms(rb)} | {ms(bb)} | {r:.3f} | {rc:.3f} |")
    lines += [
        "",
        f"Batch-8 throughput, forward + adjoint (target: ct speedup >= {TARGET_SPEEDUP} with {args.threads} threads):",
        "",
        f"| operator | images/s, 1 thread | images/s, {args.threads} threads | speedup |",
        "|---|---|---|---|",
    ]
    for name, r1, rn, s in scaling:
        lines.append(f"| {name} | {r1:.1f} | {rn:.1f} | {s:.2f} |")
    lines += ["", "Targets: " + ("all met" if not failures else "MISSED: " + "; ".join(failures)), ""]
    text = "\n".join(lines)
    print(text)
    if not args.no_append:
        append_results(args.results, "Operators", "operators.py", argv, text, load0=load0, t0=t0,
                       threads=f"1 and {args.threads} threads (see each table)",
                       extra=f"; astra-toolbox {astra.__version__}, Python {platform.python_version()}")
        print(f"appended to {args.results}")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
