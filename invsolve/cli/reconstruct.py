"""``invsolve reconstruct``: a reconstruction from a measurement file."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from ._common import handle_errors, merge_config
from ._progress import make_progress
from ._options import (AllowPartialOpt, WaitOpt, ProgressOpt, BatchOpt, ConfigOpt, DarksOpt, DeviceOpt, FlatsOpt, ImageSizeOpt, InputsArg, JsonOpt,
                       NoiseOpt, NoiseParamOpt, OperatorOpt, OpParamOpt, OutputOpt, OverwriteOpt, PreviewOpt,
                       QuietOpt, ResumeOpt, RowsOpt, SeedOpt, ShardOpt, reading_values)


@handle_errors
def reconstruct(
    measurement: InputsArg = None,
    method: Annotated[Optional[str], typer.Option("--method", "-m", help="fbp, tv, bicubic, tikhonov (default: fbp for CT, bicubic for superres, tikhonov for linear vectors, else tv); map with --prior")] = None,
    method_param: Annotated[Optional[list[str]], typer.Option("--method-param", "-M", help="method parameter KEY=VALUE (repeatable)")] = None,
    prior: Annotated[Optional[str], typer.Option("--prior", help="patch prior for a MAP estimate: patchnr, epll or wpp")] = None,
    prior_file: Annotated[Optional[str], typer.Option("--prior-file", help="prior trained by `invsolve train-prior`")] = None,
    zero_shot: Annotated[Optional[bool], typer.Option("--zero-shot/--no-zero-shot", help="superres: train the patch flow on the observation itself", show_default=False)] = None,
    prior_param: Annotated[Optional[list[str]], typer.Option("--prior-param", help="zero-shot training setting KEY=VALUE (e.g. steps=2000)")] = None,
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
    """Reconstruct images from measurements: invsolve files carry their operator and noise; raw data (a sinogram, a projection stack with --flats, a LoDoPaB-CT file, an image, vectors) takes --operator and -P.

    Stacks run in batches written as they finish: --resume completes an interrupted run, --shard K/N splits the batches across processes, --json prints one line per slice. Several inputs (or a glob, or - for paths on stdin) need --output to be a folder.

    Examples: invsolve reconstruct m.h5 --method tv --output tv.h5;
    invsolve reconstruct --operator ct -P angles_file=theta.npy -P endpoint=false sino.npy -o rec.h5
    """
    from ..api_batch import ReconstructTask
    from ..config import parse_assignments
    from ._batch import run_batch_cli
    from ._runs import ReconstructRun

    run = merge_config(ReconstructRun, config, {
        "measurement": measurement or None, "output": output, "method": method,
        "method_params": parse_assignments(method_param, "--method-param"), "prior": prior,
        "prior_file": prior_file, "zero_shot": zero_shot, "prior_params": parse_assignments(prior_param, "--prior-param"),
        "seed": seed, "device": device, "overwrite": overwrite, "quiet": quiet, "progress": progress, "allow_partial": allow_partial, "wait": wait, "json": json, "preview": preview,
        **reading_values(operator, op_param, noise, noise_param, image_size, flats, darks, rows),
        "batch_size": batch_size, "shard": shard, "resume": resume,
    }, "reconstruct settings")
    task = ReconstructTask(run.method, run.method_params, run.seed, run.device, run.batch_size, prior=run.prior,
                           prior_file=run.prior_file, zero_shot=run.zero_shot, prior_params=run.prior_params,
                           track=make_progress(run.progress, run.quiet), allow_partial=run.allow_partial)
    run_batch_cli(task, run)
