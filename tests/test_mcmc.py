"""The MCMC baseline's burn-in safeguards (restarts of stranded chains) and its split-R̂ diagnostic."""

import math

import torch

from invsolve.mcmc import MCMCParams, _restart_stuck, run_chains, split_rhat


def _trapped_target(x: torch.Tensor, grad: bool):
    """1-D target on [−1, 1]: a Gaussian around 0.3 (sd 0.03) whose outside |x − 0.3| > 0.15 is cut into
    basins by 300-nat walls every 0.1.

    The outer basins lie 22 nats or more below the mode and hold no mass, but a chain started in one can
    never climb out; the smooth centre holds the whole posterior.
    """
    with torch.enable_grad():
        xg = x.detach().requires_grad_(grad)
        walls = 300 * torch.sin(10 * math.pi * (xg - 0.3)) ** 2 * ((xg - 0.3).abs() > 0.15)
        v = (-0.5 * ((xg - 0.3) / 0.03) ** 2 - walls).sum(1)
        g = torch.autograd.grad(v.sum(), xg)[0] if grad else None
    inside = (x.abs() <= 1).all(1)
    return torch.where(inside, v.detach(), torch.full_like(v, -math.inf)), g


def test_stranded_chains_restart_during_burn_in_and_the_kept_sample_is_in_the_mass():
    gen = torch.Generator().manual_seed(0)
    x0 = torch.linspace(-0.98, 0.98, 64, dtype=torch.float64)[:, None]  # chains spread over every basin
    p = MCMCParams(chains=64, burn_in=1000, steps=300, thin=10)
    samples, info = run_chains(_trapped_target, x0, 1, p, torch.tensor([0.5], dtype=torch.float64), gen)
    assert samples.shape == (1, 64 * 30, 1)
    assert (samples - 0.3).abs().max() < 0.15  # nothing left in the outer basins
    assert abs(float(samples.mean()) - 0.3) < 0.005 and abs(float(samples.std()) - 0.03) < 0.004
    # without restarts the same chains stay where they started
    trapped, tinfo = run_chains(_trapped_target, x0, 1, p.model_copy(update={"stuck_nats": 1e9}),
                            torch.tensor([0.5], dtype=torch.float64), torch.Generator().manual_seed(0))
    assert (trapped - 0.3).abs().gt(0.5).float().mean() > 0.2
    assert info["rhat"][0] < 1.1 and tinfo["rhat"][0] > 2


def test_restart_replaces_only_chains_far_below_their_groups_best():
    x = torch.arange(8, dtype=torch.float64)[:, None]
    lp = torch.tensor([0.0, -1.0, -2.0, -100.0, 5.0, 4.0, -50.0, 3.0], dtype=torch.float64)
    nx, nlp, _ = _restart_stuck(x, lp, None, 2, 10.0, torch.Generator().manual_seed(0))
    keep = [0, 1, 2, 4, 5, 7]
    assert torch.equal(nx[keep], x[keep]) and torch.equal(nlp[keep], lp[keep])
    assert float(nx[3]) in (0.0, 1.0, 2.0)  # from its own group, within 10 nats of its best (0.0)
    assert float(nx[6]) in (4.0, 5.0, 7.0)  # the second group: within 10 nats of 5.0
    assert float(nlp[3]) == float(lp[int(nx[3])])


def test_split_rhat_is_one_for_agreeing_chains_and_large_for_disagreeing_ones():
    g = torch.Generator().manual_seed(0)
    same = torch.randn((2, 16, 200, 3), generator=g, dtype=torch.float64)
    assert split_rhat(same).sub(1).abs().max() < 0.03
    apart = same + torch.arange(16, dtype=torch.float64)[None, :, None, None]  # every chain somewhere else
    assert split_rhat(apart).min() > 3
    drift = same + torch.linspace(0, 5, 200, dtype=torch.float64)[None, None, :, None]  # not stationary
    assert split_rhat(drift).min() > 1.3  # halves 2.5 apart against a within-half sd of 1.2: √2
    assert torch.isnan(split_rhat(same[:, :, :3])).all()
