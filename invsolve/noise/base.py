"""Noise models: sampling y given the clean measurement f = A(x), and the
negative log-likelihood -log p(y | f) that reconstructions use as data term.
Noise is kept separate from operators; :class:`MeasurementModel` joins them.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from ..config import Params, validate_params
from ..registry import Registry

__all__ = ["NoiseModel", "NOISE", "build_noise", "load_all"]

NOISE: Registry[type["NoiseModel"]] = Registry("noise model")


class NoiseModel:
    """Base class.

    Subclasses implement ``sample(f, generator)`` -> y (same shape as f) and
    ``nll(y, f)`` -> (B,) summed over all entries of each item (batch dim 0).
    """

    Params: ClassVar[type[Params]] = Params
    name: ClassVar[str] = ""

    def __init__(self, params: Params):
        self.params = params

    def sample(self, f: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        raise NotImplementedError

    def nll(self, y: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def spec(self) -> dict[str, Any]:
        return {"name": self.name, **self.params.model_dump(mode="json")}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.params!r})"


def _flat_sum(t: torch.Tensor) -> torch.Tensor:
    return t.reshape(t.shape[0], -1).sum(dim=1) if t.dim() > 1 else t.sum().reshape(1)


def load_all() -> None:
    from . import gaussian, mixed, poisson  # noqa: F401


def build_noise(spec: dict[str, Any]) -> NoiseModel:
    """Build a noise model from ``{"name": ..., **params}``."""
    load_all()
    spec = dict(spec)
    name = spec.pop("name", None)
    if name is None:
        from ..errors import ConfigError

        raise ConfigError("noise config needs a 'name' (e.g. gaussian, poisson, mixed)")
    cls = NOISE.get(name)
    return cls(validate_params(cls.Params, spec, f"parameters of noise model {name!r}"))
