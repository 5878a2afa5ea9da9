"""``invsolve reconstruct``: a reconstruction from a measurement file."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from ._common import emit_json, handle_errors, make_track, merge_config, out_console
from ._options import (BatchOpt, ConfigOpt, DeviceOpt, JsonOpt, OutputOpt, OverwriteOpt, PreviewOpt,
                       QuietOpt, SeedOpt)


@handle_errors
def reconstruct(
    measurement: Annotated[Optional[str], typer.Argument(help="HDF5 measurement written by `invsolve simulate`")] = None,
    method: Annotated[Optional[str], typer.Option("--method", "-m", help="fbp, tv, bicubic, tikhonov (default: fbp for CT, bicubic for superres, else tv); map with --prior")] = None,
    method_param: Annotated[Optional[list[str]], typer.Option("--method-param", "-M", help="method parameter KEY=VALUE (repeatable)")] = None,
    prior: Annotated[Optional[str], typer.Option("--prior", help="patch prior for a MAP estimate: patchnr, epll or wpp")] = None,
    prior_file: Annotated[Optional[str], typer.Option("--prior-file", help="prior trained by `invsolve train-prior`")] = None,
    zero_shot: Annotated[Optional[bool], typer.Option("--zero-shot", help="superres: train the patch flow on the observation itself", show_default=False)] = None,
    prior_param: Annotated[Optional[list[str]], typer.Option("--prior-param", help="zero-shot training setting KEY=VALUE (e.g. steps=2000)")] = None,
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
    """Reconstruct images from a measurement; the operator and noise come from the file.

    Example: invsolve reconstruct m.h5 --method tv --output tv.h5
    """
    from .. import api
    from ..config import parse_assignments
    from ..io.hdf5 import check_output
    from ._runs import ReconstructRun

    run = merge_config(ReconstructRun, config, {
        "measurement": measurement, "output": output, "method": method,
        "method_params": parse_assignments(method_param, "--method-param"), "prior": prior,
        "prior_file": prior_file, "zero_shot": zero_shot, "prior_params": parse_assignments(prior_param, "--prior-param"),
        "seed": seed, "device": device,
        "overwrite": overwrite, "quiet": quiet, "json": json, "preview": preview, "batch_size": batch_size,
    }, "reconstruct settings")
    check_output(run.output, run.overwrite)
    m = api.load_measurement(run.measurement)
    r = api.reconstruct(m, run.method, run.method_params, run.seed, run.device, run.batch_size,
                        track=make_track(run.quiet or run.json_output), prior=run.prior,
                        prior_file=run.prior_file, zero_shot=run.zero_shot, prior_params=run.prior_params)
    path = api.save_reconstruction(r, run.output, run.overwrite)
    if run.preview:
        from ..io.preview import write_preview

        write_preview(run.preview, [m.measurement[0], r.images[0]], run.overwrite)
    summary = {"output": str(path), "method": r.method["name"], "operator": m.operator["name"],
               "images": int(len(r.images)), "seed": run.seed, "device": r.device,
               "seconds": round(r.timings["reconstruct"], 3)}
    if m.ground_truth is not None:
        scores = api.evaluate(r.images, m.ground_truth)
        summary.update(psnr=round(scores["psnr"], 3), ssim=round(scores["ssim"], 4))
    if run.json_output:
        emit_json(summary)
    elif not run.quiet:
        extra = f", PSNR {summary['psnr']:.2f} dB against the stored ground truth" if "psnr" in summary else ""
        out_console().print(f"wrote {path}: {summary['images']} image(s) by {r.method['name']} "
                            f"in {summary['seconds']} s{extra}")
