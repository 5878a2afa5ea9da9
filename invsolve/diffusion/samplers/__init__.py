"""Posterior samplers of diffusion priors, registered by name: dps, diffpir, annealed-langevin."""

from .base import DIFFUSION_SAMPLERS, DiffusionSampler, Problem, load_all

__all__ = ["DIFFUSION_SAMPLERS", "DiffusionSampler", "Problem", "load_all"]
