"""Python API of the patch priors: read training images, train, save and load priors.

Example:
    >>> import numpy as np
    >>> from invsolve import api_priors
    >>> imgs = np.random.default_rng(0).random((1, 32, 32), dtype=np.float32)
    >>> prior, hist = api_priors.train_prior("patchnr", imgs, params={"width": 16, "blocks": 2}, steps=3)
    >>> prior.patch_size, hist["steps"]
    (6, 3)
"""

from __future__ import annotations

import platform
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ._version import __version__
from .config import check_seed
from .errors import ConfigError, DataError, ShapeError
from .io.images import IMAGE_SUFFIXES, expand_image_spec  # noqa: F401  (IMAGE_SUFFIXES re-exported)

__all__ = ["read_training_images", "train_prior", "save_prior", "load_prior", "prior_names", "IMAGE_SUFFIXES"]


def prior_names() -> list[str]:
    """Names of the registered priors."""
    from .priors.base import PRIORS, load_all

    load_all()
    return PRIORS.names()


def read_training_images(specs: str | Sequence[str]) -> tuple[list[np.ndarray], list[str]]:
    """Read images for prior training.

    Arguments:
        specs: Image files, globs, folders, ``.npy`` or ``FILE.h5:/stack`` (several allowed).

    Returns:
        (images, sources): a list of (H, W) float32 arrays and the file each came from.
    """
    from .io.images import read_images

    out: list[np.ndarray] = []
    sources: list[str] = []
    from .io.images import spec_list

    for spec in spec_list(specs, "read_training_images' specs", "pass arrays to train_prior directly"):
        for f in expand_image_spec(str(spec)):
            stack, _ = read_images(f)
            out.extend(stack)
            sources.extend([f] * len(stack))
    if not out:
        raise DataError("no training images given")
    return out, sources


def _to_device(images, device, what: str, p: int, unit: str = "patches"):
    import torch

    if isinstance(images, np.ndarray) and images.ndim == 2:
        images = images[None]
    if isinstance(images, np.ndarray) and images.ndim != 3:
        raise ShapeError(f"{what} have shape {images.shape}; expected (H, W), (N, H, W) or a list of (H, W)")
    arrs = [np.asarray(im, dtype=np.float32) for im in images]
    for i, a in enumerate(arrs):
        if a.ndim != 2:
            raise ShapeError(f"{what} item {i} has shape {a.shape}; expected (H, W)")
        if min(a.shape) < p:
            raise ShapeError(f"{what} item {i} is {a.shape[0]}×{a.shape[1]}, smaller than the {p}×{p} {unit}")
        if not np.isfinite(a).all():
            raise DataError(f"{what} item {i} contains NaN or infinite values; clean or fill them first")
    if not arrs:
        raise DataError(f"no {what} given")
    ts = [torch.from_numpy(np.ascontiguousarray(a)).to(device) for a in arrs]
    return torch.stack(ts) if len({t.shape for t in ts}) == 1 else ts


