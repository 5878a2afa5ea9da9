"""invsolve against DeepInverse 0.5.0: the same patch priors on the same measurements, raced in one run.

Problems: ×4 superresolution (``superres``, Gaussian noise σ = 0.01) and limited-angle
CT (``ct-limited``, Poisson noise, LoDoPaB's pixel size) of 128² centre crops of
``material/test.png`` and ``testset/img1..``, simulated once by invsolve; both
libraries get the same y.  DeepInverse's superresolution is its ``Downsampling``
with invsolve's 16×16 kernel as filter, zero-padded to 31×31 so that its circular
convolution samples invsolve's grid 4i + 7.5; its CT is a ``LinearPhysics`` calling
invsolve's ASTRA operator and adjoint.  Both A and adjoint are checked against
invsolve's on the crops (max |difference| printed, < 1e-5 asserted).

Priors, trained here for ``--train-steps`` Adam steps (batch 32, lr 1e-4: invsolve's
training defaults) on ``material/learn.png`` unless files are given:

* invsolve's patchNR: 6×6 patches, 5 two-sided affine coupling blocks, subnets
  Linear-ReLU-Linear-ReLU-Linear of width 512, soft clamp 1.6, a fixed random
  permutation after each block; dihedral augmentation of each batch; fused Adam.
* DeepInverse's ``PatchNR(patch_size=6, num_layers=5, sub_net_size=512)``: the same
  blocks, subnets and clamp (2/π against 0.636 inside the soft clamp) but no
  permutation between blocks (every block couples the same halves); trained by a
  plain loop of its NLL (``PatchNR.fn``) on patches from its ``patch_extractor``,
  no augmentation, plain Adam.
* EPLL (both): 200 Gaussian components on 6×6 patches, EM on 20,000 random patches of
  learn.png (at most 100 iterations, stopping below a change of 1e-4 per patch):
  invsolve's ``train_prior("epll")`` (k-means++ start) and DeepInverse's
  ``GaussianMixtureModel.fit`` (the first patches as means).

MAP: the same λ, N_p, learning rate, iterations and reflect padding for both
(default: invsolve's preset for the operator at the crop size, ``resolve_settings``),
every iteration run (invsolve's stopping rule and tail mean off) from the same start
(the preset's, computed by invsolve: bicubic for superresolution, TV for
limited-angle CT; its time on both clocks).  invsolve runs ``build_method({"name":
"map", ...})`` at ``precision=fp32`` and at its default ``auto`` (bf16 subnets on
CPUs with AVX-512 BF16 or AMX).  DeepInverse runs the Adam-on-pixels loop of its
patch-prior examples, data fidelity + λ · ``PatchPrior`` (mean NLL of N_p distinct
random patches of the padded image), its flow's weights frozen.  Its fidelities equal
invsolve's negative log-likelihoods up to constants (``L2(sigma=0.01)`` is
½‖Ax − y‖²/σ² = Σ(Ax − y)²/(2σ²); ``LogPoissonLikelihood(N0, mu)`` is the Poisson NLL
of the counts), so one λ weighs the same prior term in both.

Reported, mean over crops: PSNR and SSIM (skimage, data range 1, unclipped) of the
last iterate; seconds per MAP iteration (iterations 2..n); seconds to the final PSNR
(the first iterate within 0.05 dB of the run's final PSNR, the start included); peak
memory of the MAP, each case in a fresh process (the peak resident size VmHWM, reset
through /proc/self/clear_refs just before the MAP, minus the resident size then, so
torch's allocations count; '≥' where the kernel refused the reset); training ms per
step (EM seconds for EPLL).

Left out: DPS and DiffPIR.  Both need a diffusion denoiser; DeepInverse's are
pretrained weights fetched at run time, and training one on a single 600×600 image
is not minutes of CPU work.

Usage:
    python benchmarks/peers.py --images 1 --iterations 5 --train-steps 50 --no-append
    python benchmarks/peers.py --threads 1
    python benchmarks/peers.py --patchnr-file p.pt --deepinv-file d.pt --problems superres
DeepInverse is the optional extra ``bench``: ``pip install deepinv==0.5.0 --no-deps`` beside torch 2.13.

References:
    Altekrüger et al., PatchNR: learning from very few images by patch normalizing flow regularization,
    Inverse Problems 39 (2023), arXiv 2205.12021; Zoran and Weiss, From learning models of natural image
    patches to whole image restoration, ICCV 2011; Tachella et al., DeepInverse: a Python package for solving
    imaging inverse problems with deep learning, JOSS 10 (2025) 8923.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = Path(os.environ.get("INVSOLVE_SHARED_DATA", ROOT / ".." / "shared" / "data"))
OPERATORS = {"superres": "superres", "ct": "ct-limited"}
CASES = [("invsolve", "patchnr", "fp32"), ("invsolve", "patchnr", "auto"), ("deepinv", "patchnr", "fp32"),
         ("invsolve", "epll", "fp32"), ("deepinv", "epll", "fp32")]
WITHIN_DB = 0.05
PATCH = 6  # invsolve's default patch size (PatchNRConfig, EPLLConfig)


def import_deepinv():
    """``import deepinv``.  The registry's torchvision wheels link CUDA libraries a CPU torch lacks, so their
    compiled ops do not load; torchvision 0.28 then fails registering fake kernels for two of them.  Their
    schemas are declared first (no kernel: DeepInverse's priors and physics never call them)."""
    import torch

    try:
        import torchvision  # noqa: F401
    except RuntimeError:
        for op in ("nms", "qnms"):
            try:
                torch.library.define(f"torchvision::{op}", "(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
            except RuntimeError:
                pass  # declared already
        for name in [m for m in sys.modules if m.startswith("torchvision")]:
            del sys.modules[name]
    import deepinv

    return deepinv


# -- operators ----------------------------------------------------------------------


def dinv_physics(op):
    """DeepInverse's physics for invsolve's operator ``op``: (B, 1, H, W) images."""
    import torch

    dinv = import_deepinv()
    if op.name == "superres":
        k = op.kernel[0, 0]
        f = torch.zeros(2 * k.shape[0] - 1, 2 * k.shape[1] - 1, dtype=k.dtype)
        f[: k.shape[0], : k.shape[1]] = k.flip(0, 1)  # its convolution flips the filter back
        return dinv.physics.Downsampling(img_size=(1, *op.image_shape), filter=f[None, None],
                                         factor=op.params.factor, padding="circular")
    return dinv.physics.LinearPhysics(A=lambda x: op(x[:, 0]), A_adjoint=lambda y: op.adjoint(y)[:, None])


def check_operator(op, physics, stack: np.ndarray) -> float:
    """max |A_deepinv x − A_invsolve x| and the same for the adjoint, over the crops (asserted < 1e-5)."""
    import torch

    x = torch.as_tensor(stack)
    with torch.no_grad():
        y = op(x)
        a = (physics.A(x[:, None]).reshape(y.shape) - y).abs().max().item()
        b = (physics.A_adjoint(y.reshape(physics.A(x[:, None]).shape))[:, 0] - op.adjoint(y)).abs().max().item()
    worst = max(a, b)
    print(f"{op.name}: max |A_deepinv − A_invsolve| = {a:.2e}, adjoints {b:.2e}", file=sys.stderr)
    assert worst < 1e-5, f"DeepInverse's {op.name} operator differs from invsolve's by {worst:.2e}"
    return worst


# -- priors -------------------------------------------------------------------------


def dinv_patchnr(config=None):
    """DeepInverse's patchNR with invsolve's default architecture (``PatchNRConfig``)."""
    from invsolve.priors.patchnr import PatchNRConfig

    c = config or PatchNRConfig()
    return import_deepinv().optim.PatchNR(patch_size=c.patch_size, channels=1, num_layers=c.blocks,
                                          sub_net_size=c.width)


def train_invsolve(learn, steps: int, tmp: Path) -> tuple[str, float]:
    """invsolve's patchNR trained on ``learn``: (prior file, ms per step)."""
    from invsolve import api_priors

    pr, hist = api_priors.train_prior("patchnr", learn, None, {"batch_size": 32, "lr": 1e-4}, steps=steps, seed=0,
                                      device="cpu")
    return str(api_priors.save_prior(pr, tmp / "invsolve-patchnr.pt")), 1000 * hist["seconds_per_step"]


def train_deepinv(learn, steps: int, tmp: Path) -> tuple[str, float]:
    """DeepInverse's patchNR trained by a plain loop of its NLL on random patches: (state file, ms per step)."""
    import torch

    patch_extractor = import_deepinv().utils.patch_extractor
    torch.manual_seed(0)
    prior = dinv_patchnr()
    opt = torch.optim.Adam(prior.parameters(), lr=1e-4)
    imgs = [torch.from_numpy(im)[None, None] for im in learn]
    t0 = time.perf_counter()
    for _ in range(steps):
        img = imgs[int(torch.randint(len(imgs), (1,)))]
        patches, _ = patch_extractor(img, 32, PATCH)
        loss = prior.fn(patches.reshape(1, 32, -1)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    ms = 1000 * (time.perf_counter() - t0) / max(steps, 1)
    path = tmp / "deepinv-patchnr.pt"
    torch.save(prior.state_dict(), path)
    return str(path), ms


def fit_epll(learn, tmp: Path) -> dict[str, tuple[str, float]]:
    """Both libraries' 200-component GMMs on 20,000 random 6×6 patches of ``learn``: {library: (file, EM s)}."""
    import torch
    from torch.utils.data import DataLoader

    from invsolve import api_priors
    from invsolve.priors.patches import random_patches

    t0 = time.perf_counter()
    pr, _ = api_priors.train_prior("epll", learn, None, {"max_iter": 100, "tol": 1e-4}, seed=0, device="cpu")
    out = {"invsolve": (str(api_priors.save_prior(pr, tmp / "invsolve-epll.pt")), time.perf_counter() - t0)}
    dinv = import_deepinv()
    g = torch.Generator().manual_seed(0)
    patches = random_patches([torch.from_numpy(im) for im in learn], PATCH, 20000, g)
    gmm = dinv.optim.utils.GaussianMixtureModel(200, PATCH * PATCH)
    t0 = time.perf_counter()
    with torch.no_grad():
        gmm.fit(DataLoader(patches, batch_size=5000, shuffle=False), max_iters=100, stopping_criterion=1e-4)
    path = tmp / "deepinv-gmm.pt"
    torch.save(gmm.state_dict(), path)
    out["deepinv"] = (str(path), time.perf_counter() - t0)
    return out


# -- one case, in its own process ---------------------------------------------------------


class Trace:
    """(seconds since the clock started, PSNR) per iterate; the PSNR's own time is left off the clock."""

    def __init__(self, truth: np.ndarray):
        self.truth, self.points, self.t0, self.spent = truth, [], time.perf_counter(), 0.0

    def __call__(self, k, x) -> None:
        from skimage.metrics import peak_signal_noise_ratio

        t = time.perf_counter()
        self.points.append((t - self.t0 - self.spent,
                            float(peak_signal_noise_ratio(self.truth, x.reshape(self.truth.shape).numpy(), data_range=1))))
        self.spent += time.perf_counter() - t


def start_image(y, op, nm, init: str):
    """invsolve's MAP start: the classical method's result (bicubic, FBP) or TV's at its presets."""
    import torch

    from invsolve.methods import build_method, initial_guess

    if init == "tv":
        return build_method({"name": "tv"}).run(y, op, nm)
    with torch.no_grad():
        return initial_guess(y, op, nm)


def run_invsolve(spec, y, op, nm, trace) -> dict:
    import torch

    from invsolve.api_priors import load_prior
    from invsolve.device import batch_generator
    from invsolve.methods import build_method

    method = build_method({"name": "map", **spec["settings"], "tol": 0.0, "average": 0.0,
                           "precision": spec["precision"]})
    method.prior = load_prior(spec["file"])
    trace.t0 = time.perf_counter()
    x = method.run(y, op, nm, generator=batch_generator(0, spec["index"], torch.device("cpu")), on_step=trace)
    return {"x": x, "precision": method.resolved(op)["precision"]}


def run_deepinv(spec, y, op, nm, trace) -> dict:
    """The Adam-on-pixels loop of DeepInverse's patch-prior examples, from invsolve's start."""
    import torch
    import torch.nn.functional as F

    dinv = import_deepinv()
    s = spec["settings"]
    if spec["prior"] == "patchnr":
        nll = dinv_patchnr()
        nll.load_state_dict(torch.load(spec["file"]))
    else:
        gmm = dinv.optim.utils.GaussianMixtureModel(200, PATCH * PATCH)
        gmm.load_state_dict(torch.load(spec["file"]))
        nll = dinv.optim.EPLL(GMM=gmm, pretrained=None, patch_size=PATCH).negative_log_likelihood
    for w in getattr(nll, "parameters", lambda: [])():
        w.requires_grad_(False)
    reg = dinv.optim.PatchPrior(nll, n_patches=s["n_patches"], patch_size=PATCH)
    physics = dinv_physics(op)
    p = nm.params
    fid = dinv.optim.L2(sigma=p.sigma) if nm.name == "gaussian" else dinv.optim.LogPoissonLikelihood(N0=p.n0, mu=p.mu)
    yd = y[:, None] if op.name == "superres" else y
    torch.manual_seed(spec["index"])
    trace.t0 = time.perf_counter()
    x0 = start_image(y, op, nm, s["init"]).detach()
    x = x0[:, None].clone().requires_grad_(True)
    opt = torch.optim.Adam([x], lr=s["lr"])
    for k in range(s["iterations"]):
        opt.zero_grad()
        xp = F.pad(x, (s["padding"],) * 4, mode="reflect") if s["padding"] else x
        loss = fid(x, yd, physics).sum() + s["lam"] * reg(xp).sum()
        loss.backward()
        opt.step()
        trace(k + 1, x.detach())
    return {"x": x.detach()[:, 0], "precision": "fp32", "x0": x0}


def status_mb(key: str) -> float:
    """A size from /proc/self/status (VmRSS: resident now, VmHWM: its peak), MiB."""
    with open("/proc/self/status") as f:
        return next(int(ln.split()[1]) for ln in f if ln.startswith(key + ":")) / 1024


def reset_peak() -> bool:
    """Set this process's peak resident size (VmHWM) to its current one; False where the kernel refuses."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def worker(spec_file: str, out_file: str) -> None:
    """Run one case described by ``spec_file`` (JSON) and write its result to ``out_file``."""
    import torch
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    from invsolve.results import load_measurement
    from invsolve.noise import build_noise

    spec = json.loads(Path(spec_file).read_text())
    torch.set_num_threads(spec["threads"])
    i = spec["index"]
    m = load_measurement(spec["measurement"], items=slice(i, i + 1))
    truth = np.load(spec["truth"])[i]
    op, nm, y = m.build_operator("cpu"), build_noise(m.noise), torch.as_tensor(m.measurement)
    if spec["library"] == "deepinv":
        import_deepinv()
    trace = Trace(truth)
    reset, base, peak0 = reset_peak(), status_mb("VmRSS"), status_mb("VmHWM")
    out = (run_invsolve if spec["library"] == "invsolve" else run_deepinv)(spec, y, op, nm, trace)
    peak = status_mb("VmHWM")
    x = out["x"][0].numpy()
    ts, ps = np.array(trace.points).T
    hit = int(np.argmax(np.abs(ps - ps[-1]) <= WITHIN_DB))
    Path(out_file).write_text(json.dumps({
        "psnr": float(peak_signal_noise_ratio(truth, x, data_range=1)),
        "ssim": float(structural_similarity(truth, x, data_range=1)),
        "s_per_it": float((ts[-1] - ts[0]) / max(len(ts) - 1, 1)), "t_final": float(ts[hit]),
        "peak_mb": peak - base, "peak_raised": reset or peak > peak0, "precision": out["precision"],
        "start_psnr": (float(peak_signal_noise_ratio(truth, out["x0"][0].numpy(), data_range=1))
                       if "x0" in out else None)}))


def run_case(spec: dict, tmp: Path) -> dict:
    """``spec`` in a fresh process (one torch thread per ``spec["threads"]``), its result."""
    tag = f"{spec['problem']}-{spec['index']}-{spec['library']}-{spec['prior']}-{spec['precision']}"
    sf, of = tmp / f"{tag}.json", tmp / f"{tag}.out.json"
    sf.write_text(json.dumps(spec))
    env = {**os.environ, "OMP_NUM_THREADS": str(spec["threads"]), "MKL_NUM_THREADS": str(spec["threads"])}
    subprocess.run([sys.executable, __file__, "_case", str(sf), str(of)], check=True, env=env)
    return json.loads(of.read_text())


# -- the race -----------------------------------------------------------------------------


def map_settings(op, prior_name: str, args) -> dict:
    """The preset for ``op`` and the prior at this size, overridden by the command line (patchNR only)."""
    from invsolve.methods.patch_map import MapParams, resolve_settings

    s = resolve_settings(op, prior_name, MapParams())
    given = {"lam": args.lam, "n_patches": args.n_patches, "lr": args.lr, "padding": args.padding} \
        if prior_name == "patchnr" else {}
    s.update({k: v for k, v in {**given, "iterations": args.iterations}.items() if v is not None})
    return {k: s[k] for k in ("lam", "n_patches", "lr", "iterations", "padding", "init")}


def simulate(problem: str, crops, tmp: Path):
    """invsolve's simulation of the crops for a problem: (measurement file, truth file, operator)."""
    from benchmarks.patch_priors import _op_params
    from invsolve import api
    from invsolve.results import save_measurement

    stack = np.stack([c for _, c in crops])
    op_name = OPERATORS[problem]
    m = api.simulate(stack, op_name, _op_params(op_name, stack.shape[-1]), seed=0, device="cpu")
    mf, tf = tmp / f"{problem}.h5", tmp / f"{problem}-truth.npy"
    save_measurement(m, mf)
    np.save(tf, stack)
    return str(mf), str(tf), m.build_operator("cpu"), stack


def race(args, tmp: Path) -> tuple[list[dict], dict]:
    """Train (or load) the priors, then every case of every crop and problem, interleaved per crop."""
    from benchmarks.patch_priors import _crops
    from invsolve import api_priors

    learn, _ = api_priors.read_training_images(str(SHARED / "material" / "learn.png"))
    facts = {"train": {}, "check": {}}
    files = {}
    for lib, given, train in (("invsolve", args.patchnr_file, train_invsolve),
                              ("deepinv", args.deepinv_file, train_deepinv)):
        if given:
            files[(lib, "patchnr")], facts["train"][(lib, "patchnr")] = str(given), None
        else:
            files[(lib, "patchnr")], ms = train(learn, args.train_steps, tmp)
            facts["train"][(lib, "patchnr")] = f"{ms:.1f} ms/step"
            print(f"trained {lib} patchNR: {args.train_steps} steps, {ms:.1f} ms/step", file=sys.stderr, flush=True)
    cases = CASES if args.epll else [c for c in CASES if c[1] != "epll"]
    if args.epll:
        for lib, (f, sec) in fit_epll(learn, tmp).items():
            files[(lib, "epll")], facts["train"][(lib, "epll")] = f, f"EM {sec:.0f} s"
    crops = _crops(args.images, args.crop)
    problems, results = {}, []
    for problem in args.problems:
        mf, tf, op, stack = simulate(problem, crops, tmp)
        facts["check"][problem] = check_operator(op, dinv_physics(op), stack)
        settings = {pr: map_settings(op, pr, args) for pr in ("patchnr", "epll")}
        problems[problem] = (mf, tf, settings)
        facts.setdefault("settings", {})[problem] = settings
    try:
        for i, (name, _) in enumerate(crops):
            done = []
            for problem, (mf, tf, settings) in problems.items():
                for lib, pr, prec in cases:
                    spec = {"problem": problem, "index": i, "library": lib, "prior": pr, "precision": prec,
                            "file": files[(lib, pr)], "settings": settings[pr], "measurement": mf, "truth": tf,
                            "threads": args.threads}
                    r = run_case(spec, tmp) | {"problem": problem, "crop": name, "library": lib, "prior": pr,
                                               "asked": prec}
                    done.append(r)
                    print(f"  {problem} {name} {lib} {pr} {r['precision']}: {r['psnr']:.2f} dB, "
                          f"{r['s_per_it']:.3f} s/it, final PSNR at {r['t_final']:.1f} s, {r['peak_mb']:.0f} MB",
                          file=sys.stderr, flush=True)
            results += done
    except KeyboardInterrupt:  # the crops finished so far make the table
        if not results:
            raise
        facts["stopped"] = True
    return results, facts


def table(results: list[dict], facts: dict, args) -> str:
    rows = ["| problem | library | prior | precision | PSNR | SSIM | s/iteration | s to final PSNR | "
            "MAP peak MB | training |", "|---|---|---|---|---|---|---|---|---|---|"]
    keys = dict.fromkeys((r["problem"], r["library"], r["prior"], r["asked"]) for r in results)
    for key in keys:
        rs = [r for r in results if (r["problem"], r["library"], r["prior"], r["asked"]) == key]
        prec = ", ".join(sorted({r["precision"] for r in rs}))
        prec = f"{key[3]} → {prec}" if key[3] == "auto" else prec
        mem = np.mean([r["peak_mb"] for r in rs])
        mem = f"{mem:.0f}" if all(r["peak_raised"] for r in rs) else f"≥ {mem:.0f}"
        mean = lambda f: float(np.mean([r[f] for r in rs]))  # noqa: E731
        rows.append(f"| {OPERATORS[key[0]]} | {key[1]} | {key[2]} | {prec} | {mean('psnr'):.2f} | "
                    f"{mean('ssim'):.4f} | {mean('s_per_it'):.3f} | {mean('t_final'):.1f} | {mem} | "
                    f"{facts['train'][(key[1], key[2])] or 'given'} |")
    notes = []
    for problem, st in facts.get("settings", {}).items():
        starts = [r["start_psnr"] for r in results if r["problem"] == problem and r["start_psnr"] is not None]
        p, e = st["patchnr"], st["epll"]
        notes.append(f"{OPERATORS[problem]}: patchNR λ {p['lam']:.4g}, N_p {p['n_patches']}, lr {p['lr']}, "
                     f"{p['iterations']} iterations, padding {p['padding']}; EPLL λ {e['lam']:.4g}, N_p "
                     f"{e['n_patches']}, lr {e['lr']}; start {p['init']} ({np.mean(starts):.2f} dB); "
                     f"DeepInverse's A against invsolve's: max |difference| {facts['check'][problem]:.1e}")
    crops = sorted({r["crop"] for r in results}, key=lambda c: [r["crop"] for r in results].index(c))
    prior = (f"priors trained {args.train_steps} steps" if not (args.patchnr_file or args.deepinv_file)
             else f"patchNR files {args.patchnr_file}, {args.deepinv_file}")
    stop = "  Stopped early: the crops not listed were not run." if facts.get("stopped") else ""
    return "\n".join(rows) + (f"\n\nMean over {len(crops)} crops of {args.crop}² ({', '.join(crops)}); {prior}; "
                              f"cases interleaved per crop, each in a fresh process, {args.threads} torch "
                              f"thread(s).  " + "  ".join(n + "." for n in notes) + stop)


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_case"]:
        worker(*argv[1:3])
        return 0
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--problems", nargs="+", choices=list(OPERATORS), default=list(OPERATORS))
    ap.add_argument("--images", type=int, default=5, help="crops: test.png, then testset/img1..")
    ap.add_argument("--crop", type=int, default=128)
    ap.add_argument("--train-steps", type=int, default=5000)
    ap.add_argument("--patchnr-file", type=Path, default=None, help="invsolve patchNR file to use, not train")
    ap.add_argument("--deepinv-file", type=Path, default=None, help="DeepInverse PatchNR state file (as written here)")
    ap.add_argument("--lam", type=float, default=None, help="patchNR MAP λ (default: invsolve's preset)")
    ap.add_argument("--n-patches", type=int, default=None, help="patchNR MAP N_p (default: preset)")
    ap.add_argument("--lr", type=float, default=None, help="patchNR MAP Adam step (default: preset)")
    ap.add_argument("--padding", type=int, default=None, help="patchNR MAP reflect padding (default: preset)")
    ap.add_argument("--iterations", type=int, default=None, help="MAP iterations, every prior (default: preset)")
    ap.add_argument("--no-epll", dest="epll", action="store_false", help="leave the EPLL cases out")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--results", type=Path, default=Path(__file__).with_name("RESULTS.md"))
    ap.add_argument("--no-append", action="store_true")
    args = ap.parse_args(argv)
    import torch

    from benchmarks._results import append_results, load_average

    torch.set_num_threads(args.threads)
    load0, t0 = load_average(), time.perf_counter()
    signal.signal(signal.SIGTERM, _interrupt)
    with tempfile.TemporaryDirectory() as tmp:
        results, facts = race(args, Path(tmp))
    out = table(results, facts, args)
    print(out)
    title = "invsolve against DeepInverse 0.5.0" + (", stopped" if facts.get("stopped") else "")
    if not args.no_append:  # a stopped run goes to the day's log only
        append_results(args.results, title, "peers.py", argv, out, load0=load0, t0=t0, threads=args.threads)
    return 0


if __name__ == "__main__":
    sys.exit(main())
