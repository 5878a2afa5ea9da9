"""``invsolve sample-posterior``: posterior samples, mean, std and quantile maps."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from ._common import handle_errors, merge_config
from ._progress import make_progress
from ._options import (AllowPartialOpt, WaitOpt, ProgressOpt, BatchOpt, ConfigOpt, DarksOpt, DeviceOpt, FlatsOpt, ImageSizeOpt, InputsArg, JsonOpt,
                       NoiseOpt, NoiseParamOpt, OperatorOpt, OpParamOpt, OutputOpt, OverwriteOpt, PreviewOpt,
                       PatchPriorOpt, PriorFileOpt, QuietOpt, ResumeOpt, RowsOpt, SamplerFileOpt, SamplerOpt,
                       SamplerParamOpt, SeedOpt, ShardOpt, reading_values)


@handle_errors
def sample_posterior(
    measurement: InputsArg = None,
    sampler_file: SamplerFileOpt = None,
    sampler: SamplerOpt = None,
    prior: PatchPriorOpt = None,
    prior_file: PriorFileOpt = None,
    sampler_param: SamplerParamOpt = None,
    num_samples: Annotated[Optional[int], typer.Option("--num-samples", "-n", help="samples per measurement (trained samplers: default 64; diffusion samplers: 16)")] = None,
    chains: Annotated[Optional[int], typer.Option("--chains", help="Langevin: parallel chains per measurement")] = None,
    quantile: Annotated[Optional[list[float]], typer.Option("--quantile", help="quantile level to store (repeatable; default 0.05 0.25 0.5 0.75 0.95)")] = None,
    save_samples: Annotated[Optional[bool], typer.Option("--save-samples/--no-save-samples", help="store the samples too", show_default=False)] = None,
    precision: Annotated[Optional[str], typer.Option("--precision", help="auto (default), fp32 or bf16: trained image samplers' network evaluations, or Langevin's patchnr subnets, under bfloat16 autocast; auto takes bf16 on GPUs of compute capability 8+ and CPUs with AVX-512 BF16 or AMX")] = None,
    compile: Annotated[Optional[bool], typer.Option("--compile/--no-compile", help="compile the trained sampler's sampling step with torch.compile", show_default=False)] = None,
    importance: Annotated[Optional[int], typer.Option("--importance", help="vector cflow or csnf: draw K·n proposals and keep n by importance resampling against the likelihood (exact as K grows)")] = None,
    calibration: Annotated[Optional[str], typer.Option("--calibration", help="calibration file from `invsolve calibrate` for this sampler: also store conformally calibrated quantiles")] = None,
    config: ConfigOpt = None,
    seed: SeedOpt = None,
    device: DeviceOpt = None,
    output: OutputOpt = None,
    overwrite: OverwriteOpt = None,
    quiet: QuietOpt = None,
    progress: ProgressOpt = None,
    allow_partial: AllowPartialOpt = None,
    wait: WaitOpt = None,
    json: JsonOpt = None,
    preview: PreviewOpt = None,
    batch_size: BatchOpt = None,
    shard: ShardOpt = None,
    resume: ResumeOpt = None,
    operator: OperatorOpt = None,
    op_param: OpParamOpt = None,
    noise: NoiseOpt = None,
    noise_param: NoiseParamOpt = None,
    image_size: ImageSizeOpt = None,
    flats: FlatsOpt = None,
    darks: DarksOpt = None,
    rows: RowsOpt = None,
) -> None:
    """Sample the posterior of each measurement; write mean, std, quantiles (and samples) to HDF5.

    Examples: invsolve sample-posterior m.h5 --sampler-file s.pt -n 64 --output post.h5;
    invsolve sample-posterior m.h5 --prior patchnr --prior-file prior.pt --sampler langevin --chains 4 --output post.h5
    """
    from ..api_batch import PosteriorTask
    from ..posteriors import SampleRequest
    from ..config import parse_assignments
    from ._batch import run_batch_cli
    from ._runs import SamplePosteriorRun

    run = merge_config(SamplePosteriorRun, config, {
        "measurement": measurement or None, "output": output, "sampler": sampler, "sampler_file": sampler_file,
        "prior": prior, "prior_file": prior_file, "sampler_params": parse_assignments(sampler_param, "--sampler-param"),
        "num_samples": num_samples, "chains": chains, "quantiles": quantile, "save_samples": save_samples,
        "seed": seed, "device": device, "overwrite": overwrite, "quiet": quiet, "progress": progress, "allow_partial": allow_partial, "wait": wait, "json": json, "preview": preview,
        **reading_values(operator, op_param, noise, noise_param, image_size, flats, darks, rows),
        "batch_size": batch_size, "shard": shard, "resume": resume, "precision": precision, "compile": compile,
        "importance": importance, "calibration": calibration,
    }, "sample-posterior settings")
    request = SampleRequest(
        sampler=run.sampler, sampler_file=run.sampler_file, prior=run.prior, prior_file=run.prior_file,
        sampler_params=run.sampler_params, num_samples=run.num_samples, chains=run.chains,
        levels=tuple(run.quantiles), keep_samples=run.save_samples, seed=run.seed, precision=run.precision,
        compile=run.compile, importance=run.importance, allow_partial=run.allow_partial,
        track=make_progress(run.progress, run.quiet))
    task = PosteriorTask(request, run.device, run.batch_size, run.calibration)

    run_batch_cli(task, run)
