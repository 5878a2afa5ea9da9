"""``invsolve estimate-noise``: EM-DeepGEM estimation of mixed-noise (a, b) with posteriors."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from ._common import emit_json, handle_errors, merge_config, out_console
from ._options import ConfigOpt, DeviceOpt, JsonOpt, OutputOpt, OverwriteOpt, ProgressOpt, QuietOpt, SeedOpt
from ._progress import callback_progress, make_progress


def _load(run):
    """The measurement: an invsolve file (its operator; -P overrides) or raw data with --operator."""
    from .. import api
    from ..errors import ConfigError, DataError
    from ..io.images import split_spec

    if run.operator is not None:
        from ..operators import operator_entry

        operator_entry(run.operator)  # an unknown name fails here with the list of valid ones
    path, dset = split_spec(run.measurements)
    if path.suffix.lower() in (".h5", ".hdf5") and dset is None:
        m = api.load_measurement(run.measurements, operator_params=run.operator_params)
        if run.operator not in (None, m.operator["name"]):
            raise ConfigError(f"{run.measurements} was simulated with operator {m.operator['name']!r}, "
                              f"not {run.operator!r}; drop --operator or pick the matching file")
        if run.operator_params:
            m.operator = {**m.operator, "params": {**m.operator["params"], **run.operator_params}}
        return m
    if run.operator is None:
        raise ConfigError("raw measured data needs --operator surrogate|gixrf (and its -P parameters)")
    from ..sources.measured import MeasurementReading, open_source

    # measured vectors or a scan (CSV, NPY, FILE.h5:/DATASET): grid and layout from the file
    m = open_source(run.measurements, MeasurementReading(operator=run.operator,
                                                         operator_params=run.operator_params)).load()
    if len(m.operator["image_shape"]) != 1:
        raise DataError(f"estimate-noise is for vector problems (surrogate, gixrf); {run.operator!r} acts on images")
    m.noise = {"name": "mixed", "a": 0.0, "b": 0.0}  # unknown: what the EM estimates
    return m


@handle_errors
def estimate_noise(
    measurements: Annotated[Optional[str], typer.Option("--measurements", "-m", help="HDF5 from `invsolve simulate`, or measured vectors or a scan (CSV, .npy, FILE.h5:/DATASET) with --operator")] = None,
    operator: Annotated[Optional[str], typer.Option("--operator", help="surrogate or gixrf (must match the file's)")] = None,
    op_param: Annotated[Optional[list[str]], typer.Option("--op-param", "-P", help="operator parameter KEY=VALUE (repeatable)")] = None,
    prior: Annotated[Optional[str], typer.Option("--prior", help="prior on the parameters: uniform (default: the operator's box), gaussian")] = None,
    prior_param: Annotated[Optional[list[str]], typer.Option("--prior-param", help="prior parameter KEY=VALUE, e.g. 'low=[-1,-1,-1]'")] = None,
    iterations: Annotated[Optional[int], typer.Option("--iterations", help="outer EM iterations (default 150)")] = None,
    estep: Annotated[Optional[str], typer.Option("--estep", help="forward_kl (default), reverse_kl or cfm")] = None,
    em_param: Annotated[Optional[list[str]], typer.Option("--em-param", "-E", help="EM setting KEY=VALUE, e.g. estep_steps=10 mstep_iterations=50 lr=1e-3 a_init=0.3 select=average (last|best_elbo|average) mstep_importance=5 (0: off)")] = None,
    checkpoint: Annotated[Optional[str], typer.Option("--checkpoint", help="checkpoint file (default OUTPUT.ckpt)")] = None,
    resume: Annotated[Optional[bool], typer.Option("--resume/--no-resume", help="continue from the checkpoint (same settings and data)", show_default=False)] = None,
    config: ConfigOpt = None,
    seed: SeedOpt = None,
    device: DeviceOpt = None,
    output: OutputOpt = None,
    overwrite: OverwriteOpt = None,
    quiet: QuietOpt = None,
    progress: ProgressOpt = None,
    json: JsonOpt = None,
) -> None:
    """Estimate the additive and relative noise levels (a, b) of N measurements jointly (EM-DeepGEM).

    Example: invsolve estimate-noise --operator surrogate --measurements y.h5 --output em.h5 --iterations 150
    """
    from .. import api_metrology as am
    from ..config import parse_assignments
    from ..io.hdf5 import check_output
    from ._runs_metrology import EstimateNoiseRun

    run = merge_config(EstimateNoiseRun, config, {
        "measurements": measurements, "output": output, "operator": operator,
        "operator_params": parse_assignments(op_param, "--op-param"), "prior": prior,
        "prior_params": parse_assignments(prior_param, "--prior-param"), "iterations": iterations, "estep": estep,
        "em_params": parse_assignments(em_param, "--em-param"), "checkpoint": checkpoint, "resume": resume,
        "seed": seed, "device": device, "overwrite": overwrite, "quiet": quiet, "progress": progress, "json": json,
    }, "estimate-noise settings")
    check_output(run.output, run.overwrite or run.resume)  # --resume replaces the output, as train-* do
    m = _load(run)
    settings = dict(run.em_params)
    for key in ("iterations", "estep"):
        if getattr(run, key) is not None:
            settings[key] = getattr(run, key)
    prior_spec = None
    if run.prior is not None or run.prior_params:
        prior_spec = {"name": run.prior or "uniform", **run.prior_params}
    ckpt = run.checkpoint or f"{run.output}.ckpt"
    with callback_progress(make_progress(run.progress, run.quiet), "EM", "--iterations N") as update:
        est = am.estimate_noise(m, prior=prior_spec, settings=settings, seed=run.seed, device=run.device,
                                checkpoint=ckpt, resume=run.resume,
                                progress=lambda it, total, a, b, elbo: update(it, total, a=a, b=b, ELBO=elbo))
    path = am.save_noise_estimate(est, run.output, run.overwrite or run.resume)
    truth = m.noise if m.noise.get("name") == "mixed" and (m.noise.get("a") or m.noise.get("b")) else None
    summary = {"output": str(path), "operator": m.operator["name"], "measurements": int(len(m.measurement)),
               "a": est.a, "b": est.b, "iterations": int(est.result.info["iterations"]),
               "estep": est.settings["estep"], "seed": run.seed, "device": est.device, "checkpoint": ckpt,
               "seconds": round(est.timings["estimate_noise"], 3)}
    if truth is not None:
        summary["noise_in_file"] = {"a": truth.get("a"), "b": truth.get("b")}
    if run.json_output:
        emit_json(summary)
    elif not run.quiet:
        out_console().print(f"wrote {path}: a = {est.a:.5g}, b = {est.b:.5g} from {summary['measurements']} "
                            f"measurement(s) in {summary['seconds']} s")
