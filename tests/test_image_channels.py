"""Channels go by the file's own metadata: PNG colour types, TIFF photometric, samples per pixel, planar
configuration and pages.  Grey + alpha is one grey image, RGB is one colour image, pages are a stack."""

import warnings

import numpy as np
import pytest
import tifffile
from PIL import Image

from invsolve.io.images import read_array, read_images
from invsolve.io.raw import ImageWarning

RNG = np.random.default_rng(0)


def read(path):
    """``read_images(path)`` and the texts of its :class:`ImageWarning` s."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        stack, single = read_images(path)
    return stack, single, [str(w.message) for w in caught if issubclass(w.category, ImageWarning)]


def grey_alpha(alpha):
    grey = RNG.integers(0, 256, (64, 64), dtype=np.uint8)
    return grey, np.dstack([grey, alpha]).astype(np.uint8)


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_grey_alpha_is_one_grey_image(tmp_path, suffix):
    grey, la = grey_alpha(RNG.integers(0, 256, (64, 64), dtype=np.uint8))
    path = tmp_path / f"la{suffix}"
    Image.fromarray(la, "LA").save(path)
    stack, single, notes = read(path)
    assert stack.shape == (1, 64, 64) and single
    np.testing.assert_allclose(stack[0], grey / 255, atol=1e-6)
    assert len(notes) == 1 and "alpha channel was dropped" in notes[0]


def test_opaque_alpha_is_dropped_silently(tmp_path):
    _, la = grey_alpha(np.full((64, 64), 255, np.uint8))
    Image.fromarray(la, "LA").save(tmp_path / "la.png")
    stack, single, notes = read(tmp_path / "la.png")
    assert stack.shape == (1, 64, 64) and single and not notes


def test_float_planes_with_minisblack_are_a_stack(tmp_path):
    planes = RNG.random((3, 32, 32)).astype(np.float32)
    tifffile.imwrite(tmp_path / "s.tif", planes, photometric="minisblack")
    stack, single, notes = read(tmp_path / "s.tif")
    assert stack.shape == (3, 32, 32) and not single and not notes
    np.testing.assert_array_equal(stack, planes)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # tifffile's note on its future default
def test_float_planes_without_photometric_follow_the_files_rgb_tag(tmp_path):
    """tifffile stores a (3, H, W) array as planar RGB by default: the file says colour, so it is one image, and
    the warning says how to store slices."""
    planes = RNG.random((3, 32, 32)).astype(np.float32)
    tifffile.imwrite(tmp_path / "s.tif", planes)
    with tifffile.TiffFile(tmp_path / "s.tif") as tf:
        assert tf.pages[0].samplesperpixel == 3 and len(tf.pages) == 1
    stack, single, notes = read(tmp_path / "s.tif")
    assert stack.shape == (1, 32, 32) and single
    assert len(notes) == 1 and "RGB" in notes[0] and "photometric='minisblack'" in notes[0]


def test_rgb_tiff_is_one_image(tmp_path):
    rgb = RNG.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "c.tif", rgb, photometric="rgb")
    stack, single, notes = read(tmp_path / "c.tif")
    assert stack.shape == (1, 32, 32) and single
    assert len(notes) == 1 and "RGB" in notes[0] and "photometric" not in notes[0]


def test_pages_and_z_are_stacks(tmp_path):
    pages = RNG.random((5, 16, 16)).astype(np.float32)
    tifffile.imwrite(tmp_path / "z.tif", pages, imagej=True, metadata={"axes": "ZYX"})
    with tifffile.TiffFile(tmp_path / "z.tif") as tf:
        assert tf.series[0].axes == "ZYX"
    assert read_array(tmp_path / "z.tif").shape == (5, 16, 16)
    with tifffile.TiffWriter(tmp_path / "p.tif") as tw:
        for p in pages:
            tw.write(p, photometric="minisblack")
    assert read_array(tmp_path / "p.tif").shape == (5, 16, 16)


def test_rgba_png_and_tiff_are_one_image(tmp_path):
    rgba = RNG.integers(0, 256, (16, 16, 4), dtype=np.uint8)
    (tmp_path / "png").mkdir()
    (tmp_path / "tif").mkdir()  # one colour warning per folder: apart, each file gives its own
    Image.fromarray(rgba, "RGBA").save(tmp_path / "png" / "c.png")
    tifffile.imwrite(tmp_path / "tif" / "c.tif", rgba, photometric="rgb", extrasamples=[2])
    for name in ("png/c.png", "tif/c.tif"):
        stack, single, notes = read(tmp_path / name)
        assert stack.shape == (1, 16, 16) and single and notes
