"""TIFF files through tifffile: pages and ImageJ hyperstacks as stacks of 2-D images.

The first series (``TiffFile.series[0]``, with further series of the same shape, e.g. pages written one by
one) and its ``axes`` decide the layout:

* ``Y`` and ``X`` are the image; every other axis (pages ``I``/``Q``, ImageJ ``T``, ``Z``, ``C``) becomes
  the stack, flattened in file order (a warning when more than one of them is longer than 1).
* Only a samples axis ``S`` with photometric RGB is colour: RGB / RGBA become grey (luminance, a
  warning).  Other samples per pixel are refused.
* Palette images are looked up in their colour map.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ..errors import DataError
from .raw import RawImage, luminance, warn_once

__all__ = ["read_tiff"]


def _bad_file(path: Path, exc: Exception) -> DataError:
    text = (str(exc).strip().splitlines() or [""])[0]
    try:
        if path.stat().st_size == 0:
            return DataError(f"cannot read image {path}: the file is empty, not a valid TIFF file")
    except OSError:
        pass
    if isinstance(exc, OSError) and text:
        return DataError(f"cannot read image {path}: {text}")
    return DataError(f"cannot read image {path}: not a valid TIFF file (damaged, truncated or another format "
                     f"renamed {path.suffix}; {text[:120]})")


def _pillow_pages(path: Path, codec_error: Exception) -> tuple[np.ndarray, str]:
    """All pages through Pillow, for compressions tifffile decodes only with imagecodecs (e.g. LZW)."""
    from PIL import Image, ImageSequence

    try:
        with Image.open(path) as im:
            pages = [np.asarray(p.convert("RGB") if p.mode == "P" else p) for p in ImageSequence.Iterator(im)]
    except Exception:
        first = (str(codec_error).splitlines() or [""])[0]
        raise DataError(f"cannot decode {path}: {first}; install it with `pip install imagecodecs`, or save the "
                        "file uncompressed") from None
    if len({p.shape for p in pages}) > 1:
        raise DataError(f"{path} has pages of different sizes ({pages[0].shape} and others); save one size per file")
    arr = np.stack(pages) if len(pages) > 1 else pages[0]
    return arr, ("I" if len(pages) > 1 else "") + ("YXS" if pages[0].ndim == 3 else "YX")


def _series(tf, path: Path) -> tuple[np.ndarray, str]:
    """The first series (plus further series of its shape) as an array and its axes."""
    first = tf.series[0]
    same = [s for s in tf.series if s.shape == first.shape and s.dtype == first.dtype and s.axes == first.axes]
    other = [s for s in tf.series if s not in same and not getattr(s, "is_reduced", False)
             and s.kind not in ("reduced", "thumbnail")]
    if other:
        raise DataError(f"{path} holds images of different sizes or types ({first.shape} {first.dtype} and "
                        f"{other[0].shape} {other[0].dtype}); save one size per file")
    arrays = [s.asarray() for s in same]
    if len(arrays) == 1:
        return arrays[0], first.axes
    return np.stack(arrays), "I" + first.axes


def _alpha(page) -> bool:
    """Whether the one extra sample of a page is transparency (ExtraSamples: associated or unassociated
    alpha), as in a grey + alpha image."""
    extra = tuple(getattr(page, "extrasamples", ()) or ())
    return len(extra) == 1 and int(extra[0]) in (1, 2)


def _layout(arr: np.ndarray, axes: str, page, path: Path) -> tuple[np.ndarray, dict]:
    """``arr`` with axes ``axes`` as (H, W) or (N, H, W) grey values."""
    from tifffile import PHOTOMETRIC

    src = str(path)
    photometric = PHOTOMETRIC(page.photometric).name if page.photometric is not None else "?"
    palette = False
    if "Y" not in axes or "X" not in axes or arr.ndim != len(axes):
        raise DataError(f"{path} holds an array of shape {arr.shape} with axes {axes!r}, not a stack of 2-D images "
                        "(no Y and X axes); save it as pages of (H, W) images")
    if photometric == "PALETTE" and "S" not in axes and getattr(page, "colormap", None) is not None:
        cmap = np.asarray(page.colormap)  # (3, 2**bits) uint16
        arr, axes = np.moveaxis(cmap[:, arr], 0, -1), axes + "S"
        photometric, palette = "RGB", True
    if "S" in axes:
        s = axes.index("S")
        n = arr.shape[s]
        if n == 1:
            arr, axes = np.take(arr, 0, axis=s), axes.replace("S", "")
        elif photometric in ("MINISBLACK", "MINISWHITE") and n == 2 and _alpha(page):
            alpha = np.take(arr, 1, axis=s)
            if not np.all(alpha == alpha.max()):
                warn_once(f"{src} is grey with transparency; its alpha channel was dropped", "alpha", src)
            arr, axes = np.take(arr, 0, axis=s), axes.replace("S", "")
        elif photometric == "RGB" and n in (3, 4):
            hint = ""
            if axes.index("Y") > s:  # planar: how tifffile.imwrite stores a (3|4, H, W) array by default
                hint = (f"; if the {n} planes are slices, not colours, save them with "
                        "tifffile.imwrite(..., photometric='minisblack')")
            arr, axes = luminance(arr, s, src, "RGBA" if n == 4 else "RGB", hint), axes.replace("S", "")
        else:
            raise DataError(f"{path} has {n} samples per pixel (photometric {photometric}, axes {axes}); invsolve "
                            "reads grey or RGB images: save each channel as a page of its own "
                            "(tifffile.imwrite(..., photometric='minisblack'))")
    rest = [a for a in axes if a not in "YX"]
    long = [f"{a}={arr.shape[axes.index(a)]}" for a in rest if arr.shape[axes.index(a)] > 1]
    if len(long) > 1:
        warn_once(f"{src} is a hyperstack with axes {axes} ({', '.join(long)}); its "
                  f"{int(np.prod([arr.shape[axes.index(a)] for a in rest]))} images were taken as one stack in "
                  f"{''.join(rest)} order", "hyperstack", src, axes)
    order = [axes.index(a) for a in rest] + [axes.index("Y"), axes.index("X")]
    arr = np.transpose(arr, order)
    if rest:
        arr = arr.reshape(-1, *arr.shape[-2:])
    return arr, {"axes": axes, "photometric": photometric, "palette": palette}


@contextmanager
def _tifffile_log():
    """tifffile's log records (damaged pages, bad offsets) collected, not printed: invsolve reports a file it
    cannot read in one line of its own."""
    records: list[str] = []

    class _Collect(logging.Handler):
        def emit(self, record):
            records.append(record.getMessage())

    log = logging.getLogger("tifffile")
    handler, propagate = _Collect(), log.propagate
    log.addHandler(handler)
    log.propagate = False
    try:
        yield records
    finally:
        log.removeHandler(handler)
        log.propagate = propagate


def read_tiff(path: str | Path) -> RawImage:
    """Read a TIFF file (pages, ImageJ hyperstacks, RGB) as raw grey values.

    Arguments:
        path: A ``.tif`` / ``.tiff`` file.

    Returns:
        :class:`RawImage` with ``data`` (H, W) for one image or (N, H, W) for a stack, in the file's dtype
        (float32 after colour to grey); ``bits`` is BitsPerSample for unsigned integers, else None; ``meta``
        holds ``axes``, ``photometric`` and ``bits_per_sample``.

    Raises:
        DataError: A file that is not a TIFF, cannot be decoded, or cannot be a stack of 2-D images.
    """
    import tifffile

    path = Path(path)
    with _tifffile_log() as log:
        try:
            tf = tifffile.TiffFile(path)
        except MemoryError:
            raise
        except Exception as exc:
            raise _bad_file(path, exc) from None
        with tf:
            if not tf.series:
                why = f": {log[0][:120]}" if log else ""
                raise DataError(f"cannot read image {path}: not a valid TIFF file, it holds no images (damaged or "
                                f"truncated{why})")
            page = tf.series[0].keyframe
            try:
                arr, axes = _series(tf, path)
            except (DataError, MemoryError):
                raise
            except Exception as exc:
                if "imagecodecs" not in str(exc):
                    raise _bad_file(path, exc) from None
                arr, axes = _pillow_pages(path, exc)
            arr, meta = _layout(np.asarray(arr), axes, page, path)
            bps = int(page.bitspersample)
        if log:  # read despite a problem tifffile noticed: say so, once
            warn_once(f"{path}: tifffile: {log[0][:200]}", "tifffile", str(path), log[0][:200])
    meta["bits_per_sample"] = bps
    unsigned = int(page.sampleformat) == 1 and arr.dtype != bool
    bits = 16 if meta.pop("palette") else bps if unsigned else None
    meta["bits_from"] = f"TIFF BitsPerSample {bps}" if bits == bps else "a 16-bit colour map"
    if arr.size == 0:
        raise DataError(f"{path} holds an empty image of shape {arr.shape}; give a file with an image in it")
    return RawImage(arr, str(path), "tiff", bits, None, meta)
