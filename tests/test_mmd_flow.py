"""Conditional MMD particle flows and the distilled ``mmd-flow`` sampler on the linear-Gaussian problem."""

import pytest
import torch

import invsolve.samplers.mmd_flow  # noqa: F401  (registers "mmd-flow")
from invsolve.errors import ConfigError, ShapeError
from invsolve.samplers.mmd_particles import flow, flow_schedule, joint

A = torch.tensor([[1.0, 0.3], [0.0, 0.5]], dtype=torch.float64)
SIGMA = 0.3


def _posterior():
    """Closed form for x ~ N(0, I), y = A x + SIGMA e: y -> mean K y, covariance S."""
    s = torch.linalg.inv(A.T @ A / SIGMA**2 + torch.eye(2, dtype=torch.float64))
    return s @ A.T / SIGMA**2, s


def _linear_fit(x, y):
    """Least-squares x ≈ K y + b over the particles; the residual covariance."""
    yy = torch.cat([y, torch.ones(len(y), 1, dtype=y.dtype)], dim=1).double()
    b = torch.linalg.lstsq(yy, x.double()).solution
    r = x.double() - yy @ b
    return b[:2].T, r.T @ r / len(r)


def test_conditional_particle_flow_reaches_the_linear_gaussian_posterior():
    g = torch.Generator().manual_seed(0)
    n = 1500
    x = torch.randn(n, 2, generator=g)
    y = x @ A.T.float() + SIGMA * torch.randn(n, 2, generator=g)
    targets = joint(x, y, 3.0)
    particles = joint(torch.randn(n, 2, generator=g), y, 3.0)
    k0, s0 = _linear_fit(particles[:, :2], y)
    flow(particles, targets, 200, generator=g, n_moving=2, momentum=0.9, n_slices=128)
    assert torch.equal(particles[:, 2:], 3.0 * y)  # the conditions never move
    k, s = _posterior()
    kh, sh = _linear_fit(particles[:, :2], y)
    assert (kh - k).abs().max().item() < 0.08 < (k0 - k).abs().max().item()
    assert (sh - s).abs().max().item() < 0.25 * s.abs().max().item()


def test_unconditional_flow_decreases_the_energy_distance():
    from invsolve.samplers.mmd_kernel import energy_distance

    g = torch.Generator().manual_seed(1)
    target = torch.randn(400, 3, generator=g) * 0.5 + 2.0
    x = torch.rand(400, 3, generator=g)
    before = energy_distance(x, target).item()
    v = flow(x, target, 60, generator=g, momentum=0.5, n_slices=64)
    assert v.shape == (400, 3)
    assert energy_distance(x, target).item() < 0.05 * before


def test_flow_schedule_and_errors():
    assert flow_schedule(16, 5, 10_000) == [16, 32, 64, 128, 256]
    assert flow_schedule(8, 4, 20) == [8, 16, 20, 20]
    with pytest.raises(ConfigError):
        flow(torch.zeros(3, 2), torch.zeros(3, 2), 1, generator=torch.Generator(), momentum=1.0)
    with pytest.raises(ShapeError):
        flow(torch.zeros(3, 2), torch.zeros(3, 3), 1, generator=torch.Generator())
    with pytest.raises(ShapeError):
        joint(torch.zeros(3, 2), torch.zeros(4, 2))


SETTINGS = dict(particles=600, slices=64, nets=3, flow_steps=32, flow_cap=64, hidden=64, depth=2)


def _train(path, steps=90, resume=False, progress=None, **extra):
    from invsolve.api_samplers import train_sampler

    return train_sampler("mmd-flow", "linear", {"diagonal": [1.0, 0.5]}, "gaussian", {"sigma": SIGMA},
                         prior="gaussian", dim=2, sampler_params={**SETTINGS, **extra}, steps=steps, batch_size=128,
                         lr=2e-3, val_every=30, output=str(path), resume=resume, overwrite=not resume, seed=0,
                         device="cpu", progress=progress)


def test_distilled_sampler_roughly_matches_the_posterior(tmp_path):
    from invsolve.samplers import load_sampler
    from invsolve.samplers.exact import ExactPosterior

    info = _train(tmp_path / "s.pt")
    assert info["sampler"] == "mmd-flow" and info["flow_steps"] == 32 + 64 + 64
    s = load_sampler(tmp_path / "s.pt")
    y = torch.tensor([[0.5, -0.3], [-1.0, 0.4]])
    smp = s.sample(y, 2000, torch.Generator().manual_seed(1)).double()
    assert smp.shape == (2, 2000, 2)
    post = ExactPosterior([1.0], [[0.0, 0.0]], [[1.0, 1.0]], torch.diag(torch.tensor([1.0, 0.5])), SIGMA)
    mean_err = (smp.mean(1) - post.mean(y)).norm(dim=1)
    prior_err = post.mean(y).norm(dim=1)  # the error of the prior mean, for scale
    assert (mean_err < 0.5 * prior_err).all()
    ratio = smp.var(1) / torch.diagonal(post.covariance(y), dim1=1, dim2=2)
    # not collapsed and not wider than the posterior; with this tiny budget the distilled networks
    # under-disperse (regression toward the mean): ratios 0.17-0.51 here
    assert (ratio > 0.1).all() and (ratio < 1.2).all()


def test_resume_gives_the_same_sampler(tmp_path):
    full = tmp_path / "full.pt"
    _train(full, steps=30, nets=2, flow_steps=8, flow_cap=8, particles=300)
    part = tmp_path / "part.pt"

    def stop(step, total, loss, val):
        if step == 8 + 15 + 1:  # inside block 2: block 1 was checkpointed
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _train(part, steps=30, progress=stop, nets=2, flow_steps=8, flow_cap=8, particles=300)
    info = _train(part, steps=30, resume=True, nets=2, flow_steps=8, flow_cap=8, particles=300)
    assert info["resumed_from"] == 15
    a = torch.load(full, weights_only=True)["state_dict"]
    b = torch.load(part, weights_only=True)["state_dict"]
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_image_sampler_trains_and_samples(tmp_path):
    import numpy as np

    from invsolve.api_samplers import train_sampler
    from invsolve.samplers import load_sampler

    rng = np.random.default_rng(0)
    img = tmp_path / "im.npy"
    np.save(img, rng.random((48, 48)).astype(np.float32))
    out = tmp_path / "img.pt"
    info = train_sampler("mmd-flow", "superres", {"factor": 4}, images=[str(img)], crop=32,
                         sampler_params=dict(particles=40, slices=16, nets=2, flow_steps=2, flow_cap=2, channels=8),
                         steps=4, batch_size=4, val_size=8, output=str(out), seed=0, device="cpu")
    assert info["flow_steps"] == 4
    s = load_sampler(out)
    y = torch.rand(2, 8, 8)
    assert s.sample(y, 3, torch.Generator().manual_seed(0)).shape == (2, 3, 32, 32)


def test_too_few_steps_for_the_networks(tmp_path):
    with pytest.raises(ConfigError, match="networks"):
        _train(tmp_path / "s.pt", steps=2)
