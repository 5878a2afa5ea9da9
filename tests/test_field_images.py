"""Images as they come from instruments: multi-page TIFF, hyperstacks, RGB, 12-bit data, DICOM slices and
series, folders and globs of slices, and the raw (unscaled) reading of measurements."""

import json
import subprocess
import sys
import warnings

import h5py
import numpy as np
import pytest
import tifffile
from typer.testing import CliRunner

from conftest import err_line
from invsolve.cli import app
from invsolve.errors import DataError
from invsolve.io.dicom import hu_to_unit
from invsolve.io.images import expand_image_spec, read_array, read_images, read_raw, read_raw_array
from invsolve.io.raw import ImageWarning

runner = CliRunner()
RNG = np.random.default_rng(0)


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def image_warnings(fn, *args, **kwargs):
    """``fn``'s result and the texts of the :class:`ImageWarning` s it gave."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = fn(*args, **kwargs)
    return out, [str(w.message) for w in caught if issubclass(w.category, ImageWarning)]


def tif(path, arr, **kw):
    tifffile.imwrite(path, arr, photometric=kw.pop("photometric", "minisblack"), **kw)
    return path


def full_range(shape, dtype=np.uint16):
    """Integers spanning their whole dtype (0 and the maximum included)."""
    top = np.iinfo(dtype).max
    a = RNG.integers(0, top, size=shape, endpoint=True).astype(dtype)
    a.flat[0], a.flat[1] = 0, top
    return a


def dicom(path, sv, instance=1, slope=2.0, intercept=-1024.0, signed=False, position=None, uid="1.2.3.4"):
    """A CT slice with BitsAllocated 16 and BitsStored 12 holding the stored values ``sv``."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.SeriesInstanceUID = "CT", uid
    if instance is not None:
        ds.InstanceNumber = instance
    if position is not None:
        ds.ImagePositionPatient, ds.ImageOrientationPatient = [0, 0, position], [1, 0, 0, 0, 1, 0]
    ds.Rows, ds.Columns = sv.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, int(signed)
    ds.RescaleSlope, ds.RescaleIntercept = slope, intercept
    ds.PixelData = sv.astype(np.int16 if signed else np.uint16).tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path


# -- TIFF -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("pages", [1, 3, 4, 10])
def test_tiff_pages_are_a_stack(tmp_path, pages):
    data = full_range((pages, 12, 9))
    p = tif(tmp_path / "s.tif", data)
    (stack, single), notes = image_warnings(read_images, p)
    assert stack.shape == (pages, 12, 9) and not single and not notes
    np.testing.assert_allclose(stack, data / 65535.0, rtol=1e-6)
    assert stack.min() == 0 and stack.max() == 1
    assert read_raw(p).bits == 16 and read_raw(p).meta["axes"][-2:] == "YX"


def test_one_page_tiff_is_one_image_and_float_tiff_keeps_its_values(tmp_path):
    data = full_range((7, 5), np.uint8)
    stack, single = read_images(tif(tmp_path / "one.tif", data))
    assert single and stack.shape == (1, 7, 5) and stack.max() == 1.0
    f = np.linspace(-3, 40, 35, dtype=np.float32).reshape(7, 5)
    np.testing.assert_array_equal(read_array(tif(tmp_path / "f.tif", f)), f)


def test_twelve_bit_tiff_warns_and_range_maps_it_exactly(tmp_path):
    data = RNG.integers(0, 4095, size=(2, 8, 8), endpoint=True).astype(np.uint16)
    data.flat[0], data.flat[1] = 0, 4095
    p = tif(tmp_path / "raw12.tif", data)
    x, notes = image_warnings(read_array, p)
    assert len(notes) == 1 and "4095" in notes[0] and "--range 0,4095" in notes[0] and "1/65535" in notes[0]
    assert x.max() == pytest.approx(4095 / 65535)
    y, notes = image_warnings(read_array, p, value_range=(0, 4095))
    assert not notes and y.min() == 0.0 and y.max() == 1.0
    np.testing.assert_allclose(y, data / 4095.0, rtol=1e-6)
    np.testing.assert_array_equal(read_raw_array(p), data.astype(np.float32))  # raw mode: the counts


