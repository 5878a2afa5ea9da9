"""Result files that fill up batch by batch: the outputs of batch runs over stacks.

A batch output has the usual layout of its kind (:mod:`invsolve.results.files`) plus::

    /completed   uint8 (N,)   1 where the slice's results are written
    attributes:  run_fingerprint (the settings and input the run depends on),
                 batch_size, command

Its result datasets are contiguous, allocated and filled with NaN when the file
is created, so writing a batch changes raw data only, never the file's
structure.  Each batch writes its data, flushes, then sets its ``completed``
flags and flushes again: a process killed at any moment leaves a readable file
whose flags name exactly the slices that are whole, and ``--resume`` redoes the
rest.  The file itself appears atomically (built under a temporary name, then
renamed), and several processes (``--shard``) write it in turn under an
exclusive lock on the output folder.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ..errors import DataError, OutputExistsError

__all__ = ["folder_lock", "IncrementalOutput", "completed_mask", "source_bytes"]


@contextlib.contextmanager
def folder_lock(path: str | Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on the folder of ``path`` (shared by all shards)."""
    folder = Path(path).parent if str(Path(path).parent) else Path(".")
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


def completed_mask(path: str | Path) -> np.ndarray | None:
    """The ``completed`` flags of a batch output as a bool array, or None for other files."""
    import h5py

    with h5py.File(path, "r") as f:
        return np.asarray(f["completed"][()], dtype=bool) if "completed" in f else None


def _filled(group, name: str, shape: tuple[int, ...]) -> None:
    """A float32 dataset allocated now, contiguous, every value NaN (see the module doc)."""
    import h5py

    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
    dcpl.set_fill_time(h5py.h5d.FILL_TIME_ALLOC)
    dcpl.set_fill_value(np.array(np.nan, dtype=np.float32))
    space = h5py.h5s.create_simple(tuple(int(s) for s in shape))
    h5py.h5d.create(group.id, name.encode(), h5py.h5t.IEEE_F32LE, space, dcpl=dcpl)


