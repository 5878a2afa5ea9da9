"""CT measurements from users' files: sinograms, sinogram stacks, raw projections (Data Exchange), LoDoPaB-CT.

The geometry comes from ``-P`` (angles as a count, a list or a file; centre; detector pitch and offsets);
what the data fix (the angle and detector counts) is taken from them where ``-P`` leaves it open, and a
count that contradicts the data is refused.  ``-P center=auto`` estimates the rotation axis from the
sinograms (:func:`invsolve.functional.rotation_center.find_center`).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from ..errors import ConfigError, DataError, ShapeError
from .inputs import InputSpec, read_raw
from .reading import MeasurementReading, build_checked, check_shape, digest_ident, make_measurement

__all__ = ["ct_measurement"]


def _projections(spec: InputSpec, reading: MeasurementReading) -> tuple[np.ndarray, dict, dict[str, Any]]:
    """Raw projections (angles, rows, cols) -> sinograms (rows, angles, cols); the Data Exchange file's own
    flats, darks and theta are used when not given."""
    from .angles import hdf5_angle_unit
    from .projections import DXCHANGE, parse_rows
    from .inputs import hdf5_datasets

    import h5py

    names = hdf5_datasets(spec.file) if spec.is_hdf5 else []
    from .nexus import find_nxtomo

    nx = find_nxtomo(names, spec.dataset) if spec.is_hdf5 else None
    if nx is not None and reading.flats is None:
        return _nxtomo(spec, reading, nx)
    flats, darks = reading.flats, reading.darks
    if flats is None and DXCHANGE["flats"] in names:
        flats = f"{spec.file}:{DXCHANGE['flats']}"
    if darks is None and DXCHANGE["darks"] in names:
        darks = f"{spec.file}:{DXCHANGE['darks']}"
    if flats is None:
        raise ConfigError(f"{spec.where()} holds raw projections; give their flat fields with --flats "
                          "FILE.h5:/exchange/data_white (and --darks)")
    if spec.is_hdf5:  # only the rows asked for are read
        from ..io.h5safety import checked_get

        with h5py.File(spec.file, "r") as f:
            obj = checked_get(f, spec.dataset, spec.where())
            if not isinstance(obj, h5py.Dataset):
                raise DataError(f"no dataset {spec.dataset!r} in {spec.file}; check the input's :/PATH")
            shape = obj.shape
        whole = None
    else:  # other formats are read whole, once
        whole = read_raw(spec)
        shape = whole.shape
    if len(shape) != 3:
        raise ShapeError(f"{spec.where()} has shape {tuple(shape)}; raw projections are (angles, rows, columns)")
    rows = parse_rows(reading.rows, shape[1])
    proj = read_raw(spec, rows=rows) if whole is None else whole if rows is None else whole[:, rows]
    sino, info = _correct(proj, _frames(flats, rows), None if darks is None else _frames(darks, rows), rows)
    params: dict[str, Any] = {}
    if DXCHANGE["theta"] in names and not _angles_given(reading):
        from ..io.h5safety import checked_get

        with h5py.File(spec.file, "r") as f:
            ds = checked_get(f, DXCHANGE["theta"])
            theta = np.asarray(ds[()], dtype=np.float64).reshape(-1)
            params = {"angles": [float(v) for v in theta], "angle_unit": hdf5_angle_unit(ds) or "deg",
                      "angles_source": f"{spec.file}:{DXCHANGE['theta']}"}
    return sino, params, {**info, "flats": flats, "darks": darks}


def _correct(proj: np.ndarray, flats: np.ndarray, darks: np.ndarray | None, rows) -> tuple[np.ndarray, dict]:
    """Averaged flats and darks applied to projections (angles, rows, cols): sinograms and what was done."""
    from .projections import average_frames, flat_dark_correct

    frame = proj.shape[1:]
    dk = average_frames(darks, frame, "darks") if darks is not None else None
    corrected = flat_dark_correct(proj, average_frames(flats, frame, "flats"), dk)
    return corrected.sinograms, {"layout": "projections", "clipped": corrected.clipped,
                                 "floored_flat": corrected.floored_flat,
                                 "rows": None if rows is None else [rows.start, rows.stop]}


def _nxtomo(spec: InputSpec, reading: MeasurementReading, nx) -> tuple[np.ndarray, dict, dict[str, Any]]:
    """An NXtomo entry: projections, flats and darks selected by image_key; angles from rotation_angle."""
    import h5py

    from .nexus import read_nxtomo
    from .projections import parse_rows

    from ..io.h5safety import checked_get

    with h5py.File(spec.file, "r") as f:
        n_rows = checked_get(f, nx.data).shape[1]
    rows = parse_rows(reading.rows, n_rows)
    proj, flats, darks, angles, unit = read_nxtomo(spec.file, nx, rows)
    if reading.darks is not None:  # given darks replace the entry's own
        darks = _frames(reading.darks, rows)
    sino, info = _correct(proj, flats, darks, rows)
    params: dict[str, Any] = {}
    if angles is not None and not _angles_given(reading):
        if unit is None and "angle_unit" not in reading.operator_params:
            warnings.warn(f"{spec.file}:{nx.rotation_angle} declares no units; its angles are read as degrees "
                          "(give -P angle_unit=rad if they are radians)")
        params = {"angles": [float(v) for v in angles], "angle_unit": unit or "deg",
                  "angles_source": f"{spec.file}:{nx.rotation_angle}"}
    own_darks = f"{spec.file}:{nx.data} (image_key 2)" if darks is not None else None
    return sino, params, {**info, "format": "NXtomo", "flats": f"{spec.file}:{nx.data} (image_key 1)",
                          "darks": reading.darks or own_darks}


def _frames(text: str, rows) -> np.ndarray:
    from .inputs import parse_input

    s = parse_input(text)
    arr = read_raw(s)
    if rows is not None:
        arr = arr[:, rows] if arr.ndim == 3 else arr[rows]
    return arr


def _angles_given(reading: MeasurementReading) -> bool:
    return any(k in reading.operator_params for k in ("angles", "angles_file"))


def _fit_counts(params: dict, name: str, n_angles: int, n_det: int, where: str) -> dict:
    """Angle and detector counts from the data where ``-P`` leaves them open; a count that contradicts the
    data is refused."""
    from ..operators import operator_entry

    merged = {**operator_entry(name).defaults, **params}
    a = merged.get("angles")
    if a is None and merged.get("angles_file") is None:
        params["angles"] = n_angles
        if merged.get("endpoint") is None:
            warnings.warn(f"{where}: {n_angles} angles on [{merged.get('angle_start', 0.0):g}, "
                          f"{merged.get('angle_stop') or 180:g}) placed at cell midpoints (k + 0.5)·step; a scan at "
                          "linspace(start, stop, n, endpoint=False) needs -P endpoint=false (or give the angles "
                          "with -P angles_file=)")
    elif isinstance(a, int) and not isinstance(a, bool) and a != n_angles:
        raise DataError(f"{where} holds {n_angles} projections (angles), and -P angles gives {a}; give the "
                        "angles the sinogram was measured at")
    elif isinstance(a, list) and len(a) != n_angles:
        raise DataError(f"{where} holds {n_angles} projections (angles), and the angle list has {len(a)}; give "
                        "one angle per projection")
    if merged.get("detectors") is None and merged.get("detector_spacing", 1.0) != "diagonal":
        params["detectors"] = n_det
    return params


def ct_measurement(spec: InputSpec, reading: MeasurementReading, name: str, raw_projections: bool):
    """A CT measurement: sinogram(s) or raw projections, with the described geometry."""
    params = dict(reading.operator_params)
    if raw_projections:
        y, from_file, info = _projections(spec, reading)
        params = {**from_file, **params}
        single = False
    else:
        if reading.darks is not None or reading.rows is not None:
            raise ConfigError("--darks and --rows apply to raw projections; give --flats too (or the "
                              "/exchange/data of a Data Exchange file)")
        y = read_raw(spec)
        check_shape(y, (2, 3), spec.where(), "a sinogram (angles, detectors) or a stack (slices, angles, detectors)")
        single = y.ndim == 2
        y = y[None] if single else y
        info = {"layout": "sinogram"}
    ident = {**digest_ident(spec, y, reading), **info}
    if "angles_file" in params:  # read it once here, so the count check sees the list
        from ..config import validate_params
        from ..operators.ct import CTParams

        p = validate_params(CTParams, {k: v for k, v in params.items() if k in CTParams.model_fields},
                            f"parameters of operator {name!r}")
        params = {**{k: v for k, v in params.items() if k != "angles_file"}, "angles": p.angles,
                  "angle_unit": p.angle_unit, "angles_source": p.angles_source}
    params = _fit_counts(params, name, y.shape[1], y.shape[2], spec.where())
    if params.get("center") == "auto":
        params["center"] = _estimate_center(y, params, name, reading, spec, ident)
    op = build_checked(name, params, y.shape[1:], reading, spec.where())
    return make_measurement(y, op, reading, name, ident, single)


def _estimate_center(y: np.ndarray, params: dict, name: str, reading: MeasurementReading, spec: InputSpec,
                     ident: dict) -> float:
    """The rotation axis from the middle sinograms of the stack; reported on stderr and in the provenance."""
    from ..functional.rotation_center import find_center
    probe = build_checked(name, {**params, "center": None}, y.shape[1:], reading, spec.where())
    mid = len(y) // 2
    sino = y[max(0, mid - 2): mid + 3].mean(axis=0)
    est = find_center(sino, np.asarray(probe.angles_rad))
    ident["center_estimate"] = {"center": float(est.center), "offset": float(est.offset), "method": est.method,
                                "slices": [max(0, mid - 2), min(len(y), mid + 3)]}
    warnings.warn(f"{spec.where()}: rotation axis estimated at detector pixel {est.center:.2f} "
                  f"({est.offset:+.2f} from the middle, {est.method}); set -P center={est.center:.2f} to fix it")
    return float(est.center)
