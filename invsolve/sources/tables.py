"""Delimited text tables of measured vectors: CSV, TSV and white-space tables with an optional header.

:func:`read_table` sniffs the delimiter, finds the header (the first row when it is not all numbers, else a
``numpy.savetxt`` ``#`` header line), matches column names to roles (grid, values, standard deviations) and
reads the columns into a :class:`ParsedTable`.  Every problem is a :class:`~invsolve.errors.DataError` or
:class:`~invsolve.errors.ConfigError` naming the file and, where there is one, the line and the column.

The column-name vocabulary (:func:`norm_name`, :data:`GRID_UNITS`, :data:`SIGMA_NAMES`,
:data:`SIGMA_SUFFIXES`) is shared with the HDF5 reader of :mod:`invsolve.sources.vectors`, which turns a
:class:`ParsedTable` into a :class:`~invsolve.sources.vectors.VectorScan`; this module does not import it.

Example:
    >>> from pathlib import Path
    >>> from invsolve.sources.tables import read_table
    >>> table = read_table(Path("scan.csv"), None, None)  # doctest: +SKIP
    >>> table.layout, table.values.shape  # doctest: +SKIP
    ('curves', (2, 41))
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ConfigError, DataError

__all__ = ["ParsedTable", "read_table", "norm_name", "to_degrees", "GRID_UNITS", "SIGMA_NAMES", "SIGMA_SUFFIXES",
           "F32_MAX"]

#: The largest finite float32: values and standard deviations must stay within it.
F32_MAX = float(np.finfo(np.float32).max)


def norm_name(name: str) -> str:
    """A column name compared case- and separator-insensitively: ``"Angle [deg]"`` -> ``"angle_deg"``.

    Arguments:
        name: A column or dataset name as in the file.

    Returns:
        The name in lower case with ``θ`` spelled ``theta`` and each run of other characters one ``_`` (none at
        the ends).
    """
    return re.sub(r"[^0-9a-z]+", "_", name.replace("θ", "theta").lower()).strip("_")


#: Grid (angle) column names, normalised, with the unit they are in (None: a grid of no known unit).
GRID_UNITS: dict[str, str | None] = {"grid": None}
for _base in ("angle", "angles", "theta", "incidence_angle"):
    for _suffix, _unit in (("", "deg"), ("_deg", "deg"), ("_degree", "deg"), ("_degrees", "deg"), ("_rad", "rad"),
                           ("_radian", "rad"), ("_radians", "rad"), ("_mrad", "mrad")):
        GRID_UNITS[_base + _suffix] = _unit

#: Names of a standard-deviation column shared by every value column, and the suffixes of per-column ones.
SIGMA_NAMES = ("sigma", "std", "stddev", "stderr", "error", "err", "uncertainty")
SIGMA_SUFFIXES = ("_std", "_sigma", "_stddev", "_stderr", "_error", "_err", "_uncertainty")


def to_degrees(g: np.ndarray, unit: str | None, what: str, notes: list[str]) -> tuple[np.ndarray, str | None]:
    """A grid converted to degrees when it is in radians or milliradians.

    Arguments:
        g: The grid, (m,) float64.
        unit: Its unit: ``"deg"``, ``"rad"``, ``"mrad"`` or None (no known unit; left as it is).
        what: The grid as the note names it (e.g. ``"column 'angle_rad'"``).
        notes: Gets one sentence when the grid is converted.

    Returns:
        The grid and its unit after conversion (``"deg"`` for radians and milliradians).
    """
    if unit == "rad":
        notes.append(f"{what} converted from radians to degrees")
        return np.rad2deg(g), "deg"
    if unit == "mrad":
        notes.append(f"{what} converted from milliradians to degrees")
        return np.rad2deg(g / 1000.0), "deg"
    return g, unit


@dataclass(frozen=True, eq=False)
class ParsedTable:
    """The columns read from a text table, as the fields of a :class:`~invsolve.sources.vectors.VectorScan`.

    Attributes:
        values: (N, m) float32: one row per value column (``layout == "curves"``) or per row of the file
            (``layout == "vectors"``).
        grid: (m,) float64 grid in degrees (radians converted) or of no known unit, or None.
        sigma: Standard deviations, float32, (m,) for a shared column or the shape of ``values``, or None.
        grid_name: The grid column's name as in the file, or None.
        units: The grid's unit after reading, or None.
        names: The value columns' names in file order, or None for a table without a header.
        layout: ``"curves"`` or ``"vectors"``.
        notes: What was converted, one sentence each.
    """

    values: np.ndarray
    grid: np.ndarray | None
    sigma: np.ndarray | None
    grid_name: str | None
    units: str | None
    names: tuple[str, ...] | None
    layout: str
    notes: tuple[str, ...]


def read_table(path: Path, columns, delimiter: str | None) -> ParsedTable:
    """Read a CSV/text table of measured vectors, in the format :func:`~invsolve.sources.vectors.read_vector_scan`
    describes.

    Arguments:
        path: The table (``.csv``, ``.txt``, ``.tsv`` or ``.dat``), an existing file.
        columns: Column roles: None (found by name), a list of value columns (names or 0-based indices), or a
            mapping with any of ``grid``, ``values`` and ``sigma``.
        delimiter: One character (``" "`` for runs of white space), or None to sniff it from the first row.

    Returns:
        The :class:`ParsedTable`.

    Raises:
        ConfigError: ``columns`` or ``delimiter`` is malformed or contradicts itself.
        DataError: The file cannot be read as a table, or a row, cell or column is wrong (naming its line).
    """
    if delimiter is not None and (not isinstance(delimiter, str) or len(delimiter) != 1):
        raise ConfigError(f"delimiter must be one character (' ' for runs of white space), got {delimiter!r}")
    if columns is None or isinstance(columns, Mapping):
        roles = dict(columns or {})
        unknown = set(roles) - {"grid", "values", "sigma"}
        if unknown:
            raise ConfigError(f"unknown columns key(s) {', '.join(sorted(map(repr, map(str, unknown))))}; valid: "
                              "grid, values, sigma")
    elif isinstance(columns, (str, int)) or isinstance(columns, Sequence):
        roles = {"values": columns}
    else:
        raise ConfigError(f"columns must be a list of value columns or a mapping of grid/values/sigma, got {columns!r}")
    if "values" in roles and not isinstance(roles["values"], (str, int, Sequence)):
        raise ConfigError(f"columns: values must be a column name or a list of them, got {roles['values']!r}")
    table = _Table(path, delimiter)
    grid, values, paired, shared = _roles(table, roles)
    return _assemble(table, grid, values, paired, shared)


# -- parsing -------------------------------------------------------------------------------------------------


def _sniff(line: str) -> str:
    """The most frequent of tab, ``,``, ``;`` and ``|`` in ``line``, else ``" "`` (runs of white space)."""
    counts = {d: line.count(d) for d in ("\t", ",", ";", "|")}
    best = max(counts, key=counts.get)
    return best if counts[best] else " "


def _split(line: str, delimiter: str) -> list[str]:
    """The fields of ``line``, stripped; CSV quoting applies unless ``delimiter`` is ``" "``."""
    if delimiter == " ":  # runs of white space
        return line.split()
    return [c.strip() for c in next(csv.reader([line], delimiter=delimiter))]


def _is_number(cell: str) -> bool:
    """Whether ``float(cell)`` succeeds."""
    try:
        float(cell)
    except ValueError:
        return False
    return True


class _Table:
    """The rows of a text table: (line number, fields) and the header, or None.

    Arguments:
        path: The table file.
        delimiter: One character (``" "`` for runs of white space), or None to sniff it from the first row.

    Raises:
        DataError: The file is unreadable, binary, not UTF-8 or empty; it has a header but no rows; a header
            name is empty or repeated; or a row has another number of fields than the header (first row).
    """

    def __init__(self, path: Path, delimiter: str | None):
        self.path = path
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise DataError(f"cannot read {path}: {exc.strerror or exc}") from None
        if b"\0" in raw[:4096]:
            raise DataError(f"{path} is not a text table (it holds binary data); give a CSV/text file, a .npy file "
                            "or FILE.h5:/DATASET")
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line = raw[: exc.start].count(b"\n") + 1
            raise DataError(f"{path}, line {line}: not UTF-8 text; save the table as UTF-8") from None
        lines = text.splitlines()
        data = [(no, ln) for no, ln in enumerate(lines, 1) if ln.strip() and not ln.lstrip().startswith("#")]
        if not data:
            raise DataError(f"{path} is empty (no header or data rows; lines starting with # are comments); give a "
                            "table with a header row and one row per point or per measurement")
        self.delimiter = delimiter or _sniff(data[0][1])
        rows = [(no, _split(ln, self.delimiter)) for no, ln in data]
        no, first = rows[0]
        self.header: list[str] | None = None
        self.header_line = no
        if not all(_is_number(c) for c in first):
            self.header = first
            rows = rows[1:]
        else:  # numpy.savetxt's header: a comment line right before the data naming every column
            prev = lines[no - 2].lstrip() if no > 1 else ""
            if prev.startswith("#"):
                names = _split(prev.lstrip("#").strip(), self.delimiter)
                if len(names) == len(first) and not all(_is_number(c) for c in names):
                    self.header, self.header_line = names, no - 1
        width = len(self.header if self.header is not None else first)
        if width > 1 and (self.header if self.header is not None else first)[-1] == "":  # a trailing delimiter
            if self.header is not None:
                self.header = self.header[:-1]
            rows = [(n, r[:-1] if r and r[-1] == "" else r) for n, r in rows]
        if not rows:
            raise DataError(f"{path} has a header but no data rows; add one row per point or per measurement")
        self.rows = rows
        if self.header is not None:
            seen: dict[str, str] = {}
            for k, name in enumerate(self.header):
                if not name:
                    raise DataError(f"{path}, line {self.header_line}: column {k + 1} of the header has no name; "
                                    "name every column")
                if norm_name(name) in seen:
                    raise DataError(f"{path}, line {self.header_line}: columns {seen[norm_name(name)]!r} and {name!r} "
                                    "have the same name; give every column its own name")
                seen[norm_name(name)] = name
        self.width = len(self.header) if self.header is not None else len(rows[0][1])
        for n, r in self.rows:
            if len(r) != self.width:
                against = f"the header (line {self.header_line}) has" if self.header is not None else \
                    f"the first row (line {rows[0][0]}) has"
                shown = "white space" if self.delimiter == " " else repr(self.delimiter)
                raise DataError(f"{path}, line {n}: {len(r)} fields, but {against} {self.width}; give every row "
                                f"{self.width} fields (delimiter {shown}) or comment the line out with #")

    def name(self, k: int) -> str:
        """Column k's header name, or ``"column <k + 1>"`` without a header."""
        return self.header[k] if self.header is not None else f"column {k + 1}"

    def find(self, key) -> int:
        """The index of the column ``key`` (a name, or a 0-based index)."""
        if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
            if 0 <= key < self.width:
                return int(key)
            raise DataError(f"{self.path} has {self.width} columns; column index {key} does not exist")
        if not isinstance(key, str):
            raise ConfigError(f"columns names a column by its name (str) or 0-based index (int), got {key!r}")
        if self.header is not None:
            for how in (str.strip, lambda s: s.strip().lower(), norm_name):
                hits = [k for k, n in enumerate(self.header) if how(n) == how(key)]
                if len(hits) == 1:
                    return hits[0]
        have = ", ".join(self.header) if self.header is not None else \
            f"none (no header; use indices 0..{self.width - 1})"
        raise DataError(f"{self.path} has no column {key!r}; columns: {have}")

    def column(self, k: int, what: str) -> np.ndarray:
        """Column k as float64 (n_rows,); a non-numeric, empty or non-finite cell is a DataError."""
        out = np.empty(len(self.rows), dtype=np.float64)
        for i, (no, row) in enumerate(self.rows):
            cell = row[k]
            try:
                if "_" in cell:
                    raise ValueError(cell)
                v = float(cell)
            except ValueError:
                hint = " (the decimal point is '.')" if "," in cell and self.delimiter != "," else ""
                shown = "an empty cell" if not cell else f"{cell!r} is not a number"
                raise DataError(f"{self.path}, line {no}, column {self.name(k)!r}: {shown}{hint}; give a number in "
                                f"every {what} cell or comment the line out with #") from None
            if not math.isfinite(v):
                raise DataError(f"{self.path}, line {no}, column {self.name(k)!r}: {cell} is not a finite number; "
                                "remove the point or fill in a measured value")
            out[i] = v
        return out

    def line(self, i: int) -> int:
        """The file's line number of data row i."""
        return self.rows[i][0]


