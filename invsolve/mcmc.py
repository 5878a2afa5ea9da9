"""Many parallel MCMC chains for vector posteriors p(x | y) ∝ p(y | x)·p(x).

The baseline next to trained conditional samplers: for each of N
measurements, C chains (all advanced together as one (N·C, d) batch) run the
Metropolis-adjusted Langevin algorithm (``mala``) or a Gaussian random walk
(``rw``) on log p(y | f(x)) + log p(x), with the noise model's NLL and a
vector prior.  During burn-in the step size is adapted per measurement
towards a target acceptance rate (0.574 MALA, 0.234 random walk) and the
proposal is preconditioned by the chains' per-entry spread; afterwards both
are frozen, so the kept states are an exact MCMC sample.

Narrow posteriors inside a wide prior box strand chains: a chain started far
from the mass, where the log target is thousands of nats below the mode,
barely moves at the step size the converged chains need, and the spread of
such chains mimics a wide posterior.  Each chain therefore starts at the best
of ``init_candidates`` prior draws, and during the first part of burn-in a
chain whose log target lies more than ``stuck_nats`` below its group's best
chain restarts from a randomly chosen chain within that margin (burn-in only, so the
kept states stay a valid MCMC sample).  The split-R̂ of every coordinate
(Vehtari et al. 2021) is reported so that a run that did not mix is visible.
"""

from __future__ import annotations

import math
import time
from typing import Any, Literal

import torch
from pydantic import Field

from .config import Params, validate_params
from .errors import ConfigError
from .methods import no_track
from .posterior import split_rhat

__all__ = ["MCMCParams", "run_chains", "mcmc_sample", "mcmc_posterior", "split_rhat", "metropolis_accept"]


class MCMCParams(Params):
    method: Literal["mala", "rw"] = Field("mala", description="Metropolis-adjusted Langevin or random walk")
    chains: int = Field(64, ge=1, description="parallel chains per measurement")
    steps: int = Field(2000, ge=1, description="steps after burn-in")
    burn_in: int = Field(1000, ge=0, description="adaptation steps, discarded")
    thin: int = Field(10, ge=1, description="keep every thin-th state")
    step_size: float = Field(0.1, gt=0, description="initial step, relative to the proposal scale")
    adapt: bool = Field(True, description="adapt step size and preconditioner during burn-in")
    target_accept: float | None = Field(None, gt=0, lt=1, description="default 0.574 (mala) or 0.234 (rw)")
    keep_samples: bool = Field(False, description="keep the samples in the posterior summary")
    init_candidates: int = Field(16, ge=1, description="each chain starts at the best of this many prior draws")
    stuck_nats: float | None = Field(None, gt=0, description="burn-in restart threshold below the group's best chain's "
                                     "log target; default 10 + 3·dim")


