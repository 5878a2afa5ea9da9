"""Reconstruction methods: the common interface and registry."""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from ..config import Params, validate_params
from ..errors import OperatorError
from ..progress import Track, no_track
from ..registry import Registry

__all__ = ["Method", "METHODS", "build_method", "compatible_methods", "Track", "no_track", "load_all"]


METHODS: Registry[type["Method"]] = Registry("method")


class Method:
    """Base class of reconstruction methods.

    Subclasses set ``Params`` and implement :meth:`run`.  ``operators`` lists
    the operator classes a method works with (empty: any operator);
    ``images_only`` methods need an image domain (H, W), ``linear_only`` ones
    a linear operator (an adjoint).
    """

    Params: ClassVar[type[Params]] = Params
    name: ClassVar[str] = ""
    operators: ClassVar[tuple[str, ...]] = ()
    images_only: ClassVar[bool] = False
    #: the learned prior of a MAP method (None for the classical ones)
    prior: Any = None
    linear_only: ClassVar[bool] = False

    @classmethod
    def accepts(cls, operator) -> bool:
        """Whether the method can reconstruct measurements of ``operator`` (kind, domain and linearity)."""
        kind = operator.kind
        return ((not cls.operators or kind in cls.operators)
                and (not cls.images_only or len(operator.domain_shape) == 2)
                and (not cls.linear_only or operator.linear))

    def __init__(self, params: Params):
        self.params = params

    def check(self, operator) -> None:
        """Raise :class:`OperatorError` when the method cannot handle ``operator``."""
        if self.accepts(operator):
            return
        from ..operators.base import describe_domain

        if self.operators and operator.kind not in self.operators:
            need = f"a {' or '.join(self.operators)} operator"
        elif self.images_only and len(operator.domain_shape) != 2:
            need = "an image operator"
        else:
            need = "a linear operator"
        valid = compatible_methods(operator)
        fix = (f"methods for it: {', '.join(valid)}" if valid else
               "no reconstruction method fits it; estimate its parameters with `invsolve sample-posterior "
               "--sampler mcmc` (or a trained --sampler-file)")
        raise OperatorError(f"method {self.name!r} needs {need}, but the measurement uses "
                            f"{operator.name!r} ({describe_domain(operator.domain_shape)}); {fix}")

    def run(
        self,
        y: torch.Tensor,
        operator,
        noise,
        *,
        generator: torch.Generator | None = None,
        track: Track = no_track,
        info: dict | None = None,
    ) -> torch.Tensor:
        """Reconstruct a batch.

        Arguments:
            y: Measurements, (B, *operator.range_shape).
            operator: The forward operator.
            noise: The noise model whose ``nll`` is the data term.
            generator: Random generator for stochastic steps.
            track: Progress wrapper for iterations.
            info: Iterative methods put the run's record here (``iterations_run``, ``stopped`` and
                ``last_change``, one list entry per item).

        Returns:
            Images, (B, H, W).
        """
        raise NotImplementedError

    def spec(self) -> dict[str, Any]:
        return {"name": self.name, **self.params.model_dump(mode="json")}

    def resolved(self, operator, device=None) -> dict[str, Any]:
        """The settings the method used on ``operator`` (on ``device``) where its parameters left them to a
        preset or to ``auto`` (stored in the result as ``used``); empty when every value is the parameter's
        own."""
        return {}


def load_all() -> None:
    from . import bicubic, fbp, patch_map, tikhonov, tv  # noqa: F401


def build_method(spec: dict[str, Any]) -> Method:
    load_all()
    spec = dict(spec)
    name = spec.pop("name")
    cls = METHODS.get(name)
    return cls(validate_params(cls.Params, spec, f"parameters of method {name!r}"))


def compatible_methods(operator) -> list[str]:
    """Names of the classical methods (``map`` excluded) that accept ``operator``."""
    load_all()
    return [n for n, cls in METHODS.items() if cls.accepts(operator) and n != "map"]
