"""Option aliases shared by commands."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

ConfigOpt = Annotated[Optional[str], typer.Option("--config", "-c", help="TOML, YAML or JSON file; flags override it")]
SeedOpt = Annotated[Optional[int], typer.Option("--seed", help="random seed (default 0)")]
DeviceOpt = Annotated[Optional[str], typer.Option("--device", help="auto, cpu or cuda (default auto)")]
OutputOpt = Annotated[Optional[str], typer.Option("--output", "-o", help="output HDF5 file")]
OverwriteOpt = Annotated[Optional[bool], typer.Option("--overwrite", help="replace an existing output", show_default=False)]
QuietOpt = Annotated[Optional[bool], typer.Option("--quiet", "-q", help="no progress or summary on the terminal", show_default=False)]
JsonOpt = Annotated[Optional[bool], typer.Option("--json", help="machine-readable JSON summary on stdout", show_default=False)]
PreviewOpt = Annotated[Optional[str], typer.Option("--preview", help="write a PNG of the result beside the measurement")]
BatchOpt = Annotated[Optional[int], typer.Option("--batch-size", help="images processed together (default 8)")]
