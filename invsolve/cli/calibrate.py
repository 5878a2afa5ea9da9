"""``invsolve calibrate``: SBC, TARP, coverage at many levels and posterior contraction of a sampler over
pairs (x, y), with the conformal scales that ``sample-posterior --calibration`` applies."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from ._common import emit_json, handle_errors, merge_config, out_console
from ._options import (AllowPartialOpt, BatchOpt, ConfigOpt, DeviceOpt, JsonOpt, OutputOpt, OverwriteOpt,
                       PatchPriorOpt, PriorFileOpt, ProgressOpt, QuietOpt, SamplerFileOpt, SamplerOpt,
                       SamplerParamOpt, SeedOpt)
from ._progress import make_progress


def _pairs(run):
    """The pairs: a measurement file with ground truth, or ``--pairs N`` simulated for a trained sampler."""
    from .. import api, api_calibrate
    from ..errors import ConfigError

    if (run.pairs_file is None) == (run.pairs is None):
        raise ConfigError("give the pairs: a measurement file with its ground truth (from `invsolve simulate`), or "
                          "--pairs N to simulate them for --sampler-file; not both")
    if run.pairs_file is not None:
        if run.images:
            raise ConfigError("--images is for simulating --pairs; the pairs file holds its own images: drop --images")
        return api.load_measurement(run.pairs_file)
    if run.sampler_file is None:
        raise ConfigError("--pairs N simulates pairs as a trained sampler's training data was (--sampler-file); "
                          "for MCMC and Langevin, simulate pairs with `invsolve simulate` and pass that file")
    return api_calibrate.simulate_pairs(run.sampler_file, run.pairs, images=run.images, seed=run.seed,
                                        device=run.device)


def _table(cal, path) -> None:
    from rich.table import Table

    s = cal.summary()
    t = Table(title=f"calibration of the {cal.sampler.get('name')} sampler: {s['pairs']} pairs, "
                    f"{s['num_samples']} draws each")
    for c in ("statistic", "value", "a calibrated sampler gives"):
        t.add_column(c, justify="left" if c != "value" else "right")
    t.add_row("SBC rank uniformity, χ² p-value (min over statistics × their count)", f"{s['sbc_pvalue']:.3g}",
              "not small (> 0.01)")
    t.add_row("TARP area between curve and diagonal", f"{s['tarp_area']:.4f}", "≈ 0")
    for m in (50, 90):
        if f"coverage_{m}" in s:
            t.add_row(f"{m} % interval coverage, raw", f"{s[f'coverage_{m}']:.3f}", f"{m / 100:.2f}")
            t.add_row(f"{m} % interval coverage, conformal (held-out halves)",
                      f"{s[f'calibrated_coverage_{m}']:.3f}", f"{m / 100:.2f}")
    t.add_row("posterior contraction (mean)", f"{s['contraction']:.3f}", "0 … 1 (1: the data pin x down)")
    out_console().print(t)
    out_console().print(f"wrote {path}; apply it with `invsolve sample-posterior ... --calibration {path}`")


@handle_errors
def calibrate(
    pairs_file: Annotated[Optional[str], typer.Argument(help="pairs (x, y): a measurement file with /ground_truth, e.g. from `invsolve simulate`", show_default=False)] = None,
    pairs: Annotated[Optional[int], typer.Option("--pairs", help="simulate N pairs from the --sampler-file's training prior (vector samplers) or as crops of --images (image samplers)")] = None,
    images: Annotated[Optional[list[str]], typer.Option("--images", help="held-out images to crop the --pairs from (image samplers)")] = None,
    sampler_file: SamplerFileOpt = None,
    sampler: SamplerOpt = None,
    prior: PatchPriorOpt = None,
    prior_file: PriorFileOpt = None,
    sampler_param: SamplerParamOpt = None,
    num_samples: Annotated[Optional[int], typer.Option("--num-samples", "-n", help="draws per pair (trained samplers; default 64)")] = None,
    chains: Annotated[Optional[int], typer.Option("--chains", help="Langevin and MCMC: chains per pair")] = None,
    mass: Annotated[Optional[list[float]], typer.Option("--mass", help="credible mass to calibrate (repeatable; default 0.05, 0.10, …, 0.95, 0.99)")] = None,
    projections: Annotated[Optional[int], typer.Option("--projections", help="images: random projections used as SBC statistics (default 8)")] = None,
    pixels: Annotated[Optional[int], typer.Option("--pixels", help="images: random pixels used as SBC statistics (default 8)")] = None,
    bins: Annotated[Optional[int], typer.Option("--bins", help="TARP grid steps (default pairs // 10)")] = None,
    precision: Annotated[Optional[str], typer.Option("--precision", help="auto (default), fp32 or bf16, as for sample-posterior")] = None,
    config: ConfigOpt = None,
    seed: SeedOpt = None,
    device: DeviceOpt = None,
    output: OutputOpt = None,
    overwrite: OverwriteOpt = None,
    quiet: QuietOpt = None,
    progress: ProgressOpt = None,
    allow_partial: AllowPartialOpt = None,
    json: JsonOpt = None,
    batch_size: BatchOpt = None,
) -> None:
    """Check a sampler's calibration over pairs (x, y) and fit conformal scales for its credible intervals.

    Examples: invsolve calibrate --pairs 500 --sampler-file s.pt -n 100 --output cal.h5;
    invsolve calibrate pairs.h5 --sampler mcmc --chains 4 --output cal.h5
    """
    from .. import api_calibrate
    from ..calibration.files import save_calibration
    from ..calibration.statistics import DEFAULT_MASSES
    from ..config import parse_assignments
    from ..io.hdf5 import check_output
    from ._runs_samplers import CalibrateRun

    run = merge_config(CalibrateRun, config, {
        "pairs_file": pairs_file, "pairs": pairs, "images": images, "sampler_file": sampler_file, "sampler": sampler,
        "prior": prior, "prior_file": prior_file, "sampler_params": parse_assignments(sampler_param, "--sampler-param"),
        "num_samples": num_samples, "chains": chains, "masses": mass, "projections": projections, "pixels": pixels,
        "bins": bins, "precision": precision, "seed": seed, "device": device, "output": output,
        "overwrite": overwrite, "quiet": quiet, "progress": progress, "allow_partial": allow_partial, "json": json,
        "batch_size": batch_size,
    }, "calibrate settings")
    check_output(run.output, run.overwrite)
    m = _pairs(run)
    cal = api_calibrate.calibrate(
        m, sampler=run.sampler, sampler_file=run.sampler_file, prior=run.prior, prior_file=run.prior_file,
        sampler_params=run.sampler_params, num_samples=run.num_samples, chains=run.chains,
        masses=tuple(run.masses) if run.masses else DEFAULT_MASSES, projections=run.projections, pixels=run.pixels,
        bins=run.bins, seed=run.seed, device=run.device, batch_size=run.batch_size,
        track=make_progress(run.progress, run.quiet), precision=run.precision, allow_partial=run.allow_partial)
    path = save_calibration(cal, run.output, run.overwrite)
    if run.json_output:
        emit_json({"output": str(path), **cal.to_json(), "seconds": round(cal.timings["calibrate"], 3)})
    elif not run.quiet:
        _table(cal, path)
