"""Reading images and stacks: ``file.h5:/dataset``, PNG/TIFF, ``.npy``.

Every reader returns float32 in the file's own scale, except integer images,
which are mapped to [0, 1] (uint8 / 255, uint16 / 65535).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..errors import DataError, ShapeError

__all__ = ["split_spec", "read_array", "read_images", "check_finite", "as_stack", "HDF5_SUFFIXES", "IMAGE_SUFFIXES",
           "match_files", "expand_image_spec"]

#: File suffixes taken as images when a folder is given.
IMAGE_SUFFIXES = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp", ".npy")

HDF5_SUFFIXES = (".h5", ".hdf5", ".hdf", ".he5", ".nxs")
_SPEC = re.compile(r"^(?P<file>.*?\.(?:h5|hdf5|hdf|he5|nxs))(?::(?P<dset>.*))?$", re.IGNORECASE)


def split_spec(spec: str) -> tuple[Path, str | None]:
    """Split ``file.h5:/path`` into (file, dataset); other paths get dataset None."""
    m = _SPEC.match(str(spec))
    if m:
        return Path(m.group("file")), (m.group("dset") or None)
    return Path(spec), None


def _list_datasets(f) -> list[str]:
    import h5py

    names: list[str] = []
    f.visititems(lambda n, o: names.append("/" + n) if isinstance(o, h5py.Dataset) else None)
    return names


def read_hdf5(path: Path, dataset: str | None) -> np.ndarray:
    import h5py

    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise DataError(f"cannot read {path} as HDF5 ({exc}); is it an HDF5 file?") from None
    with f:
        names = _list_datasets(f)
        if dataset is None:
            if len(names) != 1:
                raise DataError(
                    f"{path} holds {len(names)} datasets; name one as {path}:/PATH "
                    f"(datasets: {', '.join(names) or 'none'})"
                )
            dataset = names[0]
        if dataset not in f or not isinstance(f[dataset], h5py.Dataset):
            raise DataError(
                f"no dataset {dataset!r} in {path}; datasets: {', '.join(names) or 'none'}"
            )
        return np.asarray(f[dataset][()])


_KINDS = {".png": "PNG", ".tif": "TIFF", ".tiff": "TIFF", ".jpg": "JPEG", ".jpeg": "JPEG", ".bmp": "BMP"}


def _image_problem(path: Path, exc: Exception) -> str:
    """One line on why an image file did not read (imageio's own text spans lines and suggests plugins)."""
    kind = _KINDS.get(path.suffix.lower(), "image")
    try:
        if path.stat().st_size == 0:
            return f"the file is empty, not a valid {kind} file"
    except OSError:
        pass
    text = (str(exc).strip().splitlines() or [""])[0]
    if isinstance(exc, OSError) and "backend" not in text and "plugin" not in text and text:
        return text  # a permission or I/O problem: its own words
    return f"not a valid {kind} file (damaged, truncated or another format renamed {path.suffix})"


def _to_float(arr: np.ndarray, source: str) -> np.ndarray:
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / 255.0
    if arr.dtype == np.uint16:
        return arr.astype(np.float32) / 65535.0
    if arr.dtype == bool:
        return arr.astype(np.float32)
    if np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating):
        return arr.astype(np.float32)
    raise DataError(f"{source} has unsupported data type {arr.dtype}; expected numbers")


