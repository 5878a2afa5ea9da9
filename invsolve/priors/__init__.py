"""Patch priors learned from a few images: patchNR (flow), EPLL (Gaussian mixture), WPP.

Every prior is a :class:`PatchPrior` with ``nll(patches)`` and
``regularizer(patches)``; :func:`train_prior` fits one, :func:`save_prior` and
:func:`load_prior` store it without pickled code.
"""

from .base import PRIORS, PatchPrior, load_all, load_prior, save_prior
from .patches import extract_patches, random_patches, reflect_pad

__all__ = ["PRIORS", "PatchPrior", "load_all", "load_prior", "save_prior", "train_prior", "extract_patches",
           "random_patches", "reflect_pad"]


def __getattr__(name: str):
    if name == "train_prior":
        from .training import train_prior

        return train_prior
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
