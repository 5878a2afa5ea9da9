"""CPU scaling of batch runs: slices per second against --batch-size and against
1 vs 2 shards (separate processes), with peak memory per slice.

Every configuration runs the real command line, `invsolve reconstruct STACK
--batch-size B [--shard K/N]`, on one simulated CT stack (parallel beam, 180
angles over 180°, 256², Gaussian noise), timed from launch to the last process's
exit (start-up included), in one session so the ratios compare like with like.
Peak memory is each process's maximum resident set size.

Target (issue "Scale"): 2 shards on 2 cores reach at least 1.6× the throughput
of 1 shard.  Threads per process are set with OMP_NUM_THREADS (torch's intra-op
threads and the CT bridge's worker count follow it).

Usage: python benchmarks/scaling.py [--slices 32] [--method tv] [--no-append]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks._results import append_results, load_average  # noqa: E402

_PEAK = ("import resource, runpy, sys; sys.argv = ['invsolve', *sys.argv[1:]];\n"
         "try:\n    runpy.run_module('invsolve', run_name='__main__')\nfinally:\n"
         "    print('PEAK_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)")


def make_stack(folder: Path, n: int, size: int) -> Path:
    from skimage.data import shepp_logan_phantom
    from skimage.transform import resize

    from invsolve import api

    base = resize(shepp_logan_phantom(), (size, size), anti_aliasing=True).astype(np.float32)
    rng = np.random.default_rng(0)
    stack = np.stack([np.roll(base, (int(rng.integers(-8, 9)), int(rng.integers(-8, 9))), (0, 1)) for _ in range(n)])
    m = api.simulate(stack, "ct", {"angles": 180}, "gaussian", {"sigma": 0.5}, seed=0, device="cpu")
    return api.save_measurement(m, folder / "stack.h5")


def run(stack: Path, out: Path, batch: int, shards: int, threads: int, method: list[str]):
    """Wall seconds for all shards (launch to last exit), seconds inside the batch loop (the
    slowest shard's, start-up excluded), and the largest peak RSS (MB) of one process."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    cmds = [[sys.executable, "-c", _PEAK, "reconstruct", str(stack), *method, "--batch-size", str(batch),
             "--device", "cpu", "-o", str(out), "--json", "--overwrite"] + (["--shard", f"{k}/{shards}"] if shards > 1
                                                                         else []) for k in range(1, shards + 1)]
    t0 = time.perf_counter()
    procs = [subprocess.Popen(c, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
             for c in cmds]
    peaks, inner = [], []
    for p in procs:
        out_text, err = p.communicate()
        if p.returncode != 0:
            raise RuntimeError(err[-2000:])
        peaks += [int(ln.split()[1]) / 1024 for ln in err.splitlines() if ln.startswith("PEAK_KB")]
        inner.append(json.loads(out_text.splitlines()[-1])["seconds"])
    return time.perf_counter() - t0, max(inner), max(peaks)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--slices", type=int, default=32)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--method", default="tv", help="tv (iterative, default) or fbp")
    ap.add_argument("--iterations", type=int, default=60, help="TV iterations per slice")
    ap.add_argument("--results", type=Path, default=Path(__file__).with_name("RESULTS.md"))
    ap.add_argument("--no-append", action="store_true")
    args = ap.parse_args(argv)
    method = ["-m", args.method] + (["-M", f"iterations={args.iterations}"] if args.method == "tv" else [])
    load0, t0 = load_average(), time.perf_counter()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        stack = make_stack(Path(tmp), args.slices, args.size)
        out = Path(tmp) / "out.h5"
        configs = [(b, 1, 2) for b in (1, 4, 8, 16)] + [(8, 1, 1), (8, 2, 1)]
        for batch, shards, threads in configs:
            secs, inner, peak = run(stack, out, batch, shards, threads, method)
            rows.append((batch, shards, threads, secs, args.slices / secs, args.slices / inner, peak))
            print(f"batch {batch:2d} shards {shards} threads/process {threads}: {secs:6.2f} s, "
                  f"{args.slices / secs:5.2f} slices/s ({args.slices / inner:5.2f} in the batch loop), "
                  f"peak {peak:.0f} MB", file=sys.stderr)
    base = rows[0][-1]  # peak RSS at batch 1
    lines = ["| batch | shards | threads/process | wall s | slices/s (wall) | slices/s (batch loop) "
             "| peak RSS/process (MB) | MB per extra slice in a batch |", "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {b} | {s} | {t} | {sec:.2f} | {r:.2f} | {ri:.2f} | {pk:.0f} | "
              f"{'' if b == 1 or s > 1 or t != 2 else f'{(pk - base) / (b - 1):.2f}'} |"
              for b, s, t, sec, r, ri, pk in rows]
    by = {(b, s, t): (r, ri) for b, s, t, _, r, ri, _ in rows}
    (w1, i1), (w2t, i2t), (w2, i2) = by[(8, 1, 1)], by[(8, 1, 2)], by[(8, 2, 1)]
    lines.append("")
    lines.append(f"2 shards × 1 thread against 1 shard × 1 thread: **{w2 / w1:.2f}×** wall, **{i2 / i1:.2f}×** in "
                 f"the batch loop (target ≥ 1.6×); against 1 shard × 2 threads: {w2 / w2t:.2f}× wall, "
                 f"{i2 / i2t:.2f}× in the batch loop.")
    table = "\n".join(lines)
    print(table)
    if not args.no_append:
        append_results(args.results, "Batch scaling on the CPU", "scaling.py", argv, table,
                       threads="threads per row", load0=load0, t0=t0,
                       extra=f"; stack of {args.slices} CT slices {args.size}², 180 angles, `{' '.join(method)}`")
    return 0


if __name__ == "__main__":
    sys.exit(main())
