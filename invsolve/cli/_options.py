"""Option aliases shared by commands."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

ConfigOpt = Annotated[Optional[str], typer.Option("--config", "-c", help="TOML, YAML or JSON file; flags override it")]
SeedOpt = Annotated[Optional[int], typer.Option("--seed", help="random seed (default 0)")]
DeviceOpt = Annotated[Optional[str], typer.Option("--device", help="auto, cpu or cuda (default auto)")]
OutputOpt = Annotated[Optional[str], typer.Option("--output", "-o", help="output HDF5 file")]
OverwriteOpt = Annotated[Optional[bool], typer.Option("--overwrite/--no-overwrite", help="replace an existing output", show_default=False)]
ProgressOpt = Annotated[Optional[str], typer.Option("--progress", help="auto (a bar on a terminal, plain lines in a log or pipe, none with --quiet), bar, lines or none", show_default=False)]
WaitOpt = Annotated[Optional[bool], typer.Option("--wait/--no-wait", help="when another run is writing the same output, wait for it to end instead of refusing", show_default=False)]
AllowPartialOpt = Annotated[Optional[bool], typer.Option("--allow-partial/--no-allow-partial", help="use a prior or sampler file whose training did not finish (a checkpoint), with a warning", show_default=False)]
QuietOpt = Annotated[Optional[bool], typer.Option("--quiet/--no-quiet", "-q", help="no progress or summary on the terminal", show_default=False)]
JsonOpt = Annotated[Optional[bool], typer.Option("--json/--no-json", help="machine-readable JSON summary on stdout", show_default=False)]
PreviewOpt = Annotated[Optional[str], typer.Option("--preview", help="write FILE.png: the figure `invsolve show` draws of the output (item 0)")]
BatchOpt = Annotated[Optional[int], typer.Option("--batch-size", help="images processed together; each batch is "
                                                  "written, seeded and resumed as a unit (default 8)")]
InputsArg = Annotated[Optional[list[str]], typer.Argument(
    help="measurement file(s) from `invsolve simulate` (N×H×W stacks), or raw data with --operator (FILE.h5:/DATASET"
    "[A:B], .npy, TIFF, PNG, CSV); globs; - reads paths from stdin",
    show_default=False)]
ShardOpt = Annotated[Optional[str], typer.Option("--shard", help="K/N: do the K-th of N equal shares of the batches "
                                                 "(one process or node each; all write the same outputs)")]
ResumeOpt = Annotated[Optional[bool], typer.Option("--resume/--no-resume", help="keep the slices an earlier run of these "
                                                   "settings completed in the output; do the rest", show_default=False)]

# -- choosing a posterior sampler (sample-posterior, calibrate) ------------------------------------------------
SamplerFileOpt = Annotated[Optional[str], typer.Option("--sampler-file", help="conditional sampler from `invsolve "
                                                       "train-sampler`")]
SamplerOpt = Annotated[Optional[str], typer.Option("--sampler", help="langevin (with --prior), mcmc, "
                                                   "diffpir, dps or annealed-langevin (a diffusion --prior-file), "
                                                   "or the sampler in --sampler-file")]
PatchPriorOpt = Annotated[Optional[str], typer.Option("--prior", help="patch prior for Langevin: patchnr, epll or wpp; "
                                                                   "or diffusion (its samplers: --sampler)")]
PriorFileOpt = Annotated[Optional[str], typer.Option("--prior-file", help="prior trained by `invsolve train-prior`")]
SamplerParamOpt = Annotated[Optional[list[str]], typer.Option("--sampler-param", "-S", help="sampler setting KEY=VALUE "
                                                              "(Langevin: steps, burn_in, thin, step_size, lam, "
                                                              "n_patches; mcmc: method, steps, ...; a cfm "
                                                              "--sampler-file: solver, ode_steps; csnf: final_steps, "
                                                              "step_size; diffpir: steps, lam, zeta, prox_steps; "
                                                              "dps: steps, zeta; annealed-langevin: levels, "
                                                              "steps_per_level, final_steps, delta)")]

# -- describing data invsolve did not write (reconstruct, sample-posterior) ------------------------------------
OperatorOpt = Annotated[Optional[str], typer.Option("--operator", help="operator that produced raw data (ct, ct-lowdose, "
                                                    "ct-limited, superres, inpaint, blur, surrogate, gixrf, linear); "
                                                    "invsolve files carry their own")]
OpParamOpt = Annotated[Optional[list[str]], typer.Option("--op-param", "-P", help="operator parameter KEY=VALUE of raw "
                                                         "data (repeatable), e.g. angles_file=theta.npy center=auto")]
NoiseOpt = Annotated[Optional[str], typer.Option("--noise", help="noise model of the data: gaussian, poisson, mixed "
                                                 "(default: the operator's, or the file's)")]
NoiseParamOpt = Annotated[Optional[list[str]], typer.Option("--noise-param", "-N", help="noise parameter KEY=VALUE "
                                                            "(repeatable)")]
ImageSizeOpt = Annotated[Optional[str], typer.Option("--image-size", help="H,W (or one side) of the images, where the "
                                                     "operator leaves it open (CT default: detectors × detectors)")]
FlatsOpt = Annotated[Optional[str], typer.Option("--flats", help="flat fields of raw projections, e.g. "
                                                 "proj.h5:/exchange/data_white (a projection input then is "
                                                 "angles × rows × columns)")]
DarksOpt = Annotated[Optional[str], typer.Option("--darks", help="dark fields of raw projections, e.g. "
                                                 "proj.h5:/exchange/data_dark")]
RowsOpt = Annotated[Optional[str], typer.Option("--rows", help="detector rows START:STOP of raw projections to "
                                                "reconstruct (one slice per row)")]


def reading_values(operator, op_param, noise, noise_param, image_size, flats, darks, rows) -> dict:
    """The flags describing foreign data as settings keys (for ``merge_config``)."""
    from ..config import parse_assignments
    from ..errors import ConfigError

    size = None
    if image_size is not None:
        try:
            size = [int(v) for v in image_size.replace("x", ",").split(",") if v.strip()]
        except ValueError:
            raise ConfigError(f"--image-size {image_size!r} is not H,W or one side (e.g. 362 or 256,320)") from None
    return {"operator": operator, "operator_params": parse_assignments(op_param, "--op-param"), "noise": noise,
            "noise_params": parse_assignments(noise_param, "--noise-param"), "image_size": size, "flats": flats,
            "darks": darks, "rows": rows}
