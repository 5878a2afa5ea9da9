"""A linear vector operator y = M x, given by a matrix file or a diagonal.

It acts on parameter vectors (d,) rather than images, for posterior problems
whose exact answer is known in closed form (linear-Gaussian, Gaussian-mixture
priors).  The matrix travels with every measurement and sampler file as the
operator array ``matrix``, so reconstructing or sampling needs no matrix file.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch
from pydantic import Field, model_validator

from ..config import Params
from ..errors import ConfigError, ShapeError
from .base import OPERATORS, LinearOperator, OperatorEntry

__all__ = ["LinearParams", "MatrixOperator", "read_matrix"]


class LinearParams(Params):
    matrix_file: str | None = Field(None, description="matrix (m, d): a .npy file or FILE.h5:/dataset")
    diagonal: list[float] | None = Field(None, description="diagonal entries of a square diagonal matrix")

    @model_validator(mode="after")
    def _one_source(self):
        if self.diagonal is not None and self.matrix_file is not None:
            raise ValueError("give either matrix_file or diagonal, not both")
        if self.diagonal is not None and len(self.diagonal) == 0:
            raise ValueError("diagonal must have at least one entry")
        return self


def read_matrix(spec: str) -> np.ndarray:
    """Read a 2-D matrix (m, d) from ``.npy`` or ``FILE.h5:/dataset`` as float64."""
    from ..io.images import read_array

    arr = np.asarray(read_array(spec), dtype=np.float64)
    if arr.ndim != 2:
        raise ShapeError(f"matrix {spec} has shape {arr.shape}; expected a 2-D matrix (m, d)")
    if not np.isfinite(arr).all():
        raise ConfigError(f"matrix {spec} contains NaN or infinite values; fix the file")
    return arr


class MatrixOperator(LinearOperator):
    """y = M x for vectors: (B, d) -> (B, m); the adjoint is exactly Mᵀ.

    ``diagonal=[a_0, ..., a_{d-1}]`` gives M = diag(a) (m = d), e.g. the
    Gaussian-mixture test problem A = diag(0.1 / (i + 1)).  The operator is
    built for ``image_shape = (d,)``; a matrix must have d columns.

    References:
        Chemseddine et al., Conditional Wasserstein distances with applications
        in Bayesian OT flow matching, arXiv 2403.18705 (the diagonal test problem).
    """

    Params = LinearParams
    kind = "linear"
    file_params = {"matrix_file": ("matrix",)}
    domain_ndim: ClassVar[int] = 1

    def __init__(self, params, image_shape, arrays=None):
        super().__init__(params, image_shape, arrays)
        if len(self.image_shape) != 1:
            raise ConfigError(
                f"operator 'linear' acts on vectors; got input shape {self.image_shape} "
                "(give an (N, d) array of N parameter vectors)"
            )
        d = self.image_shape[0]
        if arrays and "matrix" in arrays:
            m = np.asarray(arrays["matrix"], dtype=np.float64)
        elif params.matrix_file is not None:
            m = read_matrix(params.matrix_file)
        elif params.diagonal is not None:
            m = np.diag(np.asarray(params.diagonal, dtype=np.float64))
        else:
            raise ConfigError("operator 'linear' needs a matrix: give -P matrix_file=M.npy or -P 'diagonal=[...]'")
        if m.ndim != 2 or m.shape[1] != d:
            raise ConfigError(
                f"linear operator matrix has shape {m.shape} but the inputs have {d} entries; "
                f"the matrix needs {d} columns"
            )
        self.register_buffer("matrix", torch.as_tensor(m, dtype=torch.float32), persistent=False)
        self._m64 = m

    @classmethod
    def image_shape_for(cls, params, range_shape):
        """(d,) of the matrix (m, d)."""
        if params.diagonal is not None:
            return (len(params.diagonal),)
        return (int(read_matrix(params.matrix_file).shape[1]),) if params.matrix_file is not None else None

    @property
    def range_shape(self):
        return (int(self.matrix.shape[0]),)

    def _forward(self, x):
        return x @ self.matrix.to(x.dtype).T

    def _adjoint(self, y):
        return y @ self.matrix.to(y.dtype)

    def arrays(self):
        return {"matrix": self._m64.astype(np.float32)} if self.params.diagonal is None else {}

    def dense(self) -> np.ndarray:
        """The matrix M as float64 (m, d)."""
        return self._m64.copy()


OPERATORS.add(
    "linear",
    OperatorEntry(
        MatrixOperator,
        {},
        noise={"name": "gaussian", "sigma": 0.1},
        summary="vectors: y = M x with M from a .npy/.h5 matrix file or a diagonal (closed-form posteriors)",
    ),
)
