"""``invsolve evaluate``: PSNR and SSIM of results against a reference."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from ._common import emit_json, handle_errors, merge_config, out_console
from ._options import ConfigOpt, JsonOpt


@handle_errors
def evaluate(
    inputs: Annotated[Optional[list[str]], typer.Argument(help="results (HDF5 from reconstruct) or images")] = None,
    reference: Annotated[Optional[str], typer.Option("--reference", "-r", help="ground truth image or stack (default: the one stored in each result)")] = None,
    config: ConfigOpt = None,
    json: JsonOpt = None,
) -> None:
    """PSNR and SSIM (data range 1) of each input and their mean; JSON Lines with --json.

    Example: invsolve evaluate fbp.h5 tv.h5 --reference phantom.png --json
    """
    from .. import api
    from ..errors import DataError
    from ..io.images import read_images
    from ._runs import EvaluateRun

    run = merge_config(EvaluateRun, config, {"inputs": inputs, "reference": reference, "json": json},
                       "evaluate settings")
    ref = read_images(run.reference)[0] if run.reference else None
    rows = []
    for spec in run.inputs:
        est = api.load_estimate(spec)
        truth = ref if ref is not None else est.ground_truth
        if truth is None:
            raise DataError(f"{spec} holds no ground truth; give one with --reference")
        s = api.evaluate(est.images, truth)
        row = {"input": spec, "psnr": s["psnr"], "ssim": s["ssim"], "n": len(s["psnr_per_slice"])}
        row.update(api.coverage(est, truth[None] if truth.ndim == 2 else truth))
        if row["n"] > 1:
            row.update(psnr_per_slice=s["psnr_per_slice"], ssim_per_slice=s["ssim_per_slice"])
        rows.append(row)
        if run.json_output:
            emit_json(row)
    if not run.json_output:
        from rich.table import Table

        t = Table(title="evaluation (data range 1)")
        cov = sorted({k for r in rows for k in r if k.startswith("coverage_")})
        for c in ("input", "images", "PSNR [dB]", "SSIM", *[f"{k[9:]}% interval coverage" for k in cov]):
            t.add_column(c, justify="left" if c == "input" else "right")
        for r in rows:
            t.add_row(r["input"], str(r["n"]), f"{r['psnr']:.2f}", f"{r['ssim']:.4f}",
                      *[f"{r[k]:.3f}" if k in r else "-" for k in cov])
        if len(rows) > 1:
            import numpy as np

            t.add_row("mean", "", f"{np.mean([r['psnr'] for r in rows]):.2f}",
                      f"{np.mean([r['ssim'] for r in rows]):.4f}", *["" for _ in cov])
        out_console().print(t)
