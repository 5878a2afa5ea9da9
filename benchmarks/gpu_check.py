"""GPU check: CT projector throughput (CUDA against CPU), patchNR ×4 superresolution
of a 600×600 image at the paper's settings, and sampler throughput.

Run through ``benchmarks/gpu_check.sh`` (which also runs the GPU-marked tests).
Without CUDA every GPU row reads "skipped (no CUDA)" and a reduced CPU smoke run
of each stage checks that the code paths work.

Targets (issue "Scale"): patchNR ×4 on 600×600 in under 10 s; CT forward + adjoint
at 362² with 1000 angles (LoDoPaB's size) at over 100 pairs per second.

Usage: python benchmarks/gpu_check.py [--results benchmarks/RESULTS.md] [--no-append]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks._results import append_results, load_average  # noqa: E402


def _sync(dev: str) -> None:
    if dev.startswith("cuda"):
        torch.cuda.synchronize()


def ct_pairs(dev: str, size: int, angles: int, batch: int, seconds: float = 3.0) -> float:
    """CT forward + adjoint pairs per second at size² with ``angles`` angles (batches of ``batch``)."""
    from invsolve.operators import build_operator

    op = build_operator("ct", {"angles": angles}, (size, size)).to(dev)
    x = torch.rand((batch, size, size), device=dev)
    with torch.no_grad():
        op.adjoint(op(x))  # warm-up: projector set-up
        _sync(dev)
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            op.adjoint(op(x))
            n += batch
        _sync(dev)
    return n / (time.perf_counter() - t0)


def patchnr_x4(dev: str, size: int, train_steps: int, smoke: bool) -> dict:
    """Train a patchNR (time not counted), then time `reconstruct --prior patchnr` of a ×4 superres."""
    from skimage.data import camera
    from skimage.transform import resize

    from invsolve import api, api_priors

    img = resize(camera().astype(np.float32) / 255, (size, size), anti_aliasing=True).astype(np.float32)
    params = {"batch_size": 32, "lr": 1e-4} if not smoke else {"width": 16, "blocks": 2, "batch_size": 16}
    prior, _ = api_priors.train_prior("patchnr", img[None], params=params, steps=train_steps, seed=0, device=dev)
    with tempfile.TemporaryDirectory() as tmp:
        pf = api_priors.save_prior(prior, Path(tmp) / "prior.pt")
        m = api.simulate(img, "superres", {"factor": 4}, seed=0, device=dev)
        mp = {"iterations": 10, "n_patches": 4000} if smoke else {}
        t0 = time.perf_counter()
        r = api.reconstruct(m, "map", mp, seed=0, device=dev, prior="patchnr", prior_file=str(pf))
        _sync(dev)
        seconds = time.perf_counter() - t0
        bic = api.reconstruct(m, "bicubic", device=dev)
    return {"seconds": seconds, "psnr": api.evaluate(r.images, img)["psnr"],
            "bicubic_psnr": api.evaluate(bic.images, img)["psnr"], "iterations": r.method.get("settings", {})}


def sampler_rates(dev: str, steps: int, n: int) -> dict[str, float]:
    """Samples per second of each trained sampler (superres ×4 on 32×32 crops of camera)."""
    from invsolve import api_samplers
    from invsolve.samplers import load_sampler

    rates = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, sp in (("cflow", {}), ("cfm", {}), ("mmd-flow", {"nets": 2, "particles": 256})):
            out = Path(tmp) / f"{name}.pt"
            api_samplers.train_sampler(name, "superres", {"factor": 4}, images=[str(ROOT / "data" / "camera.png")],
                                       crop=32, sampler_params=sp, steps=steps, batch_size=8, val_every=steps,
                                       val_size=16, checkpoint_every=steps, output=out, seed=0, device=dev)
            smp = load_sampler(out, torch.device(dev))
            y = torch.rand((4, 8, 8), device=dev)
            g = torch.Generator(device=dev).manual_seed(0)
            with torch.no_grad():
                smp.sample(y[:1], 2, generator=g)  # warm-up
                _sync(dev)
                t0 = time.perf_counter()
                smp.sample(y, n, generator=g)
                _sync(dev)
            rates[name] = 4 * n / (time.perf_counter() - t0)
    return rates


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", type=Path, default=Path(__file__).with_name("RESULTS.md"))
    ap.add_argument("--no-append", action="store_true", help="print only; do not append to RESULTS.md")
    args = ap.parse_args(argv)
    load0, start = load_average(), time.perf_counter()
    cuda = torch.cuda.is_available()
    gpu = torch.cuda.get_device_name(0) if cuda else None
    rows: list[tuple[str, str, str, str]] = []  # stage, device, value, target

    def stage(name, fn):
        t0 = time.perf_counter()
        try:
            out = fn()
        except Exception as exc:  # report and continue: the table shows every stage
            print(f"[{name}] FAILED: {exc!r}", file=sys.stderr)
            return None
        print(f"[{name}] {out} ({time.perf_counter() - t0:.1f} s)", file=sys.stderr)
        return out

    cpu_ct = stage("ct cpu 362² 1000 angles", lambda: ct_pairs("cpu", 362, 1000, 8, 4.0))
    rows.append(("CT fwd+adj 362², 1000 angles", "cpu", f"{cpu_ct:.1f} pairs/s" if cpu_ct else "FAILED", ""))
    if cuda:
        g_ct = stage("ct cuda", lambda: ct_pairs("cuda", 362, 1000, 16, 4.0))
        ratio = f" ({g_ct / cpu_ct:.0f}× cpu)" if g_ct and cpu_ct else ""
        rows.append(("CT fwd+adj 362², 1000 angles", "cuda", f"{g_ct:.1f} pairs/s{ratio}" if g_ct else "FAILED",
                     "> 100 pairs/s"))
        pn = stage("patchnr x4 600² cuda", lambda: patchnr_x4("cuda", 600, 2000, smoke=False))
        rows.append(("patchNR ×4 MAP 600² (paper settings)", "cuda",
                     f"{pn['seconds']:.2f} s, PSNR {pn['psnr']:.2f} dB (bicubic {pn['bicubic_psnr']:.2f})"
                     if pn else "FAILED", "< 10 s"))
        rates = stage("samplers cuda", lambda: sampler_rates("cuda", 300, 256))
        for k, v in (rates or {"all samplers": None}).items():
            rows.append((f"{k} sampling (32², ×4)", "cuda", f"{v:.0f} samples/s" if v else "FAILED", ""))
    else:
        for what, target in (("CT fwd+adj 362², 1000 angles", "> 100 pairs/s"),
                             ("patchNR ×4 MAP 600² (paper settings)", "< 10 s"), ("sampler throughput", "")):
            rows.append((what, "cuda", "skipped (no CUDA)", target))
        pn = stage("patchnr x4 smoke cpu", lambda: patchnr_x4("cpu", 96, 20, smoke=True))
        rows.append(("patchNR ×4 MAP smoke (96², 10 iterations)", "cpu",
                     f"{pn['seconds']:.2f} s" if pn else "FAILED", "runs"))
        rates = stage("samplers smoke cpu", lambda: sampler_rates("cpu", 4, 8))
        for k, v in (rates or {"all samplers": None}).items():
            rows.append((f"{k} sampling smoke (32², ×4)", "cpu", f"{v:.0f} samples/s" if v else "FAILED", "runs"))
    table = ["| stage | device | result | target |", "|---|---|---|---|"]
    table += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    print("\n".join(table))
    failed = any("FAILED" in r[2] for r in rows)
    if not args.no_append:
        append_results(args.results, "GPU check", "gpu_check.py", None, "\n".join(table), load0=load0, t0=start,
                       command="bash benchmarks/gpu_check.sh", extra=f"; {gpu or 'no GPU'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
