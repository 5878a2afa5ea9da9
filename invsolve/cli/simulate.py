"""``invsolve simulate``: y = noise(A x) from an image or a stack, to HDF5."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from ._common import apply_scale, emit_json, handle_errors, merge_config, out_console, warn_outside_unit_range
from ._options import (BatchOpt, ConfigOpt, DeviceOpt, JsonOpt, OutputOpt, OverwriteOpt, PreviewOpt,
                       QuietOpt, SeedOpt)


@handle_errors
def simulate(
    input: Annotated[Optional[list[str]], typer.Option("--input", "-i", help="image or stack: PNG, TIFF (pages), DICOM, .npy, FILE.h5:/DATASET, or a folder or glob of slices; repeat for a list (one stack)")] = None,
    operator: Annotated[Optional[str], typer.Option("--operator", help="operator or preset name, e.g. ct, ct-limited, superres (required unless the config file sets operator; all: `invsolve list operators`)")] = None,
    op_param: Annotated[Optional[list[str]], typer.Option("--op-param", "-P", help="operator parameter KEY=VALUE (repeatable)")] = None,
    scale: Annotated[Optional[int], typer.Option("--scale", help="superres: the factor (same as -P factor=S)")] = None,
    noise: Annotated[Optional[str], typer.Option("--noise", help="noise model (default: the operator preset's)")] = None,
    noise_param: Annotated[Optional[list[str]], typer.Option("--noise-param", "-N", help="noise parameter KEY=VALUE (repeatable)")] = None,
    config: ConfigOpt = None,
    seed: SeedOpt = None,
    device: DeviceOpt = None,
    output: OutputOpt = None,
    overwrite: OverwriteOpt = None,
    quiet: QuietOpt = None,
    json: JsonOpt = None,
    preview: PreviewOpt = None,
    batch_size: BatchOpt = None,
    value_range: Annotated[Optional[str], typer.Option("--range", help="LO,HI: the values mapped to [0, 1], e.g. 0,4095 for 12-bit data in 16-bit files; a window in HU for DICOM (default: the files' bit depth; CT DICOM as mu/mu_max)")] = None,
) -> None:
    """Simulate a noisy measurement of an image or stack and write it to HDF5.

    The operator has no default: give --operator (or operator in --config).

    Example: invsolve simulate --operator ct-limited --input phantom.png --output m.h5 --seed 0

    A folder, a glob or several --input make one stack of equally sized slices (natural name order; DICOM
    slices in InstanceNumber order).
    """
    from .. import api
    from ..config import parse_assignments
    from ..io.hdf5 import check_not_input, check_output
    from ..io.images import read_images
    from ..operators import operator_entry
    from ._runs import SimulateRun

    op_params = apply_scale(scale, operator, parse_assignments(op_param, "--op-param"))
    run = merge_config(SimulateRun, config, {
        "input": (input[0] if len(input) == 1 else input) if input else None, "output": output,
        "range": value_range, "operator": operator, "operator_params": op_params, "noise": noise,
        "noise_params": parse_assignments(noise_param, "--noise-param"), "seed": seed, "device": device,
        "overwrite": overwrite, "quiet": quiet, "json": json, "preview": preview, "batch_size": batch_size,
    }, "simulate settings")
    check_output(run.output, run.overwrite)
    inputs = [run.input] if isinstance(run.input, str) else run.input
    source = ", ".join(inputs)
    check_not_input(run.output, inputs)
    vector = operator_entry(run.operator).cls.domain_ndim == 1
    if run.preview:
        from ..io.preview import check_preview

        check_preview(run.preview, run.overwrite)
        check_not_input(run.preview, inputs)
    if vector:  # vector operators: (d,) or (N, d)
        from ..errors import ConfigError
        from ..io.images import check_finite, read_array

        if len(inputs) > 1 or run.range is not None:
            raise ConfigError(f"the {run.operator} operator takes one file of parameter vectors, as they are; "
                              f"drop {'--range' if run.range is not None else 'the other --input files'}")
        images, single = read_array(run.input), None
        check_finite(images, run.input)
    else:
        images, single = read_images(run.input, run.range)
        warn_outside_unit_range(images, source)
    m = api.simulate(images, run.operator, run.operator_params, run.noise, run.noise_params, run.seed,
                     run.device, run.batch_size, source=source, single=single)
    path = api.save_measurement(m, run.output, run.overwrite)
    if run.preview:
        from ..errors import DiskFullError
        from ..io.preview import write_preview

        try:
            write_preview(run.preview, path, run.overwrite)
        except DiskFullError:
            path.unlink(missing_ok=True)  # a quick measurement: all or nothing
            raise
    summary = {"output": str(path), "operator": m.operator["name"], "noise": m.noise["name"],
               "images": int(len(m.measurement)), "measurement_shape": list(m.measurement.shape[1:]),
               "seed": run.seed, "device": m.device, "seconds": round(m.timings["simulate"], 3)}
    if run.json_output:
        emit_json(summary)
    elif not run.quiet:
        out_console().print(
            f"wrote {path}: {summary['images']} measurement(s) of shape {tuple(summary['measurement_shape'])} "
            f"({m.operator['name']}, {m.noise['name']} noise) in {summary['seconds']} s"
        )
