"""EM-DeepGEM: joint estimation of mixed-noise parameters (a, b) and posteriors.

Given N measurements y_i = f(x_i) + a·η₁ + b·f(x_i)·η₂ with unknown a, b, the
outer loop alternates

* **E-step**: a few Adam steps of a conditional sampler x = T(z; y) under the
  current (a, b): the ``cflow`` normalizing flow by forward KL on pairs
  simulated from the prior and the noise model (amortised over y), by reverse
  KL (NLL_{a,b}(T(z; y); y) + box penalty − log|det ∇T|, y from the joint), or
  ``cfm`` (conditional flow matching on simulated pairs);
* **M-step**: posterior samples of the *measured* y, then the closed-form
  nested-EM updates of (a², b²) (:func:`invsolve.em.mstep.mstep_mixed`).
  With ``mstep_importance = K`` the samples are importance-resampled from K
  flow proposals each against the current likelihood
  (:mod:`invsolve.samplers.importance`), so the M-step sees the posterior
  itself rather than the amortised flow's approximation of it, whose excess
  width would inflate the residuals and with them (â, b̂).

The ELBO of the measured data, E_q[log p(y|x) + log p(x) − log q(x|y)], is
traced for the flow (uniform prior: constant inside the box, −λ·distance
outside); conditional flow matching has no tractable density, so its ELBO
trace is NaN.  One torch.Generator drives every draw; checkpoints hold the
sampler, the optimizer, the generator and the traces, so a resumed run
continues exactly.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Literal

import numpy as np
import torch
from pydantic import Field

from ..config import Params
from ..errors import CheckpointError, ConfigError
from ..noise import build_noise
from .mstep import mixed_nll, mstep_mixed

__all__ = ["EMSettings", "EMResult", "run_em", "FORMAT"]

FORMAT = "invsolve-em"
#: ``progress(iteration, total, a, b, elbo)`` after every outer iteration.
Progress = Callable[[int, int, float, float, float], None]


class EMSettings(Params):
    iterations: int = Field(150, ge=1, description="outer EM iterations (total, including resumed ones)")
    estep: Literal["forward_kl", "reverse_kl", "cfm"] = Field("forward_kl", description="E-step objective/sampler")
    estep_steps: int = Field(10, ge=1, description="Adam steps per E-step")
    batch_size: int = Field(512, ge=2, description="simulated pairs per Adam step")
    lr: float = Field(1e-3, gt=0, description="Adam learning rate")
    mstep_samples: int = Field(2000, ge=1, description="posterior samples of the measured data per M-step (total)")
    mstep_iterations: int = Field(50, ge=1, description="inner closed-form updates per M-step")
    a_init: float = Field(0.3, gt=0, description="initial additive std a")
    b_init: float = Field(0.3, gt=0, description="initial relative std b")
    box_penalty: float = Field(10.0, ge=0, description="λ of the prior-box penalty (reverse KL, ELBO)")
    elbo_every: int = Field(1, ge=1, description="iterations between ELBO evaluations")
    elbo_samples: int = Field(2000, ge=1, description="samples of the measured data per ELBO evaluation")
    select: Literal["last", "best_elbo", "average"] = Field(
        "last", description="final (a, b): last iterate, best ELBO, or the mean over the last average_fraction")
    average_fraction: float = Field(0.2, gt=0, le=1, description="select=average: trailing share of iterations")
    mstep_importance: int | None = Field(
        None, ge=0, description="M-step and written samples by importance resampling of this many flow proposals "
        "per sample (0: the flow's samples as they are; default 5 for the flow E-steps, 0 for cfm)")
    posterior_samples: int = Field(1000, ge=1, description="posterior samples written per measurement")
    checkpoint_every: int = Field(50, ge=1, description="iterations between checkpoints")
    sampler: dict[str, Any] = Field(default_factory=dict, description="settings of the cflow/cfm network")


_FLOW_DEFAULTS = {"cflow": {"blocks": 4, "hidden": 128, "depth": 2, "cond_features": 32},
                  "cfm": {"hidden": 128, "depth": 3, "coupling": "independent", "ode_steps": 8}}


@dataclass
class EMResult:
    """Estimates, traces (index 0 = the start) and posterior samples (N, S, d)."""

    a: float
    b: float
    a_trace: np.ndarray
    b_trace: np.ndarray
    elbo_trace: np.ndarray
    seconds_trace: np.ndarray
    samples: np.ndarray
    best_iteration: int
    info: dict[str, Any] = field(default_factory=dict)


def _box(prior):
    return prior.box() or (None, None)


def _log_prior(prior, x: torch.Tensor, lam: float) -> torch.Tensor:
    """log p(x) (N,), with the uniform box's −∞ outside replaced by −λ·distance to the box."""
    lo, hi = _box(prior)
    if lo is None:
        return prior.log_prob(x.double()).to(x.dtype)
    lo, hi = lo.to(x.device, x.dtype), hi.to(x.device, x.dtype)
    out = (torch.relu(x - hi) + torch.relu(lo - x)).sum(-1)
    return -torch.log(hi - lo).sum() - lam * out


