"""Amortised conditional posterior samplers: ``cflow`` (conditional normalizing
flow), ``cfm`` (conditional OT flow matching) and ``mmd-flow`` (distilled
conditional MMD particle flow), trained on simulated pairs.

``load_sampler(path, device)`` reads a trained sampler file safely; the
returned sampler's ``sample(y, n, generator)`` gives (B, n, *domain_shape).
"""

from .base import FORMAT, SAMPLERS, VERSION, Sampler, TrainedSampler, load_all, load_sampler, read_checkpoint

__all__ = ["FORMAT", "SAMPLERS", "VERSION", "Sampler", "TrainedSampler", "load_all", "load_sampler",
           "read_checkpoint", "sampler_names"]


def sampler_names() -> list[str]:
    """Names of the registered samplers."""
    load_all()
    return SAMPLERS.names()
