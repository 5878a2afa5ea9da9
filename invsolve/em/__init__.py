"""Noise-parameter estimation by EM with learned posteriors (EM-DeepGEM)."""

from .deepgem import EMResult, EMSettings, run_em
from .mstep import mixed_nll, mstep_mixed

__all__ = ["EMResult", "EMSettings", "run_em", "mixed_nll", "mstep_mixed"]
