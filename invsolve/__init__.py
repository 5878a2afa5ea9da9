"""invsolve: imaging inverse problems with learned priors and posterior samplers.

The Python API lives in :mod:`invsolve.api`; the command line in :mod:`invsolve.cli`.
Importing this package is cheap: torch, ASTRA and h5py load on first use.
"""

from ._version import __version__

__all__ = ["__version__", "api"]


def __getattr__(name: str):
    if name == "api":
        import importlib

        return importlib.import_module(".api", __name__)
    raise AttributeError(f"module 'invsolve' has no attribute {name!r}")
