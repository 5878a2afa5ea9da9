"""Batch runs of ``reconstruct`` and ``sample-posterior`` over stacks and lists of inputs.

The work is a list of units, one per batch of ``batch_size`` slices of each
input (inputs in the order given, batches in slice order).  ``shard=(k, n)``
takes units k-1, k-1+n, k-1+2n, ...; the n shards together write every slice
of every output exactly once.  Each batch is seeded from (seed, batch index)
(:func:`invsolve.device.batch_seed`), so a sharded, interrupted or resumed run
gives the same output as one uninterrupted run with the same seed and batch size.

Outputs fill up batch by batch (:mod:`invsolve.io.incremental`): ``resume``
skips the slices an output already records as complete.

Example:
    >>> from invsolve import api_batch
    >>> api_batch.parse_shard("2/4")
    (2, 4)
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Protocol, Sequence, TextIO

import numpy as np

from .posteriors.base import SampleRequest

from .errors import ConfigError, DataError, Interrupted

__all__ = ["expand_inputs", "parse_shard", "output_paths", "BatchTask", "ReconstructTask", "PosteriorTask",
           "SliceDone", "BatchSummary", "StopRequest", "run_batches", "graceful_stop"]


def expand_inputs(specs: Sequence[str], stdin: TextIO | None = None) -> list[str]:
    """Input specs from arguments: paths (``FILE.h5:/dataset[a:b]`` too), glob patterns, and ``-`` (one path
    per line on stdin)."""
    from .io.images import match_files
    from .sources.inputs import parse_input

    out: list[str] = []
    for spec in specs:
        if spec == "-":
            lines = (stdin or sys.stdin).read().splitlines()
            names = [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]
            if not names:
                raise DataError("no input paths on stdin (give one path per line after `-`)")
            out.extend(expand_inputs(names))
            continue
        file = parse_input(spec).file
        if not file.exists() and not Path(spec).exists() and any(ch in spec for ch in "*?["):
            out.extend(match_files(spec))
            continue
        if not file.exists():
            raise DataError(f"input file not found: {file} (check the path)")
        out.append(str(spec))
    if not out:
        raise ConfigError("give a measurement file (or several, a glob, or - to read paths from stdin)")
    seen: set[str] = set()

    def key(s: str) -> str:
        p = parse_input(s)
        return f"{p.file.resolve()}:{p.dataset}:{p.items}"

    return [s for s in out if not (key(s) in seen or seen.add(key(s)))]


def parse_shard(text: str | None) -> tuple[int, int]:
    """``"K/N"`` -> (K, N) with 1 <= K <= N; None -> (1, 1)."""
    if text is None:
        return 1, 1
    try:
        k, n = (int(v) for v in str(text).split("/"))
    except ValueError:
        raise ConfigError(f"--shard {text!r} is not K/N (e.g. 1/4: the first of 4 shards)") from None
    if n < 1:
        raise ConfigError(f"--shard {text}: N, the number of shards, must be at least 1 (e.g. 1/4)")
    if not 1 <= k <= n:
        raise ConfigError(f"--shard {text}: K must lie in 1..N (shards are numbered 1 to {n})")
    return k, n


def output_paths(inputs: Sequence[Path], output: str | Path) -> list[Path]:
    """One output per input: ``output`` itself for one input (or a file in it when it is a
    folder); for several inputs ``output`` is a folder (created when missing) holding
    ``<input name>.h5`` for each."""
    from .io.hdf5 import HDF5_OUTPUT_SUFFIXES, check_not_input
    from .sources.inputs import parse_input

    inputs = [parse_input(str(p)).file for p in inputs]  # input specs name files (FILE.h5:/dataset[a:b])
    out = Path(output)
    if str(output).endswith(("/", os.sep)) and not out.is_dir():  # a folder by its name: made like the one of
        if not out.parent.is_dir():  # several inputs, inside an existing folder
            raise DataError(f"output folder {out.parent} does not exist; create it first")
        out.mkdir(exist_ok=True)  # shards may race to create it
    if len(inputs) == 1:
        paths = [out / (inputs[0].stem + ".h5")] if out.is_dir() else [out]
        check_not_input(paths[0], inputs)
        return paths
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{len(inputs)} inputs need --output to be a folder, and {out} is a file")
    if not out.exists() and out.suffix.lower() in HDF5_OUTPUT_SUFFIXES:
        raise ConfigError(f"{len(inputs)} inputs write one file each into the folder --output, not into one file "
                          f"{out}; give a folder name (e.g. {out.with_suffix('')})")
    if not out.parent.exists():
        raise DataError(f"output folder {out.parent} does not exist; create it first")
    out.mkdir(exist_ok=True)
    paths = [out / (p.stem + ".h5") for p in inputs]
    for p in paths:
        check_not_input(p, inputs)
    dup = {p for p in paths if paths.count(p) > 1}
    if dup:
        raise ConfigError(f"several inputs would write {sorted(dup)[0]}; give inputs with distinct names")
    return paths


class BatchTask(Protocol):
    """What a batch run computes: ``command`` and ``settings`` (for the fingerprint) and
    ``compute(measurement, first_batch) -> (results, attrs)`` for one batch."""

    command: str
    settings: dict[str, Any]

    def compute(self, measurement, first_batch: int) -> tuple[dict[str, np.ndarray], dict[str, Any], float]:
        ...


def _file_id(path: str | None) -> Any:
    """A model file named in the settings, identified by name, size and modification time."""
    if path is None or not Path(path).exists():
        return path
    st = Path(path).stat()
    return [str(path), st.st_size, st.st_mtime_ns]


@dataclass
class ReconstructTask:
    """``reconstruct`` on one batch; the arguments are those of :func:`invsolve.api.reconstruct`."""

    method: str | None = None
    method_params: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    device: str = "auto"
    batch_size: int = 8
    prior: str | None = None
    prior_file: str | None = None
    zero_shot: bool = False
    prior_params: dict[str, Any] = field(default_factory=dict)
    track: Any = None
    allow_partial: bool = False
    command: str = "reconstruct"

    @property
    def settings(self) -> dict[str, Any]:
        return {"method": self.method, "method_params": self.method_params, "seed": self.seed,
                "prior": self.prior, "prior_file": _file_id(self.prior_file), "zero_shot": self.zero_shot,
                "prior_params": self.prior_params}

    def compute(self, m, first_batch: int):
        from .api import reconstruct
        from .results.files import reconstruction_attrs, reconstruction_data
        from .methods import no_track

        r = reconstruct(m, self.method, self.method_params, self.seed, self.device, self.batch_size,
                        track=self.track or no_track, prior=self.prior, prior_file=self.prior_file,
                        zero_shot=self.zero_shot, prior_params=self.prior_params, first_batch=first_batch,
                        allow_partial=self.allow_partial)
        attrs = {**reconstruction_attrs(r, dict(m.timings)), "command": self.command, "batch_size": self.batch_size}
        return reconstruction_data(r), attrs, r.timings["reconstruct"]


@dataclass
class PosteriorTask:
    """``sample-posterior`` on one batch: the run's :class:`invsolve.posteriors.SampleRequest`, and where and in
    what batches it runs (as :func:`invsolve.api.sample_posterior`)."""

    request: SampleRequest = field(default_factory=SampleRequest)
    device: str = "auto"
    batch_size: int = 8
    calibration: str | None = None
    command: str = "sample_posterior"

    @property
    def track(self):
        """The run's progress display (None without one)."""
        from .methods import no_track

        return None if self.request.track is no_track else self.request.track

    @property
    def settings(self) -> dict[str, Any]:
        r = self.request
        return {"sampler": r.sampler, "sampler_file": _file_id(r.sampler_file), "prior": r.prior,
                "prior_file": _file_id(r.prior_file), "sampler_params": r.sampler_params,
                "num_samples": r.num_samples, "chains": r.chains, "levels": list(r.levels),
                "keep_samples": r.keep_samples, "seed": r.seed, "precision": r.precision,
                "compile": r.compile, "importance": r.importance, "calibration": _file_id(self.calibration)}

    def compute(self, m, first_batch: int):
        import dataclasses

        from .api import sample_posterior
        from .methods import no_track
        from .results.files import posterior_attrs, posterior_datasets

        args = {f.name: getattr(self.request, f.name) for f in dataclasses.fields(self.request)}
        post = sample_posterior(m, **{**args, "track": args["track"] or no_track}, device=self.device,
                                batch_size=self.batch_size, first_batch=first_batch, calibration=self.calibration)
        attrs = {**posterior_attrs(post, dict(m.timings)), "command": "sample-posterior",
                 "batch_size": self.batch_size}
        return posterior_datasets(post.summary), attrs, post.timings["sample_posterior"]


