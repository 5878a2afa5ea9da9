"""Training curves of prior files (``train-prior``) and sampler files (``train-sampler``): the training loss
and the validation loss (NLL for priors) against the step."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .files import Shown
from .panels import Block, block_size, describe_spec, grid, note_panel

__all__ = ["prior_block", "sampler_block", "prior_curves", "sampler_curves"]


def prior_curves(s: Shown) -> dict[str, list[list[float]]] | None:
    """``{"train": [[step, nll]], "val": [[step, nll]]}`` of a prior file (stored in its provenance) or of a
    training checkpoint (its history); None when the file stores none."""
    prov = s.attrs.get("provenance") or {}
    curves = prov.get("curves") if isinstance(prov, dict) else None
    if not curves:
        hist = (s.attrs.get("training") or {}).get("history")
        curves = hist if isinstance(hist, dict) else None
    if not curves or not (curves.get("train") or curves.get("val")):
        return None
    return {k: [list(map(float, p)) for p in curves.get(k) or [] if len(p) == 2] for k in ("train", "val")}


def sampler_curves(s: Shown) -> dict[str, list[list[float]]] | None:
    """``{"train": [[step, loss]], "val": [[step, loss]]}`` of a sampler file's training history, or None."""
    hist = (s.attrs.get("training") or {}).get("history")
    if not isinstance(hist, dict) or not hist.get("step"):
        return None
    steps = hist["step"]
    pairs = {k: [[float(t), float(v)] for t, v in zip(steps, hist.get(k) or []) if v is not None]
             for k in ("loss", "val")}
    return {"train": pairs["loss"], "val": pairs["val"]}


#: What each sampler's training loss is.
_LOSS = {"cflow": "negative log-likelihood per dimension [nats]",
         "cfm": "flow-matching loss (mean squared velocity error)", "mmd-flow": "MMD-flow distillation loss"}


def _curve_panel(ax, curves: dict[str, list[list[float]]], ylabel: str, names: tuple[str, str]) -> None:
    styles = {"train": dict(color="tab:blue", lw=1.4, marker="."), "val": dict(color="tab:orange", lw=1.6, marker="o",
                                                                               ms=4)}
    allv = []
    for key, label in zip(("train", "val"), names):
        pts = np.asarray(curves.get(key) or [], np.float64).reshape(-1, 2)
        if len(pts):
            ax.plot(pts[:, 0], pts[:, 1], label=f"{label} (last {pts[-1, 1]:.4g})", **styles[key])
            allv.append(pts[:, 1])
    vals = np.concatenate(allv) if allv else np.zeros(0)
    vals = vals[np.isfinite(vals)]
    if len(vals) and vals.min() > 0 and vals.max() / vals.min() > 20:
        ax.set_yscale("log")
    ax.set_xlabel("training step")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)


def _source_names(files: Any) -> str:
    if not files:
        return ""
    names = [Path(str(f)).name for f in files]
    return ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")


def prior_block(s: Shown) -> Block:
    """One panel: training and validation NLL of the prior against the step (a note when none is stored)."""
    curves = prior_curves(s)
    prov = s.attrs.get("provenance") or {}
    config = s.attrs.get("config") or {}
    name = s.attrs.get("prior", "?")
    score = "window" in config  # a diffusion prior: its curves are denoising losses, not NLLs

    def draw(target) -> None:
        ax = grid(target, [1])[0][0]
        ax.set_label("training_curves")
        if curves is None:
            note_panel(ax, "training curves", "this prior file stores no training curves\n(written by an older "
                       "invsolve, or a prior\nwithout training steps)", name="training_curves")
            return
        if score:
            ax.set_title(f"{name} prior: denoising loss", fontsize=10)
            _curve_panel(ax, curves, "mean squared error of the predicted noise per pixel",
                         ("training loss", "validation loss"))
            return
        ax.set_title(f"{name} prior: negative log-likelihood", fontsize=10)
        _curve_panel(ax, curves, "NLL per patch [nats, up to a constant]", ("training NLL", "validation NLL"))

    p, w, levels = config.get("patch_size"), config.get("window"), prov.get("levels")
    bits = [f"{p}×{p} patches" if p else "",
            f"{w}² windows" + (f" at {'/'.join(map(str, levels))} px" if levels else "") if w else "",
            f"{prov.get('steps')} steps" if prov.get("steps") else "",
            f"trained on {_source_names(prov.get('images'))}" if prov.get("images") else ""]
    title = f"{s.path.name} — {name} prior file: " + ", ".join(b for b in bits if b)
    return Block(title, *block_size(1, 1, (6.0, 3.6)), draw)


def sampler_block(s: Shown) -> Block:
    """One panel: training loss and validation loss of the sampler against the step."""
    curves = sampler_curves(s)
    name = s.attrs.get("sampler", "?")
    op = s.attrs.get("operator") or {}
    steps = (s.attrs.get("training") or {}).get("step")

    def draw(target) -> None:
        ax = grid(target, [1])[0][0]
        ax.set_label("training_curves")
        if curves is None:
            note_panel(ax, "training curves", "this sampler file stores no training history", name="training_curves")
            return
        ax.set_title(f"{name} sampler: training and validation loss", fontsize=10)
        _curve_panel(ax, curves, _LOSS.get(name, "training loss"), ("training loss (mean since the last point)",
                                                                    "validation loss"))

    target = describe_spec({"name": op.get("name", "?"), **(op.get("params") or {})}, limit=2)
    title = (f"{s.path.name} — {name} sampler file for the {target} operator, "
             f"{describe_spec(s.attrs.get('noise'))} noise" + (f"; {steps} steps" if steps else ""))
    return Block(title, *block_size(1, 1, (6.0, 3.6)), draw)
