"""Superresolution: Gaussian blur followed by stride-s subsampling."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator

from ..config import Params
from ..errors import ConfigError
from ..functional.kernels import fold_periodic, gaussian_kernel, periodic_pad
from .base import OPERATORS, LinearOperator, OperatorEntry


class SuperresParams(Params):
    factor: int = Field(4, ge=1, description="subsampling stride s")
    kernel_size: int = Field(16, ge=1, description="side of the Gaussian kernel (default 4 * factor)")
    sigma: float = Field(2.0, gt=0, description="standard deviation of the kernel in HR pixels (default factor / 2)")
    boundary: Literal["periodic", "valid"] = Field(
        "periodic", description="periodic: wrap k-1 rows/cols at bottom/right (H/s outputs); valid: no padding"
    )

    @model_validator(mode="before")
    @classmethod
    def _scale_kernel(cls, values):
        # the x4 preset (16x16, sigma 2) scaled to other factors unless given
        if isinstance(values, dict) and "factor" in values:
            try:
                f = int(values["factor"])
            except (TypeError, ValueError):
                return values  # the field validation reports it
            if f >= 1:  # else only the factor is reported, not the kernel derived from it
                values = {"kernel_size": 4 * f, "sigma": f / 2.0, **values}
        return values

    @model_validator(mode="after")
    def _check(self):
        if self.kernel_size < self.factor:
            raise ValueError("kernel_size must be at least factor")
        return self


class SuperresOperator(LinearOperator):
    """y = (k * x)[s i + j0, s j + j0]: blur with a k×k Gaussian, keep every s-th pixel.

    Shapes: (B, H, W) -> (B, h, w) with h = H / s (``periodic``; H must be a
    multiple of s) or h = (H - k) // s + 1 (``valid``).

    Sampling grid: the low-resolution pixel (i, j) is the kernel-weighted mean
    around the high-resolution position (s·i + c, s·j + c), c = (k - 1) / 2;
    for the ×4 preset (k = 16, s = 4) that is 4i + 7.5.  ``bicubic``
    interpolates on exactly this grid, so it is not shifted.

    References:
        Altekrueger et al., PatchNR: learning from very few images by patch
        normalizing flow regularization, Inverse Problems 39 (2023), arXiv 2205.12021.
    """

    Params = SuperresParams
    kind = "superres"

    def __init__(self, params, image_shape, arrays=None):
        super().__init__(params, image_shape, arrays)
        p = params
        H, W = self.image_shape
        if p.boundary == "periodic":
            if H % p.factor or W % p.factor:
                raise ConfigError(
                    f"superres with periodic boundary needs H and W divisible by factor {p.factor}; "
                    f"got {H}x{W} (crop the image or use boundary=valid)"
                )
            self._pad = p.kernel_size - p.factor
            self._out = (H // p.factor, W // p.factor)
        else:
            if H < p.kernel_size or W < p.kernel_size:
                raise ConfigError(f"image {H}x{W} is smaller than the superres kernel {p.kernel_size}")
            self._pad = 0
            self._out = ((H - p.kernel_size) // p.factor + 1, (W - p.kernel_size) // p.factor + 1)
        self.register_buffer("kernel", gaussian_kernel(p.kernel_size, p.sigma)[None, None], persistent=False)

    @classmethod
    def image_shape_for(cls, params, range_shape):
        """The smallest high-resolution image with measurements of ``range_shape`` (h, w)."""
        if len(range_shape) != 2:
            return None
        f, k = params.factor, params.kernel_size
        if params.boundary == "periodic":
            return tuple(int(v) * f for v in range_shape)
        return tuple((int(v) - 1) * f + k for v in range_shape)

    @property
    def range_shape(self):
        return self._out

    @property
    def offset(self) -> float:
        """High-resolution coordinate of low-resolution sample 0: (k - 1) / 2."""
        return (self.params.kernel_size - 1) / 2.0

    def _wraps(self) -> bool:
        """True when the periodic margin exceeds the image, so it wraps around more than once."""
        return self._pad > min(self.image_shape)

    def _index(self, n: int, device) -> torch.Tensor:
        return torch.arange(n + self._pad, device=device) % n

    def _forward(self, x):
        if self._wraps():  # images smaller than the kernel: tile periodically as often as needed
            H, W = self.image_shape
            x = x.index_select(1, self._index(H, x.device)).index_select(2, self._index(W, x.device))
        else:
            x = periodic_pad(x, self._pad, self._pad)
        y = F.conv2d(x[:, None], self.kernel.to(x.dtype), stride=self.params.factor)[:, 0]
        return y[:, : self._out[0], : self._out[1]]

    def _adjoint(self, y):
        p = self.params
        H, W = self.image_shape
        full = (H + self._pad, W + self._pad)
        k = p.kernel_size
        op = (full[0] - k - (y.shape[1] - 1) * p.factor, full[1] - k - (y.shape[2] - 1) * p.factor)
        x = F.conv_transpose2d(y[:, None], self.kernel.to(y.dtype), stride=p.factor, output_padding=0)[:, 0]
        x = F.pad(x, (0, op[1], 0, op[0]))
        if self._wraps():  # adjoint of the tiling: add every copy back onto its source pixel
            cols = x.new_zeros(x.shape[0], x.shape[1], W).index_add_(2, self._index(W, x.device), x)
            return x.new_zeros(x.shape[0], H, W).index_add_(1, self._index(H, x.device), cols)
        return fold_periodic(x, self._pad, self._pad)


OPERATORS.add(
    "superres",
    OperatorEntry(
        SuperresOperator,
        {},
        noise={"name": "gaussian", "sigma": 0.01},
        summary="Gaussian blur + stride-s subsampling (x4 preset: 16x16, sigma 2, stride 4)",
    ),
)
