"""Measurements from any file: invsolve's own, or a user's sinogram, projection stack, image or vector scan
described by an operator and a noise model.

:func:`open_source` is the one entry point of ``reconstruct``, ``sample-posterior`` and ``estimate-noise``:
it returns a :class:`Source` whose ``load(items)`` gives :class:`invsolve.api.Measurement` batches.  An
invsolve file keeps its stored operator (a contradicting ``--operator`` or ``-P`` is refused); anything else
needs ``--operator`` (Data Exchange projections default to ``ct``) and is read as:

- CT (``ct``, ``ct-lowdose``, ``ct-limited``): a sinogram (angles, detectors) or a stack (slices, angles,
  detectors); with flats (or at ``/exchange/data``) a projection stack (angles, rows, columns), corrected
  and turned into one sinogram per row;
- image operators (``superres``, ``inpaint``, ``blur``): an image or stack, scaled like input images;
- vector operators (``surrogate``, ``gixrf``, ``linear``): vectors or a scan from CSV, NPY or HDF5.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError, DataError
from .inputs import InputSpec, is_invsolve_file, parse_input
from .reading import MeasurementReading

__all__ = ["MeasurementReading", "Source", "open_source"]


@dataclass
class Source:
    """One input: ``n`` items, what identifies it, and its measurement (read once, served in batches).

    Attributes:
        spec: The parsed input.
        n: Items (slices, measurements) it holds.
        ident: What identifies the input and its description, for resume fingerprints.
        measurement: The whole :class:`invsolve.api.Measurement` for foreign data; None for invsolve files,
            which are read batch by batch.
    """

    spec: InputSpec
    n: int
    ident: dict[str, Any]
    measurement: Any = None
    noise_override: dict[str, Any] | None = field(default=None)
    given_params: dict[str, Any] = field(default_factory=dict)

    @property
    def file(self) -> Path:
        return self.spec.file

    def stored(self) -> Path | dict:
        """What an output keeps of its input: the invsolve file (copied from), or the foreign data's arrays."""
        if self.measurement is None:
            return self.spec.file
        m = self.measurement
        return {"measurement": m.measurement, "ground_truth": m.ground_truth,
                **({"operator_arrays": m.arrays} if m.arrays else {})}

    def load(self, items: slice | None = None):
        """The measurement of ``items`` (a slice of the first axis; None for all)."""
        if self.measurement is None:
            from ..results.files import load_measurement

            m = load_measurement(self.spec.file, items=items, operator_params=self.given_params)
            if self.noise_override is not None:
                m.noise = self.noise_override
            return m
        return _take(self.measurement, items)


def _take(m, items: slice | None):
    import dataclasses

    if items is None:
        return m
    return dataclasses.replace(m, measurement=m.measurement[items],
                               ground_truth=None if m.ground_truth is None else m.ground_truth[items])


def open_source(text: str, reading: MeasurementReading | None = None) -> Source:
    """Open one measurement input.

    Arguments:
        text: ``FILE``, ``FILE.h5:/dataset`` or either with an item range ``[a:b]``.
        reading: The description of foreign data (operator, noise, image size, flats, darks, rows).

    Raises:
        DataError: A missing or unreadable file, a wrong shape, NaN, angles that do not fit the data.
        ConfigError: Foreign data without an operator, or flags that contradict an invsolve file.
    """
    reading = reading or MeasurementReading()
    spec = parse_input(text)
    if not spec.file.exists():
        raise DataError(f"input file not found: {spec.file} (check the path)")
    if spec.file.is_dir():
        raise DataError(f"{spec.file} is a folder; give a measurement file (or a glob of them)")
    if spec.is_hdf5 and spec.dataset is None and spec.items is None and is_invsolve_file(spec.file):
        return _invsolve_source(spec, reading)
    from .build import foreign_measurement

    m, ident = foreign_measurement(spec, reading)
    return Source(spec, len(m.measurement), ident, measurement=m)


def _invsolve_source(spec: InputSpec, reading: MeasurementReading) -> Source:
    from ..io.hdf5 import read_result

    meta = read_result(spec.file, data=False)
    if "measurement" not in meta.datasets or "operator" not in meta.attrs:
        raise DataError(f"{spec.file} holds no measurement with its operator; create one with `invsolve simulate`")
    shape = meta.datasets["measurement"]
    if len(shape) < 2 or shape[0] == 0:
        raise DataError(f"{spec.file}:/measurement has shape {shape}, not a non-empty stack (N, ...); re-create the "
                        "file with `invsolve simulate`")
    stored = meta.attrs["operator"]
    _check_agrees(spec, stored, reading)
    if isinstance(stored, dict):
        from ..operators.file_params import check_stored_paths

        check_stored_paths(stored, meta.groups.get("operator_arrays", {}), str(spec.file), reading.operator_params)
    noise = None
    if reading.noise is not None or reading.noise_params:
        from ..operators.noise_preset import resolve_noise

        base = meta.attrs.get("noise") or {}
        if reading.noise in (None, base.get("name")):
            noise = resolve_noise(stored["name"], base.get("name"), {**{k: v for k, v in base.items() if k != "name"},
                                                                     **reading.noise_params})
        else:
            noise = resolve_noise(stored["name"], reading.noise, reading.noise_params)
    ident = {k: meta.attrs.get(k) for k in ("created", "source", "seed", "operator", "noise")}
    if noise is not None:
        ident["noise_override"] = noise
    return Source(spec, int(shape[0]), ident, noise_override=noise, given_params=dict(reading.operator_params))


def _check_agrees(spec: InputSpec, stored: dict, reading: MeasurementReading) -> None:
    """Refuse a description that contradicts the operator an invsolve file stores."""
    name = stored.get("name")
    if reading.operator is not None and reading.operator != name:
        raise ConfigError(f"{spec.file} stores its measurement's operator {name!r}; --operator {reading.operator} "
                          "contradicts it (drop --operator, or give the raw data as FILE.h5:/measurement)")
    params = stored.get("params") or {}
    for key, value in reading.operator_params.items():
        if key not in params or params[key] != value:
            have = f"{key}={params[key]!r}" if key in params else f"no {key!r}"
            raise ConfigError(f"{spec.file} stores operator {name!r} with {have}; -P {key}={value!r} contradicts "
                              "it (drop -P, the file's operator is used)")
    for what in ("image_size", "flats", "darks", "rows"):
        if getattr(reading, what) is not None:
            raise ConfigError(f"{spec.file} is an invsolve measurement; --{what.replace('_', '-')} applies to raw "
                              "data only (drop it)")
