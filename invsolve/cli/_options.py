"""Option aliases shared by commands."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

ConfigOpt = Annotated[Optional[str], typer.Option("--config", "-c", help="TOML, YAML or JSON file; flags override it")]
SeedOpt = Annotated[Optional[int], typer.Option("--seed", help="random seed (default 0)")]
DeviceOpt = Annotated[Optional[str], typer.Option("--device", help="auto, cpu or cuda (default auto)")]
OutputOpt = Annotated[Optional[str], typer.Option("--output", "-o", help="output HDF5 file")]
OverwriteOpt = Annotated[Optional[bool], typer.Option("--overwrite/--no-overwrite", help="replace an existing output", show_default=False)]
QuietOpt = Annotated[Optional[bool], typer.Option("--quiet/--no-quiet", "-q", help="no progress or summary on the terminal", show_default=False)]
JsonOpt = Annotated[Optional[bool], typer.Option("--json/--no-json", help="machine-readable JSON summary on stdout", show_default=False)]
PreviewOpt = Annotated[Optional[str], typer.Option("--preview", help="write a PNG of the result beside the measurement")]
BatchOpt = Annotated[Optional[int], typer.Option("--batch-size", help="images processed together; each batch is "
                                                  "written, seeded and resumed as a unit (default 8)")]
InputsArg = Annotated[Optional[list[str]], typer.Argument(
    help="measurement file(s) from `invsolve simulate` (N×H×W stacks); globs; - reads paths from stdin",
    show_default=False)]
ShardOpt = Annotated[Optional[str], typer.Option("--shard", help="K/N: do the K-th of N equal shares of the batches "
                                                 "(one process or node each; all write the same outputs)")]
ResumeOpt = Annotated[Optional[bool], typer.Option("--resume/--no-resume", help="keep the slices an earlier run of these "
                                                   "settings completed in the output; do the rest", show_default=False)]
