"""A trained conditional sampler (``--sampler-file``: cflow, cfm, mmd-flow, csnf) as a posterior sampler, with
importance resampling against the exact likelihood as an option for samplers with an exact density."""

from __future__ import annotations

from typing import Any

import torch

from ..errors import OperatorError
from .base import POSTERIOR_SAMPLERS, PosteriorSampler, num_samples

__all__ = ["TrainedPosterior", "sampling_settings"]


@POSTERIOR_SAMPLERS.register("trained")
class TrainedPosterior(PosteriorSampler):
    """``num_samples`` independent draws per measurement from a sampler file; with ``importance=K``, K times as
    many proposals importance-resampled (:mod:`invsolve.samplers.importance`)."""

    name = "trained"

    def __init__(self, measurement, request, device):
        super().__init__(measurement, request, device)
        from ..samplers import load_sampler
        from ..samplers.importance import importance_weigher

        r = request
        self.num = num_samples(r.num_samples, 64)
        if r.prior is not None or r.prior_file is not None:
            raise OperatorError("give either --sampler-file (a trained sampler) or --prior (Langevin), not both")
        if r.chains is not None:
            raise OperatorError("--chains sets Langevin and MCMC chains; a trained sampler (--sampler-file) draws "
                                "--num-samples independent samples: drop it")
        smp = load_sampler(r.sampler_file, device, r.allow_partial).configure(r.precision, r.compile)
        if r.sampler not in (None, smp.name):
            raise OperatorError(f"{r.sampler_file} holds a {smp.name!r} sampler, not {r.sampler!r}")
        smp.check_measurement(measurement)
        self.smp = smp
        self.spec = {"name": smp.name, "file": str(r.sampler_file), "num_samples": self.num,
                     "precision": r.precision, "precision_used": smp.precision,
                     "precision_reason": smp.precision_reason,
                     **sampling_settings(smp, r.sampler_params, r.sampler_file)}
        self.weigh = importance_weigher(smp, measurement, r.importance, device) if r.importance else None
        self.ess: list[float] = []

    def sample(self, items, generator):
        from ..posterior import summarize_samples

        y = self.batch(items)
        with torch.no_grad():
            if self.weigh is None:
                xs = self.smp.sample(y, self.num, generator=generator, track=self.request.track)
            else:
                xs, e = self.weigh(y, self.num, generator)
                self.ess += e.tolist()
            return summarize_samples(xs, self.request.levels, keep=self.request.keep_samples)

    def record(self, parts):
        if self.weigh is not None:
            return {**self.spec, "importance": self.request.importance, "effective_sample_size": self.ess}
        return self.spec


def sampling_settings(smp, params: dict[str, Any], path) -> dict[str, Any]:
    """Apply ``-S`` sampling settings to a loaded sampler (only those its class declares in
    ``sampling_settings``; the rest is fixed by training); return them for the result's provenance."""
    from ..config import validate_params

    allowed = type(smp).sampling_settings
    for key in params:
        if key not in allowed:
            can = f"its sampling settings: {', '.join(allowed)}" if allowed else "it has no sampling settings"
            raise OperatorError(f"-S {key}=... does not apply to the trained {smp.name} sampler in {path} ({can}); "
                                "other settings are fixed by `invsolve train-sampler`")
    if not params:
        return {}
    cfg = validate_params(type(smp.config), {**smp.config.model_dump(), **params}, f"-S settings of {smp.name!r}")
    smp.set_sampling(cfg)
    return {k: getattr(cfg, k) for k in params}
