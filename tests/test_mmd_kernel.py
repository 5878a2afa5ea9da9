"""Exactness of the sorting-based sliced energy distance and its gradient."""

import math

import pytest
import torch

from invsolve.errors import ShapeError
from invsolve.samplers.mmd_kernel import (
    energy_distance,
    random_directions,
    sliced_energy_distance,
    sliced_energy_gradient,
    sliced_pairwise_energy,
    slicing_constant,
    sorted_slice_gradient,
)


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_slicing_constant_values():
    assert slicing_constant(1) == pytest.approx(1.0, abs=1e-14)
    assert slicing_constant(2) == pytest.approx(math.pi / 2, abs=1e-14)
    assert slicing_constant(3) == pytest.approx(2.0, abs=1e-14)
    assert slicing_constant(784) == pytest.approx(35.08, abs=5e-3)
    assert slicing_constant(12288) == pytest.approx(138.93, abs=5e-3)
    assert slicing_constant(10**6) == pytest.approx(math.sqrt(math.pi * 10**6 / 2), rel=1e-6)


def test_slicing_constant_is_the_mean_absolute_projection():
    g = _gen(1)
    xi = random_directions(400_000, 5, g, dtype=torch.float64)
    v = torch.tensor([0.3, -1.0, 2.0, 0.5, 0.1], dtype=torch.float64)
    est = slicing_constant(5) * (xi @ v).abs().mean()
    assert est.item() == pytest.approx(v.norm().item(), rel=5e-3)


@pytest.mark.parametrize("n,m,d,p", [(40, 60, 7, 25), (33, 33, 3, 64), (1, 5, 2, 3)])
def test_sorting_gradient_equals_autograd_along_the_same_slices(n, m, d, p):
    g = _gen(n)
    x = torch.randn(n, d, dtype=torch.float64, generator=g)
    y = torch.randn(m, d, dtype=torch.float64, generator=g) * 1.5 + 0.3
    xi = random_directions(p, d, g, dtype=torch.float64)
    xr = x.clone().requires_grad_(True)
    ref = sliced_pairwise_energy(xr, y, xi)
    ref.backward()
    # small work space: several slice chunks are accumulated
    grad, value = sliced_energy_gradient(x, y, directions=xi, return_value=True, workspace=3 * (n + m))
    assert (grad - xr.grad).abs().max().item() < 1e-10
    assert value.item() == pytest.approx(ref.item(), abs=1e-12)


def test_conditional_gradient_is_the_x_block_of_the_joint_gradient():
    g = _gen(3)
    x, y = torch.randn(30, 6, dtype=torch.float64, generator=g), torch.randn(45, 6, dtype=torch.float64, generator=g)
    xi = random_directions(20, 6, g, dtype=torch.float64)
    full = sliced_energy_gradient(x, y, directions=xi)
    part = sliced_energy_gradient(x, y, directions=xi, n_moving=4)
    assert part.shape == (30, 4)
    assert torch.allclose(part, full[:, :4], atol=1e-15)


def test_float32_fast_path_matches_the_generic_sort():
    g = _gen(4)
    # distinct values (no ties), so every sort gives the same permutation
    pool = torch.randperm(20_000, generator=g).float().reshape(4, 5000) / 997.0 - 10.0
    xp, yp = pool[:, :2000].contiguous(), pool[:, 2000:].contiguous()
    fast = sorted_slice_gradient(xp, yp)
    ref = sorted_slice_gradient(xp.double(), yp.double(), generic=True)
    assert fast.dtype == torch.float32
    assert ((fast.double() - ref).abs().max() / ref.abs().max()).item() < 1e-6
    gen32 = sorted_slice_gradient(xp, yp, generic=True)
    assert ((gen32.double() - ref).abs().max() / ref.abs().max()).item() < 1e-6


def test_float32_fast_path_breaks_ties_like_a_stable_sort():
    g = _gen(8)
    # quantised values: many ties within and across particles and targets, both signs
    xp = (torch.randint(-40, 40, (5, 3000), generator=g) / 7.0).float()
    yp = (torch.randint(-40, 40, (5, 4000), generator=g) / 7.0).float()
    assert torch.equal(sorted_slice_gradient(xp, yp), sorted_slice_gradient(xp, yp, generic=True))


def test_float32_value_and_gradient_match_float64():
    g = _gen(5)
    x, y = torch.rand(700, 16, generator=g), torch.rand(900, 16, generator=g) * 0.8 + 0.1
    xi = random_directions(50, 16, g)
    g32, v32 = sliced_energy_gradient(x, y, directions=xi, return_value=True)
    g64, v64 = sliced_energy_gradient(x.double(), y.double(), directions=xi.double(), return_value=True)
    assert g32.dtype == torch.float32 and v32.dtype == torch.float64
    # float32 projections may swap a few near-ties; each swap moves one particle's slice term by O(1/N^2)
    err = (g32.double() - g64).abs()
    assert err.max().item() < 1e-2 * g64.abs().max().item()
    assert err.mean().item() < 1e-4 * g64.abs().mean().item()
    assert v32.item() == pytest.approx(v64.item(), rel=1e-5)


def test_sliced_value_converges_to_the_exact_energy_distance():
    g = _gen(6)
    x = torch.randn(600, 4, dtype=torch.float64, generator=g)
    y = torch.randn(500, 4, dtype=torch.float64, generator=g) * 1.4 + 0.5
    exact = energy_distance(x, y).item()

    def err(p, seed):
        return abs(sliced_energy_distance(x.float(), y.float(), p, generator=_gen(seed)).item() - exact) / exact

    coarse = sum(err(50, s) for s in range(3)) / 3
    fine = err(8000, 0)
    assert fine < 0.025
    assert fine < coarse


def test_exact_energy_distance_half_convention():
    x = torch.tensor([[0.0], [1.0]], dtype=torch.float64)
    y = torch.tensor([[3.0]], dtype=torch.float64)
    # E|X - Y| = 2.5, E|X - X'| = 0.5, E|Y - Y'| = 0
    assert energy_distance(x, y).item() == pytest.approx(2.5 - 0.25)
    assert energy_distance(x, x).item() == pytest.approx(0.0, abs=1e-15)


def test_directions_are_reproducible_unit_vectors():
    a = random_directions(10, 784, _gen(7))
    b = random_directions(10, 784, _gen(7))
    assert torch.equal(a, b)
    assert torch.allclose(a.norm(dim=1), torch.ones(10), atol=1e-6)


def test_shape_errors():
    with pytest.raises(ShapeError):
        sliced_energy_gradient(torch.zeros(3, 2), torch.zeros(3, 4))
    with pytest.raises(ShapeError):
        sliced_energy_gradient(torch.zeros(3, 2), torch.zeros(3, 2), directions=torch.zeros(5, 3))
    with pytest.raises(ShapeError):
        slicing_constant(0)
