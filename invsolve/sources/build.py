"""Foreign data to a :class:`invsolve.api.Measurement`: pick the layout by the operator, read, check, describe."""

from __future__ import annotations

import warnings

import numpy as np

from ..errors import ConfigError, DataError
from .inputs import InputSpec, hdf5_datasets, read_raw
from .reading import MeasurementReading, build_checked, check_shape, digest_ident, make_measurement

__all__ = ["foreign_measurement"]

_CT = ("ct", "ct-lowdose", "ct-limited")


def _operator_name(spec: InputSpec, reading: MeasurementReading, raw_projections: bool) -> str:
    from ..operators import operator_entry

    if reading.operator is None:
        if raw_projections:
            return "ct"
        raise ConfigError(f"{spec.where()} is not an invsolve file: describe the measurement with --operator NAME "
                          "and its -P parameters (e.g. --operator ct -P angles_file=theta.npy, or --operator "
                          "ct-lowdose for LoDoPaB-CT files)")
    operator_entry(reading.operator)  # an unknown name fails with the list of valid ones
    return reading.operator


def _default_dataset(spec: InputSpec) -> InputSpec:
    """An HDF5 input without a dataset: Data Exchange's projections, NXtomo frames, or the file's only dataset."""
    if spec.dataset is not None or not spec.is_hdf5:
        return spec
    from .nexus import find_nxtomo
    from .projections import DXCHANGE

    names = hdf5_datasets(spec.file)
    nx = find_nxtomo(names)
    pick = DXCHANGE["data"] if DXCHANGE["data"] in names else nx.data if nx is not None else \
        names[0] if len(names) == 1 else None
    if pick is None:
        raise DataError(f"{spec.file} is not an invsolve file and holds {len(names)} datasets; name one as "
                        f"{spec.file}:/PATH (datasets: {', '.join(names[:8]) or 'none'})")
    return InputSpec(spec.text, spec.file, pick, spec.items)


def foreign_measurement(spec: InputSpec, reading: MeasurementReading):
    """Read foreign data as a measurement of the described operator.

    Returns:
        (:class:`invsolve.api.Measurement`, ident), ident being the provenance stored with every output.
    """
    from ..operators import operator_entry
    from .projections import DXCHANGE

    from .nexus import find_nxtomo

    spec = _default_dataset(spec)
    nexus = spec.is_hdf5 and find_nxtomo(hdf5_datasets(spec.file), spec.dataset) is not None
    raw_projections = reading.flats is not None or spec.dataset == DXCHANGE["data"] or nexus
    name = _operator_name(spec, reading, raw_projections)
    cls = operator_entry(name).cls
    if name in _CT:
        from .ct import ct_measurement

        return ct_measurement(spec, reading, name, raw_projections)
    if reading.flats or reading.darks or reading.rows:
        raise ConfigError(f"--flats, --darks and --rows describe raw CT projections; operator {name!r} takes none")
    if cls.domain_ndim == 1:
        return _vector_measurement(spec, reading, name)
    return _image_measurement(spec, reading, name)


def _image_measurement(spec: InputSpec, reading: MeasurementReading, name: str):
    """An observed image or stack (a micrograph, a masked or blurred image), scaled as input images are."""
    from ..io.images import read_images

    if spec.is_hdf5:
        arr = read_raw(spec)
        single = arr.ndim == 2
        arr = arr[None] if single else arr
    else:
        arr, single = read_images(str(spec.file))
        if spec.items is not None:
            arr = arr[spec.items]
    check_shape(arr, (3,), spec.where(), "an image (H, W) or a stack (N, H, W)")
    ident = {**digest_ident(spec, arr, reading), "layout": "image"}
    op = build_checked(name, reading.operator_params, arr.shape[1:], reading, spec.where())
    return make_measurement(arr, op, reading, name, ident, single)


def _vector_measurement(spec: InputSpec, reading: MeasurementReading, name: str):
    """Measured vectors or a scan (GIXRF over angle), with its grid and per-point standard deviations."""
    from .vectors import gixrf_layout, read_vector_scan

    scan = read_vector_scan(spec.text if spec.items is None else spec.where())
    values, sigma = scan.values, scan.sigma
    params = dict(reading.operator_params)
    if name == "gixrf":
        lines = params.get("lines") or ["Ni-Ka"]
        values, sigma = gixrf_layout(scan, lines)
        if scan.grid is not None:
            grid = [float(v) for v in scan.grid]
            if "angles" in params and not np.allclose(params["angles"], grid, rtol=0, atol=1e-9):
                raise ConfigError(f"{spec.where()} holds its angle grid; -P angles= differs from it (drop -P angles)")
            params["angles"] = grid
    if spec.items is not None:
        values = values[spec.items]
    ident = {**digest_ident(spec, values, reading), "layout": "vectors"}
    if scan.grid is not None:
        ident["grid"] = "read from the file"
    op = build_checked(name, params, values.shape[1:], reading, spec.where())
    return make_measurement(values, op, reading, name, ident, single=len(values) == 1,
                            noise=_scan_noise(name, reading, sigma, spec))


def _scan_noise(name: str, reading: MeasurementReading, sigma, spec: InputSpec) -> dict | None:
    """Per-point standard deviations of a scan as the Gaussian noise model's sigma (unless -N sigma is given)."""
    from ..operators.noise_preset import resolve_noise

    if sigma is None:
        return None
    s = np.asarray(sigma, dtype=np.float64)
    if s.ndim == 2:
        if not np.allclose(s, s[:1]):
            raise DataError(f"{spec.where()} has different standard deviations per measurement; the noise model "
                            "takes one per point: split the file, one measurement each")
        s = s[0]
    if reading.noise in (None, "gaussian") and "sigma" not in reading.noise_params:
        # the shortest decimal of each float32 value: 0.01 as written in the file, not 0.009999999776
        sig = [float(str(np.float32(v))) for v in s]
        return resolve_noise(name, "gaussian", {**reading.noise_params, "sigma": sig})
    warnings.warn(f"{spec.where()} gives per-point standard deviations, which --noise {reading.noise} does not use "
                  "(use --noise gaussian to weight the points by them)")
    return None
