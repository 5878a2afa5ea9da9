"""Sliced energy-distance gradient: time and memory against the particle count.

For N = M in {1k, 4k, 16k, 64k, 256k, 1M} at d = 784 and P = 500 slices (float32):

* ``sort``: :func:`invsolve.samplers.mmd_kernel.sliced_energy_gradient` (one call,
  directions drawn inside);
* ``floor``: the matrix products alone (project particles and targets, back-project
  onto the particles: 2·P·(2N + M)·d FLOP), chunked like ``sort``;
* ``naive``: autograd of the exact pairwise energy distance (torch.cdist), N ≤ 16k;
* ``geomloss``: ``SamplesLoss("energy", backend="tensorized")`` if geomloss imports
  (no KeOps), N ≤ 16k;
* ``reference``: with ``--reference-repo DIR``, the 1-D sorting derivative and the
  slicing constant of a local checkout of johertrich/sliced_MMD_flows, driven with
  conv1d projections as in its scripts (nothing of it is copied here), N ≤ 64k.

Each (method, N) runs in a fresh subprocess, so its peak resident memory
(``ru_maxrss``, data included) is its own.  Times are the minimum over repeats
after one warm-up (N > 64k: one cold run).  ``diff`` is the largest difference between ``sort`` and the
plain torch.sort formula along the same 20 slices, relative to the largest entry.

Usage:
    python benchmarks/mmd.py                 # all sizes, appends to benchmarks/RESULTS.md
    python benchmarks/mmd.py --quick         # 1k, 4k, 16k
    python benchmarks/mmd.py --reference-repo /tmp/sliced_MMD_flows
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch
from _results import append_results, load_average

D, P = 784, 500
NAIVE_MAX, REF_MAX = 16_384, 65_536


def data(n: int):
    g = torch.Generator().manual_seed(n)
    return torch.rand(n, D, generator=g), torch.rand(n, D, generator=g).square_()


def reference_fn(repo: str):
    """The reference repo's 1-D derivative and constant, with conv1d projections as in its scripts."""
    import types

    for name in ("matplotlib", "matplotlib.pyplot", "torchvision", "torchvision.utils"):
        try:
            __import__(name)
        except ImportError:  # plotting helpers only; stubs suffice for the two functions used
            mod = sys.modules.setdefault(name, types.ModuleType(name))
            mod.make_grid = None
    sys.path.insert(0, str(Path(repo) / "utils"))
    import utils as ref  # noqa: E402

    F = torch.nn.functional

    def grad(x, y, xi):
        n, d = x.shape
        w = xi.unsqueeze(1)  # (P, 1, d) filters, stride d: one projection per particle
        xp = F.conv1d(x.reshape(1, 1, -1), w, stride=d).reshape(xi.shape[0], -1)
        yp = F.conv1d(y.reshape(1, 1, -1), w, stride=d).reshape(xi.shape[0], -1)
        g1 = ref.MMD_derivative_1d(xp, yp).transpose(0, 1)
        flat = xi.transpose(0, 1).flatten()
        out = F.conv1d(flat.reshape(1, 1, -1), g1.unsqueeze(1), stride=xi.shape[0]).squeeze()
        return ref.sliced_factor(d) * out / xi.shape[0]

    return grad


