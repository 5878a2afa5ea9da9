"""The HTML run report: one self-contained page about several invsolve files, to open after a batch run on
a remote server.

The page holds the figure of each file (:func:`invsolve.figures.figure_for`, embedded as base64 PNG),
an evaluation table (PSNR/SSIM, or RMSE for parameter vectors, against the stored ground truth or a
reference), and each file's settings, provenance and timings.  It has inline CSS and nothing else: no
scripts, no links to other files or sites.  Every string taken from a file is HTML-escaped.
"""

from __future__ import annotations

import base64
import json
from datetime import datetime, timezone
from html import escape
from pathlib import Path
from typing import Any, Sequence

from ..errors import DataError, InvsolveError

__all__ = ["build_report", "write_report", "REPORT_SUFFIXES"]

#: File endings a report is written to.
REPORT_SUFFIXES = (".html", ".htm")

_CSS = """
body { font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 1900px; padding: 0 1em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; border-top: 1px solid #ccc; padding-top: .8em; }
h3 { font-size: 1em; margin-bottom: .3em; }
table { border-collapse: collapse; margin: .4em 0 1em; font-size: .9em; }
th, td { border: 1px solid #ccc; padding: .25em .6em; text-align: left; vertical-align: top; }
th { background: #f2f2f2; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
pre { margin: 0; white-space: pre-wrap; word-break: break-word; max-width: 110ch; font-size: .85em; }
img { max-width: 100%; height: auto; border: 1px solid #ddd; }
.note { color: #a33; } .meta { color: #666; font-size: .9em; }
"""


def _value(v: Any) -> str:
    """A value for a table cell, escaped: JSON for structures, plain text otherwise."""
    if isinstance(v, (dict, list, tuple)):
        return f"<pre>{escape(json.dumps(v, default=str, ensure_ascii=False))}</pre>"
    if isinstance(v, float):
        return escape(f"{v:.6g}")
    return escape(str(v))


def _num(row: dict[str, Any], key: str, fmt: str) -> str:
    v = row.get(key)
    return f'<td class="num">{escape(format(v, fmt))}</td>' if isinstance(v, (int, float)) else "<td>–</td>"


def _what(s) -> str:
    spec = s.config("method") or s.config("sampler") or (s.attrs.get("sampler") if s.kind == "sampler" else None) \
        or (s.attrs.get("prior") if s.kind == "prior" else None)
    return spec.get("name", "?") if isinstance(spec, dict) else str(spec or "–")


def _evaluation_table(entries) -> str:
    rows = [(i, s, ev) for i, (s, _, ev) in enumerate(entries) if ev is not None]
    if not rows:
        return "<p>No file here holds an estimate to evaluate.</p>"
    head = ("file", "kind", "operator", "method / sampler", "items", "PSNR [dB]", "SSIM", "RMSE", "relative error",
            "50 % coverage", "90 % coverage", "note")
    out = ["<table id=\"evaluation\"><thead><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr></thead><tbody>"]
    for i, s, ev in rows:
        out.append(
            f'<tr><td><a href="#file-{i}">{escape(str(s.path))}</a></td><td>{escape(s.kind)}</td>'
            f"<td>{escape(str(s.operator.get('name', '–')))}</td><td>{escape(_what(s))}</td>"
            f'<td class="num">{escape(str(ev.get("items", "")))}</td>'
            + _num(ev, "psnr", ".2f") + _num(ev, "ssim", ".4f") + _num(ev, "rmse", ".4g")
            + _num(ev, "relative_error", ".3g") + _num(ev, "coverage_50", ".3f") + _num(ev, "coverage_90", ".3f")
            + f'<td class="note">{escape(ev.get("note", ""))}</td></tr>')
    out.append("</tbody></table>")
    return "\n".join(out)


