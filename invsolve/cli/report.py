"""``invsolve report``: one self-contained HTML page about a run's files."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from ._common import handle_errors, out_console
from ._options import OverwriteOpt, QuietOpt
from .show import IndexOpt

ResultsArg = Annotated[Optional[list[str]], typer.Argument(
    help="invsolve files: measurements, reconstructions, posteriors, noise estimates (HDF5), prior or sampler "
         "files (.pt)", show_default=False)]


@handle_errors
def report(
    results: ResultsArg = None,
    output: Annotated[Optional[str], typer.Option("--output", "-o", help="HTML file to write (.html)")] = None,
    index: IndexOpt = 0,
    reference: Annotated[Optional[str], typer.Option("--reference", "-r", help="ground truth image, stack or parameter vectors (.npy, FILE.h5:/DATASET) for files that store none")] = None,
    title: Annotated[Optional[str], typer.Option("--title", help="the page title (default: invsolve run report)")] = None,
    overwrite: OverwriteOpt = None,
    quiet: QuietOpt = None,
) -> None:
    """Write one HTML page about a run: every file's figure (as `invsolve show` draws it), an evaluation
    table (PSNR/SSIM, or RMSE for parameter vectors, against the stored ground truth or --reference, with
    credible-interval coverage), and each file's settings, provenance and timings.

    The page is self-contained (figures embedded, inline style, no scripts or links), so it can be copied
    from a remote server and opened anywhere.  --index picks the item of stacks that the figures show;
    the evaluation covers all items.

    Example: invsolve report m.h5 fbp.h5 tv.h5 post.h5 -o report.html
    """
    from ..errors import ConfigError
    from ..figures import write_report
    from ..figures.output import check_output_file
    from ..figures.report import REPORT_SUFFIXES
    from ..io.hdf5 import check_not_input

    if not results:
        raise ConfigError("give one or more invsolve files to report on, e.g. `invsolve report tv.h5 -o report.html`")
    if not output:
        raise ConfigError("give the page to write with --output, e.g. -o report.html")
    check_output_file(output, bool(overwrite), REPORT_SUFFIXES, "report")
    check_not_input(output, results)
    path = write_report(results, output, index=index, reference=reference, overwrite=bool(overwrite), title=title)
    if not quiet:
        out_console().print(f"wrote {path}: a report on {len(results)} file(s)")
