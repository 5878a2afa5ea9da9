"""PNG, JPEG and BMP files (through scikit-image / imageio) as raw grey values."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DataError
from .raw import RawImage, luminance, warn_once

__all__ = ["PICTURE_SUFFIXES", "read_picture", "image_problem"]

_KINDS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".bmp": "BMP", ".tif": "TIFF", ".tiff": "TIFF"}
PICTURE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")


def image_problem(path: Path, exc: Exception) -> str:
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


def read_picture(path: str | Path) -> RawImage:
    """Read a PNG, JPEG or BMP file as raw grey values.

    Arguments:
        path: The file.

    Returns:
        :class:`RawImage` with ``data`` (H, W): uint8 or uint16 as stored (``bits`` 8 or 16; PNGs of 1, 2 or
        4 bits come expanded to 8), or float32 luminance of colour (a warning), bool for 1-bit images.

    Raises:
        DataError: A file that does not decode.
    """
    import warnings

    from skimage import io as skio

    path = Path(path)
    kind = _KINDS.get(path.suffix.lower(), "image").lower()
    try:
        with warnings.catch_warnings():  # imageio's plugin search on a bad file warns about its own plugins
            warnings.simplefilter("ignore", DeprecationWarning)
            arr = np.asarray(skio.imread(path))
    except MemoryError:
        raise
    except Exception as exc:
        raise DataError(f"cannot read image {path}: {image_problem(path, exc)}") from None
    bits = {np.dtype(np.uint8): 8, np.dtype(np.uint16): 16}.get(arr.dtype)
    if arr.ndim == 3 and arr.shape[-1] in (3, 4):
        arr = luminance(arr, -1, str(path), "RGBA" if arr.shape[-1] == 4 else "RGB")
    elif arr.ndim == 3 and arr.shape[-1] == 2:  # grey + alpha
        if not np.all(arr[..., 1] == arr[..., 1].max()):
            warn_once(f"{path} is grey with transparency; its alpha channel was dropped", "alpha", str(path))
        arr = arr[..., 0]
    if arr.ndim != 2:
        raise DataError(f"{path} decodes to an array of shape {arr.shape}, not one image; save it as a grey or "
                        f"RGB {kind.upper()}, or a stack as a multi-page TIFF")
    what = {8: "8-bit", 16: "16-bit"}.get(bits, "")
    return RawImage(arr, str(path), kind, bits, None, {"bits_from": f"a {what} {kind.upper()}"})
