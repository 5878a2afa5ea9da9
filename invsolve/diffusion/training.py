"""Training the diffusion prior: denoising score matching on random crops, level by level.

Each step draws ``batch_size`` random crops of ``window`` native pixels from the training images (each
image chosen in proportion to its number of crop positions), applies a random rotation or flip to each,
and resizes them to the current level's resolution by area averaging (the coarse levels see the same
windows with less detail).  Times are uniform on [T_MIN, 1] and the noise is drawn on the level's grid.
The steps are split over the levels (coarse first), with one cosine learning-rate decay over the whole run.
Checkpoints hold the weights, the Adam state, the step and the generators' states, so a resumed run equals
an uninterrupted one; validation losses use fixed crops, times and noise.

References:
    Hagemann, Mildenberger, Ruthotto et al., Multilevel diffusion, 2023, arXiv 2303.04772 (coarse-to-fine
    training of one operator network); Vincent, A connection between score matching and denoising
    autoencoders, Neural Computation 23 (2011).
"""

from __future__ import annotations

import math
import time
from typing import Any

import torch
import torch.nn.functional as F

from ..errors import CheckpointError, ConfigError, DataError
from ..methods.base import no_track
from ..priors.patches import random_dihedral, random_patches
from .sde import T_MIN, colored_noise

__all__ = ["train", "level_of_step", "draw_batch", "DEFAULT_STEPS"]

#: Default training steps (benchmarks/RESULTS.md, "Diffusion priors", states the time they take).
DEFAULT_STEPS = 4000
VAL_SEED_OFFSET = 1_000_003


def level_of_step(step: int, steps: int, levels: list[int], split: list[float] | None) -> int:
    """The resolution trained at 1-based ``step`` of ``steps``: the levels in order, each for its share."""
    shares = split or [1.0] * len(levels)
    total = sum(shares)
    edge = 0.0
    for lv, sh in zip(levels, shares):
        edge += sh / total * steps
        if step <= round(edge):
            return lv
    return levels[-1]


def draw_batch(images, window: int, level: int, n: int, gen: torch.Generator, augment: bool) -> torch.Tensor:
    """n random crops (n, level, level) in model units (2x − 1) of the images, resized from ``window``."""
    crops = random_patches(images, window, n, gen)
    if augment:
        crops = random_dihedral(crops, window, gen)
    crops = crops.reshape(n, window, window)
    if level != window:
        crops = F.interpolate(crops[:, None], size=(level, level), mode="area" if level < window else "bilinear",
                              align_corners=None if level < window else False)[:, 0]
    return 2 * crops - 1


def _noise(prior, n: int, level: int, gen: torch.Generator, dev) -> tuple[torch.Tensor, torch.Tensor]:
    t = T_MIN + (1 - T_MIN) * torch.rand(n, generator=gen, device=dev)
    spec = prior.spectrum((level, level), level, dev)
    return t, colored_noise((n, level, level), spec, gen, dev)


@torch.no_grad()
def _val_loss(prior, val, window: int, level: int, n: int, seed: int) -> float:
    dev = next(prior.parameters()).device
    gen = torch.Generator(device=dev).manual_seed(seed + VAL_SEED_OFFSET)
    x0 = draw_batch(val, window, level, n, gen, False)
    t, eta = _noise(prior, n, level, gen, dev)
    prior.eval()
    v = float(torch.cat([prior.loss(x0[i:i + 64], t[i:i + 64], eta[i:i + 64], level)
                         for i in range(0, n, 64)]).mean())
    prior.train()
    return v


def _check_images(images, window: int, what: str) -> None:
    seq = [images[i] for i in range(len(images))]
    small = [tuple(im.shape) for im in seq if min(im.shape[-2:]) < window]
    if small:
        raise ConfigError(f"{what}: an image of {small[0][0]}×{small[0][1]} is smaller than the {window}×{window} "
                          f"training window; lower -P window= or give larger images")


