"""The batch side of ``reconstruct`` and ``sample-posterior``: inputs, shards, resume,
per-slice JSON lines, graceful SIGINT/SIGTERM, the final summary and preview."""

from __future__ import annotations

import sys
from typing import Any

from ._common import emit_json, out_console

__all__ = ["run_batch_cli"]


def run_batch_cli(task, run) -> None:
    """Run ``task`` over ``run.measurement`` and report; with ``--preview``, draw the first output file as
    ``invsolve show`` does.

    Arguments:
        task: A :class:`invsolve.api_batch.ReconstructTask` or ``PosteriorTask``.
        run: The command's validated settings (measurement, output, shard, resume, ...).
    """
    from .. import api
    from ..api_batch import expand_inputs, graceful_stop, parse_shard, run_batches
    from ..io.hdf5 import read_result

    inputs = expand_inputs(run.measurement, sys.stdin)
    shard = parse_shard(run.shard)
    reading = run.reading()
    if run.preview:
        from ..io.hdf5 import check_not_input
        from ..io.preview import check_preview

        check_preview(run.preview, run.overwrite)
        check_not_input(run.preview, inputs)

    def on_slice(done) -> None:
        emit_json(done.to_json())

    track = task.track

    def on_batch(done: int, total: int) -> None:  # the slices, in progress lines, when there are batches
        if done == 0 and total <= run.batch_size:
            should_stop.at_once = True  # one batch is the whole run: a signal aborts it
        if track is not None and total > run.batch_size:
            track.set_outer(f"{done}/{total} slices done" if done < total else None)

    with graceful_stop() as should_stop:
        try:
            summary = run_batches(task, inputs, run.output, batch_size=run.batch_size, shard=shard,
                                  resume=run.resume, overwrite=run.overwrite,
                                  on_slice=on_slice if run.json_output else None, should_stop=should_stop,
                                  reading=reading, on_batch=on_batch, wait=run.wait)
        finally:
            if track is not None:
                track.set_outer(None)
    first = summary.outputs[0]
    complete = all(summary.complete)
    if not complete and shard == (1, 1):  # only a shard may end with slices left to others
        from ..errors import DataError

        left = sum(int(c is False) for c in summary.complete)
        raise DataError(f"the run ended with {left} of {len(summary.outputs)} output(s) incomplete ({first} …); "
                        "run the same command with --resume to finish")
    report: dict[str, Any] = {
        "event": "done", "output": str(first), "outputs": [str(p) for p in summary.outputs],
        "slices": summary.total, "computed": summary.computed, "skipped": summary.skipped, "complete": complete,
        "shard": run.shard or "1/1", "seed": run.seed, "device": summary.device,
        "seconds": round(summary.seconds, 3),
    }
    spec = summary.spec
    if spec:
        report["operator"] = spec["operator"]["name"]
        key = "method" if "method" in spec else "sampler"
        report[key] = spec[key]["name"]
    if complete and summary.computed:
        stored = [read_result(p) for p in summary.outputs]
        if all("ground_truth" in st.datasets and st.datasets["reconstruction"].ndim == 3 for st in stored):
            scores = [api.evaluate(st.datasets["reconstruction"], st.datasets["ground_truth"]) for st in stored]
            per = [v for sc in scores for v in sc["psnr_per_slice"]]
            per_s = [v for sc in scores for v in sc["ssim_per_slice"]]
            report.update(psnr=round(float(sum(per) / len(per)), 3), ssim=round(float(sum(per_s) / len(per_s)), 4))
        if run.preview:
            import warnings

            from ..errors import DiskFullError
            from ..io.preview import write_preview

            try:
                write_preview(run.preview, summary.outputs[0], run.overwrite)
            except DiskFullError as exc:  # the result is whole and kept: say so, and do not fail the run
                warnings.warn(f"{exc} (the preview only: {first} is complete)", RuntimeWarning, stacklevel=1)
        report.update(iteration_report(stored, spec.get("method") if spec else None))
        if "mean_std" not in report and "posterior_std" in stored[0].datasets:
            report["mean_std"] = float(stored[0].datasets["posterior_std"].mean())
    if run.json_output:
        emit_json(report)
    elif not run.quiet:
        where = str(first) if len(summary.outputs) == 1 else f"{len(summary.outputs)} files in {first.parent}"
        state = "complete" if complete else "this shard's part done"
        extra = f", PSNR {report['psnr']:.2f} dB against the stored ground truth" if "psnr" in report else ""
        extra += f"; {report['stopping']}" if "stopping" in report else ""
        out_console().print(f"wrote {where}: {summary.computed} slice(s) computed, {summary.skipped} already done "
                            f"({state}) in {report['seconds']} s{extra}")



def iteration_report(stored, method: dict | None) -> dict[str, Any]:
    """The iterations an iterative method ran over the outputs and why it stopped: ``iterations_run`` (the
    smallest and largest count), ``converged`` (items ended by the stopping rule) and a ``stopping`` sentence;
    empty for direct methods."""
    import numpy as np

    runs = [st.datasets["iterations_run"] for st in stored if "iterations_run" in st.datasets]
    if not runs or method is None:
        return {}
    iters = np.concatenate([np.asarray(r, np.float64).ravel() for r in runs])
    conv = np.concatenate([np.asarray(st.datasets["converged"], np.float64).ravel() for st in stored
                           if "converged" in st.datasets])
    lo, hi, n_conv = int(np.nanmin(iters)), int(np.nanmax(iters)), int(np.nansum(conv))
    count = f"{lo}" if lo == hi else f"{lo}–{hi}"
    name = method.get("name", "the method")
    tol = (method.get("settings") or {}).get("tol", (method.get("used") or {}).get("tol", method.get("tol")))
    text = f"{name} ran {count} iterations, {n_conv} of {len(iters)} item(s) stopped by the stopping rule"
    if tol == 0:
        text = f"{name} ran {count} iterations (stopping rule off: tol=0)"
    elif n_conv < len(iters):
        text += " (the others reached the iteration cap: raise -M iterations= to let them converge)"
    return {"iterations_run": [lo, hi], "converged": n_conv, "stopping": text}
