"""Forward operators: the common interface.

An :class:`Operator` maps images of ``domain_shape`` (H, W), or parameter vectors (d,), to measurements of
``range_shape``; ``forward`` accepts a single item or a batch (B, *shape) and returns the same layout.  A
:class:`LinearOperator` adds ``adjoint``, the cached adjoint operator ``A.T`` (``A.T.T is A``) and an
operator-norm estimate; a nonlinear operator (gixrf, surrogate) has no adjoint at all.  What an operator can do
is declared on its class (``kind``, ``linear``, ``domain_ndim``, ``file_params``), never probed.  Operators are
immutable: a parameter change builds a new operator.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch

from pydantic import model_validator

from ..config import Params
from ..errors import ShapeError
from ..registry import Registry

__all__ = ["Operator", "LinearOperator", "OperatorEntry", "OPERATORS", "check_batch", "describe_domain", "FileModeParams"]


class FileModeParams(Params):
    """Parameters whose mode field reads a file when it is ``"file"`` (inpaint's ``mask``/``mask_file``,
    blur's ``kernel``/``kernel_file``): the path alone implies mode=file (it used to be silently ignored), and a
    path beside another explicit mode is an error."""

    file_mode: ClassVar[tuple[str, str]] = ("", "")  # (mode field, path field)

    @model_validator(mode="before")
    @classmethod
    def _imply_file_mode(cls, values):
        mode, path = cls.file_mode
        if isinstance(values, dict) and values.get(path) is not None and mode not in values:
            values = {**values, mode: "file"}
        return values

    @model_validator(mode="after")
    def _check_file_mode(self):
        mode, path = self.file_mode
        if getattr(self, path) is not None and getattr(self, mode) != "file":
            raise ValueError(f"{path} needs -P {mode}=file ({mode} is {getattr(self, mode)!r}); drop one of the two")
        return self


def describe_domain(shape: tuple[int, ...]) -> str:
    """"64x64 images" or "a 3-parameter vector", for messages."""
    return "x".join(map(str, shape)) + " images" if len(shape) == 2 else f"a {shape[0]}-parameter vector"


def check_batch(t: torch.Tensor, shape: tuple[int, ...], what: str) -> tuple[torch.Tensor, bool]:
    """Return ``t`` as a batch (B, *shape) and whether it was a single item."""
    n = len(shape)
    if tuple(t.shape[-n:]) != tuple(shape) or t.dim() not in (n, n + 1):
        raise ShapeError(
            f"{what} has shape {tuple(t.shape)}; expected {tuple(shape)} or (B, {', '.join(map(str, shape))})"
        )
    return (t.unsqueeze(0), True) if t.dim() == n else (t, False)


class Operator(torch.nn.Module):
    """Base class of forward operators, linear or not.

    Subclasses set ``Params`` and implement ``_forward`` on batches (B, *domain_shape) -> (B, *range_shape);
    linear ones derive from :class:`LinearOperator` instead.

    Arguments:
        params: The validated parameter model of the operator.
        image_shape: (H, W) of the images it acts on, or (d,) for vector operators.
        arrays: Optional arrays the operator needs (e.g. a mask), as stored in HDF5.
    """

    Params: ClassVar[type[Params]] = Params
    name: str = ""
    #: the family presets and classical methods are chosen by ("ct", "superres", "inpaint", "blur", ...)
    kind: ClassVar[str] = ""
    #: whether the operator is linear, with an adjoint (True exactly for :class:`LinearOperator`)
    linear: ClassVar[bool] = False
    #: rank of the domain: image operators act on (H, W), vector operators on (d,)
    domain_ndim: ClassVar[int] = 2
    #: parameters naming a file the operator reads -> the names of its arrays that carry that file's contents
    #: (a trailing "." matches a prefix); see :mod:`invsolve.operators.file_params`
    file_params: ClassVar[dict[str, tuple[str, ...]]] = {}
    #: the scan angles (degrees) of an angle-resolved operator (CT, GIXRF), for figures; None for the others
    angles_deg: np.ndarray | None = None

    def __init__(self, params: Params, image_shape: tuple[int, ...], arrays: dict | None = None):
        super().__init__()
        self.params = params
        self.image_shape = tuple(int(s) for s in image_shape)

    # -- shapes ---------------------------------------------------------------
    @property
    def domain_shape(self) -> tuple[int, ...]:
        return self.image_shape

    @property
    def range_shape(self) -> tuple[int, ...]:
        raise NotImplementedError

    # -- application ----------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D401
        """Apply the operator to (*domain_shape) or (B, *domain_shape)."""
        xb, single = check_batch(x, self.domain_shape, f"input of operator {self.name!r}")
        y = self._forward(xb)
        return y[0] if single else y

    def check_inputs(self, x) -> None:
        """Refuse simulation inputs (N, *domain_shape) the operator cannot take (none by default; gixrf checks
        its layer parameters against their bounds)."""

    def prior_spec(self) -> dict[str, Any] | None:
        """The operator's own prior box for its parameter vectors, as a vector-prior spec; None without one."""
        return None

    @classmethod
    def image_shape_for(cls, params: Params, range_shape: tuple[int, ...]) -> tuple[int, ...] | None:
        """The image (or parameter vector) shape whose measurements have ``range_shape``, where the operator
        determines it; None where it does not (then the caller gives ``--image-size``)."""
        return None

    @classmethod
    def declared_size(cls, params: Params, image_shape: tuple[int, ...]) -> tuple[str, int] | None:
        """What the operator's settings make it allocate per measurement, before it is built: (a phrase naming
        the settings, e.g. ``"angles=…, 363 detectors"``, and a number of float values); None when it is the
        size of the image.  :func:`invsolve.operators.build_operator` refuses sizes past the memory limit."""
        return None

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    # -- persistence ----------------------------------------------------------
    def spec(self) -> dict[str, Any]:
        """JSON-serialisable description that :func:`build_operator` rebuilds from."""
        return {
            "name": self.name,
            "params": self.params.model_dump(mode="json"),
            "image_shape": list(self.image_shape),
        }

    def arrays(self) -> dict[str, np.ndarray]:
        """Arrays to persist beside the spec (masks, kernels); empty by default."""
        return {}

    def extra_repr(self) -> str:
        return f"{self.domain_shape} -> {self.range_shape}, {self.params!r}"


class LinearOperator(Operator):
    """Base class of linear operators: ``forward``, ``adjoint`` (exact: ⟨Ax, y⟩ = ⟨x, Aᵀy⟩), the cached
    adjoint operator ``T`` and :meth:`norm_squared`.

    Subclasses implement ``_forward`` and ``_adjoint`` on batches (B, *domain_shape) -> (B, *range_shape) and
    back.
    """

    linear: ClassVar[bool] = True

    def __init__(self, params: Params, image_shape: tuple[int, ...], arrays: dict | None = None):
        super().__init__(params, image_shape, arrays)
        self._T: _Adjoint | None = None

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        """Apply the adjoint to (*range_shape) or (B, *range_shape)."""
        yb, single = check_batch(y, self.range_shape, f"input of the adjoint of {self.name!r}")
        x = self._adjoint(yb)
        return x[0] if single else x

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    @property
    def T(self) -> "_Adjoint":
        if self._T is None:
            self._T = _Adjoint(self)
        return self._T

    def norm_squared(self, dtype=torch.float32, device="cpu", iterations: int = 20, seed: int = 0) -> float:
        """‖A‖₂² by power iteration on AᵀA from a seeded start (:func:`operator_norm_squared`)."""
        return operator_norm_squared(self, self.domain_shape, dtype, device, iterations, seed)


def operator_norm_squared(operator: LinearOperator, shape: tuple[int, ...], dtype=torch.float32, device="cpu",
                          iterations: int = 20, seed: int = 0) -> float:
    """‖A‖₂² of a linear operator by power iteration on AᵀA, from a seeded uniform start of ``shape`` (a pure
    function of its arguments: the same seed gives the same estimate).

    References:
        Golub and Van Loan, Matrix Computations, 4th ed. (2013), §8.2 (the power method).
    """
    g = torch.Generator().manual_seed(seed)
    v = torch.rand((1, *shape), generator=g, dtype=dtype).to(device)
    v /= v.norm()
    s = 1.0
    with torch.no_grad():
        for _ in range(iterations):
            w = operator.adjoint(operator(v))
            s = float(w.norm())
            if s == 0.0:
                return 0.0
            v = w / s
    return s


class _Adjoint(torch.nn.Module):
    """The adjoint of a linear operator, as an operator-like module (``A.T``)."""

    def __init__(self, op: LinearOperator):
        super().__init__()
        object.__setattr__(self, "_op", op)  # not a submodule: avoid a reference cycle in .modules()

    @property
    def domain_shape(self) -> tuple[int, ...]:
        return self._op.range_shape

    @property
    def range_shape(self) -> tuple[int, ...]:
        return self._op.domain_shape

    @property
    def T(self) -> LinearOperator:
        return self._op

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return self._op.adjoint(y)

    def adjoint(self, x: torch.Tensor) -> torch.Tensor:
        return self._op(x)


@dataclass(frozen=True)
class OperatorEntry:
    """A registered operator name: a class plus preset defaults and a default noise."""

    cls: type[Operator]
    defaults: dict[str, Any] = field(default_factory=dict)
    noise: dict[str, Any] = field(default_factory=lambda: {"name": "gaussian", "sigma": 0.01})
    summary: str = ""


OPERATORS: Registry[OperatorEntry] = Registry("operator")
