"""Inpainting: observe the pixels of a mask, zero elsewhere."""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from pydantic import Field

from ..errors import ConfigError, ShapeError
from .base import OPERATORS, FileModeParams, LinearOperator, OperatorEntry


class InpaintParams(FileModeParams):
    mask: Literal["random", "box", "file"] = Field("random", description="how the mask is made")
    fraction: float = Field(0.5, ge=0, lt=1, description="random: fraction of pixels that are missing")
    mask_seed: int = Field(0, description="random: seed of the mask")
    box: tuple[int, int, int, int] | None = Field(
        None, description="box: missing (row, col, height, width); default the centred quarter-area box"
    )
    mask_file: str | None = Field(None, description="file: image whose nonzero pixels are observed")

    file_mode = ("mask", "mask_file")


def make_mask(p: InpaintParams, shape: tuple[int, int]) -> torch.Tensor:
    """Observed-pixel mask (H, W) of 0/1 float32 from the parameters."""
    H, W = shape
    if p.mask == "random":
        g = torch.Generator().manual_seed(p.mask_seed)
        return (torch.rand(H, W, generator=g) >= p.fraction).float()
    if p.mask == "box":
        r, c, h, w = p.box if p.box is not None else (H // 4, W // 4, H // 2, W // 2)
        if h <= 0 or w <= 0 or r < 0 or c < 0 or r + h > H or c + w > W:
            raise ConfigError(f"inpaint box {(r, c, h, w)} does not fit in a {H}x{W} image")
        m = torch.ones(H, W)
        m[r : r + h, c : c + w] = 0
        return m
    if p.mask_file is None:
        raise ConfigError("inpaint mask=file needs mask_file=PATH")
    from ..io.images import check_finite, read_array, split_spec

    if not split_spec(p.mask_file)[0].is_file():
        raise ConfigError(f"inpaint mask file not found: {p.mask_file} (check -P mask_file=PATH)")
    arr = read_array(p.mask_file)
    check_finite(arr, f"inpaint mask {p.mask_file}")
    if arr.shape != (H, W):
        raise ShapeError(f"mask {p.mask_file} has shape {arr.shape}; the image is {H}x{W}")
    return torch.from_numpy((arr != 0).astype(np.float32))


class InpaintOperator(LinearOperator):
    """y = m ⊙ x with a fixed 0/1 mask m; self-adjoint.  (B, H, W) -> (B, H, W)."""

    Params = InpaintParams
    kind = "inpaint"
    file_params = {"mask_file": ("mask",)}

    def __init__(self, params, image_shape, arrays=None):
        super().__init__(params, image_shape, arrays)
        if arrays and "mask" in arrays:
            m = torch.as_tensor(np.asarray(arrays["mask"]), dtype=torch.float32)
            if tuple(m.shape) != self.image_shape:
                raise ShapeError(f"stored inpaint mask has shape {tuple(m.shape)}, expected {self.image_shape}")
        else:
            m = make_mask(params, self.image_shape)
        self.register_buffer("mask", m, persistent=False)

    @classmethod
    def image_shape_for(cls, params, range_shape):
        """The measurement has the image's own shape."""
        return tuple(int(v) for v in range_shape) if len(range_shape) == 2 else None

    @property
    def range_shape(self):
        return self.image_shape

    def _forward(self, x):
        return x * self.mask.to(x.dtype)

    def _adjoint(self, y):
        return y * self.mask.to(y.dtype)

    def arrays(self):
        return {"mask": self.mask.detach().cpu().numpy().astype(np.uint8)}


OPERATORS.add(
    "inpaint",
    OperatorEntry(InpaintOperator, {}, noise={"name": "gaussian", "sigma": 0.01},
                  summary="pixel mask: random fraction, box or mask image"),
)
