"""Speed cases of ``benchmarks/patch_priors.py`` (parts ``speed`` and ``epll-speed``).

The MAP cases include the patch flow's subnets in bfloat16 (``-M precision=bf16``).
Every case runs in its own Python process (``_child``), so its allocator state and
peak memory are its own; the reference-style cases rebuild the reference patchNR
code's per-step work on this machine, to time it side by side.
"""

from __future__ import annotations

import json
import math
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
REF = {"train_ms": 52.0, "map_s_130k": 27.0, "map_gb_130k": 7.4, "map_s_10k": 0.94}


# -- speed ---------------------------------------------------------------------------


def _case(kind: str, arg: int, reps: int) -> dict:
    """One timed case in this process (called in a child process by ``speed``)."""
    import torch

    from invsolve.priors.patchnr import PatchNR, PatchNRConfig
    from invsolve.priors.training import train_patchnr

    torch.manual_seed(0)
    img = torch.rand(1, 600, 600)
    if kind.startswith("ref_"):
        return _reference_style(kind, arg, reps, img)
    if kind == "train_parts":
        return _train_parts(arg)
    if kind.startswith("epll_"):
        return _epll_case(kind, arg, reps, img)
    if kind == "train":
        _, hist = train_patchnr(img, None, PatchNRConfig(), steps=arg, batch_size=32, lr=1e-4, seed=0, log_every=arg)
        return {"ms_per_step": 1e3 * hist["seconds_per_step"]}
    if kind == "train_compiled":  # time the steps after compilation: from the record at step 10 to the last
        stamps = []
        t0 = time.perf_counter()
        train_patchnr(img, None, PatchNRConfig(), steps=arg + 10, batch_size=32, lr=1e-4, seed=0, log_every=10,
                      compile=True, callback=lambda rec: stamps.append(time.perf_counter()))
        return {"ms_per_step": 1e3 * (stamps[-1] - stamps[0]) / arg, "compile_s": stamps[0] - t0}
    from invsolve import api

    prior = PatchNR(PatchNRConfig()).freeze()
    m = api.simulate(img[0].numpy(), "superres", {"factor": 4}, seed=0, device="cpu")
    from invsolve.methods.patch_map import PatchMAP
    from invsolve.noise import build_noise

    op, nm = m.build_operator("cpu"), build_noise(m.noise)
    precision = "bf16" if kind == "map_bf16" else "fp32"
    meth = PatchMAP(PatchMAP.Params(n_patches=arg, iterations=1, precision=precision), prior=prior)
    y = torch.from_numpy(m.measurement)
    g = torch.Generator().manual_seed(0)
    meth.run(y, op, nm, generator=g)  # warm-up
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    meth = PatchMAP(PatchMAP.Params(n_patches=arg, iterations=reps, precision=precision), prior=prior)
    t0 = time.perf_counter()
    meth.run(y, op, nm, generator=g)
    sec = (time.perf_counter() - t0) / reps
    return {"s_per_iteration": sec, "peak_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
            "peak_gb_before": base / 2**20}


def _train_parts(reps: int) -> dict:
    """Where a training step's time goes (batch 32, paper flow): forward NLL, backward, fused Adam, and the
    step's FLOP count (matrix products only), to compare with what the CPU's matrix units can do."""
    import torch

    from invsolve.priors.patchnr import PatchNR, PatchNRConfig
    from invsolve.priors.training import _adam

    flow = PatchNR(PatchNRConfig())
    opt = _adam(flow.parameters(), 1e-4)
    x = torch.rand(32, 36)

    def timed(fn):
        for _ in range(5):
            fn()
        t0 = time.perf_counter()
        for _ in range(reps):
            fn()
        return 1e3 * (time.perf_counter() - t0) / reps

    def fwd():
        return flow.nll(x).mean()

    def fwd_bwd():
        opt.zero_grad(set_to_none=True)
        fwd().backward()

    def fwd_bf16():  # the subnets' products in bfloat16 (autocast), as MAP's -M precision=bf16 runs them
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return flow.nll(x).mean()

    def fwd_bwd_bf16():
        opt.zero_grad(set_to_none=True)
        fwd_bf16().backward()

    f = timed(fwd)
    fb = timed(fwd_bwd)
    f16 = timed(fwd_bf16)
    fb16 = timed(fwd_bwd_bf16)
    adam = timed(opt.step)
    macs = sum(m.in_features * m.out_features for m in flow.modules() if isinstance(m, torch.nn.Linear)) * 32
    gflop = 3 * 2 * macs / 1e9  # forward, input gradients, weight gradients
    a, b = torch.rand(512, 512), torch.rand(512, 512)
    g = 2 * 512**3 / 1e9 / (timed(lambda: a @ b) / 1e3)
    a16, b16 = a.bfloat16(), b.bfloat16()
    g16 = 2 * 512**3 / 1e9 / (timed(lambda: a16 @ b16) / 1e3)
    return {"fwd_ms": f, "bwd_ms": fb - f, "adam_ms": adam, "gflop": gflop, "gemm_gflops": g,
            "floor_ms": 1e3 * gflop / g, "params": sum(p.numel() for p in flow.parameters()),
            "fwd16_ms": f16, "bwd16_ms": fb16 - f16, "gemm16_gflops": g16, "floor16_ms": 1e3 * gflop / g16,
            "threads": torch.get_num_threads()}