def _file_section(i: int, s, png: bytes | None, problem: str | None) -> str:
    from .summary import settings, timings

    parts = [f'<h2 id="file-{i}">{escape(str(s.path))} <span class="meta">({escape(s.kind)})</span></h2>']
    if png is not None:
        data = base64.b64encode(png).decode("ascii")
        parts.append(f'<img alt="figure of {escape(s.path.name)}" src="data:image/png;base64,{data}">')
    else:
        parts.append(f'<p class="note">no figure: {escape(problem or "")}</p>')
    t = timings(s)
    if t:
        parts.append("<h3>Timing</h3><table class=\"timing\"><thead><tr><th>stage</th><th>seconds</th></tr></thead>"
                     "<tbody>" + "".join(f'<tr><td>{escape(k)}</td><td class="num">{v:.3f}</td></tr>' for k, v in t)
                     + "</tbody></table>")
    parts.append("<h3>Settings and provenance</h3><table class=\"settings\"><tbody>"
                 + "".join(f"<tr><th>{escape(str(k))}</th><td>{_value(v)}</td></tr>" for k, v in settings(s))
                 + "</tbody></table>")
    return "\n".join(parts)


def build_report(paths: Sequence[str | Path], index: int = 0, reference: str | None = None,
                 title: str | None = None) -> str:
    """The report page as one HTML string.

    Arguments:
        paths: invsolve files (HDF5 results, prior or sampler files), in the order shown.
        index: The item of stacks drawn in the figures (the evaluation covers all items).
        reference: Ground truth for files that store none (as for ``invsolve evaluate --reference``).
        title: The page title (default: "invsolve run report").

    A file that cannot be drawn (e.g. a batch output not complete yet) gets its reason in place of the
    figure; a missing file or one invsolve did not write fails the whole report.
    """
    from .. import __version__
    from .dispatch import block_for, compose, figure_png, read_reference
    from .files import open_file
    from .summary import evaluation, read_report_reference

    if not paths:
        raise DataError("give one or more invsolve files to report on")
    ref_all = read_report_reference(reference)
    entries = []
    for p in paths:
        s = open_file(p, index, incomplete_ok=True)
        drawn: tuple[bytes | None, str | None] = (None, s.pending())
        if drawn[1] is None:
            try:
                ref = read_reference(reference, s) if reference and s.kind in ("reconstruction", "posterior") \
                    else None
                drawn = (figure_png(compose([block_for(s, ref)])), None)
            except InvsolveError as exc:
                drawn = (None, str(exc))
        entries.append((s, drawn, evaluation(s, ref_all)))
    heading = escape(title or "invsolve run report")
    created = datetime.now(timezone.utc).isoformat(timespec="seconds")
    listing = "".join(f'<li><a href="#file-{i}">{escape(str(s.path))}</a> ({escape(s.kind)})</li>'
                      for i, (s, _, _) in enumerate(entries))
    body = [f"<h1>{heading}</h1>",
            f'<p class="meta">written {escape(created)} by invsolve {escape(__version__)}; {len(entries)} file(s); '
            f"figures show item {index} of stacks</p>", f"<ul>{listing}</ul>",
            "<h2>Evaluation</h2>", _evaluation_table(entries)]
    body += [_file_section(i, s, png, problem) for i, (s, (png, problem), _) in enumerate(entries)]
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{heading}</title><style>{_CSS}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")


def write_report(paths: Sequence[str | Path], output: str | Path, index: int = 0, reference: str | None = None,
                 overwrite: bool = False, title: str | None = None) -> Path:
    """Write :func:`build_report` atomically to ``output`` (.html); an existing file needs ``overwrite``.

    Example:
        >>> write_report(["m.h5", "tv.h5", "post.h5"], "report.html")  # doctest: +SKIP
    """
    from ..io.atomic import atomic_bytes
    from .output import check_output_file

    p = check_output_file(output, overwrite, REPORT_SUFFIXES, "report")
    page = build_report(paths, index, reference, title)
    return atomic_bytes(p, page.encode("utf-8"), suffix=".html")