def train(prior_cls, images, val, config, training, *, steps=None, seed=0, checkpoint_every=None,
          checkpoint_path=None, resume=False, track=None, callback=None, dist=None) -> tuple[Any, dict[str, Any]]:
    """Fit a :class:`invsolve.priors.diffusion.DiffusionPrior` (see the module docstring).

    Arguments:
        prior_cls: The prior class to fit (``DiffusionPrior``, passed in so that this loop does not import the
            priors that call it).
        images: (N, H, W) or a list of (H, W) in [0, 1], on the target device.
        val: Validation images or None.
        config, training: :class:`DiffusionConfig`, :class:`DiffusionTraining`.
        steps: Adam steps over all levels (default :data:`DEFAULT_STEPS`).
        seed: Seeds the weights, crops, augmentations, times and noise.
        checkpoint_every, checkpoint_path, resume: Periodic checkpoints and exact resume.
        track, callback: Progress wrapper; called with {"step", "train_nll"[, "val_nll"], "level"} records
            (the losses are the denoising losses).
        dist: A :class:`invsolve.distributed.Dist` (torchrun data parallel).

    Returns:
        (prior, history) as the patchNR trainer's, with "levels" and "level_steps" added.
    """
    from ..distributed import Dist, LossModule
    from ..priors.training import _adam, _fingerprint, _restore, scheduled_lr

    dist, track = dist or Dist(), track or no_track
    steps = DEFAULT_STEPS if steps is None else int(steps)
    window = config.window
    levels = list(training.levels) or [window]
    if levels[-1] > 4 * window:
        raise ConfigError(f"levels {levels}: the finest is over 4× the {window}-pixel window; raise -P window=")
    if training.level_split is not None and len(training.level_split) != len(levels):
        raise ConfigError(f"level_split has {len(training.level_split)} shares for {len(levels)} levels")
    _check_images(images, window, "training images")
    if val is not None:
        _check_images(val, window, "validation images")
    dev = images.device if isinstance(images, torch.Tensor) else images[0].device
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        prior = prior_cls(config)
    prior.to(dev).train()
    opt = _adam(prior.parameters(), training.lr)
    settings = {"batch_size": training.batch_size, "lr": training.lr, "augment": training.augment, "seed": int(seed),
                "levels": levels, "level_split": training.level_split, "schedule": training.schedule,
                "steps": steps, "val_every": training.val_every, "log_every": training.log_every}
    data = {"images": _fingerprint(images), "val": _fingerprint(val) if val is not None else None}
    gen = torch.Generator(device=dev).manual_seed(seed)
    vgen = torch.Generator(device=dev).manual_seed(seed + VAL_SEED_OFFSET)  # kept for the checkpoint layout
    history: dict[str, Any] = {"train": [], "val": []}
    start, acc, count = 0, 0.0, 0
    if (checkpoint_every or resume) and checkpoint_path is None:
        raise CheckpointError("checkpoints need a checkpoint path")
    if resume:
        start, history, acc, count = _restore(checkpoint_path, prior, opt, gen, vgen, settings, data, steps)
    model = dist.wrap(LossModule(prior, prior.loss))
    share, scale = dist.share(training.batch_size), dist.scale(training.batch_size)
    t0 = time.perf_counter()
    for step in track(range(start + 1, steps + 1), "train diffusion", hint="--steps N"):
        level = level_of_step(step, steps, levels, training.level_split)
        x0 = draw_batch(images, window, level, training.batch_size, gen, training.augment)
        t, eta = _noise(prior, training.batch_size, level, gen, dev)
        for group in opt.param_groups:
            group["lr"] = scheduled_lr(training.lr, step, steps, training.schedule)
        loss = model(x0[share], t[share], eta[share], level).mean() * scale
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        acc += float(loss.detach())
        count += 1
        record: dict[str, Any] = {}
        if step % training.log_every == 0 or step == steps:
            value = dist.mean(acc / count)
            if not math.isfinite(value):
                raise DataError(f"diffusion training diverged at step {step} (loss {value}); lower -P lr=")
            history["train"].append([step, value])
            record.update(step=step, train_nll=value, level=level)
            acc, count = 0.0, 0
        if val is not None and (step % training.val_every == 0 or step == steps):
            v = _val_loss(prior, val, window, level, training.val_crops, seed)
            history["val"].append([step, v])
            record.update(step=step, val_nll=v, level=level)
        if record and callback is not None:
            callback(record)
        if checkpoint_every and (step % checkpoint_every == 0 or step == steps):
            state = {"step": step, "optimizer": opt.state_dict(), "generator": gen.get_state(),
                     "val_generator": vgen.get_state(), "history": history, "acc": [acc, count],
                     "settings": settings, "data": data}
            if dist.is_main:
                from ..priors.base import save_prior

                save_prior(prior, checkpoint_path, overwrite=True, training=state)
    seconds = time.perf_counter() - t0
    done = steps - start
    last = {k: (history[k][-1][1] if history[k] else None) for k in ("train", "val")}
    level_steps: dict[int, int] = {}  # over the whole schedule, resumed runs included
    for step in range(1, steps + 1):
        lv = level_of_step(step, steps, levels, training.level_split)
        level_steps[lv] = level_steps.get(lv, 0) + 1
    history.update(steps=steps, seconds=seconds, seconds_per_step=seconds / done if done else None,
                   resumed_from=start if resume else None, stopped="steps", levels=levels, level_steps=level_steps,
                   final={"step": steps, "train_nll": last["train"], "val_nll": last["val"]}, processes=dist.world)
    return prior.freeze(), history