def _epll_case(kind: str, chunk_log2: int, reps: int, img) -> dict:
    """EPLL at the paper's size (K = 200 components on 6×6 patches) with row blocks of 2**chunk_log2 elements:
    one EM iteration on 20,000 patches (float64), or the MAP regulariser's value and gradient on 30,000 patches."""
    import torch

    import invsolve.priors.epll as epll
    from invsolve.priors.patches import random_patches

    epll.CHUNK = 2**chunk_log2
    g = torch.Generator().manual_seed(0)
    if kind == "epll_fit":
        x = random_patches(img, 6, 20000, g)
        stamps = []
        epll.fit_gmm(x, 200, max_iter=reps + 1, tol=0.0, generator=g,
                     callback=lambda rec: stamps.append((time.perf_counter(), time.process_time())))
        return {"s": (stamps[-1][0] - stamps[0][0]) / reps, "cpu_s": (stamps[-1][1] - stamps[0][1]) / reps}
    prior = epll.EPLL(epll.EPLLConfig())
    a = torch.randn(200, 36, 36, generator=g) / 36
    prior.covariances.copy_(a @ a.transpose(1, 2) + 1e-3 * torch.eye(36))
    prior.means.copy_(torch.rand(200, 36, generator=g))
    prior.after_load()
    prior.freeze()
    x = random_patches(img, 6, 30000, g)

    def once():
        xx = x.clone().requires_grad_(True)
        prior.regularizer(xx).backward()

    once()
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(reps):
        once()
    return {"s": (time.perf_counter() - t0) / reps, "cpu_s": (time.process_time() - c0) / reps}


