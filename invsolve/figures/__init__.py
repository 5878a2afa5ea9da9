"""Figures of invsolve files for a person, and the HTML run report.

:func:`figure_for` draws any invsolve file (measurement, reconstruction, posterior, noise estimate, prior
or sampler file) as a matplotlib Figure on the Agg backend (nothing is shown on screen);
:func:`save_figure` writes it atomically; :func:`write_report` writes one self-contained HTML page of
several files.  One module per kind of figure: :mod:`.images`, :mod:`.posterior`, :mod:`.vectors` (with
:mod:`.corner`), :mod:`.noise`, :mod:`.training`; :mod:`.dispatch` picks one.

matplotlib loads when a figure is drawn, not when this package is imported.
"""

from __future__ import annotations

from .dispatch import figure_for, save_figure
from .report import write_report

__all__ = ["figure_for", "save_figure", "write_report"]