def _roles(table: _Table, roles: dict) -> tuple[int | None, list[int], dict[int, int], int | None]:
    """The grid index or None, the value indices, {value index: its sigma index} and the shared sigma index or
    None: from ``roles`` (the mapping form of ``columns``) where given, else by name."""
    names = [norm_name(h) for h in table.header] if table.header is not None else [""] * table.width
    named = {k for k, n in enumerate(names) if n in GRID_UNITS or n in SIGMA_NAMES}  # never values by default
    if "grid" in roles:
        grid = None if roles["grid"] is None else table.find(roles["grid"])
    else:
        grids = [k for k, n in enumerate(names) if n in GRID_UNITS]
        if len(grids) > 1:
            raise DataError(f"{table.path} has several grid columns ({', '.join(table.name(k) for k in grids)}); "
                            "keep one, or pick it with columns={'grid': NAME}")
        grid = grids[0] if grids else None
    paired: dict[int, int] = {}
    if "sigma" in roles:
        s = roles["sigma"]
        one = isinstance(s, (str, int))
        if s is not None and not one and not isinstance(s, Sequence):
            raise ConfigError(f"columns: sigma must be a column name, a list of them or None, got {s!r}")
        taken = [] if s is None else [table.find(s)] if one else [table.find(c) for c in s]
        shared = taken[0] if one else None
    else:
        found = [k for k, n in enumerate(names) if n in SIGMA_NAMES]
        if len(found) > 1:
            raise DataError(f"{table.path} has several shared standard-deviation columns "
                            f"({', '.join(table.name(k) for k in found)}); keep one, or pick it with "
                            "columns={'sigma': NAME}")
        shared = found[0] if found else None
        index = {n: k for k, n in enumerate(names) if n}
        for k, n in enumerate(names):
            suf = next((x for x in SIGMA_SUFFIXES if n.endswith(x) and n != x[1:]), None)
            if suf is None:
                continue
            if n[: -len(suf)] not in index:
                raise DataError(f"{table.path}: column {table.name(k)!r} looks like standard deviations but there "
                                f"is no value column {n[: -len(suf)]!r} for it; rename it, or give the roles with "
                                "columns={'values': [...], 'sigma': [...]}")
            paired[index[n[: -len(suf)]]] = k
        taken = [*found, *paired.values()]
    given = roles.get("values")
    if given is None:
        values = [k for k in range(table.width) if k != grid and k not in taken and k not in named]
    else:
        values = [table.find(c) for c in ([given] if isinstance(given, (str, int)) else given)]
        if not values:
            raise ConfigError("columns: give at least one value column")
        if len(set(values)) != len(values):
            raise ConfigError("columns names a value column twice")
    if "sigma" in roles and roles["sigma"] is not None and shared is None:
        if len(taken) != len(values):
            raise ConfigError(f"columns: sigma needs one column per value column ({len(values)}: "
                              f"{', '.join(table.name(k) for k in values)}), or one shared name")
        paired = dict(zip(values, taken))
    if grid is not None and grid in values:
        raise ConfigError(f"column {table.name(grid)!r} cannot be both the grid and a value column")
    if not values:
        raise DataError(f"{table.path} has no value columns (only "
                        f"{', '.join(table.name(k) for k in range(table.width))}); add a column of measured values")
    return grid, values, paired, shared