def train_prior(
    name: str,
    images: np.ndarray | Sequence[np.ndarray],
    val: np.ndarray | Sequence[np.ndarray] | None = None,
    params: dict[str, Any] | None = None,
    steps: int | None = None,
    seed: int = 0,
    device: str = "auto",
    checkpoint_every: int | None = None,
    checkpoint_path: str | Path | None = None,
    resume: bool = False,
    track=None,
    callback=None,
    sources: Sequence[str] | None = None,
    val_sources: Sequence[str] | None = None,
):
    """Train (or, for WPP, build) a patch prior on images.

    Arguments:
        name: ``patchnr``, ``epll`` or ``wpp``.
        images: (H, W), (N, H, W) or a list of (H, W) arrays in [0, 1].
        val: Validation images (same forms) or None.
        params: Prior keys, e.g. ``patch_size``, ``blocks``, ``width``, ``batch_size``,
            ``lr`` (patchnr); ``n_components``, ``max_iter`` (epll); ``n_reference`` (wpp).
        steps: Adam steps (patchnr, default 12000) or EM iterations (epll).
        seed: Seeds every random draw; same seed and device, same prior.
        device: ``auto``, ``cpu`` or ``cuda``.
        checkpoint_every, checkpoint_path, resume: Periodic checkpoints and resume (patchnr).
        track: Progress wrapper ``track(iterable, description)``.
        callback: Called with {"step", "train_nll", "val_nll"} records.
        sources, val_sources: File names recorded in the provenance.

    Under ``torchrun`` each process runs this; they train one model with
    DistributedDataParallel (patchnr), and ``hist["rank"]`` tells the caller
    whether it is rank 0, the one that should write the prior file.

    Returns:
        (prior, history): the frozen prior (with ``provenance``) and the training history.
    """
    import torch

    from .device import resolve_device
    from .distributed import setup
    from .methods.base import no_track
    from .priors.base import PRIORS, load_all
    from .priors.training import train_prior as _train

    load_all()
    cls = PRIORS.get(name)
    if params is not None and not isinstance(params, Mapping):
        raise ConfigError(f"params must be a dict of prior settings, e.g. {{'width': 8}}, got "
                          f"{type(params).__name__} {params!r:.60}")
    if steps is not None and name != "wpp":  # wpp takes no steps; its own check says so
        if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
            raise ConfigError(f"steps must be an integer >= 1 ({name}: Adam steps or EM iterations), got "
                              f"{steps!r}; or None for the default")
        steps = int(steps)
    seed = check_seed(seed)
    side = "patch_size" if "patch_size" in cls.Config.model_fields else "window"  # the crop each step draws
    p = (params or {}).get(side, cls.Config.model_fields[side].default)
    p = p if isinstance(p, int) else 1  # an invalid value is reported by the config validation
    dist, device = setup(device)  # joins the torchrun group, if any; no-op otherwise
    dev = resolve_device(device)
    unit = "patches" if side == "patch_size" else "training windows (-P window=)"
    ims = _to_device(images, dev, "training images", p, unit)
    vals = _to_device(val, dev, "validation images", p, unit) if val is not None else None
    t0 = time.perf_counter()
    prior, hist = _train(name, ims, vals, params, steps, seed, checkpoint_every, checkpoint_path, resume,
                         track or no_track, callback, dist=dist)
    seconds = time.perf_counter() - t0
    shapes = [list(t.shape[-2:]) for t in ims]
    prior.provenance = {
        "invsolve_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "seed": int(seed), "device": str(dev), "steps": hist.get("steps"), "seconds": round(seconds, 3),
        "params": dict(params or {}), "images": list(sources) if sources else None, "image_shapes": shapes,
        "training": hist.get("training"), "val": list(val_sources) if val_sources else None,
        "train_nll": hist["final"]["train_nll"], "val_nll": hist["final"]["val_nll"],
        "resumed_from": hist.get("resumed_from"), "python": platform.python_version(),
        "torch_version": str(torch.__version__), "processes": dist.world,
        # the training curves, [[step, nll], ...], for `invsolve show` and `invsolve report`
        "curves": {"train": hist.get("train") or [], "val": hist.get("val") or []},
    }
    if type(prior).advice:
        prior.provenance["advice"] = dict(type(prior).advice)
    if hist.get("levels"):  # a multilevel prior: the resolutions it was trained on, coarse first
        prior.provenance["levels"] = list(hist["levels"])
    hist["seconds_total"] = seconds
    hist["rank"] = dist.rank
    return prior, hist


def save_prior(prior, path: str | Path, overwrite: bool = False) -> Path:
    """Write a prior file atomically (weights, config, provenance; no pickled code)."""
    from .results.files import check_path
    from .priors.base import Prior
    from .priors.base import save_prior as _save

    if not isinstance(prior, Prior):
        raise DataError(f"save_prior needs a prior (from train_prior or load_prior), got {type(prior).__name__}")
    path = check_path(path, "save_prior's path")
    return _save(prior, path, overwrite=overwrite)


def load_prior(path: str | Path, device: str = "cpu", name: str | None = None, patch_size: int | None = None,
               allow_partial: bool = True):
    """Load a prior file; damaged or incompatible files raise :class:`invsolve.errors.CheckpointError`.

    Arguments:
        path: File written by ``invsolve train-prior`` (or a training checkpoint).
        device: ``auto``, ``cpu`` or ``cuda``.
        name: Refuse a file holding another prior.
        patch_size: Refuse a file with another patch size.

    Returns:
        The frozen prior module (``nll``, ``regularizer``, ``patch_size``, ``provenance``).
    """
    from .priors.base import load_prior as _load

    return _load(path, device, name=name, patch_size=patch_size, allow_partial=allow_partial)