def test_rgb_tiff_is_one_grey_image_with_a_warning(tmp_path):
    rgb = full_range((6, 8, 3), np.uint8)
    (stack, single), notes = image_warnings(read_images, tif(tmp_path / "c.tif", rgb, photometric="rgb"))
    assert single and stack.shape == (1, 6, 8)
    assert len(notes) == 1 and "RGB" in notes[0] and "grey" in notes[0]
    np.testing.assert_allclose(stack[0], (rgb / 255.0) @ [0.2125, 0.7154, 0.0721], atol=1e-5)
    grey = np.repeat(full_range((6, 8, 1), np.uint8), 3, axis=-1)  # grey saved as RGB: exact, no warning
    (g, _), notes = image_warnings(read_images, tif(tmp_path / "g.tif", grey, photometric="rgb"))
    assert not notes and np.array_equal(g[0], grey[..., 0] / np.float32(255))


def test_imagej_hyperstack_flattens_with_a_warning(tmp_path):
    data = full_range((2, 3, 8, 8))
    p = tmp_path / "h.tif"
    tifffile.imwrite(p, data[:, :, None], imagej=True, metadata={"axes": "TZCYX"})
    stack, notes = image_warnings(read_array, p)
    assert stack.shape == (6, 8, 8) and len(notes) == 1 and "hyperstack" in notes[0]
    np.testing.assert_allclose(stack, data.reshape(6, 8, 8) / 65535.0, rtol=1e-6)


# -- DICOM ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("signed", [False, True])
def test_dicom_is_read_in_hounsfield_units(tmp_path, signed):
    sv = RNG.integers(-2048 if signed else 0, 2047 if signed else 4095, size=(6, 7), endpoint=True)
    p = dicom(tmp_path / "ct.dcm", sv, slope=2.0, intercept=-1024.0, signed=signed)
    hu = read_raw_array(p)
    np.testing.assert_array_equal(hu, (2.0 * sv - 1024.0).astype(np.float32))
    assert read_raw(p).units == "HU" and read_raw(p).meta["bits_stored"] == 12
    mu = 20.0 + hu * (20.0 - 0.02) / 1000
    np.testing.assert_allclose(read_array(p), np.clip(mu / 81.35858, 0, 1), atol=1e-6)
    window = read_array(p, value_range=(-1000, 1000))  # a window of centre 0, width 2000
    np.testing.assert_allclose(window, np.clip((hu + 1000) / 2000, 0, 1), atol=1e-6)
    np.testing.assert_allclose(hu_to_unit(hu, window=(0, 2000)), window, atol=1e-6)


def test_dicom_folder_is_a_stack_in_instance_order(tmp_path):
    folder = tmp_path / "series"
    folder.mkdir()
    slices = {k: np.full((5, 4), 100 * k) for k in (1, 2, 3, 4)}
    names = {3: "a.dcm", 1: "b.dcm", 4: "c.dcm", 2: "IM0002"}  # file names out of order; one without suffix
    for k, name in names.items():
        dicom(folder / name, slices[k], instance=k, slope=1.0, intercept=0.0)
    (folder / "notes.txt").write_text("scanner log")
    stack = read_raw_array(folder)
    assert stack.shape == (4, 5, 4) and list(stack[:, 0, 0]) == [100, 200, 300, 400]
    assert list(read_raw_array(str(folder / "*.dcm"))[:, 0, 0]) == [100, 300, 400]  # a glob
    assert len(expand_image_spec(str(folder))) == 4  # train-prior's folder listing finds the same slices
    other = tmp_path / "by_position"
    other.mkdir()
    for z, name in ((2.5, "x.dcm"), (-1.0, "y.dcm"), (0.5, "z.dcm")):
        dicom(other / name, np.full((5, 4), z * 10 + 100), instance=None, slope=1.0, intercept=0.0, position=z)
    assert list(read_raw_array(other)[:, 0, 0]) == [90, 105, 125]


def test_training_images_from_tiff_stacks_and_dicom(tmp_path):
    from invsolve.api_priors import read_training_images

    tif(tmp_path / "stack.tif", full_range((3, 16, 16)))
    dicom(tmp_path / "ct.dcm", RNG.integers(0, 4095, size=(16, 16)))
    images, sources = read_training_images([str(tmp_path)])
    assert len(images) == 4 and all(im.shape == (16, 16) for im in images)
    assert all(0 <= im.min() and im.max() <= 1 for im in images) and sources.count(str(tmp_path / "stack.tif")) == 3


# -- the command line ---------------------------------------------------------------------------------------


def pngs(folder, n, size=(16, 16)):
    from skimage import io

    folder.mkdir()
    for i in range(n):
        io.imsave(folder / f"slice{i}.png", np.full(size, 20 * i, np.uint8), check_contrast=False)
    return folder


