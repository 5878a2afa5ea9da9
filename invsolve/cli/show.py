"""``invsolve show``: draw invsolve files for a person, to a PNG (or PDF, SVG)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from ._common import handle_errors, out_console
from ._options import OverwriteOpt, QuietOpt

FilesArg = Annotated[Optional[list[str]], typer.Argument(
    help="invsolve files: measurements, reconstructions, posteriors, noise estimates (HDF5), prior or sampler "
         "files (.pt)", show_default=False)]
IndexOpt = Annotated[int, typer.Option("--index", "-k", help="the item of a stack to draw (0 is the first)")]
ReferenceOpt = Annotated[Optional[str], typer.Option(
    "--reference", "-r", help="ground truth (image, stack, .npy, FILE.h5:/DATASET) for the error maps of "
                              "reconstructions and posteriors that store none")]


@handle_errors
def show(
    files: FilesArg = None,
    output: Annotated[Optional[str], typer.Option("--output", "-o", help="figure file to write: .png, .pdf or .svg")] = None,
    index: IndexOpt = 0,
    reference: ReferenceOpt = None,
    overwrite: OverwriteOpt = None,
    quiet: QuietOpt = None,
) -> None:
    """Draw invsolve files as one figure: images with titles and labelled colorbars, curves with axes.

    What each file gives: a measurement its ground truth and data (a sinogram over detector pixel and
    angle for CT); a reconstruction also the error map against the truth (stored, or --reference); a
    posterior its mean, std (on its own scale), quantiles and, when stored, samples; a prior or sampler
    file its training curves; an estimate-noise result its (a, b) and ELBO traces.  Parameter-vector
    problems (linear, gixrf, surrogate) show the measured curve with the posterior predictive band and a
    corner plot of the parameters.

    Several files make one figure with one block of rows per file, in the order given; --index picks the
    same item in each.

    Example: invsolve show rec.h5 --index 3 -o rec.png;  invsolve show m.h5 fbp.h5 tv.h5 -o all.png
    """
    from ..errors import ConfigError
    from ..figures import figure_for, save_figure
    from ..figures.dispatch import FIGURE_SUFFIXES
    from ..figures.output import check_output_file
    from ..io.hdf5 import check_not_input

    if not files:
        raise ConfigError("give one or more invsolve files to draw, e.g. `invsolve show rec.h5 -o rec.png`")
    if not output:
        raise ConfigError("give the figure file to write with --output, e.g. -o figure.png")
    check_output_file(output, bool(overwrite), FIGURE_SUFFIXES, "figure")
    check_not_input(output, files)
    fig = figure_for(files, index=index, reference=reference)
    path = save_figure(fig, output, overwrite=bool(overwrite))
    if not quiet:
        panels = sum(1 for ax in fig.axes if ax.get_label() != "<colorbar>")
        out_console().print(f"wrote {path}: {len(files)} file(s), {panels} panel(s)")
