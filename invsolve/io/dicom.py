"""DICOM images through pydicom: slices, multi-frame files and series of slices, in Hounsfield units.

The stored values go through the modality LUT (``ModalityLUTSequence``, else RescaleSlope · SV +
RescaleIntercept), so CT comes back in HU.  On the [0, 1] scale invsolve works on, HU become LoDoPaB-CT's
μ/μ_max (:func:`hu_to_unit`), or a window (centre, width) mapped linearly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import DataError
from .raw import RawImage, luminance, natural_key

__all__ = ["DICOM_SUFFIXES", "MU_WATER", "MU_AIR", "is_dicom", "read_dicom", "read_dicom_series", "hu_to_unit",
           "window_range"]

DICOM_SUFFIXES = (".dcm", ".dicom")
MU_WATER = 20.0  # 1/m, LoDoPaB-CT (about 60-70 keV)
MU_AIR = 0.02  # 1/m


def is_dicom(path: str | Path) -> bool:
    """Whether ``path`` is a DICOM file by name (``.dcm``, ``.dicom``) or by its ``DICM`` preamble."""
    path = Path(path)
    if path.suffix.lower() in DICOM_SUFFIXES:
        return True
    try:
        with open(path, "rb") as f:
            head = f.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:] == b"DICM"


def window_range(centre: float, width: float) -> tuple[float, float]:
    """The value range (centre - width/2, centre + width/2) a window maps to [0, 1]."""
    return centre - width / 2, centre + width / 2


def hu_to_unit(hu: np.ndarray, window: tuple[float, float] | None = None) -> np.ndarray:
    """Hounsfield units on the [0, 1] scale.

    Without a window this is the normalisation of LoDoPaB-CT (Leuschner et al., Sci. Data 2021):
    μ = μ_water + HU · (μ_water − μ_air) / 1000 with μ_water = 20 m⁻¹, μ_air = 0.02 m⁻¹, divided by
    μ_max = 81.35858 m⁻¹ (:data:`invsolve.noise.poisson.MU_MAX`, the μ of 3071 HU) and clipped to [0, 1]
    (HU from −1001 to 3071).  The ``poisson`` noise model's default ``mu`` is the same μ_max, so these images
    are attenuation maps in units of μ_max.

    Arguments:
        hu: Values in HU, any shape.
        window: (centre, width): centre − width/2 maps to 0 and centre + width/2 to 1, linearly, clipped.

    Returns:
        float32 values in [0, 1], the shape of ``hu``.
    """
    hu = np.asarray(hu, dtype=np.float32)
    if window is not None:
        lo, hi = window_range(*window)
        return np.clip((hu - np.float32(lo)) / np.float32(hi - lo), 0.0, 1.0)
    from ..noise.poisson import MU_MAX

    mu = np.float32(MU_WATER) + hu * np.float32((MU_WATER - MU_AIR) / 1000)
    return np.clip(mu / np.float32(MU_MAX), 0.0, 1.0)


def _modality_lut(arr: np.ndarray, ds) -> np.ndarray:
    try:
        from pydicom.pixels import apply_modality_lut
    except ImportError:  # pydicom 2
        from pydicom.pixel_data_handlers.util import apply_modality_lut
    return apply_modality_lut(arr, ds)


def _first(value):
    """A DICOM value that may be multi-valued (window centres), as its first float; None if absent."""
    if value is None:
        return None
    try:
        return float(value[0] if hasattr(value, "__len__") and not isinstance(value, str) else value)
    except (TypeError, ValueError, IndexError):
        return None


def _decode_problem(ds, exc: Exception) -> str:
    text = (str(exc).strip().splitlines() or [""])[0]
    ts = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    if ts is not None and getattr(ts, "is_compressed", False) and "byte" not in text:
        return (f"its pixel data are compressed ({ts.name}) and no installed decoder handles them; install one "
                "(pip install pylibjpeg pylibjpeg-libjpeg pylibjpeg-openjpeg) or decompress the file "
                "(gdcmconv --raw)")
    return f"{text.split(' - ')[0][:200]}; the file is damaged or truncated"


def read_dicom(path: str | Path) -> RawImage:
    """Read one DICOM file (a slice, or a multi-frame image) in its physical units.

    Arguments:
        path: The file; ``.dcm``, ``.dicom`` or any name with the ``DICM`` preamble.

    Returns:
        :class:`RawImage` with ``data`` (H, W), or (F, H, W) for F frames: float32 after the modality LUT
        (HU for CT; ``units`` is then ``"HU"``), else the stored integers (``bits`` = BitsStored when
        unsigned; MONOCHROME1 inverted).  ``meta`` holds ``modality``, ``bits_stored``, ``bits_allocated``,
        ``pixel_representation``, ``rescale`` (slope, intercept), ``window`` (centre, width), ``instance``,
        ``position``, ``orientation``, ``pixel_spacing``, ``series``.

    Raises:
        DataError: A file that is not DICOM, holds no image, or whose pixel data cannot be decoded.
    """
    import pydicom
    from pydicom.errors import InvalidDicomError

    path = Path(path)
    forced = False
    try:
        try:
            ds = pydicom.dcmread(path)
        except InvalidDicomError:  # no preamble: old files; the name says DICOM, so try it as such
            ds, forced = pydicom.dcmread(path, force=True), True
    except OSError as exc:
        raise DataError(f"cannot read DICOM {path}: {exc.strerror or exc}") from None
    except MemoryError:
        raise
    except Exception as exc:
        text = (str(exc).strip().splitlines() or [""])[0][:160]
        raise DataError(f"cannot read DICOM {path}: not a valid DICOM file ({text})") from None
    if forced and "Rows" not in ds and "SOPClassUID" not in ds:
        raise DataError(f"cannot read DICOM {path}: not a valid DICOM file (no DICM preamble and no image "
                        f"attributes; damaged, or another format renamed {path.suffix or 'as DICOM'})")
    if not any(k in ds for k in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")):
        what = f"modality {ds.Modality}, " if str(getattr(ds, "Modality", "") or "") else ""
        raise DataError(f"cannot read DICOM {path}: it holds no image ({what}no Pixel Data); give DICOM image "
                        "files (not a DICOMDIR, plan, report or a damaged file)")
    try:
        arr = np.asarray(ds.pixel_array)
    except MemoryError:
        raise
    except Exception as exc:
        raise DataError(f"cannot read DICOM {path}: {_decode_problem(ds, exc)}") from None
    samples = int(getattr(ds, "SamplesPerPixel", 1) or 1)
    bits_stored = int(getattr(ds, "BitsStored", 0) or 0) or None
    signed = int(getattr(ds, "PixelRepresentation", 0) or 0) == 1
    modality = str(getattr(ds, "Modality", "") or "")
    rescaled = "ModalityLUTSequence" in ds or "RescaleSlope" in ds or "RescaleIntercept" in ds
    meta = {"modality": modality, "bits_stored": bits_stored, "bits_allocated": getattr(ds, "BitsAllocated", None),
            "pixel_representation": int(signed),
            "rescale": (_first(getattr(ds, "RescaleSlope", None)), _first(getattr(ds, "RescaleIntercept", None))),
            "window": (_first(getattr(ds, "WindowCenter", None)), _first(getattr(ds, "WindowWidth", None))),
            "instance": _first(getattr(ds, "InstanceNumber", None)),
            "position": [float(v) for v in getattr(ds, "ImagePositionPatient", None) or []] or None,
            "orientation": [float(v) for v in getattr(ds, "ImageOrientationPatient", None) or []] or None,
            "pixel_spacing": [float(v) for v in getattr(ds, "PixelSpacing", None) or []] or None,
            "series": str(getattr(ds, "SeriesInstanceUID", "") or "")}
    units, bits = None, None
    if samples > 1:
        arr = luminance(arr, -1, str(path), str(getattr(ds, "PhotometricInterpretation", "RGB")))
        bits = bits_stored
    else:
        if rescaled and np.issubdtype(arr.dtype, np.integer):
            arr = np.asarray(_modality_lut(arr, ds), dtype=np.float32)
        if modality == "CT" or (rescaled and (not modality or str(getattr(ds, "RescaleType", "")) == "HU")):
            arr, units = arr.astype(np.float32, copy=False), "HU"
        elif not signed and np.issubdtype(arr.dtype, np.integer):
            bits = bits_stored or 8 * arr.dtype.itemsize
            if str(getattr(ds, "PhotometricInterpretation", "")) == "MONOCHROME1":
                arr = (2 ** bits - 1) - arr  # MONOCHROME1: 0 is white
    meta["bits_from"] = f"DICOM BitsStored {bits}"
    return RawImage(arr, str(path), "dicom", bits, units, meta)


def _order(slices: list[RawImage]) -> list[RawImage]:
    """Slices in InstanceNumber order; by position along the slice normal where instance numbers are
    missing or repeated; else by file name."""
    inst = [s.meta["instance"] for s in slices]
    if None not in inst and len(set(inst)) == len(inst):
        return sorted(slices, key=lambda s: s.meta["instance"])
    if all(s.meta["position"] and s.meta["orientation"] for s in slices):
        o = np.asarray(slices[0].meta["orientation"], dtype=float)
        normal = np.cross(o[:3], o[3:6])
        z = [float(np.dot(s.meta["position"], normal)) for s in slices]
        return [slices[i] for i in np.argsort(z, kind="stable")]
    return sorted(slices, key=lambda s: natural_key(s.source))


def read_dicom_series(files: Sequence[str | Path], source: str | None = None) -> RawImage:
    """Read DICOM slices as one stack, in InstanceNumber order (else ImagePositionPatient along the slice
    normal, else file name).

    Arguments:
        files: DICOM files of one series (multi-frame files add all their frames).
        source: The name of the set (a folder or glob), for messages.

    Returns:
        :class:`RawImage` with ``data`` (N, H, W) float32 (HU for CT) or the stored integers; ``meta`` as
        :func:`read_dicom` gives for the first slice, plus ``files`` and ``instances`` in stack order.

    Raises:
        DataError: An unreadable file, slices of different sizes, or several series mixed.
    """
    source = source or (str(files[0]) if files else "")
    if not files:
        raise DataError(f"{source}: no DICOM files given")
    slices = _order([read_dicom(f) for f in files])
    series = {s.meta["series"] for s in slices if s.meta["series"]}
    if len(series) > 1:
        raise DataError(f"{source} mixes {len(series)} DICOM series (SeriesInstanceUID); give the files of one "
                        "series (e.g. a folder per series)")
    units = {s.units for s in slices}
    if len(units) > 1:
        raise DataError(f"{source} mixes slices in HU with slices without a rescale; give one series")
    shape = slices[0].data.shape[-2:]
    for s in slices:
        if s.data.shape[-2:] != shape:
            raise DataError(f"{s.source} is {s.data.shape[-2]}×{s.data.shape[-1]}, but {slices[0].source} is "
                            f"{shape[0]}×{shape[1]}; slices of one stack must be the same size")
    data = np.concatenate([s.data.reshape(-1, *shape) for s in slices])
    bits = max((s.bits for s in slices if s.bits), default=None)
    meta = {**slices[0].meta, "files": [s.source for s in slices], "instances": [s.meta["instance"] for s in slices]}
    return RawImage(data, source, "dicom", bits, slices[0].units, meta)
