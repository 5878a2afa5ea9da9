"""The training loop shared by the samplers: Adam on pairs simulated on the
fly, validation loss on held-out pairs, periodic checkpoints and exact resume.

Determinism: one torch.Generator (seeded with ``seed``) drives every training
draw (crops, prior samples, noise, and the samplers' own randomness); the
held-out pairs, the data statistics and the validation randomness use
generators seeded from ``seed`` as well.  A checkpoint stores the optimizer
state, the generator state and the step, so an interrupted run resumed with
the same ``steps`` gives the same weights as an uninterrupted one (the cosine
learning-rate schedule follows ``steps``).
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable, Literal

import torch
from pydantic import Field

from ..config import Params
from .files import save_training

__all__ = ["TrainSettings", "fit", "Progress"]

#: ``progress(step, total, loss, val_loss_or_None)`` after every step.
Progress = Callable[[int, int, float, "float | None"], None]


class TrainSettings(Params):
    steps: int = Field(2000, ge=1, description="optimizer steps (total, including resumed ones)")
    batch_size: int = Field(64, ge=2, description="pairs per step")
    lr: float = Field(1e-3, gt=0, description="Adam learning rate")
    val_every: int = Field(200, ge=1, description="steps between validation losses")
    val_size: int = Field(256, ge=2, description="held-out validation pairs")
    checkpoint_every: int = Field(500, ge=1, description="steps between checkpoints (written to OUTPUT.ckpt)")
    schedule: Literal["cosine", "constant"] = Field(
        "cosine", description="learning rate over the run: cosine decay to lr/100 at --steps, or constant")
    grad_clip: float = Field(10.0, gt=0, description="gradient-norm clipping")
    stats_size: int = Field(1024, ge=16, description="pairs used to set the standardisation statistics")
    seed: int = 0



def check_loss(sampler, loss: float, step: int, lr: float, output) -> None:
    """Stop a diverging training run: :class:`DataError` when the loss of ``step`` is not finite."""
    if not math.isfinite(loss):
        from ..errors import DataError

        raise DataError(f"{sampler.name} training diverged at step {step} (loss {loss}); lower --lr (now {lr:g}); "
                        f"{output}.ckpt keeps its last finite checkpoint, if any")


def check_weights(sampler, step: int, lr: float, output) -> None:
    """Before a checkpoint is written: :class:`DataError` when any weight is not finite (nothing is written)."""
    if not all(bool(torch.isfinite(v).all()) for v in sampler.net.state_dict().values() if v.is_floating_point()):
        from ..errors import DataError

        raise DataError(f"{sampler.name} training diverged by step {step} (non-finite weights); lower --lr "
                        f"(now {lr:g}); {output} was not written at this step")

def learning_rate(s: TrainSettings, step: int) -> float:
    """The learning rate at ``step`` (0-based) of a run of ``s.steps`` steps."""
    if s.schedule == "constant":
        return s.lr
    return s.lr * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * step / s.steps)))


def _validate(sampler, xv, yv, seed: int, chunk: int) -> float:
    g = torch.Generator(device=sampler.device).manual_seed(seed)
    sampler.net.eval()
    total, n = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(xv), chunk):
            xb, yb = xv[i: i + chunk], yv[i: i + chunk]
            total += float(sampler.batch_loss(xb, yb, g)) * len(xb)
            n += len(xb)
    return total / n


def fit(
    sampler,
    source,
    settings: TrainSettings,
    output,
    resume: dict[str, Any] | None = None,
    progress: Progress | None = None,
    provenance: dict[str, Any] | None = None,
    dist=None,
) -> dict[str, Any]:
    """Train ``sampler`` (in place) and write it to ``output``.

    Under ``torchrun`` (``dist`` active) every rank draws the same global batch and
    computes the loss on its share through DistributedDataParallel; rank 0 writes
    the checkpoints and the output (:mod:`invsolve.distributed`).

    Arguments:
        sampler: A :class:`invsolve.samplers.base.Sampler`.
        source: Pair source with ``draw(n, generator) -> (x, y)`` and ``spec()``.
        settings: Steps, batch size, learning rate, checkpoints, seed.
        output: The sampler file; checkpoints overwrite it atomically.
        resume: The ``training`` dict of a checkpoint to continue from.
        progress: Called after every step.
        provenance: Stored in the file (timings are added).
        dist: A :class:`invsolve.distributed.Dist` (None: one process).

    Returns:
        Training summary: steps, final loss and validation loss, seconds.
    """
    from ..distributed import Dist, LossModule

    dist = dist or Dist()
    dev = sampler.device
    s = settings
    gen = torch.Generator(device=dev).manual_seed(s.seed)
    opt = torch.optim.Adam(sampler.net["model"].parameters(), lr=s.lr)
    model = dist.wrap(LossModule(sampler.net["model"], sampler.batch_loss))
    share, scale = dist.share(s.batch_size), dist.scale(s.batch_size)
    history: dict[str, list] = {"step": [], "loss": [], "val": []}
    start, seconds = 0, 0.0
    if resume:
        opt.load_state_dict(resume["optimizer"])
        gen.set_state(resume["generator"].cpu() if dev.type == "cpu" else resume["generator"])
        start, seconds = int(resume["step"]), float(resume.get("seconds", 0.0))
        history = {k: list(v) for k, v in resume.get("history", history).items()}
    else:
        sx, sy = source.draw(s.stats_size, torch.Generator(device=dev).manual_seed(s.seed + 2))
        sampler.fit_stats(sx, sy)
        del sx, sy
    xv, yv = source.draw(s.val_size, torch.Generator(device=dev).manual_seed(s.seed + 1))
    chunk = max(s.batch_size, 64)
    window: list[float] = []
    val = history["val"][-1] if history["val"] else None

    def save(step: int) -> None:
        check_weights(sampler, step, s.lr, output)
        training = {"step": step, "optimizer": opt.state_dict(), "generator": gen.get_state(),
                    "settings": s.model_dump(mode="json"), "source": source.spec(), "history": history,
                    "seconds": seconds + time.perf_counter() - t0}
        prov = {**(provenance or {}), "train_seconds": training["seconds"], "steps": step, "processes": dist.world}
        if dist.is_main:
            save_training(sampler, prov, training, output, final=step == s.steps)

    t0 = time.perf_counter()
    loss_value = float("nan")
    for step in range(start, s.steps):
        sampler.net.train()
        for group in opt.param_groups:
            group["lr"] = learning_rate(s, step)
        x, y = source.draw(s.batch_size, gen)
        loss = model(x, y, gen, share if dist.active else None) * scale  # the global mean once DDP averages
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(sampler.net["model"].parameters(), s.grad_clip)
        opt.step()
        loss_value = dist.mean(float(loss.detach()))
        check_loss(sampler, loss_value, step + 1, s.lr, output)
        window.append(loss_value)
        done = step + 1
        if done % s.val_every == 0 or done == s.steps:
            val = _validate(sampler, xv, yv, s.seed + 3, chunk)
            history["step"].append(done)
            history["loss"].append(sum(window) / len(window))
            history["val"].append(val)
            window = []
        if progress is not None:
            progress(done, s.steps, loss_value, val)
        if done % s.checkpoint_every == 0 and done < s.steps:
            save(done)
    save(s.steps)
    dist.barrier()  # the output exists for every rank once this returns
    return {"steps": s.steps, "resumed_from": start if resume else None, "loss": history["loss"][-1] if history["loss"] else loss_value,
            "val_loss": history["val"][-1] if history["val"] else None,
            "seconds": seconds + time.perf_counter() - t0}