def test_simulate_takes_a_folder_a_glob_and_a_list_of_slices(tmp_path):
    folder = pngs(tmp_path / "slices", 11)
    for i, spec in enumerate([folder, folder / "slice*.png"]):
        out = tmp_path / f"m{i}.h5"
        res = run("simulate", "--operator", "blur", "-i", spec, "-o", out, "--json")
        assert res.exit_code == 0, res.stderr
        assert json.loads(res.stdout)["images"] == 11
        with h5py.File(out) as f:
            assert f["measurement"].shape == (11, 16, 16)
            truth = f["ground_truth"][:, 0, 0]
        np.testing.assert_allclose(truth, np.arange(11) * 20 / 255.0, atol=1e-6)  # slice2 before slice10
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"input": [str(folder / "slice3.png"), str(folder / "slice1.png")], "range": [0, 60],
                               "operator": "blur", "output": str(tmp_path / "c.h5")}))
    assert run("simulate", "--config", cfg).exit_code == 0
    with h5py.File(tmp_path / "c.h5") as f:
        truth = f["ground_truth"][()]
    assert truth.shape == (2, 16, 16) and list(truth[:, 0, 0]) == [1.0, pytest.approx(1 / 3)]  # as listed


def test_simulate_range_and_evaluate_range(tmp_path):
    data = RNG.integers(0, 4095, size=(16, 16), endpoint=True).astype(np.uint16)
    data.flat[0], data.flat[1] = 0, 4095
    p = tif(tmp_path / "raw12.tif", data)
    res = run("simulate", "--operator", "blur", "-i", p, "-o", tmp_path / "m.h5", "--range", "0,4095")
    assert res.exit_code == 0, res.stderr
    with h5py.File(tmp_path / "m.h5") as f:
        truth = f["ground_truth"][0]
    assert truth.min() == 0.0 and truth.max() == 1.0
    np.testing.assert_allclose(truth, data / 4095.0, rtol=1e-6)
    np.save(tmp_path / "est.npy", data / np.float32(4095))
    res = run("evaluate", tmp_path / "est.npy", "--reference", p, "--range", "0,4095", "--json")
    assert res.exit_code == 0, res.stderr
    row = json.loads(res.stdout.splitlines()[0])
    assert row["ssim"] == pytest.approx(1.0) and row["reference"]["range"] == [0.0, 4095.0]  # the reference read on the same scale
    assert "--range" in err_line(run("simulate", "--operator", "blur", "-i", p, "-o", tmp_path / "n.h5",
                                     "--range", "4095,0"))


def test_cli_prints_the_bit_depth_warning_as_one_line(tmp_path):
    data = RNG.integers(0, 4095, size=(16, 16)).astype(np.uint16)
    p = tif(tmp_path / "raw12.tif", data)
    res = subprocess.run([sys.executable, "-m", "invsolve", "simulate", "--operator", "blur", "-i", str(p),
                          "-o", str(tmp_path / "m.h5"), "-q"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("Warning: ") and "--range 0,4095" in lines[0], res.stderr


def test_bad_inputs_are_one_error_line(tmp_path):
    folder = pngs(tmp_path / "mixed", 3)
    from skimage import io

    io.imsave(folder / "slice2.png", np.zeros((8, 16), np.uint8), check_contrast=False)
    line = err_line(run("simulate", "--operator", "blur", "-i", folder, "-o", tmp_path / "a.h5"))
    assert "slice2.png is 8×16" in line and "same size" in line
    bad = tmp_path / "bad.dcm"
    bad.write_bytes(b"\0" * 128 + b"DICM" + b"garbage" * 20)
    line = err_line(run("simulate", "--operator", "blur", "-i", bad, "-o", tmp_path / "b.h5"))
    assert "bad.dcm" in line and "DICOM" in line
    two = tmp_path / "two.tif"
    tifffile.imwrite(two, np.zeros((8, 8, 2), np.uint16), photometric="minisblack", planarconfig="contig",
                     extrasamples=[0])
    line = err_line(run("simulate", "--operator", "blur", "-i", two, "-o", tmp_path / "c.h5"))
    assert "2 samples per pixel" in line and "photometric='minisblack'" in line
    with pytest.raises(DataError, match="not a valid TIFF file"):
        (tmp_path / "t.tif").write_bytes(b"II*\0" + b"\xff" * 12)
        read_array(tmp_path / "t.tif")
