"""Conditional MMD particle flows distilled into networks (sampler ``mmd-flow``).

Training (working coordinates of :class:`invsolve.samplers.base.Sampler`):
``particles`` pairs (x_j, y_j) are drawn once; the targets are the joint
vectors (x_j, w·c_j) and the particles start as (z_j, w·c_j) with z_j drawn
from ``init`` and exactly the same conditions, so the y-marginal matches from
the start (c_j: the standardised measurement for vectors; for images the
condition image average-pooled by ``cond_pool``).  Block l runs T_l steps of
the conditional sliced MMD flow (:func:`.mmd_particles.flow`, only z moves),
then a network Φ_l(z, c) (warm-started from Φ_{l-1}, fresh Adam) learns the
displacement z_old − z_flow, and the particles are replaced by
z_old − Φ_l(z_old, c).  Sampling for a new y needs no particle set:
z ~ init, z ← z − Φ_l(z, c) for l = 0, 1, ...

``--steps`` bounds the network optimizer steps of all blocks together; the
flow steps per block follow T_{l+1} = min(T_l + 2^{e_l}, flow_cap).  A
checkpoint is written after every block (particles, momentum, generator), so
``--resume`` continues exactly where an interrupted run stopped.

References: Hagemann et al., Posterior Sampling Based on Gradient Flows of the MMD with
Negative Distance Kernel, ICLR 2024 (arXiv 2310.03054); Hertrich et al., Generative Sliced
MMD Flows with Riesz Kernels, ICLR 2024 (arXiv 2305.11463).
"""

from __future__ import annotations

import time
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from ..config import Params
from ..errors import ConfigError
from .base import SAMPLERS, Sampler, save_training
from .mmd_kernel import sliced_energy_distance
from .mmd_particles import flow, flow_schedule, joint
from .networks import MLP, UNet

__all__ = ["MMDFlowConfig", "MMDFlowSampler"]


class MMDFlowConfig(Params):
    particles: int = Field(1000, ge=2, description="particles = training pairs of the flow")
    slices: int = Field(256, ge=1, description="random directions per flow step")
    nets: int = Field(8, ge=1, description="flow blocks, one network each")
    flow_steps: int = Field(16, ge=1, description="flow steps of the first block (then +2^e per block)")
    flow_cap: int = Field(128, ge=1, description="most flow steps per block")
    step_size: float = Field(1.0, gt=0, description="τ in x ← x − τ N v")
    momentum: float = Field(0.8, ge=0, lt=1, description="m in v ← ∇ + m v")
    reset_momentum: bool = Field(True, description="zero the momentum at the start of every block")
    cond_weight: float = Field(3.0, gt=0, description="weight w of the condition in the joint vectors (x, w c)")
    cond_pool: int = Field(4, ge=1, description="images: average-pool the condition image by this factor for the flow")
    init: Literal["gaussian", "uniform"] = Field("gaussian", description="law of the initial particles z")
    replace_particles: bool = Field(True, description="continue each block from the network push-forward")
    hidden: int = Field(256, ge=8, description="vectors: MLP width")
    depth: int = Field(3, ge=1, description="vectors: hidden layers of the MLP")
    channels: int = Field(32, ge=4, description="images: UNet base channels")
    condition: Literal["guess", "adjoint"] = Field("guess", description="images: condition on the initial guess or Aᵀy")
    residual: bool = Field(True, description="images: learn x − x₀(y) instead of x")


