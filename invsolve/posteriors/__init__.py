"""The ways of sampling a posterior behind one interface (:class:`PosteriorSampler`), registered by name:
``trained`` (a conditional sampler file from ``train-sampler``, optionally importance-resampled), ``mcmc``
(vector problems), ``langevin`` (a patch prior) and ``diffusion`` (a score prior with DiffPIR, DPS or annealed
Langevin).  :func:`invsolve.api.sample_posterior` builds one with :func:`choose` and runs it batch by batch.
"""

from .base import POSTERIOR_SAMPLERS, PosteriorSampler, SampleRequest, choose, load_all

__all__ = ["POSTERIOR_SAMPLERS", "PosteriorSampler", "SampleRequest", "choose", "load_all"]
