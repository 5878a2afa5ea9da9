"""Unadjusted Langevin sampling of the posterior with a patch prior.

x_{k+1} = x_k - tau * grad U(x_k) + sqrt(2 tau) * xi_k,   U = NLL(y | A x) + lam * R(x),

with parallel chains, burn-in and thinning; running (Welford) mean and
variance so memory does not grow with the number of samples.

Whether the chains mixed is checked on the way: the split-R̂ and the effective
sample size of each pixel (of an evenly spaced subset on large images) over the
chains, and the share of the posterior variance that is still the chains'
starting noise (``init_noise``; a chain that has not forgotten its start keeps
its offset, and the std map then shows the starting noise, not the posterior).
Their summaries, one value per measurement, go into the sampler settings of the
result, and a ``RuntimeWarning`` says when a run has not mixed.
"""

from __future__ import annotations

import math
import warnings

import torch
from pydantic import Field, model_validator

from .config import Params
from .precision import Precision, resolve_precision
from .methods.base import no_track
from .posterior import (PosteriorSummary, RunningMoments, concat_summaries, effective_sample_size, split_rhat,
                        summarize_samples)

__all__ = ["LangevinParams", "langevin_sample", "merge_info", "check_mixing", "PRESET_STEP", "RHAT_MAX",
           "UNMIXED_SHARE_MAX", "START_SHARE_MAX"]


class LangevinParams(Params):
    chains: int = Field(4, ge=1, description="parallel chains per measurement")
    steps: int = Field(2000, ge=1, description="Langevin iterations per chain (burn-in included)")
    burn_in: int = Field(500, ge=0, description="iterations discarded before collecting")
    thin: int = Field(10, ge=1, description="collect every thin-th iteration after burn-in")
    step_size: float | None = Field(None, gt=0, description="tau; none: the preset of operator and prior")
    lam: float | None = Field(None, ge=0, description="prior weight; none: the MAP preset")
    n_patches: int | None = Field(None, ge=1, description="random patches per step; none: the MAP preset")
    padding: int | None = Field(None, ge=0, description="reflect padding; none: the MAP preset")
    size_scaling: bool = Field(True, description="carry the preset's lam and N_p from the paper's image size "
                               "to this one, as for MAP")
    init_noise: float = Field(0.01, ge=0, description="std of the noise added to the classical start")
    keep_samples: bool = Field(False, description="store the collected samples")
    precision: Precision = Field("auto", description="patchnr: bf16 runs the flow's subnets in bfloat16 for the "
                                 "prior term, as for MAP; auto: bf16 where the device computes it fast")

    @model_validator(mode="after")
    def _collects_samples(self) -> "LangevinParams":
        if self.steps <= self.burn_in:
            raise ValueError(f"steps ({self.steps}) must exceed burn_in ({self.burn_in}) to collect any samples; "
                             f"raise -S steps= or lower -S burn_in=")
        return self


#: tau per operator kind (paper: 2e-7 for patchNR CT with lam 6000; images in [0, 1]).
PRESET_STEP = {"ct": 2e-7, "superres": 1e-6, "blur": 1e-6, "inpaint": 1e-6}

#: A pixel's chains disagree above this split-R̂ (as for MCMC).
RHAT_MAX = 1.1
#: The chains have not mixed when more than this share of the checked pixels is above :data:`RHAT_MAX` (a
#: share, not the maximum: over thousands of pixels the largest estimate of a mixed run exceeds 1.1 by chance).
UNMIXED_SHARE_MAX = 0.1
#: The std map is dominated by the starting noise when more than this share of the posterior variance is it.
START_SHARE_MAX = 0.25
#: Values (chains × draws × pixels) of the trace kept per measurement for split-R̂ and ESS; pixels beyond
#: it are checked on an evenly spaced subset (at least 256 pixels).
TRACE_VALUES = 2**21

#: The per-measurement diagnostics in ``PosteriorSummary.info`` (lists, one value per measurement).
DIAGNOSTICS = ("split_rhat_max", "split_rhat_median", "unmixed_share", "ess_min", "ess_median",
               "start_noise_share")