@SAMPLERS.register("mmd-flow")
class MMDFlowSampler(Sampler):
    """Distilled conditional MMD flow: x = (id − Φ_{L−1}) ∘ … ∘ (id − Φ_0)(z; y), z ~ init.

    Shapes: conditions c (R, m) for vectors or (R, 1, H, W) for images;
    working samples (R, d) or (R, 1, H, W).

    References: Hagemann et al., arXiv 2310.03054, Sec. 4 and App.; Hertrich et al.,
    arXiv 2305.11463, Sec. 4 (generative training scheme).
    """

    name = "mmd-flow"
    Config = MMDFlowConfig

    def build_model(self) -> nn.Module:
        c = self.config
        if self.vector:
            d, m = self.operator.domain_shape[0], self.operator.range_shape[0]
            return nn.ModuleList([MLP(d + m, d, c.hidden, c.depth, zero_last=True) for _ in range(c.nets)])
        return nn.ModuleList([UNet(1, 1, 1, base=c.channels) for _ in range(c.nets)])

    def step_net(self, l: int, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """Φ_l(z, c): the displacement of block l. z (R, *work), c (R, *cond) -> (R, *work)."""
        net = self.net["model"][l]
        if self.vector:
            return net(torch.cat([z, c], dim=1))
        return net(z, c, torch.full((len(z),), (l + 0.5) / self.config.nets, device=z.device))

    def draw_init(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """n initial particles (n, *work) from ``init``."""
        shape, dev = (n, *self.work_shape), self.device
        if self.config.init == "uniform":
            return torch.rand(shape, generator=generator, device=dev)
        return torch.randn(shape, generator=generator, device=dev)

    def flow_condition(self, c: torch.Tensor) -> torch.Tensor:
        """The condition part of the joint vectors: c (R, *cond) -> (R, k), pooled for images."""
        if not self.vector and self.config.cond_pool > 1:
            c = F.avg_pool2d(c, self.config.cond_pool)
        return c.reshape(len(c), -1)

    def sample_work(self, c, generator):
        z = self.draw_init(len(c), generator)
        for l in range(self.config.nets):
            z = z - self.step_net(l, z, c)
        return z

    def push(self, l: int, z: torch.Tensor, c: torch.Tensor, rows: int = 256) -> torch.Tensor:
        """z − Φ_l(z, c) in chunks of ``rows``, without gradients."""
        with torch.no_grad():
            self.net.eval()
            return torch.cat([zz - self.step_net(l, zz, cc) for zz, cc in zip(z.split(rows), c.split(rows))])

    @classmethod
    def train(cls, sampler, source, settings, output, resume=None, progress=None, provenance=None, dist=None):
        """Flow blocks and their networks, with a checkpoint after every block (see the module doc)."""
        from .training import learning_rate

        if dist is not None and dist.active:
            raise ConfigError("mmd-flow trains its flow blocks in one process (each block's particles depend "
                              "on all earlier blocks); run train-sampler without torchrun")
        return _train(sampler, source, settings, output, resume, progress, provenance, learning_rate)


def _work_pairs(sampler: MMDFlowSampler, x: torch.Tensor, y: torch.Tensor):
    with torch.no_grad():
        x0 = sampler.guess(y)
        return sampler.to_work(x, x0), sampler.condition(y, x0)


def _train(sampler: MMDFlowSampler, source, s, output, resume, progress, provenance, learning_rate) -> dict:
    from .training import check_loss, check_weights

    cfg, dev = sampler.config, sampler.device
    nets = cfg.nets
    if s.steps < nets:
        raise ConfigError(f"--steps {s.steps} is below the {nets} networks of the flow; give at least {nets}")
    per_net = [s.steps // nets + (l < s.steps % nets) for l in range(nets)]
    schedule = flow_schedule(cfg.flow_steps, nets, cfg.flow_cap)
    gen = torch.Generator(device=dev).manual_seed(s.seed)
    if not resume:
        sx, sy = source.draw(s.stats_size, torch.Generator(device=dev).manual_seed(s.seed + 2))
        sampler.fit_stats(sx, sy)
        del sx, sy
    # the pair sets: flow targets (fixed by the seed, so a resumed run redraws the same) and held-out pairs
    xw, c = _work_pairs(sampler, *source.draw(cfg.particles, torch.Generator(device=dev).manual_seed(s.seed + 4)))
    xv, cv = _work_pairs(sampler, *source.draw(s.val_size, torch.Generator(device=dev).manual_seed(s.seed + 1)))
    d = xw[0].numel()
    targets = joint(xw, sampler.flow_condition(c), cfg.cond_weight)
    val_targets = joint(xv, sampler.flow_condition(cv), cfg.cond_weight)
    history = {"step": [], "loss": [], "val": []}
    start, seconds, velocity = 0, 0.0, None
    if resume:
        gen.set_state(resume["generator"].cpu() if dev.type == "cpu" else resume["generator"])
        start, seconds = int(resume["block"]), float(resume.get("seconds", 0.0))
        z = resume["particles"].to(dev)
        velocity = resume["velocity"].to(dev) if resume["velocity"].numel() else None
        history = {k: list(v) for k, v in resume.get("history", history).items()}
    else:
        z = sampler.draw_init(cfg.particles, gen)
    particles = joint(z, sampler.flow_condition(c), cfg.cond_weight)
    total = sum(schedule) + s.steps
    done = sum(schedule[:start]) + sum(per_net[:start])
    t0 = time.perf_counter()
    loss_value, val = float("nan"), (history["val"][-1] if history["val"] else None)

    def tick(_=None):
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total, loss_value, val)

    for l in range(start, nets):
        z_old = particles[:, :d].clone()
        velocity = flow(particles, targets, schedule[l], generator=gen, n_moving=d, step_size=cfg.step_size,
                        momentum=cfg.momentum, n_slices=cfg.slices,
                        velocity=None if cfg.reset_momentum else velocity, callback=tick)
        zo = z_old.reshape(-1, *sampler.work_shape)
        disp = (z_old - particles[:, :d]).reshape(zo.shape)
        model = sampler.net["model"]
        if l > 0:
            model[l].load_state_dict(model[l - 1].state_dict())
        opt = torch.optim.Adam(model[l].parameters(), lr=s.lr)
        losses = []
        model[l].train()
        for it in range(per_net[l]):
            for group in opt.param_groups:
                group["lr"] = learning_rate(s.model_copy(update={"steps": per_net[l]}), it)
            idx = torch.randint(cfg.particles, (min(s.batch_size, cfg.particles),), generator=gen, device=dev)
            loss = ((sampler.step_net(l, zo[idx], c[idx]) - disp[idx]) ** 2).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model[l].parameters(), s.grad_clip)
            opt.step()
            loss_value = float(loss.detach())
            check_loss(sampler, loss_value, done, s.lr, output)
            losses.append(loss_value)
            tick()
        if cfg.replace_particles:
            particles[:, :d] = sampler.push(l, zo, c).reshape(len(zo), d)
        val = _validate(sampler, l, cv, val_targets, cfg, s.seed + 3)
        history["step"].append(done)
        history["loss"].append(sum(losses) / max(1, len(losses)))
        history["val"].append(val)
        training = {"step": sum(per_net[:l + 1]), "block": l + 1, "particles": particles[:, :d].detach().cpu(),
                    "velocity": torch.empty(0) if velocity is None else velocity.detach().cpu(),
                    "generator": gen.get_state(), "optimizer": {}, "settings": s.model_dump(mode="json"),
                    "source": source.spec(), "history": history, "schedule": schedule,
                    "seconds": seconds + time.perf_counter() - t0}
        prov = {**(provenance or {}), "train_seconds": training["seconds"], "steps": training["step"],
                "flow_steps": sum(schedule[:l + 1])}
        check_weights(sampler, training["step"], s.lr, output)
        save_training(sampler, prov, training, output, final=l + 1 == len(per_net))
    return {"steps": s.steps, "resumed_from": sum(per_net[:start]) if resume else None, "flow_steps": sum(schedule),
            "loss": history["loss"][-1] if history["loss"] else loss_value, "val_loss": val,
            "seconds": seconds + time.perf_counter() - t0}


def _validate(sampler: MMDFlowSampler, upto: int, cv: torch.Tensor, val_targets: torch.Tensor, cfg, seed: int) -> float:
    """Sliced MMD² (1/2 convention, fixed slices) of (sample, condition) against held-out joint pairs."""
    g = torch.Generator(device=sampler.device).manual_seed(seed)
    z = sampler.draw_init(len(cv), g)
    for l in range(upto + 1):
        z = sampler.push(l, z, cv)
    fake = joint(z, sampler.flow_condition(cv), cfg.cond_weight)
    return float(sliced_energy_distance(fake, val_targets, cfg.slices, generator=g))
