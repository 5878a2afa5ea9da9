import math

import numpy as np
import pytest
import torch
from scipy import stats

from invsolve.errors import ConfigError, OperatorError
from invsolve.noise import build_noise


def test_gaussian_nll_closed_form_and_moments():
    nm = build_noise({"name": "gaussian", "sigma": 0.1})
    f = torch.linspace(-1, 1, 50, dtype=torch.float64).reshape(2, 25)
    y = f + 0.05
    ref = -stats.norm.logpdf(y.numpy(), f.numpy(), 0.1).sum(axis=1)
    np.testing.assert_allclose(nm.nll(y, f).numpy(), ref, rtol=1e-10)
    s = nm.sample(torch.zeros(200_000, dtype=torch.float64)[None], generator=torch.Generator().manual_seed(0))
    assert abs(float(s.mean())) < 4 * 0.1 / math.sqrt(2e5)
    assert abs(float(s.std()) - 0.1) < 0.002


def test_mixed_nll_closed_form_and_moments():
    nm = build_noise({"name": "mixed", "a": 0.05, "b": 0.2})
    f = torch.linspace(0.1, 2, 40, dtype=torch.float64).reshape(2, 20)
    y = f * 1.1 + 0.01
    sd = np.sqrt(0.05**2 + 0.2**2 * f.numpy() ** 2)
    ref = -stats.norm.logpdf(y.numpy(), f.numpy(), sd).sum(axis=1)
    np.testing.assert_allclose(nm.nll(y, f).numpy(), ref, rtol=1e-10)
    f = torch.full((1, 200_000), 2.0, dtype=torch.float64)
    s = nm.sample(f, generator=torch.Generator().manual_seed(1))
    assert abs(float(s.mean()) - 2.0) < 0.005
    assert abs(float(s.var()) - (0.05**2 + 0.2**2 * 4)) < 0.005


def test_poisson_nll_is_count_likelihood_and_moments():
    nm = build_noise({"name": "poisson", "n0": 1000.0, "mu": 2.0})
    f = torch.tensor([[0.1, 0.5, 1.0, 0.3]], dtype=torch.float64)
    counts = np.array([[800, 370, 140, 560]], dtype=np.float64)
    y = torch.from_numpy(-np.log(counts / 1000.0) / 2.0)
    rate = 1000.0 * np.exp(-2.0 * f.numpy())
    ref = -stats.poisson.logpmf(counts, rate).sum(axis=1)
    np.testing.assert_allclose(nm.nll(y, f).numpy(), ref, rtol=1e-9)
    # sampled counts have the right mean and variance
    f = torch.full((1, 100_000), 0.2, dtype=torch.float64)
    yy = nm.sample(f, generator=torch.Generator().manual_seed(2))
    n = nm.counts(yy)
    lam = 1000.0 * math.exp(-0.4)
    assert abs(float(n.mean()) - lam) < 4 * math.sqrt(lam / 1e5)
    assert abs(float(n.var()) / lam - 1) < 0.03


def test_poisson_nll_gradient_matches_patchnr_data_term():
    # d/df of sum N0 e^{-mu f} - N0 e^{-mu y}(log N0 - mu f), the patchNR/LoDoPaB loss
    nm = build_noise({"name": "poisson", "n0": 4096.0, "mu": 81.35858})
    g = torch.Generator().manual_seed(0)
    y = torch.rand(1, 30, generator=g, dtype=torch.float64) * 0.02
    f = (torch.rand(1, 30, generator=g, dtype=torch.float64) * 0.02).requires_grad_(True)
    nm.nll(y, f).sum().backward()
    n0, mu = 4096.0, 81.35858
    ref = -mu * n0 * torch.exp(-mu * f.detach()) + n0 * torch.exp(-mu * y) * mu
    torch.testing.assert_close(f.grad, ref)


def test_zero_counts_replaced():
    nm = build_noise({"name": "poisson", "n0": 1.0, "mu": 1.0})
    y = nm.sample(torch.full((1, 1000), 20.0), generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(y).all()
    assert float(y.max()) == pytest.approx(-math.log(0.1), rel=1e-5)


def test_unknown_noise_and_key():
    with pytest.raises(OperatorError, match="valid: gaussian, mixed, poisson"):
        build_noise({"name": "gauss"})
    with pytest.raises(ConfigError, match="unknown key 'sgma'"):
        build_noise({"name": "gaussian", "sgma": 1})
