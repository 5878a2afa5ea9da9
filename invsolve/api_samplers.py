"""Python API for training conditional samplers (``invsolve train-sampler``).

Example:
    >>> from invsolve.api_samplers import train_sampler
    >>> info = train_sampler("cfm", "linear", {"diagonal": [0.1, 0.05]}, prior="gmm",
    ...                      dim=2, steps=50, output="s.pt", overwrite=True)  # doctest: +SKIP
    >>> from invsolve.samplers import load_sampler
    >>> s = load_sampler("s.pt")  # doctest: +SKIP
"""

from __future__ import annotations

import numbers
import platform
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

from ._version import __version__
from .config import canonical, check_seed, validate_params
from .errors import ConfigError, DataError, ShapeError
from .samplers.priors import training_prior  # noqa: F401  (re-exported)

__all__ = ["train_sampler", "training_prior"]


#: training settings a resumed run must repeat (steps may grow; validation and checkpoint periods may change)
RESUME_SETTINGS = ("batch_size", "lr", "schedule", "seed")


def _check_resume(ckpt: dict, inst, source, output, settings) -> dict:
    """The checkpoint's training state, after checking it is the same problem, sampler and training settings."""
    ours = {"sampler": inst.name, "config": inst.config.model_dump(mode="json"), "operator": inst.operator_spec,
            "noise": inst.noise_spec, "source": source.spec()}
    theirs = {**{k: ckpt.get(k) for k in ("sampler", "config", "operator", "noise")},
              "source": (ckpt.get("training") or {}).get("source")}
    for key in ours:
        if canonical(ours[key]) != canonical(theirs[key]):
            raise ConfigError(f"cannot resume {output}: its {key} {theirs[key]} differs from the requested "
                              f"{ours[key]}; repeat the original options or train anew with --overwrite")
    training = ckpt.get("training") or {}
    if "optimizer" not in training or "generator" not in training:
        raise DataError(f"{output} holds no training state to resume from; train anew with --overwrite")
    old = training.get("settings") or {}
    for key in RESUME_SETTINGS:
        new = getattr(settings, key)
        if key in old and old[key] != new:
            flag = f"{key} = {old[key]!r} in the --config file" if key == "schedule" else \
                f"--{key.replace('_', '-')} {old[key]}"
            raise ConfigError(f"cannot resume {output}: it was trained with {key} {old[key]!r}, this run asks "
                              f"{new!r}; give {flag} (or train anew with --overwrite)")
    return training


