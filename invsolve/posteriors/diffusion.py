"""A diffusion (score) prior with DiffPIR, DPS or annealed Langevin (:mod:`invsolve.diffusion.samplers`) as a
posterior sampler."""

from __future__ import annotations

from ..errors import OperatorError
from .base import POSTERIOR_SAMPLERS, PosteriorSampler, num_samples

__all__ = ["DiffusionPosterior"]


@POSTERIOR_SAMPLERS.register("diffusion")
class DiffusionPosterior(PosteriorSampler):
    """``num_samples`` independent draws per measurement under a diffusion prior (``--prior-file``), by the
    diffusion sampler ``--sampler`` (default ``diffpir``) with its settings ``-S``."""

    name = "diffusion"

    def __init__(self, measurement, request, device):
        super().__init__(measurement, request, device)
        from ..api_diffusion import load_diffusion_prior
        from ..noise import build_noise

        r = request
        self.sampler = r.sampler or "diffpir"
        if r.prior not in (None, "diffusion"):
            raise OperatorError(f"--sampler {self.sampler} samples with a diffusion prior; give --prior diffusion, "
                                f"not {r.prior!r}")
        if r.prior_file is None:
            raise OperatorError(f"--sampler {self.sampler} needs --prior-file FILE (train one with `invsolve "
                                "train-prior --prior diffusion`)")
        if r.chains is not None:
            raise OperatorError("--chains sets Langevin and MCMC chains; a diffusion sampler draws --num-samples "
                                "independent samples: drop it")
        self.num = num_samples(r.num_samples, 16)
        self.prior = load_diffusion_prior(r.prior_file, device, r.allow_partial)
        self.op, self.noise = measurement.build_operator(device), build_noise(measurement.noise)
        self.spec: dict = {}

    def sample(self, items, generator):
        from ..api_diffusion import posterior_samples
        from ..posterior import summarize_samples

        r = self.request
        xs, self.spec = posterior_samples(self.prior, self.op, self.noise, self.batch(items), self.sampler,
                                          r.sampler_params, self.num, generator, r.track)
        return summarize_samples(xs.detach(), r.levels, keep=r.keep_samples)

    def record(self, parts):
        return {**self.spec, "prior": "diffusion", "prior_file": str(self.request.prior_file),
                "num_samples": self.num}
