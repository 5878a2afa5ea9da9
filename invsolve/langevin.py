"""Unadjusted Langevin sampling of the posterior with a patch prior.

x_{k+1} = x_k - tau * grad U(x_k) + sqrt(2 tau) * xi_k,   U = NLL(y | A x) + lam * R(x),

with parallel chains, burn-in and thinning; running (Welford) mean and
variance so memory does not grow with the number of samples.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from pydantic import Field, model_validator

from .config import Params
from .methods.base import no_track
from .posterior import PosteriorSummary, RunningMoments, concat_summaries, summarize_samples

__all__ = ["LangevinParams", "langevin_sample", "PRESET_STEP"]


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
    precision: Literal["fp32", "bf16"] = Field("fp32", description="patchnr: bf16 runs the flow's subnets in "
                                               "bfloat16 for the prior term, as for MAP")

    @model_validator(mode="after")
    def _collects_samples(self) -> "LangevinParams":
        if self.steps <= self.burn_in:
            raise ValueError(f"steps ({self.steps}) must exceed burn_in ({self.burn_in}) to collect any samples; "
                             f"raise -S steps= or lower -S burn_in=")
        return self


#: tau per operator kind (paper: 2e-7 for patchNR CT with lam 6000; images in [0, 1]).
PRESET_STEP = {"ct": 2e-7, "superres": 1e-6, "blur": 1e-6, "inpaint": 1e-6}


def langevin_sample(y, operator, noise, prior, params: LangevinParams, map_settings: dict,
                    levels=(), generator: torch.Generator | None = None, track=no_track) -> PosteriorSummary:
    """Run ``chains`` ULA chains for every measurement in the batch y (B, *range).

    ``map_settings`` holds lam, n_patches and padding as resolved by
    :func:`invsolve.methods.patch_map.resolve_settings` from the preset and ``params``.

    Returns the summary over the collected (thinned, post burn-in) states of all
    chains: mean and std (B, H, W), and quantiles when ``levels`` are given
    (these keep the samples in memory).

    References:
        Roberts & Tweedie, Exponential convergence of Langevin distributions and
        their discrete approximations, Bernoulli 2(4) (1996); Altekrueger et al.,
        PatchNR, Inverse Problems 39 (2023), arXiv 2205.12021 (patch-prior ULA).
    """
    from .methods import initial_guess
    from .methods.patch_map import check_patch_fit, check_precision, map_energy

    p = params
    check_precision(p.precision, prior.name, "-S")
    check_patch_fit(operator.domain_shape, prior.patch_size, map_settings["padding"], "-S")
    if hasattr(prior, "reset"):
        # a stateful prior (WPP's dual potential ψ) starts afresh for each measurement, whose chains share it,
        # so a measurement's result does not depend on the ones sampled before it in the batch
        if y.shape[0] > 1:
            parts = [langevin_sample(y[i : i + 1], operator, noise, prior, params, map_settings, levels, generator,
                                     track) for i in range(y.shape[0])]
            return concat_summaries(parts)
        prior.reset()
    B, C = y.shape[0], p.chains
    kind = getattr(type(operator), "kind", "")
    tau = p.step_size if p.step_size is not None else PRESET_STEP.get(kind, 1e-6)
    # map_settings comes from resolve_settings(operator, prior, params): the preset with params' overrides applied
    lam, n_patches, padding = map_settings["lam"], map_settings["n_patches"], map_settings["padding"]
    with torch.no_grad():
        x0 = initial_guess(y, operator, noise)
    yc = y.repeat_interleave(C, dim=0)
    x = x0.repeat_interleave(C, dim=0)
    x = x + p.init_noise * torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    moments = RunningMoments()
    kept = []
    need_samples = p.keep_samples or bool(levels)
    for k in track(range(p.steps), f"langevin ({prior.name})"):
        x = x.detach().requires_grad_(True)
        e = map_energy(x, yc, operator, noise, prior, lam, n_patches, padding, generator, p.precision)
        (g,) = torch.autograd.grad(e.sum(), x)
        with torch.no_grad():
            xi = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
            x = x - tau * g + math.sqrt(2 * tau) * xi
        if k >= p.burn_in and (k - p.burn_in) % p.thin == 0:
            s = x.detach().reshape(B, C, *x.shape[1:])
            moments.update(s, dim=1)
            if need_samples:
                kept.append(s.float().cpu())
    if moments.n == 0:
        from .errors import ConfigError

        raise ConfigError(f"no samples collected: steps ({p.steps}) must exceed burn_in ({p.burn_in})")
    if need_samples:
        summary = summarize_samples(torch.cat(kept, dim=1), levels, keep=p.keep_samples)
    else:
        summary = PosteriorSummary(mean=moments.mean.float().cpu().numpy(), std=moments.std.float().cpu().numpy())
    summary.info = {"step_size": tau, "lam": lam, "n_patches": n_patches, "padding": padding,
                    "samples_per_measurement": moments.n}
    return summary