def train_sampler(
    sampler: str = "cfm",
    operator: str = "superres",
    operator_params: dict[str, Any] | None = None,
    noise: str | None = None,
    noise_params: dict[str, Any] | None = None,
    *,
    images: list[str] | str | None = None,
    crop: int | None = None,
    prior: str | None = None,
    prior_params: dict[str, Any] | None = None,
    dim: int | None = None,
    sampler_params: dict[str, Any] | None = None,
    steps: int = 2000,
    batch_size: int | None = None,
    lr: float | None = None,
    val_every: int = 200,
    val_size: int = 256,
    checkpoint_every: int = 500,
    schedule: str = "cosine",
    output: str | Path = "sampler.pt",
    resume: bool = False,
    overwrite: bool = False,
    seed: int = 0,
    device: str = "auto",
    progress=None,
) -> dict[str, Any]:
    """Train a conditional sampler on pairs (x, y = noise(A x)) simulated on the fly.

    Image problems take ``images`` (files, globs, folders or ``FILE.h5:/stack``;
    not arrays) and random ``crop`` × ``crop`` crops (default 64, at least 4);
    vector problems take a ``prior`` (uniform, gaussian, gmm) of dimension
    ``dim`` with ``prior_params``.  A ``crop`` on a vector problem, or
    ``prior_params`` on an image problem, is refused.
    Defaults: batch 8 and lr 5e-4 for images, batch 256 and lr 1e-3 for vectors.

    Under ``torchrun`` every process calls this and they train one network with
    DistributedDataParallel (cflow, cfm); rank 0 writes the file.

    Returns:
        A summary: output, sampler, operator, noise, steps, loss, val_loss, seconds, device,
        processes and this process's rank.
    """
    from .operators.noise_preset import resolve_noise
    from .device import resolve_device
    from .io.hdf5 import check_output
    from .noise import build_noise
    from .operators import build_operator, operator_entry
    from .samplers import SAMPLERS, load_all, read_checkpoint
    from .samplers.priors import build_prior
    from .samplers.sources import ImageSource, PriorSource, image_specs, read_image_set
    from .samplers.training import TrainSettings

    seed = check_seed(seed)
    if images is not None:
        images = image_specs(images)  # ConfigError for arrays and other non-paths
    if (images is None) == (prior is None):
        raise ConfigError("give either --images (image problems) or --prior with --dim (vector problems)")
    for what, d in (("prior_params", prior_params), ("sampler_params", sampler_params)):
        if d is not None and not isinstance(d, Mapping):
            raise ConfigError(f"{what} must be a dict of settings, e.g. {{'hidden': 64}}, got {type(d).__name__}")
    if crop is not None and (isinstance(crop, bool) or not isinstance(crop, numbers.Integral) or crop < 4):
        raise ConfigError(f"--crop must be an integer >= 4 that fits the training images, got {crop!r}; "
                          "e.g. --crop 64")
    vector_op = operator_entry(operator).cls.domain_ndim == 1
    if vector_op and images is not None:
        raise ConfigError(f"operator {operator!r} acts on vectors; give --prior and --dim instead of --images")
    if vector_op and crop is not None:
        raise ConfigError(f"operator {operator!r} acts on vectors; --crop is for image problems, drop it")
    if not vector_op and (prior is not None or dim is not None):
        flag = "--prior" if prior is not None else "--dim"
        raise ConfigError(f"operator {operator!r} acts on images; give --images and --crop instead of {flag}")
    if not vector_op and prior_params:
        raise ConfigError(f"operator {operator!r} acts on images; --prior-param is for vector problems, drop it")
    crop = 64 if crop is None else int(crop)
    load_all()
    cls = SAMPLERS.get(sampler)
    out = Path(output)
    from .samplers.base import checkpoint_path

    resume_from = checkpoint_path(out) if checkpoint_path(out).is_file() else out  # an unfinished run's state
    if resume:
        if not resume_from.is_file():
            raise DataError(f"nothing to resume: neither {checkpoint_path(out)} nor {out} exists (drop --resume to "
                            "start training)")
    else:
        check_output(out, overwrite, suffixes=None)  # a sampler file (.pt by custom)
    from .distributed import setup

    dist, device = setup(device)  # joins the torchrun group, if any; no-op otherwise
    dev = resolve_device(device)
    nspec = resolve_noise(operator, noise, noise_params)
    nm = build_noise(nspec)
    if vector_op:
        pr = build_prior({"name": prior, "dim": dim, **(prior_params or {})})
        op = build_operator(operator, operator_params, (pr.dim,)).to(dev)
        source = PriorSource(pr, op, nm)
    else:
        imgs, files = read_image_set(images)
        if sampler in ("cflow",) and crop % 4:
            raise ConfigError(f"the cflow sampler on images needs a --crop divisible by 4, got {crop} "
                              f"(e.g. --crop {crop - crop % 4})")
        try:
            op = build_operator(operator, operator_params, (crop, crop)).to(dev)
        except (ShapeError, ConfigError) as exc:  # the crop is this command's image size
            if f"{crop}x{crop}" not in str(exc):
                raise
            raise type(exc)(f"{exc}; here the images are the --crop {crop} squares, so choose a --crop that "
                            "fits") from None
        source = ImageSource(imgs, crop, op, nm, files=files)
    settings = validate_params(TrainSettings, {
        "steps": steps, "batch_size": batch_size or (256 if vector_op else 8), "lr": lr or (1e-3 if vector_op else 5e-4),
        "val_every": val_every, "val_size": val_size, "checkpoint_every": checkpoint_every, "schedule": schedule,
        "seed": seed}, "training settings")
    import torch

    with torch.random.fork_rng(devices=[]):  # seeded initial weights, global RNG left untouched
        torch.manual_seed(seed)
        inst = cls.create(sampler_params or {}, op, nm).to(dev)
    state = None
    if resume:
        ckpt = read_checkpoint(resume_from, dev)
        state = _check_resume(ckpt, inst, source, resume_from, settings)
        if int(state["step"]) >= settings.steps:
            raise ConfigError(f"{out} is already trained for {state['step']} steps; give --steps above that to continue")
        inst.net.load_state_dict(ckpt["state_dict"])
    provenance = {
        "invsolve_version": __version__, "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "seed": seed, "device": str(dev), "python": platform.python_version(),
        "torch_version": str(torch.__version__), "source": source.spec(),
    }
    info = cls.train(inst, source, settings, out, resume=state, progress=progress, provenance=provenance,
                     dist=dist if dist.active else None)
    return {"output": str(out), "sampler": inst.name, "operator": op.name, "noise": nspec["name"],
            "device": str(dev), "processes": dist.world, "rank": dist.rank, **info}
