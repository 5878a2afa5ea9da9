"""``invsolve train-sampler``: train a conditional posterior sampler on simulated pairs."""

from __future__ import annotations

import contextlib
from typing import Annotated, Optional

import typer

from ._common import apply_scale, emit_json, handle_errors, merge_config, out_console
from ._options import ConfigOpt, DeviceOpt, JsonOpt, OverwriteOpt, ProgressOpt, QuietOpt, SeedOpt
from ._progress import callback_progress, make_progress


@contextlib.contextmanager
def _loss_progress(mode: str, quiet: bool, name: str | None):
    """``progress(step, total, loss, val)`` for the sampler training, shown as ``--progress`` says."""
    with callback_progress(make_progress(mode, quiet), f"train {name or 'sampler'}", "--steps N") as update:
        yield lambda step, total, loss, val: update(step, total, loss=loss, **({} if val is None else {"val": val}))


@contextlib.contextmanager
def _kept_checkpoint(output: str | None):
    """Ctrl-C (or SIGTERM) during training: say that no output was written and which checkpoint is kept."""
    try:
        yield
    except KeyboardInterrupt:
        from ..errors import Interrupted
        from ..samplers.base import checkpoint_path
        from ._signals import exit_code, interrupted_message

        ckpt = checkpoint_path(output) if output else None
        if ckpt is None or not ckpt.is_file():
            raise
        raise Interrupted(f"{interrupted_message({})}; the checkpoint {ckpt} is kept: run the same command with "
                          "--resume to continue", exit_code=exit_code()) from None


@handle_errors
def train_sampler(
    sampler: Annotated[Optional[str], typer.Option("--sampler", help="cflow, cfm or mmd-flow (see `invsolve list samplers`)")] = None,
    sampler_param: Annotated[Optional[list[str]], typer.Option("--sampler-param", "-S", help="sampler setting KEY=VALUE, e.g. coupling=independent (repeatable)")] = None,
    operator: Annotated[Optional[str], typer.Option("--operator", help="operator or preset name")] = None,
    op_param: Annotated[Optional[list[str]], typer.Option("--op-param", "-P", help="operator parameter KEY=VALUE (repeatable)")] = None,
    scale: Annotated[Optional[int], typer.Option("--scale", help="superres: the factor (same as -P factor=S)")] = None,
    noise: Annotated[Optional[str], typer.Option("--noise", help="noise model (default: the operator preset's)")] = None,
    noise_param: Annotated[Optional[list[str]], typer.Option("--noise-param", "-N", help="noise parameter KEY=VALUE (repeatable)")] = None,
    images: Annotated[Optional[list[str]], typer.Option("--images", help="training images: files, a glob, a folder or FILE.h5:/stack (repeatable)")] = None,
    crop: Annotated[Optional[int], typer.Option("--crop", help="side of the random training crops (default 64)")] = None,
    prior: Annotated[Optional[str], typer.Option("--prior", help="vector problems: uniform, gaussian or gmm")] = None,
    prior_param: Annotated[Optional[list[str]], typer.Option("--prior-param", help="prior parameter KEY=VALUE, e.g. components=10 (repeatable)")] = None,
    dim: Annotated[Optional[int], typer.Option("--dim", help="vector problems: number of parameters d")] = None,
    steps: Annotated[Optional[int], typer.Option("--steps", help="optimizer steps (default 2000)")] = None,
    batch_size: Annotated[Optional[int], typer.Option("--batch-size", help="pairs per step (default 8 images / 256 vectors)")] = None,
    lr: Annotated[Optional[float], typer.Option("--lr", help="Adam learning rate (default 5e-4 images / 1e-3 vectors)")] = None,
    val_every: Annotated[Optional[int], typer.Option("--val-every", help="steps between validation losses (default 200)")] = None,
    checkpoint_every: Annotated[Optional[int], typer.Option("--checkpoint-every", help="steps between checkpoints (default 500)")] = None,
    resume: Annotated[Optional[bool], typer.Option("--resume/--no-resume", help="continue an interrupted run from the output file", show_default=False)] = None,
    output: Annotated[Optional[str], typer.Option("--output", "-o", help="sampler file to write (.pt)")] = None,
    config: ConfigOpt = None,
    seed: SeedOpt = None,
    device: DeviceOpt = None,
    overwrite: OverwriteOpt = None,
    quiet: QuietOpt = None,
    progress: ProgressOpt = None,
    json: JsonOpt = None,
) -> None:
    """Train a conditional sampler (cflow, cfm or mmd-flow) on pairs x, y = noise(A x) simulated on the fly.

    Example: invsolve train-sampler --sampler cfm --operator superres --scale 4 --images DIR --crop 64 --output s.pt
    """
    from ..api_samplers import train_sampler as api_train
    from ..config import parse_assignments
    from ._runs_samplers import TrainSamplerRun

    op_params = apply_scale(scale, operator, parse_assignments(op_param, "--op-param"))
    run = merge_config(TrainSamplerRun, config, {
        "sampler": sampler, "sampler_params": parse_assignments(sampler_param, "--sampler-param"),
        "operator": operator, "operator_params": op_params, "noise": noise,
        "noise_params": parse_assignments(noise_param, "--noise-param"), "images": images or None, "crop": crop,
        "prior": prior, "prior_params": parse_assignments(prior_param, "--prior-param"), "dim": dim,
        "steps": steps, "batch_size": batch_size, "lr": lr, "val_every": val_every,
        "checkpoint_every": checkpoint_every, "resume": resume, "output": output, "seed": seed, "device": device,
        "overwrite": overwrite, "quiet": quiet, "progress": progress, "json": json,
    }, "train-sampler settings")
    from ..distributed import Dist

    main = Dist.from_env().is_main
    with _loss_progress(run.progress if main else "none", run.quiet, run.sampler) as progress, \
            _kept_checkpoint(run.output):
        info = api_train(
            run.sampler, run.operator, run.operator_params, run.noise, run.noise_params, images=run.images,
            crop=run.crop, prior=run.prior, prior_params=run.prior_params, dim=run.dim,
            sampler_params=run.sampler_params, steps=run.steps, batch_size=run.batch_size, lr=run.lr,
            val_every=run.val_every, val_size=run.val_size, checkpoint_every=run.checkpoint_every,
            schedule=run.schedule, output=run.output, resume=run.resume, overwrite=run.overwrite, seed=run.seed,
            device=run.device, progress=progress)
    if info.get("rank", 0) != 0:  # torchrun: rank 0 reports
        return
    summary = {k: (round(v, 6) if isinstance(v, float) else v) for k, v in info.items() if k != "rank"}
    if run.json_output:
        emit_json(summary)
    elif not run.quiet:
        val = f", validation loss {info['val_loss']:.4f}" if info.get("val_loss") is not None else ""
        out_console().print(f"wrote {info['output']}: {info['sampler']} sampler for {info['operator']} "
                            f"after {info['steps']} steps in {info['seconds']:.1f} s{val}")