@dataclass
class SliceDone:
    """One finished slice (the ``--json`` line)."""

    input: str
    output: str
    index: int
    seconds: float
    psnr: float | None = None
    ssim: float | None = None

    def to_json(self) -> dict[str, Any]:
        d = {"event": "slice", "input": self.input, "output": self.output, "index": self.index,
             "seconds": round(self.seconds, 4)}
        if self.psnr is not None:
            d.update(psnr=round(self.psnr, 3), ssim=round(self.ssim, 4))
        return d


@dataclass
class BatchSummary:
    """What a batch run did: its outputs, slices computed here, skipped and complete."""

    outputs: list[Path]
    total: int
    computed: int = 0
    skipped: int = 0
    complete: list[bool] = field(default_factory=list)
    seconds: float = 0.0
    device: str = "cpu"
    spec: dict[str, Any] = field(default_factory=dict)


def _fingerprint(task: BatchTask, batch_size: int, input_ident: dict, n: int) -> str:
    ident = {"command": task.command, "settings": task.settings, "batch_size": batch_size, "n": n,
             "input": input_ident}
    return hashlib.sha256(json.dumps(ident, sort_keys=True, default=str).encode()).hexdigest()


def run_batches(task: BatchTask, inputs: Sequence[str | Path], output: str | Path, *, batch_size: int = 8,
                shard: tuple[int, int] = (1, 1), resume: bool = False, overwrite: bool = False,
                on_slice: Callable[[SliceDone], None] | None = None,
                should_stop: Callable[[], bool] | None = None, reading=None,
                on_batch: Callable[[int, int], None] | None = None, wait: bool = False) -> BatchSummary:
    """Run ``task`` over every slice of ``inputs`` (this shard's share), writing one output per input.

    ``wait``: when another run writes one of the outputs, wait for it to end instead of refusing.
    ``on_batch(done, total)`` (optional) hears, before the first batch and after each, how many of the
    ``total`` slices this run computes are done.

    ``inputs`` are invsolve measurement files or, with ``reading`` (a
    :class:`invsolve.sources.measured.MeasurementReading` naming the operator), data invsolve did not write:
    sinograms, projection stacks, images, vectors (:func:`invsolve.sources.measured.open_source`).

    Raises:
        Interrupted: ``should_stop()`` turned true (after a whole batch was written),
            or Ctrl-C arrived during a batch; completed slices stay in the outputs.
    """
    from .api import evaluate
    from .io.atomic import check_space
    from .io.hdf5 import check_output_location
    from .io.incremental import IncrementalOutput, source_bytes
    from .io.output_lock import output_locks
    from .sources.measured import open_source

    t0 = time.perf_counter()
    if batch_size < 1:
        raise ConfigError(f"--batch-size must be at least 1, got {batch_size}")
    k, n_shards = shard
    sources = [open_source(str(p), reading) for p in inputs]
    paths = [s.file for s in sources]
    outs = output_paths(paths, output)
    for dst in outs:
        check_output_location(dst)
    with output_locks(outs, shared=n_shards > 1, wait=wait):  # one run per output (its shards together)
        files, units = [], []
        for fi, (source, dst) in enumerate(zip(sources, outs)):
            n = source.n
            io = IncrementalOutput(dst, _fingerprint(task, batch_size, source.ident, n), n,
                                   overwrite=overwrite, resume=resume, shared=n_shards > 1)
            files.append((source, io, n))
            units.extend((fi, b) for b in range(math.ceil(n / batch_size)))
        done = [io.prepare() for _, io, _ in files]  # every output checked before any work starts
        for (source, io, _), d in zip(files, done):
            if not d.any():  # a new output holds at least its input's arrays: refuse now if even they cannot fit
                check_space(io.path, source_bytes(source.stored()))
        summary = BatchSummary(outputs=outs, total=sum(n for *_, n in files))
        todo = [(u, fi, b) for u, (fi, b) in enumerate(units) if u % n_shards == k - 1]
        to_compute = sum(int((~done[fi][b * batch_size : (b + 1) * batch_size]).sum()) for _, fi, b in todo)
        if on_batch is not None:
            on_batch(0, to_compute)
        for u, (fi, b) in enumerate(units):
            if u % n_shards != k - 1:
                continue
            source, io, n = files[fi]
            src = source.file
            sl = slice(b * batch_size, min((b + 1) * batch_size, n))
            if done[fi][sl].all():
                summary.skipped += sl.stop - sl.start
                continue
            if should_stop is not None and should_stop():
                raise _stopped(summary, outs, _last_signal(should_stop))
            try:
                m = source.load(sl)
                results, attrs, seconds = task.compute(m, b)
                done[fi] = io.write(sl.start, results, source=source.stored(), attrs=attrs,
                                    timings={task.command: seconds})
            except KeyboardInterrupt:
                sig = _last_signal(should_stop)
                kept = (f"the slices completed so far are kept in {_names(outs)}; run the same command with --resume "
                        "to finish") if any(d.any() for d in done) else "no slice was complete, so nothing was written"
                raise Interrupted(f"aborted during a batch on {sig.name}; {kept}", exit_code=128 + int(sig)) from None
            summary.computed += sl.stop - sl.start
            summary.spec, summary.device = attrs, str(attrs.get("device"))
            if on_batch is not None:
                on_batch(summary.computed, to_compute)
            if on_slice is not None:
                scores = evaluate(results["reconstruction"], m.ground_truth) if m.ground_truth is not None and \
                    results["reconstruction"].ndim == 3 else None
                for i in range(sl.stop - sl.start):
                    on_slice(SliceDone(str(src), str(io.path), sl.start + i, seconds / (sl.stop - sl.start),
                                       None if scores is None else float(scores["psnr_per_slice"][i]),
                                       None if scores is None else float(scores["ssim_per_slice"][i])))
        summary.complete = [bool(d.all()) for d in done]
        summary.seconds = time.perf_counter() - t0
        if should_stop is not None and should_stop():  # asked to stop during the last batch, which is written
            sig = _last_signal(should_stop)
            raise Interrupted(f"stopped on {sig.name} after the last batch; {_names(outs)} holds every slice "
                              "this run computed", exit_code=128 + int(sig))
        return summary