def langevin_sample(y, operator, noise, prior, params: LangevinParams, map_settings: dict,
                    levels=(), generator: torch.Generator | None = None, track=no_track,
                    warn: bool = True) -> PosteriorSummary:
    """Run ``chains`` ULA chains for every measurement in the batch y (B, *range).

    ``map_settings`` holds lam, n_patches and padding as resolved by
    :func:`invsolve.methods.patch_map.resolve_settings` from the preset and ``params``.

    Returns the summary over the collected (thinned, post burn-in) states of all
    chains: mean and std (B, H, W), and quantiles when ``levels`` are given
    (these keep the samples in memory).  ``info`` holds the settings used and the
    mixing diagnostics per measurement: ``split_rhat_max``/``split_rhat_median``,
    ``unmixed_share`` (the share of pixels with split-R̂ above :data:`RHAT_MAX`)
    and ``ess_min``/``ess_median`` (over all chains) over the pixels checked
    (``diagnostic_pixels``), and ``start_noise_share``, the fraction of the
    posterior variance that is still the chains' starting noise.  With ``warn``, a ``RuntimeWarning`` when
    the chains have not mixed (see :func:`check_mixing`).

    References:
        Roberts & Tweedie, Exponential convergence of Langevin distributions and
        their discrete approximations, Bernoulli 2(4) (1996); Altekrueger et al.,
        PatchNR, Inverse Problems 39 (2023), arXiv 2205.12021 (patch-prior ULA).
    """
    from .methods.patch_map import check_patch_fit, check_precision

    check_precision(params.precision, prior, "-S")
    check_patch_fit(operator.domain_shape, prior.patch_size, map_settings["padding"], "-S")
    if prior.stateful and y.shape[0] > 1:
        # a stateful prior (WPP's dual potential ψ) starts afresh for each measurement, whose chains share it,
        # so a measurement's result does not depend on the ones sampled before it in the batch
        parts = [_chains(y[i : i + 1], operator, noise, prior, params, map_settings, levels, generator, track)
                 for i in range(y.shape[0])]
        summary = concat_summaries(parts)
        summary.info = merge_info([q.info for q in parts])
    else:
        summary = _chains(y, operator, noise, prior, params, map_settings, levels, generator, track)
    if warn:
        check_mixing(summary.info, stacklevel=3)
    return summary


