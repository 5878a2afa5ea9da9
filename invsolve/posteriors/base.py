"""The posterior-sampler interface: a request (:class:`SampleRequest`), the sampler built from it
(:class:`PosteriorSampler`), and the choice of sampler (:func:`choose`).

A sampler is built once per run from the measurement and the request (loading its files and checking its
settings), then draws one batch of measurements at a time with that batch's generator, and finally gives the
run's sampler record (its name and settings, with what the batches measured).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar

import torch

from ..errors import OperatorError
from ..methods import no_track
from ..registry import Registry

__all__ = ["POSTERIOR_SAMPLERS", "PosteriorSampler", "SampleRequest", "choose", "load_all"]

POSTERIOR_SAMPLERS: Registry[type["PosteriorSampler"]] = Registry("posterior sampler")


def load_all() -> None:
    """Import every posterior-sampler module so that its registration runs."""
    from . import diffusion, langevin, mcmc, trained  # noqa: F401


@dataclass(frozen=True)
class SampleRequest:
    """What a ``sample-posterior`` run asks for (the arguments of :func:`invsolve.api.sample_posterior`)."""

    sampler: str | None = None
    sampler_file: str | None = None
    prior: str | None = None
    prior_file: str | None = None
    sampler_params: dict[str, Any] = field(default_factory=dict)
    num_samples: int | None = None
    chains: int | None = None
    levels: tuple[float, ...] = (0.05, 0.25, 0.5, 0.75, 0.95)
    keep_samples: bool = False
    seed: int = 0
    precision: str = "auto"
    compile: bool = False
    importance: int = 0
    allow_partial: bool = False
    track: Callable = no_track


class PosteriorSampler:
    """One way of sampling the posterior of every item of a measurement.

    Arguments:
        measurement: The :class:`invsolve.results.Measurement` to sample.
        request: The run's :class:`SampleRequest`.
        device: Where to sample.
    """

    name: ClassVar[str] = ""

    def __init__(self, measurement, request: SampleRequest, device: torch.device):
        import numpy as np

        self.measurement, self.request, self.device = measurement, request, device
        self.data = np.asarray(measurement.measurement, dtype=np.float32)  # (N, *range)

    def sample(self, items: slice, generator: torch.Generator):
        """The :class:`invsolve.posterior.PosteriorSummary` of the measurements ``items`` (one batch)."""
        raise NotImplementedError

    def record(self, parts: list) -> dict[str, Any]:
        """The run's sampler record, from the summaries of all its batches."""
        raise NotImplementedError

    def batch(self, items: slice) -> torch.Tensor:
        """The measured data of ``items`` (B, *range) on the device."""
        return torch.from_numpy(self.data[items]).to(self.device)


def choose(request: SampleRequest) -> type[PosteriorSampler]:
    """The posterior sampler a request names; a request that mixes two ways is refused naming the flags."""
    from ..api_diffusion import SAMPLER_NAMES as DIFFUSION_SAMPLERS
    from ..precision import normalize_precision

    load_all()
    r = request
    if r.sampler in DIFFUSION_SAMPLERS or (r.prior == "diffusion" and r.sampler is None and r.sampler_file is None):
        return POSTERIOR_SAMPLERS.get("diffusion")
    if r.sampler_file is None and r.num_samples is not None:
        raise OperatorError("--num-samples sets the draws of a trained sampler (--sampler-file); Langevin and MCMC "
                            "keep every thin-th state after burn-in of each chain: set --chains and -S steps=, "
                            "burn_in=, thin= instead")
    if r.sampler_file is not None:
        return POSTERIOR_SAMPLERS.get("trained")
    if r.compile or r.importance:
        flag = "--compile" if r.compile else "--importance"
        raise OperatorError(f"{flag} applies to trained samplers (--sampler-file); drop it for Langevin and MCMC")
    if normalize_precision(r.precision) not in ("fp32", "auto") and r.sampler == "mcmc":
        raise OperatorError("--precision bf16 applies to trained samplers (--sampler-file) and to Langevin with "
                            "the patchnr prior; MCMC evaluates likelihoods in float32")
    if r.sampler == "mcmc":
        return POSTERIOR_SAMPLERS.get("mcmc")
    if (r.sampler or "langevin") != "langevin":
        raise OperatorError(
            f"sampler {r.sampler!r} needs --sampler-file (train one with `invsolve train-sampler`); "
            "without a file the valid samplers are: langevin (with --prior), mcmc (vector problems), "
            f"{', '.join(DIFFUSION_SAMPLERS)} (with a diffusion --prior-file)"
        )
    return POSTERIOR_SAMPLERS.get("langevin")


def num_samples(value, default: int) -> int:
    """``--num-samples`` of the samplers that draw independent samples: an integer of at least 1."""
    import numpy as np

    from ..errors import ConfigError

    value = default if value is None else value
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ConfigError(f"--num-samples must be an integer of at least 1, got {value!r}")
    return int(value)
