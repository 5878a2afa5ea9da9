"""MCMC for vector problems (:mod:`invsolve.mcmc`) as a posterior sampler."""

from __future__ import annotations

import dataclasses

from .base import POSTERIOR_SAMPLERS, PosteriorSampler

__all__ = ["MCMCPosterior"]


@POSTERIOR_SAMPLERS.register("mcmc")
class MCMCPosterior(PosteriorSampler):
    """Metropolis-within-Gibbs or HMC chains per measurement (settings ``-S``, ``--chains``); the prior is the
    operator's own box unless ``-S prior=`` names one."""

    name = "mcmc"

    def __init__(self, measurement, request, device):
        super().__init__(measurement, request, device)
        opts = dict(request.sampler_params)
        if request.chains is not None:
            opts["chains"] = request.chains
        if request.keep_samples:
            opts["keep_samples"] = True
        self.prior = opts.pop("prior", None)
        self.opts = opts

    def sample(self, items, generator):
        from ..mcmc import mcmc_posterior

        m, gt = self.measurement, self.measurement.ground_truth
        sub = dataclasses.replace(m, measurement=self.data[items], ground_truth=None if gt is None else gt[items])
        return mcmc_posterior(sub, self.prior, dict(self.opts), self.request.levels, generator, self.request.track)

    def record(self, parts):
        return {"name": "mcmc", **parts[0].info}