def _flow_pass(flow, c: torch.Tensor, gen: torch.Generator):
    """x = T(z; y) with gradients, and log q(x | y) (R,), for a cflow with a Gaussian latent."""
    w = flow.sample_work(c, gen)
    return flow.from_work(w, None), flow.log_q_vector(*flow._to_latent(w, c))


class _State:
    def __init__(self, flow, opt, gen, a, b):
        self.flow, self.opt, self.gen, self.a, self.b = flow, opt, gen, a, b
        self.a_trace, self.b_trace, self.elbo, self.secs = [a], [b], [], []
        self.best = (-math.inf, 0, a, b)
        self.it, self.seconds = 0, 0.0


def _make_flow(operator, settings: EMSettings, a, b):
    from ..samplers import SAMPLERS, load_all

    load_all()
    name = "cfm" if settings.estep == "cfm" else "cflow"
    cfg = {**_FLOW_DEFAULTS[name], **settings.sampler}
    flow = SAMPLERS.get(name).create(cfg, operator, build_noise({"name": "mixed", "a": a, "b": b}))
    if name == "cflow" and flow.config.latent != "gaussian":
        raise ConfigError("EM-DeepGEM needs a cflow with latent=gaussian")
    return flow


def _simulate(operator, prior, n, a, b, gen):
    x = prior.sample(n, gen, device=gen.device)
    with torch.no_grad():
        f = operator(x)
    y = f + a * torch.randn(f.shape, generator=gen, device=f.device) + b * f * torch.randn(
        f.shape, generator=gen, device=f.device)
    return x, y


def _estep(st: _State, operator, prior, s: EMSettings):
    flow = st.flow
    flow.net.train()
    for _ in range(s.estep_steps):
        x, y = _simulate(operator, prior, s.batch_size, st.a, st.b, st.gen)
        if s.estep == "reverse_kl":
            xs, log_q = _flow_pass(flow, flow.condition(y, None), st.gen)
            loss = (mixed_nll(y, operator(xs), st.a, st.b) - _log_prior(prior, xs, s.box_penalty) + log_q).mean()
        else:
            loss = flow.batch_loss(x, y, st.gen)
        st.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(flow.net["model"].parameters(), 10.0)
        st.opt.step()


@torch.no_grad()
def _elbo(st: _State, operator, prior, y: torch.Tensor, s: EMSettings) -> float:
    if s.estep == "cfm":
        return float("nan")
    st.flow.net.eval()
    k = max(1, math.ceil(s.elbo_samples / len(y)))
    yr = y.repeat_interleave(k, 0)
    x, log_q = _flow_pass(st.flow, st.flow.condition(yr, None), st.gen)
    ll = -mixed_nll(yr.double(), operator(x).double(), st.a, st.b)
    return float((ll + _log_prior(prior, x.double(), s.box_penalty) - log_q.double()).mean())


