"""MAP reconstruction with a learned patch prior (patchNR, EPLL, WPP).

argmin_x  NLL(y | A x) + lam * R(x),  R(x) = the prior's regulariser on N_p
random stride-1 patches of the (padded) image, drawn afresh every step;
minimised by Adam on the pixels from the classical reconstruction.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field

from ..config import Params
from ..errors import ConfigError, OperatorError
from ..precision import Precision, resolve_precision
from .base import METHODS, Method, build_method, no_track


class MapParams(Params):
    lam: float | None = Field(None, ge=0, description="prior weight; none: the preset for operator and prior")
    n_patches: int | None = Field(None, ge=1, description="random patches per step (N_p); none: preset")
    lr: float | None = Field(None, gt=0, description="Adam step size; none: preset")
    iterations: int | None = Field(None, ge=1, description="Adam steps; none: preset")
    padding: int | None = Field(None, ge=0, description="reflect padding before patch extraction; none: preset")
    init: Literal["classical", "tv", "adjoint", "zeros"] | None = Field(
        None, description="starting point: the classical method (FBP, bicubic, the observation), TV's "
        "reconstruction at its presets (a warm start for operators where the classical start is far off, e.g. "
        "limited-angle CT), the adjoint, or zeros; none: the preset's (tv for ct-limited, else classical)")
    preset: Literal["default", "paper"] = Field(
        "default", description="default: settings that finish on a CPU (an iteration cap with the stopping "
        "rule, TV's start for limited-angle CT); paper: the papers' full settings (their iteration counts and "
        "start, every iteration run)")
    tol: float | None = Field(None, ge=0, description="stop when the relative change of the mean iterate of "
                              "consecutive windows falls below tol (iterations is then a cap); 0: run every "
                              "iteration; none: the preset's")
    window: int | None = Field(None, ge=1, description="iterations per window of the stopping rule; none: preset")
    average: float | None = Field(
        None, ge=0, lt=1, description="fraction of the iterations whose iterates are averaged into the result "
        "(tail averaging; 0: the last iterate); none: preset")
    size_scaling: bool = Field(True, description="carry the preset's lam and N_p from the paper's image size to "
                               "this one (lam by measurement count, N_p by area); explicit values are kept")
    precision: Precision = Field(
        "auto", description="patchnr: bf16 runs the flow's subnets (its matrix products) in bfloat16 for the "
        "prior term; auto: bf16 on CPUs with AVX-512 BF16 or AMX and on GPUs of compute capability 8 or "
        "later, else fp32 (float32). The data term, the couplings' scales and log-determinants, and the "
        "pixels stay in float32")


#: Paper settings per (operator, prior) with the data term as the noise NLL.
#: For Gaussian noise the papers' data term is sum (Ax - y)^2, i.e. 2 sigma^2
#: times the NLL, so their lambda is divided by 2 sigma^2 (sigma = 0.01 -> x5000).
#: CT uses the Poisson NLL, identical to the papers' loss up to a constant.
#: Sources: patchNR repository and the patch-regulariser review (arXiv 2312.16611).
#: One deliberate change: the papers run superresolution without padding (on
#: 600x600 images); here patchNR and EPLL reflect-pad by patch size - 1 (5), so a
#: border pixel lies in as many patch positions as an inner one instead of 1..35.
#: Without it the 5-pixel frame is left almost to the data term alone; on two
#: held-out 256x256 val.png crops padding 5 gave 28.43 dB against 28.26
#: (benchmarks/RESULTS.md).  WPP keeps the paper's setting (a distribution
#: match, to which reflected copies add duplicates).
#: ``-M padding=0`` reproduces the papers.
#: A second one: superresolution with patchNR returns the mean of the last sixth
#: of its iterates instead of the last one (``average``).  Each step draws fresh
#: random patches, so at a constant Adam step the iterate keeps jittering around
#: the minimiser; the tail mean removes that jitter: +0.03 dB on the two
#: held-out val.png crops at 60 iterations (28.43 -> 28.46 dB), and
#: +0.02 ... +0.03 dB on each of the 11 test crops
#: (benchmarks/RESULTS.md).  ``-M average=0`` returns the last iterate as the
#: papers do.
PRESETS: dict[tuple[str, str], dict] = {
    ("ct-lowdose", "patchnr"): dict(lam=700.0, n_patches=40000, lr=0.005, iterations=300, padding=4),
    ("ct-limited", "patchnr"): dict(lam=700.0, n_patches=40000, lr=0.005, iterations=3000, padding=4),
    ("superres", "patchnr"): dict(lam=0.15 * 5000, n_patches=130000, lr=0.03, iterations=300, padding=5,
                                   average=1 / 6),
    ("blur", "patchnr"): dict(lam=0.87 * 5000, n_patches=40000, lr=0.005, iterations=600, padding=4),
    ("ct-lowdose", "epll"): dict(lam=1000.0, n_patches=30000, lr=0.01, iterations=300, padding=4),
    ("ct-limited", "epll"): dict(lam=1000.0, n_patches=30000, lr=0.01, iterations=3000, padding=4),
    ("superres", "epll"): dict(lam=0.35 * 5000, n_patches=30000, lr=0.03, iterations=300, padding=5),
    ("ct-lowdose", "wpp"): dict(lam=4e6, n_patches=40000, lr=0.001, iterations=300, padding=4),
    ("ct-limited", "wpp"): dict(lam=4e6, n_patches=40000, lr=0.001, iterations=3000, padding=4),
    ("superres", "wpp"): dict(lam=166.0 * 5000, n_patches=60000, lr=0.03, iterations=200, padding=0),
}
#: Zero-shot superresolution (patch flow trained on the observation itself).
ZERO_SHOT = dict(lam=0.25 * 5000, n_patches=50000, lr=0.01, iterations=60, padding=6)
FALLBACK = dict(lam=1000.0, n_patches=20000, lr=0.01, iterations=300, padding=4)

#: The papers' problem sizes behind the presets: image pixels and measurement
#: values (SR: 600x600 material slices observed at 150x150; CT: 362x362
#: LoDoPaB slices, 1000 (low dose) or 800 (limited angle) angles x 513 detector
#: pixels).  The data term is a sum over the measurement and R a mean over
#: patches, so lambda tuned at one size over-weights the prior on a smaller
#: image; ``size_scaled`` rescales lambda by the measurement count and N_p by
#: the image area (the same share of patch positions per step).
REFERENCE_SIZES: dict[str, tuple[int, int]] = {
    "superres": (600 * 600, 150 * 150),
    "ct-lowdose": (362 * 362, 1000 * 513),
    "ct-limited": (362 * 362, 800 * 513),
}
MIN_PATCHES = 1000

#: The default preset (``-M preset=default``): the papers' values above with the stopping rule of
#: :mod:`invsolve.methods.stopping` (their iteration count becomes a cap) and, for limited-angle CT, TV's
#: reconstruction as the start with a cap of 100 iterations instead of the papers' 3000 from FBP.  From TV's
#: start a held-out val.png crop (128², 12,000-step default prior, float32) reached 33.89 dB after 100
#: iterations, 33.92 after 150 and 33.92 after 300 (benchmarks/RESULTS.md, "Patch priors: iterations"), so two
#: thirds of a 300-iteration cap bought nothing; the 11 test crops at these defaults are in
#: benchmarks/RESULTS.md ("Learned priors at the defaults: ct-limited").  ``-M preset=paper`` runs the papers' settings,
#: every iteration.
DEFAULT_CHANGES: dict[str, dict] = {"ct-limited": dict(iterations=100, init="tv")}
#: The stopping rule of the default preset; see :data:`DEFAULT_CHANGES`.
STOPPING = dict(tol=2e-4, window=10)
PAPER = dict(tol=0.0, window=10, init="classical")


def preset_for(operator_name: str, kind: str, prior_name: str, zero_shot: bool = False) -> dict:
    """The papers' settings for an operator and prior, at the papers' problem size."""
    if zero_shot:
        return dict(ZERO_SHOT)
    return dict(PRESETS.get((operator_name, prior_name), PRESETS.get((kind, prior_name), FALLBACK)))


def size_scaled(settings: dict, operator, zero_shot: bool = False) -> dict:
    """``settings`` (a preset) carried to this operator's image and measurement sizes.

    lam is multiplied by (measurement values / the paper's) and n_patches by
    (image pixels / the paper's), at least ``MIN_PATCHES``; operators without a
    reference size (and presets already at the paper's size) are unchanged.
    The result records the factors as ``lam_factor`` and ``patch_factor``.
    """
    ref = REFERENCE_SIZES.get("superres" if zero_shot else operator.name,
                              REFERENCE_SIZES.get(operator.kind))
    out = dict(settings)
    if ref is None:
        return out
    pixels = math.prod(operator.domain_shape)
    values = math.prod(operator.range_shape)
    out["lam_factor"], out["patch_factor"] = values / ref[1], pixels / ref[0]
    out["lam"] = settings["lam"] * out["lam_factor"]
    out["n_patches"] = max(MIN_PATCHES, round(settings["n_patches"] * out["patch_factor"]))
    return out


def resolve_settings(operator, prior_name: str, params, zero_shot: bool = False) -> dict:
    """Preset (size-scaled unless ``params.size_scaling`` is off) overridden by the explicit ``params``
    (MAP's or Langevin's: their lam, n_patches, padding, ... where set)."""
    s = preset_for(operator.name, operator.kind, prior_name, zero_shot)
    if params.size_scaling:
        s = size_scaled(s, operator, zero_shot)
    if "average" in type(params).model_fields:
        s.setdefault("average", 0.0)
    else:  # the tail mean is MAP's; Langevin keeps running statistics of its own
        s.pop("average", None)
    if "tol" in type(params).model_fields:  # MAP's loop: the preset's start and stopping rule
        if params.preset == "paper":
            s.update(PAPER)
        else:
            s.update(init="classical", **STOPPING)
            s.update({} if zero_shot else DEFAULT_CHANGES.get(operator.name, {}))
    s.update({k: v for k, v in params.model_dump().items() if v is not None and k in s})
    return s


def map_terms(x, y, operator, noise, prior, lam: float, n_patches: int, padding: int,
              generator: torch.Generator | None = None, precision: str = "fp32") -> tuple[torch.Tensor, torch.Tensor]:
    """The data term NLL(y | A x) and the prior term lam * R(x) per item, each (B,); R on ``n_patches``
    random patches of each padded item, under bfloat16 autocast with ``precision="bf16"`` (the prior term
    only)."""
    from ..priors.patches import random_patches

    data = noise.nll(y, operator(x))
    xp = F.pad(x[:, None], (padding,) * 4, mode="reflect")[:, 0] if padding else x
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
        reg = torch.stack([prior.regularizer(random_patches(xi[None], prior.patch_size, n_patches, generator))
                           for xi in xp])
    return data, lam * reg.to(data.dtype)


def map_energy(x, y, operator, noise, prior, lam: float, n_patches: int, padding: int,
               generator: torch.Generator | None = None, precision: str = "fp32") -> torch.Tensor:
    """NLL(y | A x) + lam * R(x) per item, (B,): the sum of :func:`map_terms`."""
    data, reg = map_terms(x, y, operator, noise, prior, lam, n_patches, padding, generator, precision)
    return data + reg


def check_patch_fit(shape: tuple[int, ...], patch_size: int, padding: int, flag: str) -> None:
    """Refuse images (H, W) too small for reflect ``padding`` or for p×p patches of the padded image."""
    H, W = shape[-2:]
    m, p = min(H, W), patch_size
    if (padding == 0 or padding < m) and p <= m + 2 * padding:
        return
    low = max(0, -(-(p - m) // 2))  # the least padding that makes the patches fit
    fix = f"use larger images or {flag} padding={low}" if low == 0 or low < m else \
        f"use images of at least {p}x{p} or a prior with smaller patches"
    if p > m + 2 * padding:
        raise OperatorError(f"images of {H}x{W} are smaller than the prior's {p}×{p} patches (with padding "
                            f"{padding}); {fix}")
    raise OperatorError(f"images of {H}x{W} are too small for reflect padding {padding} (it must be below {m}); "
                        f"{fix}")


def check_precision(precision: str, prior, flag: str) -> None:
    """bf16 is for priors that declare ``supports_bf16`` (patchNR's subnets); EPLL and WPP keep their own
    arithmetic (ConfigError otherwise)."""
    if precision == "bf16" and not prior.supports_bf16:
        raise ConfigError(f"precision=bf16 applies to priors with a network (patchnr), not {prior.name!r}; "
                          f"drop {flag} precision=bf16")


def tail_mean(mean: torch.Tensor | None, x: torch.Tensor, count: int) -> torch.Tensor:
    """Running mean of iterates: ``mean`` of count - 1 iterates updated with ``x`` (its count-th), a new tensor."""
    return x.clone() if mean is None else mean + (x - mean) / count


@METHODS.register("map")
class PatchMAP(Method):
    """MAP estimate with a patch prior: Adam on the pixels, fresh random patches each step.

    Needs a prior (``reconstruct --prior NAME --prior-file FILE``).  Settings left
    unset take the preset of the operator and prior (the papers' values).
    (B, *range) -> (B, H, W).

    References:
        Altekrueger et al., PatchNR: learning from very few images by patch
        normalizing flow regularization, Inverse Problems 39 (2023), arXiv 2205.12021;
        Piening et al., Learning from small data sets: patch-based regularizers
        in inverse problems for image reconstruction, arXiv 2312.16611.
    """

    Params = MapParams
    name = "map"
    images_only = True
    linear_only = True  # the start A^T y of operators without a classical method

    def __init__(self, params, prior=None, zero_shot: bool = False):
        super().__init__(params)
        self.prior = prior
        self.zero_shot = zero_shot

    def settings(self, operator) -> dict:
        if self.prior is None:
            raise ConfigError("method 'map' needs a prior: give --prior NAME --prior-file FILE")
        check_precision(self.params.precision, self.prior, "-M")
        return resolve_settings(operator, self.prior.name, self.params, self.zero_shot)

    def resolved(self, operator, device=None) -> dict:
        """The precision run on ``device`` (``auto`` resolved) and why."""
        prec, why = resolve_precision(self.params.precision, device or "cpu", self.prior.supports_bf16)
        return {"precision": prec, "precision_reason": why}

    def run(self, y, operator, noise, *, generator=None, track=no_track, on_step=None, info=None):
        """As :meth:`Method.run`; ``on_step(k, x)`` (optional) sees the iterate x (B, H, W) after step k (1-based);
        ``info`` (a dict, optional) receives the run's record (iterations run, why it stopped).

        Returns the last iterate, or with ``average`` > 0 the mean of the last
        round(average · iterations) iterates (of the last window when the stopping rule ends the run early).
        """
        if self.prior.stateful and y.shape[0] > 1:
            # a stateful prior (WPP's dual potential) is warm-started per image
            parts, records = [], []
            for i in range(y.shape[0]):
                records.append({})
                parts.append(self.run(y[i : i + 1], operator, noise, generator=generator, track=track,
                                      on_step=on_step, info=records[-1]))
            if info is not None:
                info.update(merge_records(records))
            return torch.cat(parts)
        self.prior.reset()
        s = self.settings(operator)
        check_patch_fit(operator.domain_shape, self.prior.patch_size, s["padding"], "-M")
        x, rule = self._iterate(y, operator, noise, s, self._start(y, operator, noise, s["init"]), generator,
                                track, on_step)
        if info is not None:
            info.update(rule.record(y.shape[0]))
        return x

    def _start(self, y, operator, noise, init: str) -> torch.Tensor:
        from . import initial_guess

        with torch.no_grad():
            if init == "classical":
                return initial_guess(y, operator, noise)
            if init == "tv":
                with torch.enable_grad():  # TV is itself minimised by Adam
                    return build_method({"name": "tv"}).run(y, operator, noise)
            if init == "adjoint":
                return operator.adjoint(y)
            return torch.zeros((y.shape[0], *operator.domain_shape), dtype=y.dtype, device=y.device)

    def _iterate(self, y, operator, noise, s: dict, x0, generator, track, on_step):
        """Adam from x0 under the stopping rule: (the result (B, H, W), the rule's final state)."""
        from .stopping import STOP_CONVERGED, WindowStop

        precision = self.resolved(operator, y.device)["precision"]
        x = x0.detach().clone().requires_grad_(True)
        opt = torch.optim.Adam([x], lr=s["lr"])
        n = s["iterations"]
        rule = WindowStop(s["tol"], s["window"])
        start = n - round(s["average"] * n)  # iterates start + 1 .. n enter the tail mean
        mean = None
        for k in track(range(n), f"map ({self.prior.name})", hint="-M iterations=N (or a smaller crop)"):
            opt.zero_grad(set_to_none=True)
            data, reg = map_terms(x, y, operator, noise, self.prior, s["lam"], s["n_patches"], s["padding"],
                                  generator, precision)
            (data + reg).sum().backward()
            track.note(data=data.detach(), prior=reg.detach())
            opt.step()
            if on_step is not None:
                on_step(k + 1, x.detach())
            if k + 1 > start:
                mean = tail_mean(mean, x.detach(), k + 1 - start)
            if rule.update(x):
                break
        if rule.reason == STOP_CONVERGED and s["average"] > 0:
            return rule.last_mean, rule
        return (x.detach() if mean is None else mean), rule


def merge_records(records: list[dict]) -> dict:
    """The run records of items run one by one (each with per-item lists) as one record of the batch."""
    return {k: [v for r in records for v in r[k]] for k in ("iterations_run", "stopped", "last_change")}