def _assemble(table: _Table, grid: int | None, values: list[int], paired: dict[int, int],
              shared: int | None) -> ParsedTable:
    """Read the columns :func:`_roles` picked, check them and lay them out as curves or vectors."""
    path = table.path
    notes: list[str] = []
    vals = np.stack([table.column(k, "value") for k in values])  # (n_values, n_rows)
    g = grid_name = units = None
    if grid is not None:
        g = table.column(grid, "grid")
        grid_name = table.name(grid)
        units = GRID_UNITS.get(norm_name(grid_name)) if table.header is not None else None
        g, units = to_degrees(g, units, f"column {grid_name!r}", notes)
    with_sigma = [k for k in values if k in paired]
    if with_sigma and len(with_sigma) != len(values):
        missing = [table.name(k) for k in values if k not in paired]
        raise DataError(f"{path}: value column(s) {', '.join(missing)} have no standard-deviation column while "
                        f"{', '.join(table.name(k) for k in with_sigma)} have one; give one for every value column "
                        "or none")
    if with_sigma and shared is not None:
        raise DataError(f"{path} has a shared standard-deviation column {table.name(shared)!r} and per-column ones; "
                        "keep one kind")
    curves = grid is not None or len(values) == 1
    sig = None
    if shared is not None:
        if not curves:
            raise DataError(f"{path}: a shared column {table.name(shared)!r} in a table without a grid column is "
                            "ambiguous; name one standard-deviation column per point (<name>_std), or add the grid "
                            "column (e.g. angle)")
        sig = table.column(shared, "standard-deviation")
        _check_sigma(sig[None], [table.name(shared)], table)
    elif with_sigma:
        sig = np.stack([table.column(paired[k], "standard-deviation") for k in values])
        _check_sigma(sig, [table.name(paired[k]) for k in values], table)
    _check_f32(vals, [table.name(k) for k in values], table)
    names = tuple(table.name(k) for k in values) if table.header is not None else None
    if not curves:
        vals, sig = vals.T, (None if sig is None else sig.T)
    return ParsedTable(
        values=np.ascontiguousarray(vals, dtype=np.float32), grid=g,
        sigma=None if sig is None else np.ascontiguousarray(sig, dtype=np.float32),
        grid_name=grid_name, units=units, names=names, layout="curves" if curves else "vectors", notes=tuple(notes))


def _check_sigma(sig: np.ndarray, names: list[str], table: _Table) -> None:
    """sig (n_columns, n_rows) float64: every entry > 0 and still > 0 in float32."""
    with np.errstate(over="ignore"):
        bad = (sig <= 0) | (sig.astype(np.float32) <= 0) | (np.abs(sig) > F32_MAX)
    if bad.any():
        c, i = map(int, np.argwhere(bad)[0])
        v = sig[c, i]
        why = "is not positive" if v <= 0 else "is beyond the float32 range" if v > 1 else "is too small for float32"
        raise DataError(f"{table.path}, line {table.line(i)}, column {names[c]!r}: standard deviation {v:g} {why}; "
                        "give a positive standard deviation for every point (or drop the point)")


def _check_f32(vals: np.ndarray, names: list[str], table: _Table) -> None:
    """vals (n_columns, n_rows) float64: every entry within the float32 range."""
    bad = np.abs(vals) > F32_MAX
    if bad.any():
        c, i = map(int, np.argwhere(bad)[0])
        raise DataError(f"{table.path}, line {table.line(i)}, column {names[c]!r}: {vals[c, i]:g} is beyond the "
                        "float32 range; rescale the values")