@torch.no_grad()
def _posterior(flow, operator, prior, y: torch.Tensor, n: int, st: _State, s: EMSettings) -> torch.Tensor:
    """n samples (N, n, d) of each measured y: the flow's, or importance-resampled at the current (a, b)."""
    k = _importance(s)
    if not k:
        return flow.sample(y, n, st.gen)
    from ..samplers.importance import importance_resample

    noise = build_noise({"name": "mixed", "a": st.a, "b": st.b})
    return importance_resample(flow, operator, noise, prior, y, n, n * k, st.gen)[0].to(y.dtype)


def _importance(s: EMSettings) -> int:
    if s.mstep_importance is None:
        return 0 if s.estep == "cfm" else 5
    return s.mstep_importance


def _checkpoint(st: _State, settings: EMSettings, extra: dict) -> dict:
    return {"format": FORMAT, "version": 1, "settings": settings.model_dump(mode="json"), "iteration": st.it,
            "a": st.a, "b": st.b, "a_trace": st.a_trace, "b_trace": st.b_trace, "elbo_trace": st.elbo,
            "seconds_trace": st.secs, "best": list(st.best), "seconds": st.seconds,
            "state_dict": {k: v.detach().cpu() for k, v in st.flow.net.state_dict().items()},
            "optimizer": st.opt.state_dict(), "generator": st.gen.get_state(), **extra}


def _restore(st: _State, ckpt: dict, settings: EMSettings, extra: dict) -> None:
    if ckpt.get("format") != FORMAT:
        raise CheckpointError("the checkpoint is not an EM-DeepGEM checkpoint; drop --resume or pick its file")
    old = {k: v for k, v in ckpt["settings"].items() if k != "iterations"}
    new = {k: v for k, v in settings.model_dump(mode="json").items() if k != "iterations"}
    if old != new or any(ckpt.get(k) != v for k, v in extra.items()):
        raise CheckpointError("the checkpoint was written with other settings or data; resume with the same ones")
    st.flow.net.load_state_dict(ckpt["state_dict"])
    st.opt.load_state_dict(ckpt["optimizer"])
    st.gen.set_state(ckpt["generator"].cpu() if st.gen.device.type == "cpu" else ckpt["generator"])
    st.a, st.b, st.it, st.seconds = float(ckpt["a"]), float(ckpt["b"]), int(ckpt["iteration"]), float(ckpt["seconds"])
    st.a_trace, st.b_trace = list(ckpt["a_trace"]), list(ckpt["b_trace"])
    st.elbo, st.secs = list(ckpt["elbo_trace"]), list(ckpt["seconds_trace"])
    b = ckpt["best"]
    st.best = (float(b[0]), int(b[1]), float(b[2]), float(b[3]))


def _select(st: _State, s: EMSettings) -> tuple[float, float]:
    """The reported (a, b): the last iterate, the best-ELBO iterate, or the mean of the trailing iterates
    (Polyak–Ruppert averaging: the stochastic E-steps make single iterates jitter around the fixed point)."""
    if s.select == "best_elbo" and st.best[1] > 0:
        return st.best[2], st.best[3]
    if s.select == "average":
        k = max(1, math.ceil(s.average_fraction * st.it))
        return float(np.mean(st.a_trace[-k:])), float(np.mean(st.b_trace[-k:]))
    return st.a, st.b


