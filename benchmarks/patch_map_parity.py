"""patchNR MAP: invsolve against a reference-style loop, same prior, same iterations, same crops.

The reference patchNR code runs each MAP iteration as: unfold every patch of the
image, index N_p of them at random (with replacement), evaluate the flow whose
weights still require gradients, and take an Adam step on the pixels of
Σ(Ax − y)² + λ·mean NLL.  This script rebuilds that loop on invsolve's operator
and prior file and runs it beside ``invsolve``'s MAP (fresh patches without
replacement, frozen weights, chunked regulariser) from the same bicubic start,
so the PSNR and the time per iteration are compared on the same machine in the
same run.  invsolve's data term is the Gaussian NLL, Σ(Ax − y)²/(2σ²), with λ
scaled by the same 1/(2σ²); Adam is invariant to that common factor.

Usage:
    python benchmarks/patch_map_parity.py --patchnr-file prior.pt --images 2 --iterations 60
    python benchmarks/patch_map_parity.py --patchnr-file prior.pt --images 1 --crop 600 --iterations 60 --bf16

References:
    Altekrüger et al., PatchNR: learning from very few images by patch normalizing
    flow regularization, Inverse Problems 39 (2023), arXiv 2205.12021.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def reference_style_map(x0, y, op, flow, lam: float, n_patches: int, lr: float, iterations: int, seed: int):
    """The reference loop on one image: x0 (1, H, W), y (1, *range) -> (x (1, H, W), seconds per iteration)."""
    import torch
    import torch.nn.functional as F

    p = flow.patch_size
    for w in flow.parameters():
        w.requires_grad_(True)  # as in the reference: the weights are not frozen during MAP
    g = torch.Generator().manual_seed(seed)
    x = x0.clone().requires_grad_(True)
    opt = torch.optim.Adam([x], lr=lr)
    t0 = time.perf_counter()
    for _ in range(iterations):
        pat = F.unfold(x[:, None], p).transpose(1, 2).reshape(-1, p * p)
        sel = pat[torch.randint(len(pat), (n_patches,), generator=g)]
        loss = ((op(x) - y) ** 2).sum() + lam * flow.nll(sel).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return x.detach(), (time.perf_counter() - t0) / iterations


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patchnr-file", type=Path, required=True)
    ap.add_argument("--images", type=int, default=2, help="256² centre crops of test.png, then testset/img1..")
    ap.add_argument("--crop", type=int, default=256)
    ap.add_argument("--iterations", type=int, default=60)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--bf16", action="store_true", help="also run invsolve with -M precision=bf16")
    ap.add_argument("--results", type=Path, default=Path(__file__).with_name("RESULTS.md"))
    ap.add_argument("--no-append", action="store_true")
    args = ap.parse_args(argv)
    import torch

    from benchmarks._results import append_results, load_average
    from benchmarks.patch_priors import _crops, _prior_line
    from invsolve import api
    from invsolve.api_priors import load_prior
    from invsolve.device import batch_generator
    from invsolve.methods import initial_guess
    from invsolve.methods.patch_map import MapParams, PatchMAP
    from invsolve.noise import build_noise

    torch.set_num_threads(args.threads)
    load0, t_all = load_average(), time.perf_counter()
    crops = _crops(args.images, args.crop)
    stack = np.stack([c for _, c in crops])
    m = api.simulate(stack, "superres", {"factor": 4}, seed=0, device="cpu")
    op, nm = m.build_operator("cpu"), build_noise(m.noise)
    y_all = torch.as_tensor(m.measurement)
    ours, ref, fast, t_ours, t_ref, t_fast = [], [], [], 0.0, 0.0, 0.0
    method = PatchMAP(MapParams(iterations=args.iterations), prior=load_prior(str(args.patchnr_file)))
    bf16 = PatchMAP(MapParams(iterations=args.iterations, precision="bf16"), prior=method.prior)
    s = method.settings(op)
    two_sigma2 = 2 * float(m.noise["sigma"]) ** 2
    PatchMAP(MapParams(iterations=1), prior=method.prior).run(y_all[:1], op, nm)  # warm-up (lazy imports)
    flow = load_prior(str(args.patchnr_file))  # a second copy: the reference loop turns its gradients on
    for i in range(len(crops)):
        y = y_all[i: i + 1]
        t0 = time.perf_counter()
        ours.append(method.run(y, op, nm, generator=batch_generator(0, i, torch.device("cpu")))[0].numpy())
        t_ours += (time.perf_counter() - t0) / args.iterations
        if args.bf16:
            t0 = time.perf_counter()
            fast.append(bf16.run(y, op, nm, generator=batch_generator(0, i, torch.device("cpu")))[0].numpy())
            t_fast += (time.perf_counter() - t0) / args.iterations
        with torch.no_grad():
            x0 = initial_guess(y, op, nm)
        x, sec = reference_style_map(x0, y, op, flow, s["lam"] * two_sigma2, s["n_patches"], s["lr"],
                                     args.iterations, seed=i)
        ref.append(x[0].numpy())
        t_ref += sec
        also = f", bf16 {api.evaluate(fast[-1], stack[i])['psnr']:.2f} dB" if args.bf16 else ""
        print(f"  crop {i}: invsolve {api.evaluate(ours[-1], stack[i])['psnr']:.2f} dB{also}, reference-style "
              f"{api.evaluate(ref[-1], stack[i])['psnr']:.2f} dB", file=sys.stderr, flush=True)
    a, b = api.evaluate(np.stack(ours), stack), api.evaluate(np.stack(ref), stack)
    c = api.evaluate(np.stack(fast), stack) if args.bf16 else None
    n = len(crops)
    rows = ["| MAP loop | PSNR | SSIM | s/iteration | time ratio |", "|---|---|---|---|---|",
            f"| invsolve | {a['psnr']:.2f} | {a['ssim']:.4f} | {t_ours / n:.2f} | 1 |",
            f"| reference-style | {b['psnr']:.2f} | {b['ssim']:.4f} | {t_ref / n:.2f} | {t_ref / t_ours:.2f}× |",
            *([f"| invsolve, `-M precision=bf16` | {c['psnr']:.2f} | {c['ssim']:.4f} | {t_fast / n:.2f} | "
               f"{t_fast / t_ours:.2f}× |"] if args.bf16 else []),
            f"\n{n} crops of {args.crop}², ×4 superresolution, {args.iterations} iterations, λ {s['lam']:.4g} "
            f"(reference scale {s['lam'] * two_sigma2:.4g}), N_p {s['n_patches']}, lr {s['lr']}; per-crop PSNR "
            f"on stderr."] + _prior_line(args)
    table = "\n".join(rows)
    print(table)
    if not args.no_append:
        append_results(args.results, "patchNR MAP against a reference-style loop", "patch_map_parity.py", argv,
                       table, load0=load0, t0=t_all)
    return 0


if __name__ == "__main__":
    sys.exit(main())
