"""``invsolve sample-prior``: unconditional samples of a diffusion prior, at any resolution."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from ._common import emit_json, handle_errors, merge_config, out_console
from ._options import ConfigOpt, DeviceOpt, JsonOpt, OverwriteOpt, ProgressOpt, QuietOpt, SeedOpt
from ._progress import make_progress


@handle_errors
def sample_prior(
    prior_file: Annotated[Optional[str], typer.Argument(help="diffusion prior from `train-prior --prior diffusion`")] = None,
    output: Annotated[Optional[str], typer.Option("--output", "-o", help="HDF5 file (/samples, N×H×W) or .npy")] = None,
    size: Annotated[Optional[int], typer.Option("--size", help="side of the samples in pixels; the training window is drawn at this resolution (default 64)")] = None,
    num: Annotated[Optional[int], typer.Option("--num-samples", "-n", help="number of samples (default 16)")] = None,
    steps: Annotated[Optional[int], typer.Option("--steps", help="reverse-time steps (default 200)")] = None,
    method: Annotated[Optional[str], typer.Option("--method", help="sde (reverse SDE, default) or ode (probability flow)")] = None,
    config: ConfigOpt = None,
    seed: SeedOpt = None,
    device: DeviceOpt = None,
    overwrite: OverwriteOpt = None,
    quiet: QuietOpt = None,
    progress: ProgressOpt = None,
    json: JsonOpt = None,
) -> None:
    """Draw samples of a diffusion prior on a SIZE×SIZE grid over its training window.

    An FNO prior trained at 32 and 64 pixels can be sampled at 128: the same window at twice the
    resolution.  Samples are in the units of the training images.

    Example: invsolve sample-prior d.pt --size 128 -n 16 -o s.h5
    """
    import time

    import numpy as np

    from .. import api_diffusion
    from ..io.hdf5 import check_output
    from ._runs_priors import SamplePriorRun

    run = merge_config(SamplePriorRun, config, {
        "prior_file": prior_file, "output": output, "size": size, "num": num, "steps": steps, "method": method,
        "seed": seed, "device": device, "overwrite": overwrite, "quiet": quiet, "progress": progress, "json": json,
    }, "sample-prior settings")
    out = check_output(run.output, run.overwrite, suffixes=(".h5", ".hdf5", ".npy"))
    t0 = time.perf_counter()
    prior = api_diffusion.load_diffusion_prior(run.prior_file, run.device)
    xs = api_diffusion.sample_prior(prior, run.size, run.num, steps=run.steps, method=run.method, seed=run.seed,
                                    device=run.device, track=make_progress(run.progress, run.quiet))
    _write(out, xs, run, prior)
    seconds = round(time.perf_counter() - t0, 3)
    summary = {"output": str(out), "samples": int(xs.shape[0]), "size": run.size, "steps": run.steps,
               "method": run.method, "seed": run.seed, "seconds": seconds,
               "mean": round(float(np.mean(xs)), 6), "std": round(float(np.std(xs)), 6)}
    if run.json_output:
        emit_json(summary)
    elif not run.quiet:
        out_console().print(f"wrote {out}: {xs.shape[0]} samples of {run.size}×{run.size} from {run.prior_file} "
                            f"({run.steps} {run.method} steps) in {seconds} s")


def _write(path, xs, run, prior) -> None:
    """The samples, atomically: ``.npy``, or HDF5 with /samples and the settings as attributes."""
    import numpy as np

    from ..io.atomic import atomic_output

    with atomic_output(path) as tmp:
        if str(path).endswith(".npy"):
            with open(tmp, "wb") as f:
                np.save(f, xs)
            return
        from datetime import datetime, timezone

        import h5py

        from .._version import __version__
        from ..io.hdf5 import write_attrs

        with h5py.File(tmp, "w") as f:
            f.create_dataset("samples", data=xs, compression="gzip")
            write_attrs(f, {"kind": "prior_samples", "invsolve_version": __version__,
                            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                            "prior_file": str(run.prior_file), "size": run.size, "steps": run.steps,
                            "method": run.method, "seed": run.seed, "prior": prior.spec(),
                            "levels": prior.provenance.get("levels")})