def _names(outs: Sequence[Path]) -> str:
    return str(outs[0]) if len(outs) == 1 else f"{len(outs)} outputs in {outs[0].parent}"


def _last_signal(should_stop) -> signal.Signals:
    """The signal that stopped the run: the one a :class:`StopRequest` received, else SIGINT (a plain
    KeyboardInterrupt, e.g. outside ``graceful_stop``)."""
    return should_stop.signal if isinstance(should_stop, StopRequest) else signal.SIGINT


def _stopped(summary: BatchSummary, outs: Sequence[Path], sig: signal.Signals) -> Interrupted:
    return Interrupted(f"stopped after {summary.computed} slice(s) on {sig.name}; "
                       f"{_names(outs)} holds every completed slice; run the same command with --resume to finish",
                       exit_code=128 + int(sig))


@dataclass
class StopRequest:
    """What :func:`graceful_stop` hands the run: call it to ask whether a signal asked to stop.

    Attributes:
        stop: A first SIGINT or SIGTERM arrived: finish the current batch, then stop.
        at_once: Set by the caller when the batch in progress is the whole run: then the first signal aborts.
        signal: The last signal received (SIGINT until one arrives).
    """

    stop: bool = False
    at_once: bool = False
    signal: signal.Signals = signal.SIGINT

    def __call__(self) -> bool:
        return self.stop


@contextlib.contextmanager
def graceful_stop() -> Iterator[StopRequest]:
    """Handle SIGINT/SIGTERM by finishing the current batch: yields a :class:`StopRequest`.

    A second signal of either kind aborts at once (KeyboardInterrupt): a second
    Ctrl-C, or a second SIGTERM from a scheduler or ``docker stop`` that will not
    wait for a long batch.  Outside the main thread the handlers cannot be
    installed and the signals keep their usual effect.
    """
    request = StopRequest()

    def handler(signum, frame):
        request.signal = signal.Signals(signum)
        if request.stop or request.at_once:
            raise KeyboardInterrupt
        request.stop = True
        print(f"{request.signal.name}: finishing the current batch, then stopping "
              "(Ctrl-C or SIGTERM again aborts it)", file=sys.stderr, flush=True)

    old = {}
    try:
        for s in (signal.SIGINT, signal.SIGTERM):
            try:
                old[s] = signal.signal(s, handler)
            except ValueError:  # not the main thread
                pass
        yield request
    finally:
        for s, h in old.items():
            signal.signal(s, h)
