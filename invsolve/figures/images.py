"""Figures of image problems: a measurement (ground truth beside the data or sinogram) and a reconstruction
(with its error map when the truth is known)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .files import Shown
from .panels import (IMAGE_UNIT, Block, block_size, describe_spec, error_panel, grid, image_panel, shared_range,
                     sinogram_panel)

__all__ = ["measurement_block", "reconstruction_block", "draw_measurement", "operator_kind", "scores_line"]


def operator_kind(op: dict[str, Any]) -> str:
    """The operator family (``ct``, ``superres``, ``blur``, ``inpaint``, ...) of a stored operator spec; a
    preset such as ``ct-limited`` gives its family."""
    from ..errors import InvsolveError
    from ..operators import operator_entry

    try:
        return str(operator_entry(op.get("name", "")).cls.kind or op.get("name", ""))
    except InvsolveError:
        return str(op.get("name", ""))


def _measurement_label(kind: str, noise: dict[str, Any] | None) -> str:
    if kind == "ct":
        post_log = isinstance(noise, dict) and noise.get("name") == "poisson"
        return ("post-log " if post_log else "") + "line integral [a.u.]"
    return {"superres": f"low-resolution intensity {IMAGE_UNIT}", "blur": f"blurred intensity {IMAGE_UNIT}",
            "inpaint": f"observed intensity {IMAGE_UNIT}; 0: masked"}.get(kind, "measured value [a.u.]")


def draw_measurement(target, ax, s: Shown, name: str = "measurement") -> None:
    """The measurement of ``s`` on ``ax``: a sinogram for CT (angles from the stored operator), else an image."""
    y = s.item["measurement"]
    kind = operator_kind(s.operator)
    label = _measurement_label(kind, s.config("noise"))
    if kind == "ct" and y.ndim == 2:
        op = s.build_operator()
        angles = op.angles_deg if op is not None else None
        sinogram_panel(target, ax, y, f"measurement: sinogram\n{y.shape[0]} angles × {y.shape[1]} detectors",
                       None if angles is None else np.asarray(angles, np.float64), label, name=name)
    else:
        image_panel(target, ax, y, f"measurement\n{y.shape[1]} × {y.shape[0]} pixels", label, name=name)


def scores_line(estimate: np.ndarray, truth: np.ndarray) -> str:
    """``PSNR … dB, SSIM …`` of one image against its truth (data range 1), or '' when not computable."""
    from .. import api
    from ..errors import InvsolveError

    try:
        sc = api.evaluate(estimate, truth)
    except InvsolveError:
        return ""
    return f"PSNR {sc['psnr']:.2f} dB, SSIM {sc['ssim']:.3f}"


def _title(s: Shown, what: str) -> str:
    op = s.operator
    shape = "×".join(str(v) for v in op.get("image_shape") or ())
    return (f"{s.where()} — {what}: {op.get('name', '?')} operator on {shape} images, "
            f"{describe_spec(s.config('noise'))} noise")


def measurement_block(s: Shown) -> Block:
    """Ground truth (when stored) and the measurement: 1 or 2 image panels."""
    truth = s.item.get("ground_truth")

    def draw(target) -> None:
        row = grid(target, [1 + (truth is not None)])[0]
        if truth is not None:
            image_panel(target, row[0], truth, "ground truth", f"value {IMAGE_UNIT}", name="ground_truth")
        draw_measurement(target, row[-1], s)

    return Block(_title(s, "simulated measurement" if truth is not None else "measurement"),
                 *block_size(1, 1 + (truth is not None)), draw)


def reconstruction_block(s: Shown, reference: np.ndarray | None = None) -> Block:
    """Measurement and reconstruction, plus the ground truth and the error map (reconstruction − truth) when
    the file stores the truth or ``reference`` gives it: 2 or 4 image panels."""
    rec = s.item["reconstruction"]
    truth = reference if reference is not None else s.item.get("ground_truth")
    method = s.config("method") or {}
    n = 4 if truth is not None else 2

    def draw(target) -> None:
        row = grid(target, [n])[0]
        lo, hi = shared_range(rec, truth)
        draw_measurement(target, row[0], s)
        sub = scores_line(rec, truth) if truth is not None else ""
        image_panel(target, row[1], rec, "reconstruction" + (f"\n{sub}" if sub else ""), f"value {IMAGE_UNIT}",
                    name="reconstruction", vmin=lo, vmax=hi)
        if truth is not None:
            which = "reference (--reference)" if reference is not None else "ground truth"
            image_panel(target, row[2], truth, which, f"value {IMAGE_UNIT}", name="ground_truth", vmin=lo, vmax=hi)
            err = np.asarray(rec, np.float64) - truth
            error_panel(target, row[3], err, f"error: reconstruction − truth\nmax |error| {np.abs(err).max():.3g}")

    return Block(_title(s, f"reconstruction by {describe_spec(method)}"), *block_size(1, n), draw)


#: Samples drawn by ``invsolve show`` for a ``sample-prior`` file (the first ones).
SAMPLES_SHOWN = 8


def prior_samples_block(s: Shown) -> Block:
    """Up to :data:`SAMPLES_SHOWN` samples of a ``sample-prior`` file on one value range, 4 per row."""
    xs = s.whole.get("samples")
    if xs is None or np.ndim(xs) != 3:
        from ..errors import DataError

        raise DataError(f"{s.path} is a prior-samples file without /samples (N × H × W); re-create it with "
                        "`invsolve sample-prior`")
    n = min(len(xs), SAMPLES_SHOWN)
    lo, hi = shared_range(*xs[:n])
    rows = [min(4, n - k) for k in range(0, n, 4)]
    levels = s.attrs.get("levels")
    if isinstance(levels, str):  # stored as JSON
        import json

        levels = json.loads(levels)
    trained = f", trained at {'/'.join(map(str, levels))} px" if levels else ""

    def draw(target) -> None:
        axes = [ax for row in grid(target, rows, ncols=min(4, n)) for ax in row]
        for k, ax in enumerate(axes[:n]):
            image_panel(target, ax, xs[k], f"sample {k + 1}", f"value {IMAGE_UNIT}", name=f"sample_{k}",
                        vmin=lo, vmax=hi)

    title = (f"{s.where()} — {len(xs)} samples of the diffusion prior {s.attrs.get('prior_file', '?')}{trained}: "
             f"{xs.shape[1]}×{xs.shape[2]} grid, {s.attrs.get('steps', '?')} {s.attrs.get('method', '')} steps")
    return Block(title, *block_size(len(rows), min(4, n)), draw)