def child(method: str, n: int, repeats: int, repo: str | None) -> dict:
    from invsolve.samplers import mmd_kernel as K

    x, y = data(n)
    gen = torch.Generator().manual_seed(0)
    xi = K.random_directions(P, D, gen)
    out = {}
    if method == "sort":
        fn = lambda: K.sliced_energy_gradient(x, y, P, generator=gen)  # noqa: E731
        sub = xi[:20]
        a = K.sliced_energy_gradient(x, y, directions=sub)
        b = K.sliced_energy_gradient(x, y, directions=sub, generic=True)
        out["diff"] = ((a - b).abs().max() / b.abs().max()).item()
        del a, b
    elif method == "floor":
        chunk = max(1, min(P, K.DEFAULT_WORKSPACE // (2 * n)))
        g = torch.randn(chunk, n)

        def fn():
            acc = torch.zeros(n, D)
            for p0 in range(0, P, chunk):
                c = xi[p0:p0 + chunk]
                c @ x.T, c @ y.T
                acc.addmm_(g[:c.shape[0]].T, c)
            return acc
    elif method == "naive":
        def fn():
            xr = x.clone().requires_grad_(True)
            e = torch.cdist(xr, y).mean() - 0.5 * torch.cdist(xr, xr).mean() - 0.5 * torch.cdist(y, y).mean()
            return torch.autograd.grad(e, xr)[0]
    elif method == "geomloss":
        from geomloss import SamplesLoss

        loss = SamplesLoss("energy", backend="tensorized")

        def fn():
            xr = x.clone().requires_grad_(True)
            return torch.autograd.grad(loss(xr, y), xr)[0]
    elif method == "reference":
        ref = reference_fn(repo)
        fn = lambda: ref(x, y, xi)  # noqa: E731
        mine = K.sliced_energy_gradient(x, y, directions=xi)
        r = fn()
        out["diff"] = ((mine - r).abs().max() / r.abs().max()).item()
        del mine, r
    else:
        raise SystemExit(f"unknown method {method}")
    if n <= 65536:
        fn()  # warm-up (the large sizes are timed once, cold)
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    out.update(time=best, rss_gb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20)
    return out


def run(method: str, n: int, repeats: int, repo: str | None, timeout: float) -> dict | None:
    cmd = [sys.executable, __file__, "--child", method, str(n), "--repeats", str(repeats)]
    if repo:
        cmd += ["--reference-repo", repo]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"> {timeout:.0f} s"}
    if r.returncode != 0:
        return {"error": (r.stderr.strip().splitlines() or ["failed"])[-1][:80]}
    return json.loads(r.stdout.strip().splitlines()[-1])


def fmt(v, spec=".3f"):
    return "—" if v is None else format(v, spec)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="1k, 4k, 16k only")
    ap.add_argument("--sizes", type=int, nargs="*", help="particle counts (N = M)")
    ap.add_argument("--reference-repo", help="local checkout of johertrich/sliced_MMD_flows")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--timeout", type=float, default=1800.0)
    ap.add_argument("--no-append", action="store_true", help="do not append to benchmarks/RESULTS.md")
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    if args.child:
        print(json.dumps(child(args.child[0], int(args.child[1]), args.repeats, args.reference_repo)))
        return
    sizes = args.sizes or ([1024, 4096, 16384] if args.quick else [1024, 4096, 16384, 65536, 262144, 1048576])
    try:
        import geomloss  # noqa: F401
        has_geomloss = True
    except ImportError:
        has_geomloss = False
    load0, t0 = load_average(), time.perf_counter()
    rows = []
    for n in sizes:
        rep = args.repeats if n <= 65536 else 1
        res = {"sort": run("sort", n, rep, None, args.timeout), "floor": run("floor", n, rep, None, args.timeout)}
        if n <= NAIVE_MAX:
            res["naive"] = run("naive", n, rep, None, args.timeout)
            if has_geomloss:
                res["geomloss"] = run("geomloss", n, rep, None, args.timeout)
        if args.reference_repo and n <= REF_MAX:
            res["reference"] = run("reference", n, rep, args.reference_repo, args.timeout)
        rows.append((n, res))
        print(n, json.dumps(res), flush=True)
    load1 = load_average()

    def t(res, k):
        return (res.get(k) or {}).get("time")

    def ratio(res, k):
        a, b = t(res, k), t(res, "sort")
        return None if a is None or b is None else a / b

    lines = ["| N = M | sort (s) | floor (s) | sort / floor | naive (s) | naive / sort | geomloss (s) | geomloss / sort "
             "| reference (s) | ref / sort | peak RSS sort / naive / ref (GB) | diff vs formula | diff vs ref |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|"]
    for n, res in rows:
        s = t(res, "sort")
        fl = t(res, "floor")
        rss = " / ".join(fmt((res.get(k) or {}).get("rss_gb"), ".2f") for k in ("sort", "naive", "reference"))
        errs = "; ".join(f"{k}: {v['error']}" for k, v in res.items() if v and "error" in v)
        lines.append(
            f"| {n:,} | {fmt(s)} | {fmt(fl)} | {fmt(None if s is None or fl is None else s / fl, '.2f')} "
            f"| {fmt(t(res, 'naive'))} | {fmt(ratio(res, 'naive'), '.1f')} | {fmt(t(res, 'geomloss'))} "
            f"| {fmt(ratio(res, 'geomloss'), '.1f')} | {fmt(t(res, 'reference'))} | {fmt(ratio(res, 'reference'), '.1f')} "
            f"| {rss} | {fmt((res['sort'] or {}).get('diff'), '.1e')} "
            f"| {fmt((res.get('reference') or {}).get('diff'), '.1e')} |" + (f" {errs}" if errs else ""))
    flops = {n: 2 * P * 3 * n * D for n, _ in rows}
    notes = ["- floor FLOP (2·P·(2N + M)·d): " + ", ".join(f"{n:,}: {f / 1e9:.0f} G" for n, f in flops.items()),
             "- floor GFLOP/s: " + ", ".join(f"{n:,}: {flops[n] / t(r, 'floor') / 1e9:.0f}"
                                            for n, r in rows if t(r, "floor")),
             f"- load average (1 min) at start / end: {load0:.2f} / {load1:.2f} (shared machine)"]
    table = "\n".join(lines + [""] + notes)
    print(table)
    if not args.no_append:
        append_results(Path(__file__).with_name("RESULTS.md"), f"Sliced MMD gradient (d = {D}, P = {P}, float32)",
                       "mmd.py", None, table, load0=load0, t0=t0)

if __name__ == "__main__":
    main()
