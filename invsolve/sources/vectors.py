"""Vector measurements from users' files: GIXRF angle scans, scatterometry (surrogate) outputs and other
measured vectors, with their grid (e.g. incidence angles) and per-point standard deviations when the file has
them.

:func:`read_vector_scan` reads a CSV/text table, a ``.npy`` array or an HDF5 dataset (``FILE.h5:/path``) into
a :class:`VectorScan`; :func:`gixrf_layout` puts a scan into the ``gixrf`` operator's output layout (line by
line, n_lines · n_angles per measurement).  The delimited-text parser (delimiter sniffing, header detection,
column roles, per-line errors) lives in :mod:`invsolve.sources.tables`; this module reads ``.npy`` and HDF5 itself.

Example:
    >>> from invsolve.sources.vectors import read_vector_scan, gixrf_layout
    >>> scan = read_vector_scan("scan.csv")  # doctest: +SKIP
    >>> y, sigma = gixrf_layout(scan, ["Ni-Ka", "Si-Ka"], angles=scan.grid)  # doctest: +SKIP
    >>> noise = {"name": "gaussian", "sigma": sigma[0].tolist()}  # doctest: +SKIP
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ConfigError, DataError, ShapeError
from .tables import F32_MAX, GRID_UNITS, SIGMA_NAMES, SIGMA_SUFFIXES, norm_name, read_table, to_degrees

__all__ = ["VectorScan", "read_vector_scan", "gixrf_layout", "TEXT_SUFFIXES"]

#: File suffixes read as text tables.
TEXT_SUFFIXES = (".csv", ".txt", ".tsv", ".dat")


def _compact(name: str) -> str:
    """A name with only its letters and digits, lower case: ``"Ni-Ka"``, ``"ni_ka"``, ``"Ni Ka"`` -> ``"nika"``."""
    return re.sub(r"[^0-9a-z]+", "", name.lower())


#: Names of a reflectivity column (for :func:`gixrf_layout` with ``reflectivity``).
_REFLECTIVITY = ("r", "reflectivity", "refl", "xrr")

#: HDF5 ``units``/``unit`` attribute values, lower case, and the grid unit they declare.
_UNIT_ATTR = {"deg": "deg", "degree": "deg", "degrees": "deg", "°": "deg", "rad": "rad", "radian": "rad",
              "radians": "rad", "mrad": "mrad", "milliradian": "mrad", "milliradians": "mrad"}


@dataclass(frozen=True, eq=False)
class VectorScan:
    """Measured vectors read from a file.

    Attributes:
        values: (N, m) float32.  With ``layout == "vectors"`` each row is one measurement of m points (a
            row of a table, a ``.npy``/HDF5 vector); with ``layout == "curves"`` each row is one value
            column of a table over the m rows of the file (e.g. one fluorescence line of a GIXRF scan),
            so the N rows together are one measurement.
        grid: (m,) float64 point coordinates (e.g. incidence angles in degrees), or None.
        sigma: Per-point standard deviations, (N, m) or (m,) (shared by every row) float32, or None.
        source: The file path.
        dataset: The HDF5 dataset (``/path``), or None.
        grid_name: The grid's column or dataset name as in the file (e.g. ``angle_rad``), or None.
        units: The grid's unit after reading (``"deg"`` for angles; radians are converted), or None.
        names: The value columns' names of a table with a header, in file order (N of them for
            ``"curves"``, m for ``"vectors"``); None for arrays and tables without a header.
        layout: ``"curves"`` or ``"vectors"`` (see ``values``).
        notes: What was converted or left aside, one sentence each (e.g. a radian grid).
    """

    values: np.ndarray
    grid: np.ndarray | None = None
    sigma: np.ndarray | None = None
    source: str = ""
    dataset: str | None = None
    grid_name: str | None = None
    units: str | None = None
    names: tuple[str, ...] | None = None
    layout: str = "vectors"
    notes: tuple[str, ...] = ()

    def where(self) -> str:
        """``file`` or ``file:/dataset`` for messages."""
        return f"{self.source}:{self.dataset}" if self.dataset else self.source


def read_vector_scan(spec: str, *, columns=None, delimiter: str | None = None) -> VectorScan:
    """Read measured vectors, their grid and per-point standard deviations from a file.

    **CSV and text tables** (``.csv``, ``.txt``, ``.tsv``, ``.dat``).  Blank lines and lines starting with
    ``#`` are skipped.  The delimiter is ``delimiter`` or sniffed from the header: the most frequent of tab,
    ``,``, ``;`` and ``|``, else runs of white space.  The first row is the header when any of its fields is
    not a number; when it is numbers only, a ``#`` line right before it that names as many columns is the
    header (``numpy.savetxt(..., header=...)``), else the table has no header.  Column names are compared
    case-insensitively, ignoring separators and brackets (``Angle [deg]`` is ``angle_deg``).  Roles:

    * grid: ``angle``, ``theta``, ``angle_deg``, ``theta_deg`` (degrees; ``angle``/``theta`` without a unit
      are taken as degrees), ``angle_rad``/``theta_rad`` and ``angle_mrad`` (converted to degrees, which
      ``notes`` says), or ``grid`` (no unit);
    * standard deviations: ``sigma``, ``std``, ``error``, ``err`` (shared by every value column), or
      ``<value>_std``/``<value>_sigma``/``<value>_err``/``<value>_error`` for the column ``<value>``; every
      value column then needs its own;
    * values: every other column (``intensity``, ``counts``, ``y``, ``value``, or one per line of a
      multi-line GIXRF scan, e.g. ``Ni-Ka`` and ``Si-Ka``), in file order.

    Every cell of a column that is read must be a number (``.`` as decimal point); one trailing delimiter
    per row is allowed.

    The header decides the layout.  With a grid column, or a single value column, each value column is a
    curve down the file: ``values`` (n_value_columns, n_rows), ``layout="curves"``, ``grid`` (n_rows,).
    Without a grid column and with several value columns, each row is one measurement and each column one
    point (e.g. 23 surrogate outputs per row): ``values`` (n_rows, n_columns), ``layout="vectors"``; a shared
    ``sigma`` column is refused there (name one per point, ``<value>_std``).  ``sigma`` is (m,) for a shared
    column, else the shape of ``values``.

    ``columns`` overrides the roles: a list of value column names (or 0-based indices) in the order wanted,
    the grid and standard deviations still found by name; or a mapping with any of ``grid`` (a name, or None
    for no grid), ``values`` (a name or a list) and ``sigma`` (one shared name, a list with one per value
    column, or None for none); roles left out are found by name.  Columns with no role (and, by default,
    columns named like a grid or standard deviations) are not read.

    A ragged row, a non-numeric or empty cell, NaN or infinity, a value beyond float32 and a standard
    deviation that is not positive are :class:`~invsolve.errors.DataError`\\ s naming the file, the line and
    the column.

    **NumPy** (``.npy``): (m,) one vector or (N, m) a stack; no grid.

    **HDF5** (``FILE.h5:/path``): the dataset, (m,) or (N, m), is the values (the path may be left out when
    the file holds one dataset besides grid and sigma ones).  A dataset beside it named like a grid column
    (``angles``, ``theta``, ``grid``, ``angle_rad``, ...; a ``units``/``unit`` attribute of ``deg``, ``rad``
    or ``mrad`` overrides the name's unit) is the grid when its length is m (else it is left aside, which
    ``notes`` says); one named ``<name>_std``/``<name>_sigma`` (for the dataset ``<name>``) or ``sigma``/
    ``std``/``error``/``err`` is the standard deviations when its shape is (m,) or that of the values, and a
    :class:`~invsolve.errors.DataError` otherwise.

    Arguments:
        spec: ``FILE.csv`` (``.txt``, ``.tsv``, ``.dat``), ``FILE.npy`` or ``FILE.h5:/path``.
        columns: Column roles of a table (see above); None finds them by name.
        delimiter: The delimiter of a table (``" "`` for runs of white space); None sniffs it.

    Returns:
        The :class:`VectorScan`.
    """
    from ..io.images import HDF5_SUFFIXES, split_spec

    path, dset = split_spec(str(spec))
    if not path.exists():
        head, sep, _ = str(spec).rpartition(":/")
        if sep and Path(head).is_file():
            raise DataError(f"{spec}: FILE:/DATASET applies to HDF5 files; give {head} without the :/... part")
        raise DataError(f"vector file not found: {path} (check the path)")
    if path.is_dir():
        raise DataError(f"{path} is a directory; give a CSV/text table, a .npy file or FILE.h5:/DATASET")
    suffix = path.suffix.lower()
    if suffix not in TEXT_SUFFIXES and (columns is not None or delimiter is not None):
        what = "columns" if columns is not None else "delimiter"
        raise ConfigError(f"{what} applies to CSV/text tables, not to {path} ({suffix or 'no suffix'})")
    if suffix in TEXT_SUFFIXES:
        return _read_table(path, columns, delimiter)
    if suffix == ".npy":
        return _read_npy(path)
    if suffix in HDF5_SUFFIXES:
        return _read_hdf5(path, dset)
    raise DataError(f"unsupported vector file type {suffix or '(none)'} for {path}; use .csv, .txt, .tsv, .dat, "
                    ".npy or FILE.h5:/DATASET")


# -- text tables ---------------------------------------------------------------------------------------------


def _read_table(path: Path, columns, delimiter: str | None) -> VectorScan:
    """A text table as a :class:`VectorScan` (parsed by :func:`invsolve.sources.tables.read_table`)."""
    t = read_table(path, columns, delimiter)
    return VectorScan(values=t.values, grid=t.grid, sigma=t.sigma, source=str(path), grid_name=t.grid_name,
                      units=t.units, names=t.names, layout=t.layout, notes=t.notes)


# -- arrays --------------------------------------------------------------------------------------------------


def _as_vectors(arr: np.ndarray, where: str) -> np.ndarray:
    """(m,) or (N, m) numeric -> (N, m) float64, checked finite and inside float32."""
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise DataError(f"{where} holds {arr.dtype} data; expected real numbers")
    if arr.ndim not in (1, 2):
        raise ShapeError(f"{where} has shape {arr.shape}; expected one vector (m,) or a stack of vectors (N, m)")
    if arr.size == 0:
        raise DataError(f"{where} is empty (shape {arr.shape}); give at least one value")
    out = np.atleast_2d(np.asarray(arr, dtype=np.float64))
    bad = ~np.isfinite(out) | (np.abs(out) > F32_MAX)
    if bad.any():
        n, j = map(int, np.argwhere(bad)[0])
        what = "not finite" if not np.isfinite(out[n, j]) else "beyond the float32 range"
        raise DataError(f"{where} has {int(bad.sum())} values that are {what} or out of range (first: vector {n}, "
                        f"point {j}: {out[n, j]:g}); clean or fill them first")
    return out


def _read_npy(path: Path) -> VectorScan:
    """A ``.npy`` array, (m,) or (N, m), as a :class:`VectorScan` without a grid."""
    try:
        arr = np.load(path, allow_pickle=False)
    except MemoryError:
        raise
    except Exception as exc:
        raise DataError(f"cannot read {path} as a NumPy array: {str(exc).splitlines()[0] if str(exc) else exc!r}") \
            from None
    if not isinstance(arr, np.ndarray):
        raise DataError(f"{path} is not a single .npy array; save one array with numpy.save")
    vals = _as_vectors(arr, str(path))
    return VectorScan(values=vals.astype(np.float32), source=str(path))


def _unit_of(ds, name: str) -> str | None:
    """The unit of an HDF5 grid dataset: its ``units``/``unit`` attribute, else the one its name implies."""
    for key in ("units", "unit"):
        if key in ds.attrs:
            raw = ds.attrs[key]
            text = (raw.decode() if isinstance(raw, bytes) else str(raw)).strip().lower()
            if text in _UNIT_ATTR:
                return _UNIT_ATTR[text]
            raise DataError(f"{ds.file.filename}:{ds.name} declares units {text!r}; expected deg, rad or mrad")
    return GRID_UNITS.get(norm_name(name))


def _read_hdf5(path: Path, dset: str | None) -> VectorScan:
    """An HDF5 dataset (the only one besides grid and sigma ones when ``dset`` is None) with its sibling grid
    and standard deviations as a :class:`VectorScan`."""
    import h5py

    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise DataError(f"cannot read {path} as HDF5 ({exc}); is it an HDF5 file?") from None
    with f:
        names: list[str] = []
        f.visititems(lambda n, o: names.append("/" + n) if isinstance(o, h5py.Dataset) else None)
        if dset is None:
            main = [n for n in names if norm_name(n.rsplit("/", 1)[-1]) not in GRID_UNITS
                    and norm_name(n.rsplit("/", 1)[-1]) not in SIGMA_NAMES
                    and not norm_name(n.rsplit("/", 1)[-1]).endswith(SIGMA_SUFFIXES)]
            if len(main) != 1:
                raise DataError(f"{path} holds {len(names)} datasets; name one as {path}:/PATH "
                                f"(datasets: {', '.join(names) or 'none'})")
            dset = main[0]
        from ..io.h5safety import check_members, checked_get

        ds = checked_get(f, dset, f"{path}:{dset if dset.startswith('/') else '/' + dset}")
        if not isinstance(ds, h5py.Dataset):
            raise DataError(f"no dataset {dset!r} in {path}; datasets: {', '.join(names) or 'none'}")
        check_members(ds.parent, str(path))  # the grid and sigma siblings are read too
        where = f"{path}:{ds.name}"
        vals = _as_vectors(np.asarray(ds[()]), where)
        m = vals.shape[1]
        own = ds.name.rsplit("/", 1)[-1]
        siblings = {k: v for k, v in ds.parent.items() if isinstance(v, h5py.Dataset) and v.name != ds.name}
        notes: list[str] = []
        grid = grid_name = units = None
        grids = [k for k in siblings if norm_name(k) in GRID_UNITS]
        if len(grids) > 1:
            raise DataError(f"{where}: the group holds several grids ({', '.join(grids)}); keep one")
        if grids:
            gd = siblings[grids[0]]
            if gd.ndim == 1 and gd.shape[0] == m:
                g = _as_vectors(np.asarray(gd[()]), f"{path}:{gd.name}")[0]
                grid, units = to_degrees(g, _unit_of(gd, grids[0]), f"{gd.name}", notes)
                grid_name = grids[0]
            else:
                notes.append(f"{gd.name} {gd.shape} does not match the {m} points of {ds.name}; not used as the grid")
        own_n = norm_name(own)
        paired = [k for k in siblings if norm_name(k) in {own_n + s for s in SIGMA_SUFFIXES}]
        shared = [k for k in siblings if norm_name(k) in SIGMA_NAMES]
        pick = paired or shared
        if len(pick) > 1:
            raise DataError(f"{where}: the group holds several standard-deviation datasets ({', '.join(pick)}); "
                            "keep one")
        sigma = None
        if pick:
            sd = siblings[pick[0]]
            swhere = f"{path}:{sd.name}"
            if sd.shape not in ((m,), vals.shape, ds.shape):
                raise DataError(f"{swhere} has shape {sd.shape}, but the values {ds.name} have {ds.shape}; give "
                                f"standard deviations of shape ({m},) or {tuple(ds.shape)}, or rename the dataset")
            s = _as_vectors(np.asarray(sd[()]), swhere)
            bad = (s <= 0) | (s.astype(np.float32) <= 0)
            if bad.any():
                n, j = map(int, np.argwhere(bad)[0])
                raise DataError(f"{swhere}: standard deviation {s[n, j]:g} at vector {n}, point {j} is not positive; "
                                "give a positive standard deviation for every point")
            sigma = (s[0] if sd.ndim == 1 else s.reshape(vals.shape)).astype(np.float32)
        name = ds.name
    return VectorScan(values=vals.astype(np.float32), grid=grid, sigma=sigma, source=str(path), dataset=name,
                      grid_name=grid_name, units=units, notes=tuple(notes))


# -- the gixrf layout ----------------------------------------------------------------------------------------


def _line_order(scan: VectorScan, lines: list[str], reflectivity: bool) -> list[int]:
    """Row order of a curves scan for ``lines`` (+ reflectivity): by name when the names say, else file order."""
    n = scan.values.shape[0]
    if scan.names is None:
        return list(range(n))
    keys = [_compact(s) for s in scan.names]
    found = {line: keys.index(_compact(line)) for line in lines if _compact(line) in keys}
    refl = [i for i, k in enumerate(keys) if k in _REFLECTIVITY]
    if not found:
        order = list(range(n))
        if reflectivity and len(refl) == 1:
            order = [i for i in order if i != refl[0]] + refl
        return order
    if len(found) != len(lines):
        missing = [s for s in lines if s not in found]
        raise DataError(f"{scan.where()}: the columns ({', '.join(scan.names)}) name the lines "
                        f"{', '.join(found)} but not {', '.join(missing)}; name every line's column as in the "
                        "operator's lines, or none of them (file order)")
    order = [found[s] for s in lines]
    if reflectivity:
        order += [i for i in range(n) if i not in order]
    return order


def _check_angles(scan: VectorScan, angles) -> None:
    """The operator's ``angles`` (degrees) against the scan's points per curve and its grid."""
    if angles is None:
        return
    a = np.asarray(angles, dtype=np.float64).reshape(-1)
    g, m = scan.grid, scan.values.shape[1]
    if a.size != m:
        fix = "set the operator's angles from the file (angles = scan.grid.tolist())" if g is not None else \
            "check the file or the operator's angles"
        raise DataError(f"{scan.where()} has {m} angles, the operator {a.size}; {fix}")
    if g is None:
        return
    step = np.diff(np.sort(a))
    tol = 0.01 * float(step[step > 0].min()) if (step > 0).any() else 1e-9
    off = np.flatnonzero(np.abs(a - g) > max(tol, 1e-9))
    if off.size:
        k = int(off[0])
        raise DataError(f"the angles of {scan.where()} differ from the operator's (first at point {k}: {g[k]:g}° in "
                        f"the file, {a[k]:g}° in the operator); set the operator's angles from the file "
                        "(angles = scan.grid.tolist())")


def gixrf_layout(scan: VectorScan, lines: Sequence[str], *, angles=None,
                 reflectivity: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """A scan in the ``gixrf`` operator's output layout: line by line, n_lines · n_angles per measurement.

    * A table with a grid column (``layout="curves"``, one column per line): the columns are ordered by
      ``lines`` when the header names them (``Ni-Ka``, ``ni_ka`` and ``Ni Ka`` are the same line) and kept
      in file order when it names none; a reflectivity column (``R``, ``reflectivity``, ``xrr``) goes last
      with ``reflectivity``.  They are concatenated into one measurement.
    * Vectors with a grid of their own length (HDF5 with sibling angles) and more than one line: the
      vectors are the lines, in file order, of one measurement.
    * Other vectors are taken as already in the layout; each must have a multiple of the line count
      (``len(angles)`` times it when ``angles`` is given).

    Arguments:
        scan: From :func:`read_vector_scan`.
        lines: The operator's ``lines`` (e.g. ``["Ni-Ka", "Si-Ka"]``).
        angles: The operator's angles in degrees (n_angles,), checked against the scan's grid; None skips it.
        reflectivity: The operator appends R(θ) (``reflectivity=true``).

    Returns:
        values (N, n_curves · n_angles) float32 with n_curves = len(lines) (+1 with reflectivity), and the
        standard deviations of the same shape (float32), or None.
    """
    lines = [str(s) for s in lines]
    if not lines:
        raise ConfigError("gixrf_layout needs the operator's lines (at least one)")
    k = len(lines) + bool(reflectivity)
    expected = ", ".join(lines + (["reflectivity"] if reflectivity else []))
    vals, sig = scan.values, scan.sigma
    n, m = vals.shape
    if scan.layout == "curves" or (scan.grid is not None and scan.grid.size == m and k > 1):
        if n != k:
            what = f"value columns ({', '.join(scan.names)})" if scan.names else "curves"
            raise DataError(f"{scan.where()} has {n} {what}, but the operator expects {k} ({expected}); give one "
                            "column per line" + (" and one for the reflectivity" if reflectivity else "")
                            + ", or pick them with columns=[...]")
        order = _line_order(scan, lines, reflectivity) if scan.layout == "curves" else list(range(n))
        _check_angles(scan, angles)
        out = vals[order].reshape(1, -1)
        if sig is not None:
            sig = np.tile(sig, k)[None] if sig.ndim == 1 else sig[order].reshape(1, -1)
        return np.ascontiguousarray(out, dtype=np.float32), None if sig is None else np.ascontiguousarray(sig)
    if scan.names and any(_compact(s) in {_compact(x) for x in lines} for s in scan.names):
        raise DataError(f"the columns of {scan.where()} are named after lines ({', '.join(scan.names)}) but the table "
                        "has no angle column; add a column angle (degrees) with the incidence angles")
    if angles is not None:
        na = np.asarray(angles).size
        if m != k * na:
            raise DataError(f"{scan.where()} has {m} points per vector, but the operator gives {k} × {na} = {k * na} "
                            f"({expected} at {na} angles); check the file or the operator's angles and lines")
        _check_angles(scan, angles if scan.grid is not None and scan.grid.size == m else None)
    elif m % k:
        raise DataError(f"{scan.where()} has {m} points per vector, not a multiple of the operator's {k} curves "
                        f"({expected}); check the file or the operator's lines")
    if sig is not None:
        sig = np.ascontiguousarray(np.broadcast_to(sig, vals.shape), dtype=np.float32)
    return vals, sig