def _reference_style(kind: str, arg: int, reps: int, img) -> dict:
    """The reference code's per-step work, rebuilt here to time it side by side on this machine:
    every step unfolds all patches of the image and indexes a random subset, and the flow's
    weights keep requiring gradients during MAP (same flow, same batch / patch counts)."""
    import torch
    import torch.nn.functional as F

    from invsolve.priors.patchnr import PatchNR, PatchNRConfig

    flow = PatchNR(PatchNRConfig())
    g = torch.Generator().manual_seed(0)

    def all_patches(x):  # (1, H, W) -> (L, 36)
        return F.unfold(x[:, None], 6).transpose(1, 2).reshape(-1, 36)

    if kind == "ref_train":
        opt = torch.optim.Adam(flow.parameters(), lr=1e-4)

        def step():
            pat = all_patches(img)
            x = pat[torch.randint(len(pat), (32,), generator=g)]
            loss = flow.nll(x).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()

        for _ in range(3):
            step()
        t0 = time.perf_counter()
        for _ in range(arg):
            step()
        return {"ms_per_step": 1e3 * (time.perf_counter() - t0) / arg}
    x = img.clone().requires_grad_(True)
    opt = torch.optim.Adam([x], lr=0.03)

    def iteration():
        pat = all_patches(x)
        sel = pat[torch.randint(len(pat), (arg,), generator=g)]
        loss = flow.nll(sel).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()

    iteration()
    t0 = time.perf_counter()
    for _ in range(reps):
        iteration()
    return {"s_per_iteration": (time.perf_counter() - t0) / reps,
            "peak_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}


def _child(kind: str, arg: int, reps: int) -> dict:
    """``_case(kind, arg, reps)`` in a fresh Python process (its own allocator and peak memory)."""
    code = (f"import sys, json; sys.path.insert(0, {str(ROOT)!r}); sys.argv=['x'];"
            f"from benchmarks.patch_speed import _case; print(json.dumps(_case({kind!r}, {arg}, {reps})))")
    import torch

    env = {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads())}  # the parent's --threads
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env)
    if out.returncode:
        raise RuntimeError(out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def speed(args) -> list[str]:
    rows = []

    t = _child("train", args.train_steps_speed, 0)
    rt = _child("ref_train", args.train_steps_speed, 0)
    rows.append(f"| training step (batch 32, 5×512) | {t['ms_per_step']:.1f} ms | {rt['ms_per_step']:.1f} ms | "
                f"{rt['ms_per_step'] / t['ms_per_step']:.2f}× | {REF['train_ms']:.0f} ms "
                f"({REF['train_ms'] / t['ms_per_step']:.2f}×) | ≥ 10× |")
    if args.compiled:
        tc = _child("train_compiled", args.train_steps_speed, 0)
        rows.append(f"| training step, `-P compile=true` ({tc['compile_s']:.0f} s to compile) | {tc['ms_per_step']:.1f} ms "
                    f"| {rt['ms_per_step']:.1f} ms | {rt['ms_per_step'] / tc['ms_per_step']:.2f}× | {REF['train_ms']:.0f} ms "
                    f"({REF['train_ms'] / tc['ms_per_step']:.2f}×) | ≥ 10× |")
    p = _child("train_parts", 200, 0)
    rows.append(f"| training step, parts (1 process, {p['threads']} thread(s)) | forward {p['fwd_ms']:.1f} ms, backward "
                f"{p['bwd_ms']:.1f} ms, Adam {p['adam_ms']:.1f} ms ({p['params'] / 1e6:.1f} M parameters) | – | – | – | – |")
    rows.append(f"| training step, matrix-product floor | {p['gflop']:.2f} GFLOP at this CPU's {p['gemm_gflops']:.0f} "
                f"GFLOP/s (512² float32 product) = {p['floor_ms']:.1f} ms, before Adam | – | – | – | – |")
    step16 = p["fwd16_ms"] + p["bwd16_ms"] + p["adam_ms"]
    rows.append(f"| training step, parts with the subnets in bf16 (autocast) | forward {p['fwd16_ms']:.1f} ms, backward "
                f"{p['bwd16_ms']:.1f} ms, Adam {p['adam_ms']:.1f} ms: {step16:.1f} ms in all; bf16 floor "
                f"{p['floor16_ms']:.1f} ms at {p['gemm16_gflops']:.0f} GFLOP/s | {rt['ms_per_step']:.1f} ms | "
                f"{rt['ms_per_step'] / step16:.2f}× | {REF['train_ms']:.0f} ms ({REF['train_ms'] / step16:.2f}×) | ≥ 10× |")
    if args.train_only:
        return head_rows() + rows
    for n, ref_s in ((10000, REF["map_s_10k"]), (130000, REF["map_s_130k"])):
        rr = _child("ref_map", n, args.map_reps)
        quoted = f"{ref_s} s" + (f", {REF['map_gb_130k']} GB" if n == 130000 else "")
        kinds = [("map", "")] + ([("map_bf16", ", `-M precision=bf16`")] if n == 130000 else [])
        for kind, note in kinds:  # each against the reference-style case of the same patch count
            r = _child(kind, n, args.map_reps)
            rows.append(f"| MAP iteration, 600², {n:,} patches{note} | {r['s_per_iteration']:.2f} s, "
                        f"{r['peak_gb']:.2f} GB | {rr['s_per_iteration']:.2f} s, {rr['peak_gb']:.2f} GB | "
                        f"{rr['s_per_iteration'] / r['s_per_iteration']:.2f}× time, "
                        f"{rr['peak_gb'] / r['peak_gb']:.2f}× memory | {quoted} | ≥ 2× time and memory |")
    return head_rows() + rows


def epll_speed(args) -> list[str]:
    """EPLL's EM iteration and MAP regulariser with the row blocks in use against the former 2**23-element blocks,
    each case in a fresh process, side by side."""
    import invsolve.priors.epll as epll

    now = round(math.log2(epll.CHUNK))
    rows = ["| case | blocks of 2^%d elements (now) | blocks of 2^23 (before) | ratio |" % now, "|---|---|---|---|"]
    for kind, label, reps in (("epll_fit", "EM iteration, 20,000 patches, K = 200 (float64)", 3),
                              ("epll_map", "MAP regulariser + gradient, 30,000 patches, K = 200", 5)):
        new, old = _child(kind, now, reps), _child(kind, 23, reps)
        rows.append(f"| {label} | {new['s']:.2f} s ({new['cpu_s']:.2f} s CPU) | {old['s']:.2f} s "
                    f"({old['cpu_s']:.2f} s CPU) | {old['s'] / new['s']:.2f}× |")
    return rows


def head_rows() -> list[str]:
    return ["| case | invsolve | reference-style, this machine | ratio | reference as quoted | target |",
            "|---|---|---|---|---|---|"]
