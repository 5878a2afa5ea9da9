"""Training patch priors: the patchNR loop (with exact resume) and the common entry point.

Each patchNR step draws one training image at random, ``batch_size`` distinct
random patch positions of it (an O(batch) gather, not a re-extraction of every
patch), applies a random rotation/flip to each patch and takes an Adam step on
the mean NLL.  Checkpoints hold the weights, the Adam state, the step and the
random generators' states, so a resumed run equals an uninterrupted one.

References:
    Altekrüger et al., PatchNR: learning from very few images by patch
    normalizing flow regularization, Inverse Problems 39 (2023), arXiv 2205.12021.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from ..errors import CheckpointError, DataError
from ..methods.base import Track, no_track
from .base import load_all, read_prior_file, save_prior
from .patches import random_dihedral, random_patches
from .patchnr import PatchNR, PatchNRConfig

__all__ = ["train_prior", "train_patchnr", "Images"]

#: Images: (N, H, W) of equal size, or a list of (H, W) images.
Images = torch.Tensor | Sequence[torch.Tensor]
Callback = Callable[[dict[str, Any]], None]
VAL_SEED_OFFSET = 1_000_003  # validation draws use their own stream
#: Training settings that checkpoints of earlier versions do not hold, at the values those runs used.
SETTING_DEFAULTS = {"schedule": "constant", "steps": None}
#: Default patchNR steps, with the defaults of :class:`invsolve.priors.patchnr.PatchNRTraining` (batch 128,
#: lr 1e-3 with a cosine decay, bf16 where fast).  benchmarks/RESULTS.md, "Training to a target"
#: (2026-12-02): this recipe passes the validation NLL of 40,000 steps at batch 32 and a constant lr 1e-4
#: (the earlier default recipe) after about 5,500 steps, in under a fifth of that run's wall time.
DEFAULT_STEPS = 12000


def _adam(params, lr: float) -> torch.optim.Optimizer:
    try:
        return torch.optim.Adam(params, lr=lr, fused=True)
    except (RuntimeError, TypeError):  # fused kernels missing on this device / torch
        return torch.optim.Adam(params, lr=lr)


def _first_loss(model, x: torch.Tensor, compiled_first: bool) -> torch.Tensor:
    """model(x); on the first step of a compiled run, a compiler failure becomes one clear error."""
    if not compiled_first:
        return model(x)
    from ..errors import ConfigError

    try:
        return model(x)
    except Exception as e:  # inductor raises its own types (missing C++ compiler, unsupported op)
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise ConfigError(f"compile=true failed on this machine ({first}); install a C++ compiler or "
                          "train without -P compile=true") from e


def _fingerprint(images: Images) -> list:
    seq = [images[i] for i in range(len(images))]
    return [[list(im.shape), round(float(im.double().sum()), 6)] for im in seq]


@torch.no_grad()
def _val_nll(prior, val: Images, n: int, gen: torch.Generator) -> float:
    prior.eval()
    v = prior.nll(random_patches(val, prior.patch_size, n, gen)).mean().item()
    prior.train()
    return v


def train_patchnr(
    images: Images,
    val_images: Images | None,
    config: PatchNRConfig | None = None,
    steps: int = DEFAULT_STEPS,
    batch_size: int = 128,
    lr: float = 1e-3,
    seed: int = 0,
    checkpoint_every: int | None = None,
    checkpoint_path: str | Path | None = None,
    resume: bool = False,
    track: Track = no_track,
    *,
    augment: bool = True,
    val_every: int = 1000,
    val_patches: int = 2048,
    log_every: int = 50,
    compile: bool = False,
    schedule: str = "cosine",
    precision: str = "auto",
    until_plateau: bool = False,
    plateau_delta: float = 0.05,
    plateau_patience: int = 3,
    callback: Callback | None = None,
    dist=None,
) -> tuple[PatchNR, dict[str, Any]]:
    """Fit a patchNR by maximum likelihood (Adam) on random patches.

    Under ``torchrun`` (``dist`` active) every rank draws the same batch and
    trains on its share through DistributedDataParallel; rank 0 writes the
    checkpoints (:mod:`invsolve.distributed`).

    Arguments:
        images: Training images (N, H, W), or a list of (H, W), on the target device.
        val_images: Validation images, or None.
        config: Flow architecture (default: the paper's).
        steps: Total Adam steps (a resumed run continues up to this number).
        batch_size, lr: Patches per step and Adam learning rate.
        seed: Seeds the weights, patch draws, augmentation and validation draws.
        checkpoint_every: Write a checkpoint every N steps (and at the end).
        checkpoint_path: Where checkpoints go (needed with ``checkpoint_every`` or ``resume``).
        resume: Continue from the checkpoint at ``checkpoint_path``.
        track: Progress wrapper for the step loop.
        augment: Random rotation/flip of each patch.
        val_every, val_patches: Validation period and number of random validation patches.
        log_every: Steps averaged into each training-NLL record.
        compile: Compile the loss with ``torch.compile`` (a one-off start-up of seconds to a minute;
            steps were 3 % shorter on a 2-core CPU; needs a C++ compiler).  Numerics differ from eager mode in the
            last bits, so a compiled and an eager run with one seed are close, not identical.
        schedule: ``constant``, or ``cosine``: lr decays as a half cosine to lr/100 at step ``steps``.
        precision: ``fp32``, ``bf16`` (the subnets under bfloat16 autocast) or ``auto`` (bf16 where the
            device computes it fast, :mod:`invsolve.precision`).
        until_plateau, plateau_delta, plateau_patience: Stop once ``plateau_patience`` validations in a row
            have not lowered the best validation NLL by ``plateau_delta`` (``steps`` is then a cap).
        callback: Called with {"step", "train_nll"[, "val_nll"]} at every record.
        dist: A :class:`invsolve.distributed.Dist` (None: one process).

    Returns:
        (prior, history) with history {"train": [[step, nll]] (every ``log_every``
        steps), "val": [[step, nll]] (every ``val_every``), "final": {"step",
        "train_nll", "val_nll"} (at the last step), "steps", "seconds",
        "seconds_per_step", "resumed_from", "stopped" ("plateau" or "steps"), "precision_used"}.
    """
    from ..errors import ConfigError
    from ..precision import resolve_precision
    from ..distributed import Dist, LossModule

    dist = dist or Dist()
    config = config or PatchNRConfig()
    dev = images.device if isinstance(images, torch.Tensor) else images[0].device
    if until_plateau and val_images is None:
        raise ConfigError("until_plateau stops on the validation NLL: give validation images (--val)")
    settings = {"batch_size": int(batch_size), "lr": float(lr), "augment": bool(augment), "seed": int(seed),
                "val_every": int(val_every), "val_patches": int(val_patches), "log_every": int(log_every),
                "schedule": schedule, "steps": int(steps) if schedule != "constant" else None}
    bf16 = resolve_precision(precision, dev)[0] == "bf16"
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        prior = PatchNR(config)
    prior.to(dev).train()
    opt = _adam(prior.parameters(), lr)
    model = dist.wrap(LossModule(prior, prior.nll))
    if compile:
        model = torch.compile(model)
    share, scale = dist.share(batch_size), dist.scale(batch_size)
    gen = torch.Generator(device=dev).manual_seed(seed)
    vgen = torch.Generator(device=dev).manual_seed(seed + VAL_SEED_OFFSET)
    history: dict[str, Any] = {"train": [], "val": []}
    acc, count, start = torch.zeros((), device=dev), 0, 0
    data = {"images": _fingerprint(images), "val": _fingerprint(val_images) if val_images is not None else None}
    if (checkpoint_every or resume) and checkpoint_path is None:
        raise CheckpointError("checkpoints need a checkpoint path")
    if resume:
        start, history, acc_v, count = _restore(checkpoint_path, prior, opt, gen, vgen, settings, data, steps)
        acc = torch.tensor(acc_v, device=dev)
    resumed_from = start if resume else None
    n_img, p = len(images), prior.patch_size
    stopped = "steps"
    t0 = time.perf_counter()
    for step in track(range(start + 1, steps + 1), "train patchnr", hint="--steps N"):
        i = int(torch.randint(n_img, (1,), generator=gen, device=dev)) if n_img > 1 else 0
        x = random_patches(images[i][None], p, batch_size, gen)
        if augment:
            x = random_dihedral(x, p, gen)
        for group in opt.param_groups:
            group["lr"] = scheduled_lr(lr, step, steps, schedule)
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bf16):
            loss = _first_loss(model, x[share], step == start + 1 and compile).mean() * scale  # DDP averages
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        acc += loss.detach()
        count += 1
        record: dict[str, Any] = {}
        if step % log_every == 0:
            value = dist.mean((acc / count).item())
            if not math.isfinite(value):
                raise DataError(f"patchnr training diverged at step {step} (NLL {value}); lower --lr "
                                "or check the images for constant or extreme values")
            history["train"].append([step, value])
            record.update(step=step, train_nll=value)
            acc, count = torch.zeros((), device=dev), 0
        if val_images is not None and step % val_every == 0:
            v = _val_nll(prior, val_images, val_patches, vgen)
            history["val"].append([step, v])
            record.update(step=step, val_nll=v)
        if record and callback is not None:
            callback(record)
        if until_plateau and "val_nll" in record and on_plateau(history["val"], plateau_delta, plateau_patience):
            stopped, steps = "plateau", step  # the checkpoint below and the record end here
        if checkpoint_every and (step % checkpoint_every == 0 or step == steps):
            acc_all = dist.mean(acc.item())  # every rank joins; rank 0 writes
            training = {"step": step, "optimizer": opt.state_dict(), "generator": gen.get_state(),
                        "val_generator": vgen.get_state(), "history": history, "acc": [acc_all, count],
                        "settings": settings, "data": data}
            if dist.is_main:
                save_prior(prior, checkpoint_path, overwrite=True, training=training)
        if stopped == "plateau":
            break
    seconds = time.perf_counter() - t0
    done = steps - start
    history.update(steps=steps, seconds=seconds, seconds_per_step=seconds / done if done else None,
                   resumed_from=resumed_from, stopped=stopped, precision_used="bf16" if bf16 else "fp32")
    if count:
        acc = torch.tensor(dist.mean((acc / count).item()) * count, device=dev)
    history["final"] = _final(prior, history, acc, count, val_images, val_patches, seed + steps, steps, callback)
    history["processes"] = dist.world
    return prior.freeze(), history


def scheduled_lr(lr: float, step: int, steps: int, schedule: str) -> float:
    """The learning rate of step ``step`` (1-based) of ``steps``: ``lr``, or a half cosine from ``lr`` to
    ``lr / 100`` (``schedule="cosine"``), a pure function of the step so that a resumed run keeps it."""
    if schedule == "constant" or steps <= 1:
        return lr
    low = lr / 100
    return low + 0.5 * (lr - low) * (1 + math.cos(math.pi * (step - 1) / (steps - 1)))


def on_plateau(val: list, delta: float, patience: int) -> bool:
    """Whether the last ``patience`` of the validation records ``[[step, nll], ...]`` all failed to lower the
    best NLL before them by more than ``delta``."""
    if len(val) <= patience:
        return False
    best = min(v for _, v in val[:-patience])
    return min(v for _, v in val[-patience:]) > best - delta


def _final(prior, history, acc, count, val, n, seed, steps, callback) -> dict[str, Any]:
    """End-of-run values outside the logging schedule (so they leave the resumable state alone)."""
    train = (acc / count).item() if count else (history["train"][-1][1] if history["train"] else None)
    v = None
    if val is not None:
        if history["val"] and history["val"][-1][0] == steps:
            v = history["val"][-1][1]
        else:  # a fresh generator: the validation stream of a resumed run stays unchanged
            gen = torch.Generator(device=next(prior.parameters()).device).manual_seed(seed + VAL_SEED_OFFSET)
            v = _val_nll(prior, val, n, gen)
    if train is not None and not math.isfinite(train):
        raise DataError(f"patchnr training diverged (NLL {train}); lower --lr")
    final = {"step": steps, "train_nll": train, "val_nll": v}
    if callback is not None and (train is not None or v is not None):
        callback(final)
    return final


def _restore(path, prior, opt, gen, vgen, settings, data, steps):
    """Load a checkpoint into the fresh prior/optimizer/generators; return (step, history, acc, count)."""
    payload = read_prior_file(path, next(prior.parameters()).device)
    tr = payload.get("training")
    if not isinstance(tr, dict):
        raise CheckpointError(f"{path} holds no training state (a final prior file?); resume needs a "
                              "checkpoint written with --checkpoint-every")
    if payload["prior"] != prior.name or payload["config"] != prior.config.model_dump(mode="json"):
        raise CheckpointError(f"{path} was written for {payload['prior']} {payload['config']}, not this "
                              f"run's {prior.config.model_dump(mode='json')}; use the same -P settings")
    for key, value in settings.items():
        if tr.get("settings", {}).get(key, SETTING_DEFAULTS.get(key)) != value:  # older files: the defaults
            raise CheckpointError(f"{path} was trained with {key}={tr.get('settings', {}).get(key)!r}, this "
                                  f"run asks {value!r}; give the same settings to resume, or drop --resume")
    if tr.get("data") != data:
        raise CheckpointError(f"{path} was trained on other images; resume with the same --images/--val")
    step = int(tr["step"])
    if step > steps:
        raise CheckpointError(f"{path} is at step {step}, beyond --steps {steps}; give --steps >= {step}")
    prior.load_state(payload["state"], str(path))
    try:
        opt.load_state_dict(tr["optimizer"])
        gen.set_state(tr["generator"].cpu())
        vgen.set_state(tr["val_generator"].cpu())
    except (KeyError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{path} has a damaged training state ({exc}); start again without --resume") from None
    acc, count = tr.get("acc", [0.0, 0])
    return step, tr["history"], float(acc), int(count)


def train_prior(
    name: str,
    images: Images,
    val: Images | None = None,
    params: dict[str, Any] | None = None,
    steps: int | None = None,
    seed: int = 0,
    checkpoint_every: int | None = None,
    checkpoint_path: str | Path | None = None,
    resume: bool = False,
    track: Track = no_track,
    callback: Callback | None = None,
    dist=None,
):
    """Fit any registered prior on image tensors (already on the target device).

    Arguments:
        name: ``patchnr``, ``epll``, ``wpp`` or ``diffusion``.
        images: (N, H, W) or a list of (H, W) tensors.
        val: Validation images or None.
        params: Keys of the prior's ``Config`` and ``Training`` models.
        steps: patchNR Adam steps (default :data:`DEFAULT_STEPS`); EPLL EM iterations (default
            its ``max_iter``); WPP has none (a ConfigError).
        seed: Seeds every random draw.
        checkpoint_every, checkpoint_path, resume: priors whose class sets ``checkpoints`` (patchnr, diffusion).
        track, callback: Progress wrapper and per-record callback.
        dist: Data-parallel context under torchrun (the same priors).

    Returns:
        (prior, history); see each prior's trainer for the history keys.
    """
    from ..config import validate_params
    from ..errors import ConfigError
    from .base import PRIORS

    load_all()
    cls = PRIORS.get(name)
    params = dict(params or {})
    cfg_keys, tr_keys = set(cls.Config.model_fields), set(cls.Training.model_fields)
    unknown = sorted(set(params) - cfg_keys - tr_keys)
    if unknown:
        raise ConfigError(f"unknown parameter {unknown[0]!r} of prior {name!r} "
                          f"(valid: {', '.join(sorted(cfg_keys | tr_keys))})")
    config = validate_params(cls.Config, {k: v for k, v in params.items() if k in cfg_keys},
                             f"parameters of prior {name!r}")
    training = validate_params(cls.Training, {k: v for k, v in params.items() if k in tr_keys},
                               f"training parameters of prior {name!r}")
    if not cls.checkpoints and dist is not None and dist.active:
        raise ConfigError(f"prior {name!r} is fitted in one process (EM or patch sampling, no gradient steps); "
                          "run train-prior without torchrun")
    if name == "wpp" and steps is not None:
        raise ConfigError("the wpp prior is a reference patch set drawn from the images, with no training "
                          "iterations; drop --steps (its size is -P n_reference=N)")
    if not cls.checkpoints and (checkpoint_every or resume):
        with_them = ", ".join(n for n in PRIORS.names() if PRIORS.get(n).checkpoints)
        raise ConfigError(f"checkpoints and --resume apply to the trainings of {with_them}, not {name!r}")
    if name == "patchnr":
        prior, hist = train_patchnr(images, val, config, DEFAULT_STEPS if steps is None else int(steps), seed=seed,
                                    checkpoint_every=checkpoint_every, checkpoint_path=checkpoint_path,
                                    resume=resume, track=track, callback=callback, dist=dist,
                                    **training.model_dump())
        hist["training"] = training.model_dump(mode="json")
        return prior, hist
    extra = dict(checkpoint_every=checkpoint_every, checkpoint_path=checkpoint_path, resume=resume,
                 dist=dist) if cls.checkpoints else {}
    prior, hist = cls.fit(images, val, config, training, steps=steps, seed=seed, track=track, callback=callback,
                          **extra)
    hist["training"] = training.model_dump(mode="json")
    last = {k: (hist[k][-1][1] if hist.get(k) else None) for k in ("train", "val")}
    hist.setdefault("final", {"step": hist.get("steps"), "train_nll": last["train"], "val_nll": last["val"]})
    return prior, hist