class IncrementalOutput:
    """One batch output file, shared by the shards of a run.

    Arguments:
        path: The output file.
        fingerprint: Identifies the run's settings and input; a file with another
            fingerprint is never joined or resumed.
        n: Number of slices (measurements) of the input.
        overwrite: Replace an existing file of another run (or, unsharded, any file).
        resume: Keep the completed slices of an existing file of this run.
        shared: The run is one of several shards: join the file another shard made.
    """

    def __init__(self, path: str | Path, fingerprint: str, n: int, *, overwrite: bool = False,
                 resume: bool = False, shared: bool = False):
        self.path = Path(path)
        self.fingerprint = fingerprint
        self.n = int(n)
        self.overwrite, self.resume, self.shared = overwrite, resume, shared
        self._replace = False  # recreate the file at the first write

    def _matches(self) -> bool:
        import h5py

        try:
            with h5py.File(self.path, "r") as f:
                return f.attrs.get("run_fingerprint") == self.fingerprint and "completed" in f
        except OSError:
            return False

    def _format(self):
        import h5py

        try:
            with h5py.File(self.path, "r") as f:
                return f.attrs.get("format")
        except OSError:
            return None

    def prepare(self) -> np.ndarray:
        """Check the output against the run's options; return the slices already complete (bool (N,))."""
        from .hdf5 import FORMAT, check_output_location

        done = np.zeros(self.n, dtype=bool)
        check_output_location(self.path)
        with folder_lock(self.path):
            if not self.path.exists():
                return done
            same = self._matches()
            if self.resume and not same and not self.overwrite and self._format() != FORMAT:
                raise DataError(f"{self.path} is not an invsolve result, so there is nothing to --resume; choose "
                                "another --output (or pass --overwrite to replace it)")
            if same and (self.resume or self.shared) and not self.overwrite:
                return completed_mask(self.path)
            if same and self.shared:  # --overwrite: this shard redoes its own slices
                return done
            if self.overwrite:
                self._replace = True
                return done
            if self.resume:
                raise DataError(f"{self.path} was written by another run (other input or settings); "
                                "give the same settings to --resume it, or pass --overwrite to replace it")
            raise OutputExistsError(f"output {self.path} already exists; pass --resume to complete it "
                                    "or --overwrite to replace it")

    def _create(self, source: str | Path | dict, shapes: dict[str, tuple[int, ...]], attrs: dict[str, Any]) -> None:
        import h5py

        from .hdf5 import write_attrs, write_hdf5

        def fill(f) -> None:
            write_attrs(f, {**attrs, "run_fingerprint": self.fingerprint})
            if isinstance(source, dict):  # data read from a foreign file: its arrays as read
                for name, value in source.items():
                    if isinstance(value, dict):
                        g = f.create_group(name)
                        for k, v in value.items():
                            g.create_dataset(k, data=v)
                    elif value is not None:
                        f.create_dataset(name, data=value, compression="gzip", compression_opts=1)
            else:
                with h5py.File(source, "r") as src:
                    for name in ("measurement", "ground_truth", "operator_arrays"):
                        if name in src:
                            src.copy(src[name], f, name=name)
            for name, shape in shapes.items():
                _filled(f, name, (self.n, *shape))
            f.create_dataset("completed", data=np.zeros(self.n, dtype=np.uint8))

        write_hdf5(self.path, fill, self._size(source, shapes))

    def _size(self, source, shapes: dict[str, tuple[int, ...]]) -> int:
        """The bytes a new file needs at most: its result datasets (float32, all slices) and the source's arrays."""
        return sum(4 * self.n * int(np.prod(s)) for s in shapes.values()) + self.n + source_bytes(source)


    def write(self, start: int, results: dict[str, np.ndarray], *, source: str | Path,
              attrs: dict[str, Any], timings: dict[str, float]) -> np.ndarray:
        """Store results for slices ``start, start+1, ...``; create the file first when needed.

        Arguments:
            start: Index of the first slice.
            results: Name -> array (B, ...) for B slices.
            source: The input measurement file (its measurement and ground truth are copied), or the arrays
                themselves (name -> array, or a group as name -> {name: array}) for data read from a foreign file.
            attrs: Attributes of a new file (configs, provenance).
            timings: Seconds to add to the file's ``timings`` attribute.

        Returns:
            The file's completed flags after this write (bool (N,)).
        """
        b = len(next(iter(results.values())))
        with folder_lock(self.path):
            if self._replace or not self.path.exists() or not self._matches():
                if self.path.exists() and not (self._replace or self.overwrite):
                    raise OutputExistsError(f"output {self.path} appeared during the run and belongs to another "
                                            "run; pass --overwrite to replace it")
                self._create(source, {k: v.shape[1:] for k, v in results.items()}, attrs)
                self._replace = False
            try:
                return self._store(start, b, results, timings)
            except Exception as exc:
                from .atomic import is_disk_full

                if not is_disk_full(exc):
                    raise
                from ..errors import DiskFullError

                raise DiskFullError(f"no space left on device writing {self.path}; the slices completed so far "
                                    "are kept: free space, then run the same command with --resume") from None

    def _store(self, start: int, b: int, results: dict[str, np.ndarray], timings: dict[str, float]) -> np.ndarray:
        """Write one batch's results into the existing file, then its completed flags."""
        import h5py

        with h5py.File(self.path, "r+") as f:
            for name, arr in results.items():
                if name not in f:
                    raise DataError(f"{self.path} has no dataset {name!r}; it was written by another "
                                    "version; pass --overwrite to start again")
                f[name][start: start + b] = np.asarray(arr, dtype=np.float32)
            f.flush()
            old = json.loads(f.attrs.get("timings", "{}"))
            for k, v in timings.items():
                old[k] = round(float(old.get(k, 0.0)) + float(v), 6)
            f.attrs["timings"] = json.dumps(old)
            f["completed"][start: start + b] = 1
            f.flush()
            return np.asarray(f["completed"][()], dtype=bool)


def source_bytes(source: str | Path | dict) -> int:
    """The bytes of the input arrays a batch output copies from ``source`` (an invsolve file, or the arrays of
    foreign data as :meth:`invsolve.sources.measured.Source.stored` gives them); 0 for an unreadable file."""
    if isinstance(source, dict):
        vals = [x for v in source.values() for x in (v.values() if isinstance(v, dict) else [v])]
        return int(sum(np.asarray(v).nbytes for v in vals if v is not None))
    import h5py

    try:
        with h5py.File(source, "r") as src:
            return int(sum(src[k].size * src[k].dtype.itemsize for k in ("measurement", "ground_truth") if k in src))
    except OSError:
        return 0
