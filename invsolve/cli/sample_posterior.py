"""``invsolve sample-posterior``: posterior samples, mean, std and quantile maps."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from ._common import emit_json, handle_errors, make_track, merge_config, out_console
from ._options import (BatchOpt, ConfigOpt, DeviceOpt, JsonOpt, OutputOpt, OverwriteOpt, PreviewOpt,
                       QuietOpt, SeedOpt)


@handle_errors
def sample_posterior(
    measurement: Annotated[Optional[str], typer.Argument(help="HDF5 measurement written by `invsolve simulate`")] = None,
    sampler_file: Annotated[Optional[str], typer.Option("--sampler-file", help="conditional sampler from `invsolve train-sampler`")] = None,
    sampler: Annotated[Optional[str], typer.Option("--sampler", help="langevin (with --prior), or the sampler in --sampler-file")] = None,
    prior: Annotated[Optional[str], typer.Option("--prior", help="patch prior for Langevin: patchnr, epll or wpp")] = None,
    prior_file: Annotated[Optional[str], typer.Option("--prior-file", help="prior trained by `invsolve train-prior`")] = None,
    sampler_param: Annotated[Optional[list[str]], typer.Option("--sampler-param", "-S", help="sampler setting KEY=VALUE (Langevin: steps, burn_in, thin, step_size, lam, n_patches)")] = None,
    num_samples: Annotated[Optional[int], typer.Option("--num-samples", "-n", help="samples per measurement (trained samplers; default 64)")] = None,
    chains: Annotated[Optional[int], typer.Option("--chains", help="Langevin: parallel chains per measurement")] = None,
    quantile: Annotated[Optional[list[float]], typer.Option("--quantile", help="quantile level to store (repeatable; default 0.05 0.25 0.5 0.75 0.95)")] = None,
    save_samples: Annotated[Optional[bool], typer.Option("--save-samples", help="store the samples too", show_default=False)] = None,
    config: ConfigOpt = None,
    seed: SeedOpt = None,
    device: DeviceOpt = None,
    output: OutputOpt = None,
    overwrite: OverwriteOpt = None,
    quiet: QuietOpt = None,
    json: JsonOpt = None,
    preview: PreviewOpt = None,
    batch_size: BatchOpt = None,
) -> None:
    """Sample the posterior of each measurement; write mean, std, quantiles (and samples) to HDF5.

    Examples: invsolve sample-posterior m.h5 --sampler-file s.pt -n 64 --output post.h5;
    invsolve sample-posterior m.h5 --prior patchnr --prior-file prior.pt --sampler langevin --chains 4 --output post.h5
    """
    from .. import api
    from ..config import parse_assignments
    from ..io.hdf5 import check_output
    from ._runs import SamplePosteriorRun

    run = merge_config(SamplePosteriorRun, config, {
        "measurement": measurement, "output": output, "sampler": sampler, "sampler_file": sampler_file,
        "prior": prior, "prior_file": prior_file, "sampler_params": parse_assignments(sampler_param, "--sampler-param"),
        "num_samples": num_samples, "chains": chains, "quantiles": quantile, "save_samples": save_samples,
        "seed": seed, "device": device, "overwrite": overwrite, "quiet": quiet, "json": json, "preview": preview,
        "batch_size": batch_size,
    }, "sample-posterior settings")
    check_output(run.output, run.overwrite)
    m = api.load_measurement(run.measurement)
    post = api.sample_posterior(
        m, sampler=run.sampler, sampler_file=run.sampler_file, prior=run.prior, prior_file=run.prior_file,
        sampler_params=run.sampler_params, num_samples=run.num_samples, chains=run.chains,
        levels=tuple(run.quantiles), keep_samples=run.save_samples, seed=run.seed, device=run.device,
        batch_size=run.batch_size, track=make_track(run.quiet or run.json_output))
    path = api.save_posterior(post, run.output, run.overwrite)
    s = post.summary
    if run.preview and s.mean.ndim == 3:
        from ..io.preview import write_preview

        write_preview(run.preview, [m.measurement[0], s.mean[0], s.std[0]], run.overwrite)
    summary = {"output": str(path), "sampler": post.sampler["name"], "operator": m.operator["name"],
               "measurements": int(len(s.mean)), "seed": run.seed, "device": post.device,
               "seconds": round(post.timings["sample_posterior"], 3), "mean_std": float(s.std.mean())}
    if m.ground_truth is not None and s.mean.ndim == 3:
        scores = api.evaluate(s.mean, m.ground_truth)
        summary.update(psnr=round(scores["psnr"], 3), ssim=round(scores["ssim"], 4))
    if run.json_output:
        emit_json(summary)
    elif not run.quiet:
        out_console().print(f"wrote {path}: posterior of {summary['measurements']} measurement(s) by "
                            f"{summary['sampler']} in {summary['seconds']} s")
