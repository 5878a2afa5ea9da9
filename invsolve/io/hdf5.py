"""HDF5 results: the format marker, atomic writes, and reading back.

Every invsolve file carries the root attributes ``format = "invsolve"`` and ``format_version = 1``; configs
(dicts and lists, and the attributes in ``_JSON_ATTRS``) are stored as JSON text.  The datasets and attributes
of each kind of result are described with their writers, in :mod:`invsolve.results.files`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError, OutputExistsError

__all__ = ["FORMAT", "FORMAT_VERSION", "check_output", "write_attrs", "write_result", "read_result", "StoredResult"]

FORMAT = "invsolve"
FORMAT_VERSION = 1
_JSON_ATTRS = ("operator", "noise", "method", "sampler", "timings", "quantile_levels", "statistics", "model_digests",
               "calibration_summary")


#: file name endings of HDF5 outputs (results, measurements)
HDF5_OUTPUT_SUFFIXES = (".h5", ".hdf5", ".hdf", ".he5", ".nxs")


def check_output(path: str | Path, overwrite: bool, suffixes: tuple[str, ...] | None = HDF5_OUTPUT_SUFFIXES) -> Path:
    """Fail early when ``path`` exists and may not be overwritten, or :func:`check_output_location` fails."""
    p = check_output_location(path, suffixes)
    if p.exists() and not overwrite:
        raise OutputExistsError(f"output {p} already exists; pass --overwrite to replace it")
    return p


def check_output_location(path: str | Path, suffixes: tuple[str, ...] | None = HDF5_OUTPUT_SUFFIXES) -> Path:
    """Fail when ``path`` names a folder, has a file ending other than ``suffixes`` (None: any), or its
    folder is missing or not writable."""
    p = Path(path)
    if str(path).endswith(("/", os.sep)) or p.is_dir():
        raise DataError(f"output {path} is a folder; give a file name, e.g. {p / 'result.h5'}")
    if suffixes and p.suffix.lower() not in suffixes:
        raise DataError(f"output {p} must end in {' or '.join(suffixes[:2])} (an HDF5 file); e.g. {p.with_suffix('.h5')}")
    folder = p.parent if str(p.parent) else Path(".")
    if not folder.exists():
        raise DataError(f"output folder {folder} does not exist; create it first")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise DataError(f"cannot write into the output folder {folder} (no permission); choose another --output")
    return p


def check_not_input(output: str | Path, inputs) -> None:
    """Refuse an output that is one of the inputs (``--overwrite`` would replace the data being read)."""
    from .images import split_spec

    o = Path(output).resolve()
    for spec in inputs:
        if o == Path(split_spec(str(spec))[0]).resolve():
            raise DataError(f"output {output} is also an input; write the result to another file")


def write_attrs(f, attrs: dict[str, Any]) -> None:
    """The format marker and ``attrs`` on an open h5py file: configs as JSON, None skipped."""
    f.attrs["format"] = FORMAT
    f.attrs["format_version"] = FORMAT_VERSION
    for k, v in attrs.items():
        if v is None:
            continue
        if k in _JSON_ATTRS or isinstance(v, (dict, list)):
            v = json.dumps(v)
        elif isinstance(v, str):
            v = str(v)  # plain str: h5py cannot store str subclasses (e.g. torch's version)
        f.attrs[k] = v


def write_result(
    path: str | Path,
    datasets: dict[str, np.ndarray],
    attrs: dict[str, Any],
    groups: dict[str, dict[str, np.ndarray]] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write an invsolve HDF5 file atomically (temporary file in the same folder, then rename).

    A crash or Ctrl-C during the write leaves no output file and no temporary file.
    """
    p = check_output(path, overwrite)

    def fill(f) -> None:
        write_attrs(f, attrs)
        for name, arr in datasets.items():
            f.create_dataset(name, data=np.asarray(arr), compression="gzip", compression_opts=4)
        for gname, members in (groups or {}).items():
            g = f.create_group(gname)
            for name, arr in members.items():
                g.create_dataset(name, data=np.asarray(arr))

    raw = sum(np.asarray(a).nbytes for a in datasets.values()) + \
        sum(np.asarray(a).nbytes for m in (groups or {}).values() for a in m.values())
    write_hdf5(p, fill, raw)
    return p


