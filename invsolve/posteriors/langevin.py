"""Langevin chains on the data term plus a patch prior (:mod:`invsolve.langevin`) as a posterior sampler."""

from __future__ import annotations

from ..errors import OperatorError
from .base import POSTERIOR_SAMPLERS, PosteriorSampler

__all__ = ["LangevinPosterior"]


@POSTERIOR_SAMPLERS.register("langevin")
class LangevinPosterior(PosteriorSampler):
    """Unadjusted Langevin chains with a patch prior (``--prior``, ``--prior-file``) on a linear image operator;
    its settings are :class:`invsolve.langevin.LangevinParams` (``-S``)."""

    name = "langevin"

    def __init__(self, measurement, request, device):
        super().__init__(measurement, request, device)
        from ..api_diffusion import SAMPLER_NAMES as DIFFUSION_SAMPLERS
        from ..api_support import _resolve_prior
        from ..config import validate_params
        from ..langevin import LangevinParams
        from ..methods.patch_map import resolve_settings
        from ..noise import build_noise
        from ..operators.base import describe_domain

        r = request
        if r.prior is None and r.prior_file is None:
            raise OperatorError("give --sampler-file FILE, or --prior NAME --prior-file FILE for Langevin sampling")
        op = measurement.build_operator(device)
        if len(op.domain_shape) != 2 or not op.linear:
            raise OperatorError(f"Langevin with a patch prior needs a linear image operator, not {op.name!r} "
                                f"({describe_domain(op.domain_shape)}); use --sampler mcmc for "
                                "parameter vectors")
        opts = dict(r.sampler_params)
        if r.chains is not None:
            opts["chains"] = r.chains
        if r.keep_samples:
            opts["keep_samples"] = True
        if "precision" not in opts:
            opts["precision"] = r.precision  # the patch flow's subnets in bf16 (auto: where the device is fast)
        self.params = validate_params(LangevinParams, opts, "parameters of sampler 'langevin'")
        pr = _resolve_prior(r.prior, r.prior_file, False, measurement, op, None, r.seed, device, r.track, {},
                            r.allow_partial)
        if pr.kind == "score":
            raise OperatorError(f"{r.prior_file} holds a diffusion prior; sample with --sampler "
                                f"{' or '.join(DIFFUSION_SAMPLERS)} (Langevin here takes patch priors)")
        self.op, self.noise, self.prior = op, build_noise(measurement.noise), pr
        self.settings = resolve_settings(op, pr.name, self.params)

    def sample(self, items, generator):
        from ..langevin import langevin_sample

        r = self.request
        return langevin_sample(self.batch(items), self.op, self.noise, self.prior, self.params, self.settings,
                               r.levels, generator=generator, track=r.track, warn=False)

    def record(self, parts):
        from ..langevin import check_mixing, merge_info

        spec = {"name": "langevin", "prior": self.prior.name, "prior_file": str(self.request.prior_file),
                **self.params.model_dump(), **merge_info([q.info for q in parts])}
        check_mixing(spec, stacklevel=3)  # once for all batches, pointing at sample_posterior
        return spec