def metropolis_accept(log_a: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Metropolis–Hastings decisions for log acceptance ratios (R,) -> bool (R,): accept with probability
    min(1, exp(log_a)); NaN (e.g. ∞ − ∞) rejects.  One uniform per row, of log_a's dtype and device."""
    u = torch.rand(log_a.shape, generator=generator, device=log_a.device, dtype=log_a.dtype)
    return torch.log(u) < torch.nan_to_num(log_a, nan=-math.inf)


def _target(operator, noise, prior, y_rep):
    def logp(x: torch.Tensor, grad: bool):
        with torch.enable_grad():
            xg = x.detach().requires_grad_(grad)
            lp = prior.log_prob(xg)
            inside = torch.isfinite(lp)
            xs = torch.where(inside[:, None], xg, xg.detach())
            val = -noise.nll(y_rep, operator(xs)) + torch.where(inside, lp, torch.zeros_like(lp))
            g = torch.autograd.grad(val.sum(), xg)[0] if grad else None
        val = torch.where(inside, val.detach(), torch.full_like(val, -math.inf))
        if g is not None:
            g = torch.nan_to_num(g, nan=0.0, posinf=0.0, neginf=0.0)
        return val, g

    return logp


def run_chains(logp, x0: torch.Tensor, groups: int, params: MCMCParams, scale: torch.Tensor,
               generator: torch.Generator, track=no_track) -> tuple[torch.Tensor, dict[str, Any]]:
    """Advance R = groups·C chains; step sizes and preconditioners are shared within a group.

    Args:
        logp: ``logp(x, grad) -> (log target (R,), gradient (R, d) or None)``.
        x0: Initial states (R, d), group-major (chains of group g are rows g·C … g·C + C − 1).
        groups: Number of groups (measurements) N.
        params: :class:`MCMCParams`.
        scale: Initial per-entry proposal scale (d,) or (N, d), e.g. the prior's std.
        generator: Drives every proposal and acceptance draw.

    Returns:
        Samples (N, C·S, d) with S = steps // thin, and info (acceptance, step sizes).

    References:
        Roberts & Tweedie, Exponential convergence of Langevin distributions
        and their discrete approximations, Bernoulli 2(4) (1996); Andrieu &
        Thoms, A tutorial on adaptive MCMC, Stat. Comput. 18 (2008).
    """
    p = params
    R, d = x0.shape
    C = R // groups
    mala = p.method == "mala"
    target = p.target_accept or (0.574 if mala else 0.234)
    dev, dt = x0.device, x0.dtype
    log_h = torch.full((groups,), math.log(p.step_size), device=dev, dtype=dt)
    sc = scale.to(dev, dt).expand(groups, d).clone()
    x = x0.clone()
    lp, g = logp(x, mala)
    kept, acc_sum, acc_n = [], 0.0, 0
    stuck = p.stuck_nats if p.stuck_nats is not None else 10.0 + 3.0 * d
    total = p.burn_in + p.steps
    for it in track(range(total), f"MCMC ({p.method})", hint="-S steps=N"):
        track.note(log_posterior=lp.mean())
        h = log_h.exp().repeat_interleave(C)[:, None]
        s = sc.repeat_interleave(C, 0)
        noise = torch.randn((R, d), generator=generator, device=dev, dtype=dt)
        if mala:
            mean = x + 0.5 * h**2 * s**2 * g
            prop = mean + h * s * noise
        else:
            prop = x + h * s * noise
        lp_new, g_new = logp(prop, mala)
        log_a = lp_new - lp
        if mala:
            back = prop + 0.5 * h**2 * s**2 * g_new
            log_a = log_a - (((x - back) / (h * s)) ** 2).sum(1) / 2 + (noise**2).sum(1) / 2
        ok = metropolis_accept(log_a, generator)
        x = torch.where(ok[:, None], prop, x)
        lp = torch.where(ok, lp_new, lp)
        if mala:
            g = torch.where(ok[:, None], g_new, g)
        rate = ok.to(dt).reshape(groups, C).mean(1)
        if it < p.burn_in:
            if (it + 1) % 100 == 0 and it + 1 <= 0.6 * p.burn_in and C > 1:
                x, lp, g = _restart_stuck(x, lp, g, groups, stuck, generator)
            if p.adapt:
                log_h = log_h + (rate - target) * 2.0 / math.sqrt(it + 10)
                if (it + 1) % 100 == 0 and it + 1 < p.burn_in and C > 1:
                    new = x.reshape(groups, C, d).std(1).clamp_min(1e-10)
                    log_h = log_h + torch.log(sc / new).mean(1)  # keep the absolute step, then adapt
                    sc = new
        else:
            acc_sum, acc_n = acc_sum + float(rate.mean()), acc_n + 1
            if (it - p.burn_in + 1) % p.thin == 0:
                kept.append(x.reshape(groups, C, d))
    chains = torch.stack(kept, dim=2) if kept else x.reshape(groups, C, 1, d)
    info = {"acceptance": acc_sum / max(acc_n, 1), "step_size": log_h.exp().tolist(), "target": target,
            "rhat": split_rhat(chains).amax(1).tolist()}
    return chains.reshape(groups, -1, d), info


def _restart_stuck(x, lp, g, groups: int, nats: float, generator: torch.Generator):
    """Chains more than ``nats`` below their group's best log target restart from random chains that are not.

    A posterior draw in d dimensions lies about χ²_d/2 nats below the mode, so with the default
    10 + 3·d nats no chain that holds posterior mass is moved; the best chain rather than the median is the
    reference so that a majority stranded in one outer basin is not mistaken for the posterior.
    """
    R, d = x.shape
    C = R // groups
    lpg = lp.reshape(groups, C)
    best = torch.where(torch.isfinite(lpg), lpg, torch.full_like(lpg, -math.inf)).amax(1, keepdim=True)
    bad = (lpg < best - nats) | ~torch.isfinite(lpg)
    if not bool(bad.any()):
        return x, lp, g
    good = ~bad
    # a random good chain of the same group for every chain (argmax of masked uniforms)
    u = torch.rand((groups, C, C), generator=generator, device=x.device, dtype=x.dtype)
    src = (u * good[:, None, :]).argmax(2) + torch.arange(groups, device=x.device)[:, None] * C
    src = torch.where(bad, src, torch.arange(R, device=x.device).reshape(groups, C)).reshape(-1)
    return x[src], lp[src], (g[src] if g is not None else None)


def mcmc_sample(operator, noise, prior, y: torch.Tensor, params: MCMCParams, generator: torch.Generator,
                track=no_track) -> tuple[torch.Tensor, dict[str, Any]]:
    """Posterior samples (N, C·S, d) of each measurement y (N, m), float64 chains."""
    N = len(y)
    C = params.chains
    K = params.init_candidates
    cand = prior.sample(N * C * K, generator, device=generator.device).double()  # (N·C·K, d), group-major
    with torch.no_grad():
        lp0, _ = _target(operator, noise, prior, y.double().repeat_interleave(C * K, 0))(cand, False)
    best = lp0.reshape(N * C, K).argmax(1) + torch.arange(N * C, device=cand.device) * K
    x0 = cand[best]
    y_rep = y.double().repeat_interleave(C, 0)
    scale = prior.sample(4096, torch.Generator(device=generator.device).manual_seed(0)).double().std(0)
    return run_chains(_target(operator, noise, prior, y_rep), x0, N, params, scale, generator, track)


def mcmc_posterior(measurement, prior_spec: dict | None, params: dict | MCMCParams, levels, generator: torch.Generator,
                   track=no_track):
    """Hook of ``sample-posterior --sampler mcmc``: summaries of MCMC posteriors of every measurement.

    Args:
        measurement: An :class:`invsolve.api.Measurement` of a vector operator (N, m).
        prior_spec: ``{"name": "uniform"|"gaussian"|"gmm", ...}`` (``dim`` optional); None uses the
            operator's own prior box (``surrogate``: its prior_low/high, ``gixrf``: its bounds).
        params: :class:`MCMCParams` or a dict of its fields (e.g. the ``--sampler-param`` values).
        levels: Quantile levels to store.
        generator: Seeded generator; its device is the device used.

    Returns:
        :class:`invsolve.posterior.PosteriorSummary` with ``info`` (settings, acceptance, seconds).
    """
    from .noise import build_noise
    from .posterior import summarize_samples
    from .samplers.priors import build_prior

    t0 = time.perf_counter()
    p = params if isinstance(params, MCMCParams) else validate_params(MCMCParams, dict(params or {}),
                                                                       "parameters of sampler 'mcmc'")
    dev = generator.device
    op = measurement.build_operator(dev)
    if len(op.domain_shape) != 1:
        raise ConfigError(f"sampler 'mcmc' is for vector problems; operator {op.name!r} acts on images")
    prior = build_prior(resolve_prior_spec(op, prior_spec))
    y = torch.as_tensor(measurement.measurement, device=dev)
    samples, info = mcmc_sample(op, build_noise(measurement.noise), prior, y, p, generator, track)
    worst = max((r for r in info["rhat"] if r == r), default=1.0)
    if worst > 1.1:
        import warnings

        warnings.warn(f"MCMC chains disagree (split-R-hat up to {worst:.2f}, want < 1.1): the posterior summaries "
                      "are unreliable; raise --sampler-param burn_in=… and steps=…", RuntimeWarning, stacklevel=2)
    out = summarize_samples(samples, tuple(levels), keep=p.keep_samples)
    out.info = {"name": "mcmc", **p.model_dump(), "prior": prior.spec(), **info,
                "seconds": time.perf_counter() - t0}
    return out


def resolve_prior_spec(operator, spec: dict | str | None) -> dict:
    """A full prior spec for ``operator``: the given one (``dim`` filled in) or the operator's default."""
    d = operator.domain_shape[0]
    if isinstance(spec, str):
        spec = {"name": spec}
    if spec is None:
        spec = operator.prior_spec()
        if spec is None:
            raise ConfigError(f"operator {operator.name!r} has no default prior; give one, e.g. "
                              "prior={\"name\": \"uniform\", \"low\": [...], \"high\": [...]}")
    return {**spec, "dim": d}