def write_hdf5(path: str | Path, fill, nbytes: int) -> None:
    """Write a new HDF5 file atomically: ``fill(h5py.File)`` builds it; ``nbytes`` is its raw size (an upper
    bound).  Files up to :data:`invsolve.io.atomic.IN_MEMORY_BYTES` are built in memory and written at once,
    so a disk that fills shows as one clean error line with the exact size; larger ones are refused before
    they start when their raw size does not fit."""
    import io

    import h5py

    from .atomic import IN_MEMORY_BYTES, atomic_bytes, atomic_output, check_space

    if nbytes <= IN_MEMORY_BYTES:
        buf = io.BytesIO()
        with h5py.File(buf, "w") as f:
            fill(f)
        atomic_bytes(path, buf.getvalue())
        return
    check_space(path, nbytes)
    with atomic_output(path) as tmp, h5py.File(tmp, "w") as f:
        fill(f)


@dataclass
class StoredResult:
    """An invsolve file read back: datasets, attributes and decoded JSON configs."""

    path: Path
    attrs: dict[str, Any]
    datasets: dict[str, np.ndarray]
    groups: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)

    def config(self, key: str) -> dict[str, Any] | None:
        v = self.attrs.get(key)
        return json.loads(v) if isinstance(v, str) else v


def read_result(path: str | Path, items: slice | None = None, data: bool = True) -> StoredResult:
    """Read an invsolve HDF5 file; refuse files of another format with a clear message.

    Arguments:
        path: The file.
        items: Read only these items of every per-item dataset (first axis of
            length N, the number of measurements), e.g. one batch of a stack.
        data: False reads the attributes and groups only; ``datasets`` then
            maps each name to its shape.
    """
    import h5py

    p = Path(path)
    if not p.exists():
        raise DataError(f"input file not found: {p} (check the path)")
    if p.is_dir():
        raise DataError(f"{p} is a folder; give an invsolve HDF5 file (e.g. from `invsolve simulate`)")
    try:
        f = h5py.File(p, "r")
    except OSError as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise DataError(f"cannot read {p} as HDF5 ({first}); give an invsolve HDF5 file (e.g. from "
                        "`invsolve simulate`)") from None
    with f:
        if f.attrs.get("format") != FORMAT:
            raise DataError(
                f"{p} is not an invsolve result (no format='invsolve' attribute); create measurements with "
                "`invsolve simulate` (images in HDF5 go in as `invsolve simulate -i FILE.h5:/DATASET`)"
            )
        version = f.attrs.get("format_version", FORMAT_VERSION)
        if not isinstance(version, (int, np.integer)) or int(version) > FORMAT_VERSION:
            raise DataError(f"{p} has file format version {version}, newer than this invsolve reads "
                            f"({FORMAT_VERSION}); update invsolve")
        attrs = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in f.attrs.items()}
        for k in _JSON_ATTRS:
            if isinstance(attrs.get(k), str):
                try:
                    attrs[k] = json.loads(attrs[k])
                except json.JSONDecodeError:
                    raise DataError(f"{p} has a damaged {k!r} attribute (not JSON); re-create the file with the "
                                    "command that wrote it") from None
        from .h5safety import check_members

        check_members(f, str(p), depth=1)  # no data from outside the file: external storage, links, virtual
        n = f["measurement"].shape[0] if isinstance(f.get("measurement"), h5py.Dataset) else None

        def load(d):
            if not data:
                return tuple(d.shape)
            if items is not None and d.ndim >= 1 and d.shape[0] == n:
                return np.asarray(d[items])
            return np.asarray(d[()])

        datasets = {k: load(v) for k, v in f.items() if isinstance(v, h5py.Dataset)}
        groups = {
            k: {n: np.asarray(d[()]) for n, d in v.items()} for k, v in f.items() if isinstance(v, h5py.Group)
        }
    return StoredResult(p, attrs, datasets, groups)