def read_array(spec: str | Path) -> np.ndarray:
    """Read an array from HDF5 (``file.h5:/path``), ``.npy``, PNG, TIFF or JPEG as float32."""
    path, dset = split_spec(str(spec))
    if not path.exists():
        head, sep, _ = str(spec).rpartition(":/")
        if sep and Path(head).is_file():
            raise DataError(f"{spec}: FILE:/DATASET applies to HDF5 files; give {head} without the :/... part")
        raise DataError(f"input file not found: {path} (check the path)")
    if path.is_dir():
        raise DataError(f"{path} is a directory; give an image, .npy or HDF5 file")
    suffix = path.suffix.lower()
    if suffix in HDF5_SUFFIXES:
        arr = read_hdf5(path, dset)
    elif suffix == ".npy":
        try:
            arr = np.load(path, allow_pickle=False)
        except Exception as exc:
            raise DataError(f"cannot read {path} as a NumPy array: {exc}") from None
    elif suffix in (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp"):
        from skimage import io as skio

        import warnings

        try:
            with warnings.catch_warnings():  # imageio's plugin search on a bad file warns about its own plugins
                warnings.simplefilter("ignore", DeprecationWarning)
                arr = np.asarray(skio.imread(path))
        except Exception as exc:
            raise DataError(f"cannot read image {path}: {_image_problem(path, exc)}") from None
        if arr.ndim == 3 and arr.shape[-1] in (3, 4) and suffix not in (".tif", ".tiff"):
            from skimage.color import rgb2gray

            arr = rgb2gray(arr[..., :3]).astype(np.float32)  # colour -> luminance in [0, 1]
    else:
        raise DataError(
            f"unsupported input type {suffix or '(none)'} for {path}; use .h5:/dataset, .npy, .png or .tif"
        )
    arr = np.asarray(arr)
    if arr.size == 0 or arr.ndim == 0:
        what = "a single number" if arr.ndim == 0 else f"an empty array of shape {arr.shape}"
        raise DataError(f"{spec} holds {what}; give a file with an image, a stack or vectors in it")
    return _to_float(arr, str(spec))


def check_finite(arr: np.ndarray, source: str) -> None:
    bad = ~np.isfinite(arr)
    if bad.any():
        raise DataError(
            f"{source} contains {int(bad.sum())} NaN or infinite values of {arr.size}; clean or fill them first"
        )


def as_stack(arr: np.ndarray, source: str) -> tuple[np.ndarray, bool]:
    """Check rank and return (N, H, W) plus whether the input was a single image."""
    if arr.ndim == 2:
        return arr[None], True
    if arr.ndim == 3:
        return arr, False
    raise ShapeError(
        f"{source} has shape {arr.shape} ({arr.ndim}-D); expected an image (H, W) or a stack (N, H, W)"
    )


def read_images(spec: str | Path) -> tuple[np.ndarray, bool]:
    """Read an image or stack, check it, return ((N, H, W) float32, single)."""
    arr = read_array(spec)
    stack, single = as_stack(arr, str(spec))
    check_finite(stack, str(spec))
    return np.ascontiguousarray(stack, dtype=np.float32), single


def match_files(pattern: str) -> list[str]:
    """The files a glob pattern matches, sorted; none is an error."""
    import glob

    files = sorted(glob.glob(pattern))
    if not files:
        raise DataError(f"no files match {pattern!r}; check the pattern (quote it so the shell keeps it)")
    return files


def expand_image_spec(spec: str) -> list[str]:
    """One image argument as a list of inputs: ``FILE.h5:/stack`` or an existing file as
    itself, a folder as its images (``IMAGE_SUFFIXES``), a glob as its matches."""
    path, dset = split_spec(spec)
    if dset is not None or path.exists():
        if path.is_dir():
            files = sorted(str(f) for f in path.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
            if not files:
                raise DataError(f"folder {path} holds no images ({', '.join(IMAGE_SUFFIXES)})")
            return files
        return [spec]
    if any(ch in spec for ch in "*?["):
        return match_files(spec)
    return [spec]  # the reader reports the missing file


def spec_list(specs, what: str, hint: str) -> list[str]:
    """``specs`` (one path or a list of them) as a list of str; :class:`ConfigError` naming ``what`` and
    ``hint`` for anything else (e.g. an array)."""
    import os

    from ..errors import ConfigError

    many = [specs] if isinstance(specs, (str, os.PathLike)) else specs
    if not isinstance(many, (list, tuple)) or not all(isinstance(v, (str, os.PathLike)) for v in many):
        raise ConfigError(f"{what} must be image files, globs, folders or FILE.h5:/stack (a str, a Path or a "
                          f"list of them), got {type(specs).__name__}; {hint}")
    return [str(v) for v in many]
