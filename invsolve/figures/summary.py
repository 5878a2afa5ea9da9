"""What a run report says about each file besides its figure: the evaluation against the ground truth,
the settings and provenance stored in the file, and its timings."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import InvsolveError
from .files import Shown

__all__ = ["evaluation", "settings", "timings", "read_report_reference", "FIRST_KEYS"]

#: Attributes listed first in the settings table, in this order; the others follow by name.
FIRST_KEYS = ("kind", "operator", "noise", "noise_in_file", "method", "sampler", "quantile_levels", "input", "source",
              "seed", "measurement_seed", "device", "command", "batch_size", "invsolve_version", "torch_version",
              "python", "created", "run_fingerprint")
#: Attributes left out of the settings table (the format marker; the timings have their own table).
_SKIP = ("format", "format_version", "timings")


def read_report_reference(spec: str | None) -> np.ndarray | None:
    """The ``--reference`` of a report, as read by ``evaluate``: an image, a stack or parameter vectors."""
    if spec is None:
        return None
    from ..io.images import check_finite, read_array

    ref = read_array(spec)
    check_finite(ref, spec)
    return ref


def evaluation(s: Shown, reference: np.ndarray | None = None) -> dict[str, Any] | None:
    """PSNR/SSIM (images) or RMSE and relative error (vectors) of all items of a result file against its
    stored ground truth or ``reference``, with the coverage of its credible intervals when stored.

    Returns:
        None for files that hold no estimate (measurements, prior and sampler files); else a dict with
        ``items`` and the scores, or with ``note`` saying why there are none.
    """
    from .. import api

    if s.kind not in ("reconstruction", "posterior", "noise_estimate"):
        return None
    try:
        if s.kind == "noise_estimate":
            from ..io.hdf5 import read_result

            st = read_result(s.path)
            est = api.Estimate(st.datasets["posterior_mean"], st.datasets.get("ground_truth"), vector=True)
        else:
            est = api.load_estimate(str(s.path))
        truth = reference if reference is not None else est.ground_truth
        if truth is None:
            return {"items": len(est.images), "note": "no ground truth stored; give --reference"}
        truth = np.asarray(truth)
        if est.vector:
            truth = truth[None] if truth.ndim == 1 else truth
            sc = api.evaluate_vectors(est.images, truth)
            row = {"items": len(est.images), "rmse": sc["rmse"], "relative_error": sc["relative_error"]}
        else:
            truth = truth[None] if truth.ndim == 2 else truth
            sc = api.evaluate(est.images, truth)
            row = {"items": len(est.images), "psnr": sc["psnr"], "ssim": sc["ssim"]}
        row.update(api.coverage(est, truth))
        return row
    except InvsolveError as exc:
        return {"items": s.count, "note": f"not evaluated: {exc}"}


def settings(s: Shown) -> list[tuple[str, Any]]:
    """(name, value) pairs of the file's settings and provenance: the HDF5 attributes, or a ``.pt`` file's
    config and provenance (training curves left out: the figure shows them)."""
    if s.kind in ("prior", "sampler"):
        a = s.attrs
        prov = dict(a.get("provenance") or {})
        prov.pop("curves", None)
        rows = [("kind", f"{s.kind} file"), (s.kind, a.get(s.kind)), ("config", a.get("config"))]
        if s.kind == "sampler":
            rows += [("operator", a.get("operator")), ("noise", a.get("noise"))]
            training = a.get("training") or {}
            rows += [("training settings", training.get("settings")), ("training data", training.get("source"))]
        rows += [(f"provenance: {k}", v) for k, v in prov.items()]
        return [(k, v) for k, v in rows if v is not None]
    attrs = {k: s.config(k) for k in s.attrs if k not in _SKIP}
    first = [(k, attrs[k]) for k in FIRST_KEYS if k in attrs]
    rest = [(k, attrs[k]) for k in sorted(attrs) if k not in FIRST_KEYS]
    return first + rest


def timings(s: Shown) -> list[tuple[str, float]]:
    """(stage, seconds) pairs: the ``timings`` attribute of HDF5 results, the training time of ``.pt`` files."""
    if s.kind in ("prior", "sampler"):
        prov = s.attrs.get("provenance") or {}
        key = "seconds" if s.kind == "prior" else "train_seconds"
        return [("training", float(prov[key]))] if isinstance(prov.get(key), (int, float)) else []
    t = s.config("timings")
    if not isinstance(t, dict):
        return []
    return [(str(k), float(v)) for k, v in t.items() if isinstance(v, (int, float))]

