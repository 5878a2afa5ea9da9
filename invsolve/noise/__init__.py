"""Noise models, registered by name: gaussian, poisson, mixed."""

from .base import NOISE, NoiseModel, build_noise, load_all

__all__ = ["NOISE", "NoiseModel", "build_noise", "load_all"]
