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
    value_range: Annotated[Optional[str], typer.Option("--range", help="LO,HI: the reference's values mapped to [0, 1], as given to `simulate --range` (default: its bit depth)")] = None,
    train: Annotated[Optional[str], typer.Option("--train", help="sample-prior files: the training images, for the transport novelty distance (memorisation)")] = None,
    seed: Annotated[Optional[int], typer.Option("--seed", help="sample-prior files: seed of the reference crops and slices (default 0)")] = None,
) -> None:
    """PSNR and SSIM (data range 1) of each input and their mean; JSON Lines with --json.

    With --json, one line per input, then a line with the mean over the inputs (key ``mean_of``: the
    inputs); every line names its ``reference`` (file and dataset; the stored /ground_truth by default).

    Results of parameter vectors (linear, gixrf, surrogate) get the RMSE and the
    mean relative error per parameter instead.

    Samples of a diffusion prior (`sample-prior` files) get the energy distance to random crops of the
    --reference images (held out), their Vendi score, and with --train the transport novelty distance.

    Example: invsolve evaluate fbp.h5 tv.h5 --reference phantom.png --json
    """
    from .. import api
    from ..errors import ConfigError, DataError
    from ..api_evaluate import mean_record, reference_record
    from ..io.images import as_stack, check_finite, read_array
    from ._runs import EvaluateRun

    run = merge_config(EvaluateRun, config, {"inputs": inputs, "reference": reference, "json": json,
                                              "range": value_range, "train": train, "seed": seed},
                       "evaluate settings")
    from ..api_diffusion import read_prior_samples

    generated = [(spec, read_prior_samples(spec)) for spec in run.inputs]
    if any(x is not None for _, x in generated):
        return _evaluate_samples(run, generated)
    if run.train is not None:
        raise ConfigError("--train applies to sample-prior files (the transport novelty distance); drop it")
    if run.range is not None and not run.reference:
        raise ConfigError("--range applies to the --reference image; give --reference, or drop --range")
    ref = read_array(run.reference, value_range=run.range) if run.reference else None
    if ref is not None:
        check_finite(ref, run.reference)
    ests = [(spec, api.load_estimate(spec)) for spec in run.inputs]
    if len({e.vector for _, e in ests}) > 1:
        raise DataError("evaluate takes image results or parameter-vector results in one call, not both; "
                        "evaluate them separately")
    rows = []
    for spec, est in ests:
        truth = ref if ref is not None else est.ground_truth
        if truth is None:
            raise DataError(f"{spec} holds no ground truth; give one with --reference")
        if est.vector:
            truth = truth[None] if truth.ndim == 1 else truth
            s = api.evaluate_vectors(est.images, truth)
            row = {"input": spec, **s, "n": len(est.images)}
        else:
            truth = as_stack(truth, str(run.reference or spec))[0] if truth.ndim != 3 else truth
            s = api.evaluate(est.images, truth)
            row = {"input": spec, "psnr": s["psnr"], "ssim": s["ssim"], "n": len(s["psnr_per_slice"])}
            if row["n"] > 1:
                row.update(psnr_per_slice=s["psnr_per_slice"], ssim_per_slice=s["ssim_per_slice"])
        row.update(api.coverage(est, truth))
        row["reference"] = reference_record(run.reference, spec, run.range)
        rows.append(row)
        if run.json_output:
            emit_json(row)
    if run.json_output:
        emit_json(mean_record(rows))
    if not run.json_output and ests[0][1].vector:
        _vector_table(rows)
    elif not run.json_output:
        from rich.table import Table

        t = Table(title="evaluation (data range 1)")
        cov = _coverage_keys(rows)
        for c in ("input", "images", "PSNR [dB]", "SSIM", *[_coverage_title(k) for k in cov]):
            t.add_column(c, justify="left" if c == "input" else "right")
        for r in rows:
            t.add_row(r["input"], str(r["n"]), f"{r['psnr']:.2f}", f"{r['ssim']:.4f}",
                      *[f"{r[k]:.3f}" if k in r else "-" for k in cov])
        if len(rows) > 1:
            import numpy as np

            t.add_row("mean", "", f"{np.mean([r['psnr'] for r in rows]):.2f}",
                      f"{np.mean([r['ssim'] for r in rows]):.4f}", *["" for _ in cov])
        out_console().print(t)


def _coverage_keys(rows) -> list[str]:
    """The coverage keys of the rows: raw ones first, then the calibrated ones, each by mass."""
    keys = {k for r in rows for k in r if "coverage_" in k}
    return sorted(keys, key=lambda k: (k.startswith("calibrated_"), int(k.rsplit("_", 1)[1])))


def _coverage_title(key: str) -> str:
    mass = key.rsplit("_", 1)[1]
    return f"{mass}% interval coverage, calibrated" if key.startswith("calibrated_") else f"{mass}% interval coverage"


def _vector_table(rows) -> None:
    """The table of parameter-vector errors, one row per input."""
    from rich.table import Table

    t = Table(title="evaluation of parameter vectors")
    cov = _coverage_keys(rows)
    for c in ("input", "items", "RMSE per parameter", "relative error per parameter",
              *[_coverage_title(k) for k in cov]):
        t.add_column(c, justify="left" if c == "input" else "right")
    for r in rows:
        t.add_row(r["input"], str(r["n"]), " ".join(f"{v:.4g}" for v in r["rmse_per_parameter"]),
                  " ".join(f"{v:.3f}" for v in r["relative_error_per_parameter"]),
                  *[f"{r[k]:.3f}" if k in r else "-" for k in cov])
    out_console().print(t)


def _evaluate_samples(run, generated) -> None:
    """Energy distance, Vendi score and TNovD of sample-prior files: one row each."""
    from ..api_diffusion import evaluate_samples
    from ..errors import ConfigError
    from ..io.images import read_images

    if any(x is None for _, x in generated):
        raise ConfigError("evaluate takes sample-prior files or results in one call, not both; evaluate them "
                          "separately")
    if run.reference is None:
        raise ConfigError("sample-prior files are compared with held-out images: give --reference IMAGES")
    ref = list(read_images(run.reference, value_range=run.range)[0])
    train = list(read_images(run.train)[0]) if run.train else None
    rows = []
    for spec, xs in generated:
        row = {"input": spec, "samples": len(xs), **evaluate_samples(xs, ref, train, seed=run.seed)}
        rows.append(row)
        if run.json_output:
            emit_json(row)
    if run.json_output:
        return
    from rich.table import Table

    t = Table(title="evaluation of generated samples")
    cols = ["input", "samples", "energy distance", "Vendi score"] + (["TNovD", "memorisation term"] if train else [])
    for c in cols:
        t.add_column(c, justify="left" if c == "input" else "right")
    for r in rows:
        extra = [f"{r['tnovd']:.4f}", f"{r['tnovd_memorization']:.4f}"] if train else []
        t.add_row(r["input"], str(r["samples"]), f"{r['energy_distance']:.4g}", f"{r['vendi']:.2f}", *extra)
    out_console().print(t)