def _chains(y, operator, noise, prior, params: LangevinParams, map_settings: dict, levels, generator,
            track) -> PosteriorSummary:
    """The chains of :func:`langevin_sample` for the batch y, with their diagnostics in ``info``."""
    from .methods import initial_guess
    from .methods.patch_map import map_energy

    p = params
    prior.reset()
    B, C = y.shape[0], p.chains
    kind = operator.kind
    tau = p.step_size if p.step_size is not None else PRESET_STEP.get(kind, 1e-6)
    # map_settings comes from resolve_settings(operator, prior, params): the preset with params' overrides applied
    lam, n_patches, padding = map_settings["lam"], map_settings["n_patches"], map_settings["padding"]
    precision, why = resolve_precision(p.precision, y.device, prior.supports_bf16)
    with torch.no_grad():
        x0 = initial_guess(y, operator, noise)
    yc = y.repeat_interleave(C, dim=0)
    x = x0.repeat_interleave(C, dim=0)
    start = p.init_noise * torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    x = x + start
    moments = RunningMoments()
    kept, trace = [], []
    need_samples = p.keep_samples or bool(levels)
    S = len(range(p.burn_in, p.steps, p.thin))  # draws per chain
    pixels = math.prod(x.shape[1:])
    P = min(pixels, max(256, TRACE_VALUES // (C * max(S, 1))))
    watched = torch.arange(P, device=x.device) * pixels // P  # evenly spaced pixels for split-R̂ and ESS
    chain_sum = torch.zeros((B, C, pixels), dtype=torch.float64, device=x.device)
    for k in track(range(p.steps), f"langevin ({prior.name})", hint="-S steps=N (with -S burn_in=…)"):
        x = x.detach().requires_grad_(True)
        e = map_energy(x, yc, operator, noise, prior, lam, n_patches, padding, generator, precision)
        (g,) = torch.autograd.grad(e.sum(), x)
        track.note(energy=e.detach() / C)  # per measurement: the mean over its chains
        with torch.no_grad():
            xi = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
            x = x - tau * g + math.sqrt(2 * tau) * xi
        if k >= p.burn_in and (k - p.burn_in) % p.thin == 0:
            s = x.detach().reshape(B, C, *x.shape[1:])
            moments.update(s, dim=1)
            flat = s.reshape(B, C, pixels).double()
            chain_sum += flat
            trace.append(flat[..., watched].cpu())
            if need_samples:
                kept.append(s.float().cpu())
    if moments.n == 0:
        from .errors import ConfigError

        raise ConfigError(f"no samples collected: steps ({p.steps}) must exceed burn_in ({p.burn_in})")
    if need_samples:
        summary = summarize_samples(torch.cat(kept, dim=1), levels, keep=p.keep_samples)
    else:
        summary = PosteriorSummary(mean=moments.mean.float().cpu().numpy(), std=moments.std.float().cpu().numpy())
    chains = torch.stack(trace, dim=2)  # (B, C, S, P)
    share = _start_share(chain_sum / len(trace), start.reshape(B, C, pixels).double(), moments.var.reshape(B, -1))
    summary.info = {"step_size": tau, "lam": lam, "n_patches": n_patches, "padding": padding,
                    "precision_used": precision, "precision_reason": why,
                    "samples_per_measurement": moments.n, "draws_per_chain": len(trace),
                    "diagnostic_pixels": P, **_diagnostics(chains, share)}
    return summary


def _start_share(chain_mean: torch.Tensor, start: torch.Tensor, var: torch.Tensor) -> torch.Tensor:
    """Per measurement, the share of the posterior variance that is the chains' starting noise, (B,).

    The chain means (B, C, n) regressed on the starting offsets (B, C, n) over chains and pixels: a slope β
    near 1 says the chains still sit where they started, and β² times the offsets' spread, against the
    summed posterior variance ``var`` (B, n), is the part of the std map they make up.  0 without offsets
    (``init_noise`` 0) or with one chain.
    """
    C = start.shape[1]
    if C < 2:
        return torch.zeros(start.shape[0], dtype=torch.float64)
    mc = chain_mean - chain_mean.mean(1, keepdim=True)
    sc = start - start.mean(1, keepdim=True)
    see = (sc**2).sum((1, 2))
    beta = (mc * sc).sum((1, 2)) / see.clamp_min(1e-300)
    explained = beta**2 * see / (C - 1)
    share = explained / var.sum(1).clamp_min(1e-300)
    return torch.where(see > 0, share.clamp(0, 1), torch.zeros_like(share)).cpu()


def _finite(v: float, digits: int) -> float | None:
    return round(v, digits) if math.isfinite(v) else None


def _diagnostics(chains: torch.Tensor, share: torch.Tensor) -> dict[str, list]:
    """The per-measurement lists of :data:`DIAGNOSTICS` from the traces (B, C, S, P) and starting shares (B,)."""
    rhat, ess = split_rhat(chains), effective_sample_size(chains)
    out = {k: [] for k in DIAGNOSTICS}
    for r, e, f in zip(rhat, ess, share):
        r, e = r[torch.isfinite(r)], e[torch.isfinite(e)]
        out["split_rhat_max"].append(_finite(float(r.max()), 4) if len(r) else None)
        out["split_rhat_median"].append(_finite(float(r.median()), 4) if len(r) else None)
        out["unmixed_share"].append(round(float((r > RHAT_MAX).double().mean()), 4) if len(r) else None)
        out["ess_min"].append(_finite(float(e.min()), 1) if len(e) else None)
        out["ess_median"].append(_finite(float(e.median()), 1) if len(e) else None)
        out["start_noise_share"].append(round(float(f), 4))
    return out


def merge_info(infos: list[dict]) -> dict:
    """One ``info`` for consecutive batches of measurements: the diagnostic lists joined, in order, and the
    rest (settings, draws) of the first."""
    out = dict(infos[0])
    for k in DIAGNOSTICS:
        if all(k in i for i in infos):
            out[k] = [v for i in infos for v in i[k]]
    return out


def check_mixing(info: dict, stacklevel: int = 2) -> None:
    """A ``RuntimeWarning`` when the Langevin chains of ``info`` have not mixed: more than
    :data:`UNMIXED_SHARE_MAX` of the pixels with a split-R̂ above :data:`RHAT_MAX`, a std map of which more
    than :data:`START_SHARE_MAX` is still the starting noise, or too few draws per chain (under 4) to tell;
    the worst measurement counts."""
    def worst(key, pick):
        vals = [v for v in info.get(key, ()) if v is not None]
        return pick(vals) if vals else None

    unmixed, rhat = worst("unmixed_share", max), worst("split_rhat_max", max)
    share, ess = worst("start_noise_share", max), worst("ess_min", min)
    draws = info.get("draws_per_chain")
    why = []
    if unmixed is not None and unmixed > UNMIXED_SHARE_MAX:
        why.append(f"split-R-hat above {RHAT_MAX} on {unmixed:.1%} of the pixels, up to {rhat:.2f}")
    if share is not None and share > START_SHARE_MAX:
        why.append(f"{share:.1%} of the posterior variance is still the starting noise (init_noise)")
    if why:
        if ess is not None:
            why.append(f"effective samples per pixel down to {ess:.3g}")
        warnings.warn(f"Langevin chains have not mixed ({'; '.join(why)}): the posterior std and intervals are "
                      "unreliable; raise -S steps=… and -S burn_in=…, or -S step_size=…", RuntimeWarning,
                      stacklevel=stacklevel)
    elif draws is not None and draws < 4:
        warnings.warn(f"Langevin kept {draws} draw(s) per chain, too few to check that the chains mixed "
                      "(split-R-hat needs 4): raise -S steps=… or lower -S thin=…", RuntimeWarning,
                      stacklevel=stacklevel)