def run_em(operator, y: torch.Tensor, prior, settings: EMSettings, seed: int = 0, checkpoint=None,
           resume: dict | None = None, progress: Progress | None = None) -> EMResult:
    """Estimate (a, b) and the posteriors of the measurements ``y`` (N, m).

    Args:
        operator: Forward operator on vectors (d,) -> (m,) (e.g. ``surrogate``, ``gixrf``).
        y: Measured data (N, m) on the operator's device.
        prior: A :class:`invsolve.samplers.priors.VectorPrior` of dimension d.
        settings: :class:`EMSettings`.
        seed: Seed of the one generator driving all draws.
        checkpoint: File written every ``checkpoint_every`` iterations and at the end (None: none).
        resume: A loaded checkpoint dict to continue from.
        progress: Called after every outer iteration.

    Returns:
        :class:`EMResult`.

    References:
        Hagemann, Gruhlke, Heidenreich, Steidl, Mixed noise and posterior
        estimation with conditional DeepGEM, Mach. Learn.: Sci. Technol. 5
        (2024) 035001, arXiv 2402.02964; Gao et al., DeepGEM: generalized
        expectation-maximization for blind inversion, NeurIPS 2021.
    """
    from ..samplers.base import write_atomic

    s = settings
    if _importance(s) and s.estep == "cfm":
        raise ConfigError("mstep_importance needs a flow with a density (estep forward_kl or reverse_kl), not cfm")
    dev = y.device
    y = y.float()
    gen = torch.Generator(device=dev).manual_seed(int(seed))
    with torch.random.fork_rng(devices=[]):  # the network's initial weights follow the seed too
        torch.manual_seed(int(seed))
        flow = _make_flow(operator, s, s.a_init, s.b_init).to(dev)
    xs, ys = _simulate(operator, prior, 4096, s.a_init, s.b_init, torch.Generator(device=dev).manual_seed(seed + 1))
    flow.fit_stats(xs, ys)
    opt = torch.optim.Adam(flow.net["model"].parameters(), lr=s.lr)
    st = _State(flow, opt, gen, s.a_init, s.b_init)
    extra = {"data_sum": float(y.double().sum()), "data_shape": list(y.shape), "seed": int(seed)}
    if resume is not None:
        _restore(st, resume, s, extra)
    t0 = time.perf_counter() - st.seconds
    k = max(1, math.ceil(s.mstep_samples / len(y)))
    while st.it < s.iterations:
        _estep(st, operator, prior, s)
        with torch.no_grad():
            x = _posterior(flow, operator, prior, y, k, st, s)  # (N, k, d)
            f = operator(x.reshape(-1, x.shape[-1])).reshape(len(y), k, -1)
        st.a, st.b = mstep_mixed(y[:, None] - f, f, st.a, st.b, s.mstep_iterations)
        st.it += 1
        e = _elbo(st, operator, prior, y, s) if st.it % s.elbo_every == 0 or st.it == s.iterations else float("nan")
        st.a_trace.append(st.a)
        st.b_trace.append(st.b)
        st.elbo.append(e)
        st.secs.append(time.perf_counter() - t0)
        if e > st.best[0]:
            st.best = (e, st.it, st.a, st.b)
        if progress is not None:
            progress(st.it, s.iterations, st.a, st.b, e)
        st.seconds = time.perf_counter() - t0
        if checkpoint is not None and (st.it % s.checkpoint_every == 0 or st.it == s.iterations):
            write_atomic(_checkpoint(st, s, extra), checkpoint)
    a, b = _select(st, s)
    t1 = time.perf_counter()
    samples = _posterior(flow, operator, prior, y, s.posterior_samples, st, s).cpu().numpy()
    t_sample = time.perf_counter() - t1
    return EMResult(a=a, b=b, a_trace=np.asarray(st.a_trace), b_trace=np.asarray(st.b_trace),
                    elbo_trace=np.asarray(st.elbo, dtype=np.float64), seconds_trace=np.asarray(st.secs),
                    samples=samples, best_iteration=int(st.best[1]),
                    info={"seconds": time.perf_counter() - t0, "sample_seconds": t_sample, "iterations": st.it,
                          "mstep_importance": _importance(s), "sampler": flow.name,
                          "sampler_config": flow.config.model_dump(mode="json"), "best_elbo": st.best[0]})
