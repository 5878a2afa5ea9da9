import numpy as np
import pytest
import scipy.ndimage as ndi
import torch
from skimage import data
from skimage.transform import resize

from invsolve.methods import build_method
from invsolve.metrics import psnr
from invsolve.noise import build_noise
from invsolve.operators import build_operator


@pytest.mark.parametrize("boundary", ["periodic", "valid"])
def test_bicubic_is_registered_to_the_superres_grid(boundary):
    x = resize(data.camera().astype(np.float64) / 255, (256, 256), anti_aliasing=True)
    x = ndi.gaussian_filter(x, 3).astype(np.float32)
    op = build_operator("superres", {"boundary": boundary}, x.shape)
    y = op(torch.from_numpy(x)[None])
    up = build_method({"name": "bicubic"}).run(y, op, build_noise({"name": "gaussian"}))[0].numpy()
    c = slice(24, -24)
    base = psnr(x[c, c], up[c, c])
    assert base > 35
    for shift in [(1, 0), (-1, 0), (0, 1), (0, -1)]:
        assert psnr(x[c, c], np.roll(up, shift, (0, 1))[c, c]) < base - 1.0
