"""``invsolve train-prior``: learn a patch prior (patchnr, epll, wpp) from a few images."""

from __future__ import annotations

from typing import Annotated, Any, Optional

import typer

from ._common import emit_json, handle_errors, merge_config, out_console, warn_outside_unit_range
from ._options import ConfigOpt, DeviceOpt, JsonOpt, OverwriteOpt, ProgressOpt, QuietOpt, SeedOpt
from ._progress import make_progress


def _noting(track, label: str):
    """The training callback: the latest training and validation value go to the progress display."""
    def callback(record: dict[str, Any]) -> None:
        for key in ("train", "val"):
            if record.get(f"{key}_nll") is not None:
                track.note(**{f"{key} {label}": record[f"{key}_nll"]})

    return callback


@handle_errors
def train_prior(
    images_args: Annotated[Optional[list[str]], typer.Argument(help="more training images (e.g. a shell-expanded glob)", show_default=False)] = None,
    prior: Annotated[Optional[str], typer.Option("--prior", help="patchnr, epll, wpp or diffusion (default patchnr)")] = None,
    images: Annotated[Optional[list[str]], typer.Option("--images", "-i", help="training images: files, a quoted glob, a folder or FILE.h5:/STACK (repeatable)")] = None,
    val: Annotated[Optional[list[str]], typer.Option("--val", help="validation image(s) for the held-out NLL (repeatable)")] = None,
    steps: Annotated[Optional[int], typer.Option("--steps", help="patchnr: Adam steps (default 12000); diffusion: Adam steps over all levels (default 4000); epll: EM iterations")] = None,
    batch_size: Annotated[Optional[int], typer.Option("--batch-size", help="patchnr: patches per step (default 32)")] = None,
    lr: Annotated[Optional[float], typer.Option("--lr", help="patchnr: Adam learning rate (default 1e-4)")] = None,
    prior_param: Annotated[Optional[list[str]], typer.Option("--prior-param", "-P", help="prior parameter KEY=VALUE (repeatable), e.g. patch_size=6 blocks=5 width=512 augment=false (patchnr), n_components=200 n_patches=50000 (epll), n_reference=10000 (wpp), window=64 levels=32,64 backbone=fno noise=laplace (diffusion)")] = None,
    until_plateau: Annotated[Optional[bool], typer.Option("--until-plateau/--no-until-plateau", help="patchnr: stop when the validation NLL stops improving (needs --val; --steps becomes a cap)", show_default=False)] = None,
    checkpoint_every: Annotated[Optional[int], typer.Option("--checkpoint-every", help="patchnr: write a checkpoint every N steps")] = None,
    checkpoint: Annotated[Optional[str], typer.Option("--checkpoint", help="checkpoint file (default OUTPUT.ckpt)")] = None,
    resume: Annotated[Optional[bool], typer.Option("--resume/--no-resume", help="continue from the checkpoint (same settings and images)", show_default=False)] = None,
    output: Annotated[Optional[str], typer.Option("--output", "-o", help="prior file to write (.pt)")] = None,
    config: ConfigOpt = None,
    seed: SeedOpt = None,
    device: DeviceOpt = None,
    overwrite: OverwriteOpt = None,
    quiet: QuietOpt = None,
    progress: ProgressOpt = None,
    json: JsonOpt = None,
) -> None:
    """Train a patch prior on a few images and write it to a prior file.

    Example: invsolve train-prior --prior patchnr --images learn.png --val val.png --output prior.pt
    """
    from pathlib import Path

    from .. import api_priors
    from ..config import parse_assignments
    from ..errors import CheckpointError, ConfigError
    from ..io.hdf5 import check_output
    from ._runs_priors import TrainPriorRun

    all_images = [*(images or []), *(images_args or [])] or None
    run = merge_config(TrainPriorRun, config, {
        "prior": prior, "images": all_images, "val": val, "output": output, "steps": steps,
        "batch_size": batch_size, "lr": lr, "until_plateau": until_plateau, "prior_params": parse_assignments(prior_param, "--prior-param"),
        "checkpoint_every": checkpoint_every, "checkpoint": checkpoint, "resume": resume, "seed": seed,
        "device": device, "overwrite": overwrite, "quiet": quiet, "progress": progress, "json": json,
    }, "train-prior settings")
    if run.prior not in api_priors.prior_names():
        from ..priors.base import PRIORS

        PRIORS.get(run.prior)  # raises with the list of valid names
    params = dict(run.prior_params)
    for flag, key, value in (("--batch-size", "batch_size", run.batch_size), ("--lr", "lr", run.lr),
                             ("--until-plateau", "until_plateau", run.until_plateau or None)):
        if value is not None:
            if run.prior not in ("patchnr", "diffusion") or key == "until_plateau" and run.prior != "patchnr":
                which = "patchnr" if key == "until_plateau" else "patchnr and diffusion"
                raise ConfigError(f"{flag} applies to {which} training only, not --prior {run.prior}")
            params[key] = value
    # a prior file (.pt by custom); --resume replaces it, as train-sampler --resume does
    check_output(run.output, run.overwrite or run.resume, suffixes=None)
    ckpt = run.checkpoint or f"{run.output}.ckpt"
    if run.resume and not Path(ckpt).is_file():
        raise CheckpointError(f"--resume: no checkpoint at {ckpt}; run without --resume (with "
                              "--checkpoint-every N) first, or give --checkpoint PATH")
    ims, sources = api_priors.read_training_images(run.images)
    warn_outside_unit_range(list(ims), "--images")
    vals, val_sources = api_priors.read_training_images(run.val) if run.val else (None, None)
    from ..distributed import Dist

    main = Dist.from_env().is_main
    track = make_progress(run.progress if main else "none", run.quiet)
    prior_obj, hist = api_priors.train_prior(
        run.prior, ims, vals, params, run.steps, run.seed, run.device, run.checkpoint_every,
        ckpt if (run.checkpoint_every or run.resume) else None, run.resume, track=track,
        callback=_noting(track, "W2²" if run.prior == "wpp" else "NLL"), sources=sources, val_sources=val_sources)
    if hist.get("rank", 0) != 0:  # torchrun: rank 0 writes and reports
        return
    path = api_priors.save_prior(prior_obj, run.output, overwrite=run.overwrite or run.resume)
    last = lambda key: None if hist["final"][key] is None else round(hist["final"][key], 6)  # noqa: E731
    sps = hist.get("seconds_per_step")
    summary = {"output": str(path), "prior": run.prior, "steps": hist.get("steps"),
               "train_nll": last("train_nll"), "val_nll": last("val_nll"),
               "value": "w2_semidual" if run.prior == "wpp" else "nll",
               "seconds": round(hist["seconds_total"], 3), "seconds_per_step": round(sps, 6) if sps else None,
               "parameters": prior_obj.num_parameters(), "images": len(ims),
               "device": prior_obj.provenance["device"], "seed": run.seed, "resumed_from": hist.get("resumed_from"),
               "stopped": hist.get("stopped")}
    if prior_obj.kind == "patch":
        summary["patch_size"] = prior_obj.patch_size
    else:  # a diffusion prior: its window and the resolutions it was trained at
        summary.update(window=prior_obj.config.window, levels=hist.get("levels"))
    if run.checkpoint_every:
        summary["checkpoint"] = ckpt
    if run.json_output:
        emit_json(summary)
    elif not run.quiet:
        label = "W2²" if run.prior == "wpp" else "NLL"
        vals_txt = ", ".join(f"{k} {label} {summary[f'{k}_nll']:.4f}" for k in ("train", "val")
                             if summary[f"{k}_nll"] is not None)
        rate = f" ({1e3 * sps:.1f} ms/step)" if sps else ""
        what = (f"on {prior_obj.patch_size}×{prior_obj.patch_size} patches" if prior_obj.kind == "patch" else
                f"on {prior_obj.config.window}² windows at {'/'.join(map(str, hist['levels']))} px")
        label = "denoising loss" if prior_obj.kind == "score" else label
        vals_txt = ", ".join(f"{k} {label} {summary[f'{k}_nll']:.4f}" for k in ("train", "val")
                             if summary[f"{k}_nll"] is not None)
        work = (f"{prior_obj.reference.shape[0]} reference patches" if run.prior == "wpp"
                else f"{summary['steps']} steps" + (" (stopped on a validation plateau)"
                                                      if summary["stopped"] == "plateau" else ""))
        out_console().print(f"wrote {path}: {run.prior} prior {what} from {len(ims)} image(s), "
                            f"{work} in {summary['seconds']} s{rate}" + (f"; {vals_txt}" if vals_txt else ""))
