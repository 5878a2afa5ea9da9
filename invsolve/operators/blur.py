"""Deblurring: convolution with a Gaussian or user-supplied kernel."""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field

from ..errors import ConfigError, ShapeError
from ..functional.kernels import gaussian_kernel
from .base import OPERATORS, FileModeParams, LinearOperator, OperatorEntry


class BlurParams(FileModeParams):
    kernel: Literal["gaussian", "file"] = Field("gaussian", description="kernel type")
    kernel_size: int = Field(9, ge=1, description="gaussian: kernel side")
    sigma: float = Field(2.0, gt=0, description="gaussian: standard deviation in pixels")
    kernel_file: str | None = Field(None, description="file: kernel image or .npy")
    normalize: bool = Field(True, description="file: scale the kernel to sum 1")
    boundary: Literal["circular", "zero"] = Field("circular", description="boundary condition")

    file_mode = ("kernel", "kernel_file")


def _fold_circular(x: torch.Tensor, top: int, bottom: int, left: int, right: int) -> torch.Tensor:
    """Adjoint of circular padding of (B, H, W) by the given margins."""
    H = x.shape[1] - top - bottom
    W = x.shape[2] - left - right
    core = x[:, top : top + H, left : left + W].clone()
    if top:
        core[:, H - top :, :] += x[:, :top, left : left + W]
    if bottom:
        core[:, :bottom, :] += x[:, top + H :, left : left + W]
    rows = x[:, top : top + H, :].clone()
    if top:
        rows[:, H - top :, :] += x[:, :top, :]
    if bottom:
        rows[:, :bottom, :] += x[:, top + H :, :]
    if left:
        core[:, :, W - left :] += rows[:, :, :left]
    if right:
        core[:, :, :right] += rows[:, :, left + W :]
    return core


class BlurOperator(LinearOperator):
    """y = k * x, 'same' size, with circular or zero boundary.  (B, H, W) -> (B, H, W).

    For an even kernel the centre is at index k // 2 - 1 (top-left of the four
    central pixels).  The adjoint is the correlation with the same kernel.
    """

    Params = BlurParams
    kind = "blur"
    file_params = {"kernel_file": ("kernel",)}

    def __init__(self, params, image_shape, arrays=None):
        super().__init__(params, image_shape, arrays)
        p = params
        if arrays and "kernel" in arrays:
            k = torch.as_tensor(np.asarray(arrays["kernel"]), dtype=torch.float32)
        elif p.kernel == "gaussian":
            k = gaussian_kernel(p.kernel_size, p.sigma)
        else:
            if p.kernel_file is None:
                raise ConfigError("blur kernel=file needs kernel_file=PATH")
            from ..io.images import check_finite, read_array, split_spec

            if not split_spec(p.kernel_file)[0].is_file():
                raise ConfigError(f"blur kernel file not found: {p.kernel_file} (check -P kernel_file=PATH)")
            arr = read_array(p.kernel_file)
            check_finite(arr, f"blur kernel {p.kernel_file}")
            k = torch.from_numpy(arr.astype(np.float32))
            if k.dim() != 2:
                raise ShapeError(f"blur kernel {p.kernel_file} must be 2-D, got shape {tuple(k.shape)}")
            if p.normalize:
                if float(k.sum()) == 0:
                    raise ConfigError(f"blur kernel {p.kernel_file} sums to 0 and cannot be normalised")
                k = k / k.sum()
        kh, kw = k.shape
        H, W = self.image_shape
        if kh > H or kw > W:
            fix = (f"-P kernel_size={min(H, W)} (or less)" if p.kernel == "gaussian" and not arrays
                   else "a smaller kernel")
            raise ConfigError(f"blur kernel {kh}x{kw} is larger than the {H}x{W} image; use {fix} or larger images")
        self._margins = ((kh - 1) // 2, kh - 1 - (kh - 1) // 2, (kw - 1) // 2, kw - 1 - (kw - 1) // 2)
        self.register_buffer("kernel", k, persistent=False)

    @classmethod
    def image_shape_for(cls, params, range_shape):
        """The measurement has the image's own shape."""
        return tuple(int(v) for v in range_shape) if len(range_shape) == 2 else None

    @property
    def range_shape(self):
        return self.image_shape

    def _forward(self, x):
        t, b, l, r = self._margins
        mode = "circular" if self.params.boundary == "circular" else "constant"
        xp = F.pad(x[:, None], (l, r, t, b), mode=mode)
        # conv2d is a correlation: flip to convolve
        return F.conv2d(xp, self.kernel.flip(0, 1).to(x.dtype)[None, None])[:, 0]

    def _adjoint(self, y):
        t, b, l, r = self._margins
        xp = F.conv_transpose2d(y[:, None], self.kernel.flip(0, 1).to(y.dtype)[None, None])[:, 0]
        if self.params.boundary == "circular":
            return _fold_circular(xp, t, b, l, r)
        H, W = self.image_shape
        return xp[:, t : t + H, l : l + W]

    def arrays(self):
        return {"kernel": self.kernel.detach().cpu().numpy()} if self.params.kernel == "file" else {}


OPERATORS.add(
    "blur",
    OperatorEntry(BlurOperator, {}, noise={"name": "gaussian", "sigma": 0.01},
                  summary="convolution with a Gaussian or user kernel (circular or zero boundary)"),
)
