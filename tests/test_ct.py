"""The CT operators (ASTRA bridge) and filtered back projection."""

import copy
import gc
import math
import subprocess
import sys

import numpy as np
import pytest
import torch

from conftest import phantom
from invsolve.errors import ConfigError, OperatorError
from invsolve.methods import build_method
from invsolve.noise import build_noise
from invsolve.operators import build_operator, operator_entry

CASES = {
    "parallel": ("ct", {}),
    "fan": ("ct", {"geometry": "fan"}),
    "lowdose": ("ct-lowdose", {}),
    "limited": ("ct-limited", {}),
}


def psnr(x, ref):
    return 10 * math.log10(1.0 / float(((x.double() - ref.double()) ** 2).mean()))


@pytest.fixture(scope="module")
def shepp128():
    return torch.from_numpy(phantom(128))


@pytest.mark.parametrize("case", CASES)
def test_adjointness(case):
    name, params = CASES[case]
    op = build_operator(name, params, (48, 48))
    g = torch.Generator().manual_seed(0)
    x = torch.rand((2, 48, 48), generator=g)
    y = torch.randn((2, *op.range_shape), generator=g)
    lhs = (op(x).double() * y.double()).sum()
    rhs = (x.double() * op.adjoint(y).double()).sum()
    assert abs(float(lhs - rhs)) / abs(float(lhs)) < 1e-5


@pytest.mark.parametrize("case", ["parallel", "fan"])
def test_gradcheck_float64(case):
    name, params = CASES[case]
    op = build_operator(name, {**params, "angles": 6}, (8, 8))
    x = torch.rand((1, 8, 8), dtype=torch.float64, generator=torch.Generator().manual_seed(3), requires_grad=True)
    # ASTRA computes in float32: the operator is linear, so a large step is exact up to rounding
    assert torch.autograd.gradcheck(op, (x,), eps=0.5, atol=1e-4, rtol=1e-3)
    y = torch.rand((1, *op.range_shape), dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(op.adjoint, (y,), eps=0.5, atol=1e-4, rtol=1e-3)


def test_gradient_of_data_term_and_double_backward():
    op = build_operator("ct", {"angles": 30}, (32, 32))
    g = torch.Generator().manual_seed(4)
    x = torch.rand((2, 32, 32), generator=g, requires_grad=True)
    y = torch.rand((2, *op.range_shape), generator=g)
    loss = ((op(x) - y) ** 2).sum()
    (grad,) = torch.autograd.grad(loss, x, create_graph=True)
    torch.testing.assert_close(grad, 2 * op.adjoint(op(x.detach()) - y), rtol=1e-4, atol=1e-3)
    v = torch.rand((2, 32, 32), generator=g)
    (hv,) = torch.autograd.grad((grad * v).sum(), x)  # Hessian-vector product 2 AᵀA v
    torch.testing.assert_close(hv, 2 * op.adjoint(op(v)), rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("case", CASES)
def test_batch_equals_items_on_the_thread_pool(case):
    name, params = CASES[case]
    op = build_operator(name, params, (40, 40))
    g = torch.Generator().manual_seed(5)
    x = torch.rand((5, 40, 40), generator=g)
    y = torch.rand((5, *op.range_shape), generator=g)
    yb, xb = op(x), op.adjoint(y)
    for i in range(5):
        assert torch.equal(yb[i], op(x[i]))
        assert torch.equal(xb[i], op.adjoint(y[i]))


def test_float64_and_non_contiguous_inputs():
    op = build_operator("ct", {"angles": 20}, (24, 24))
    x = torch.rand((3, 24, 24), generator=torch.Generator().manual_seed(6))
    y64 = op(x.double())
    assert y64.dtype == torch.float64
    torch.testing.assert_close(y64.float(), op(x))
    xt = x.transpose(1, 2)
    torch.testing.assert_close(op(xt), op(xt.contiguous()))


def test_range_shape_and_midpoint_angles():
    op = build_operator("ct-lowdose", {}, (362, 362))
    assert op.range_shape == (1000, 513)  # LoDoPaB-CT sinogram
    np.testing.assert_allclose(op.angles_deg[:2], [0.09, 0.27])
    assert op.pixel_size == pytest.approx(0.26 / 362)
    lim = build_operator("ct-limited", {}, (362, 362))
    assert lim.range_shape == (800, 513)
    assert lim.angles_deg[0] == pytest.approx(18.09) and lim.angles_deg[-1] == pytest.approx(161.91)
    np.testing.assert_allclose(lim.angles_deg, op.angles_deg[100:900])
    assert build_operator("ct", {}, (64, 48)).range_shape == (180, 2 * math.ceil(40 / 1.0) + 1)
    fan = build_operator("ct", {"geometry": "fan", "angles": 90, "detectors": 77}, (32, 32))
    assert fan.range_shape == (90, 77) and fan.angles_deg[-1] == pytest.approx(358.0)
    assert operator_entry("ct-lowdose").noise["name"] == "poisson"


def test_invalid_parameters():
    with pytest.raises(ConfigError, match="angle_stop must be larger"):
        build_operator("ct", {"angle_start": 90, "angle_stop": 10}, (16, 16))
    with pytest.raises(ConfigError, match="source_origin .* inside the image"):
        build_operator("ct", {"geometry": "fan", "source_origin": 10}, (32, 32))
    with pytest.raises(ConfigError, match="unknown key 'angels'"):
        build_operator("ct", {"angels": 10}, (16, 16))
    with pytest.raises(OperatorError, match="needs a ct operator"):
        build_method({"name": "fbp"}).run(torch.zeros(1, 32, 32), build_operator("blur", {}, (32, 32)), None)


@pytest.mark.parametrize(
    "params, bound",
    [({}, 29.5), ({"geometry": "fan"}, 32.5)],  # measured 30.3 and 33.4 dB
)
def test_fbp_of_shepp_logan(shepp128, params, bound):
    op = build_operator("ct", params, (128, 128))
    rec = build_method({"name": "fbp", "filter": "ram-lak"}).run(op(shepp128)[None], op, None)
    assert rec.shape == (1, 128, 128)
    assert psnr(rec[0], shepp128) > bound
    assert abs(float(rec.mean() - shepp128.mean())) < (0.001 if not params else 0.004)


def test_fbp_in_physical_units_and_presets(shepp128):
    fbp = build_method({"name": "fbp", "filter": "hann", "frequency_scaling": 0.641025641025641, "clip": True})
    for name in ("ct-lowdose", "ct-limited"):
        op = build_operator(name, {}, (128, 128))
        y = op(shepp128)
        assert float(y.max()) < 0.26 * 1.5  # metres, not pixels
        rec = fbp.run(y, op, None)
        assert rec.shape == (128, 128) and 0 <= float(rec.min()) and float(rec.max()) <= 1
        mae = float((rec - shepp128).abs().mean())
        assert mae < (0.03 if name == "ct-lowdose" else 0.075)  # measured 0.027 / 0.068


def test_fbp_reproduces_a_disc():
    n = 96
    yy, xx = torch.meshgrid(torch.arange(n) - (n - 1) / 2, torch.arange(n) - (n - 1) / 2, indexing="ij")
    disc = ((xx**2 + yy**2) < 30**2).float() * 0.7
    inner = (xx**2 + yy**2) < 22**2
    fbp = build_method({"name": "fbp", "filter": "ram-lak"})
    for params in ({"domain_size": 0.26}, {"geometry": "fan", "domain_size": 2.0}):
        op = build_operator("ct", params, (n, n))
        rec = fbp.run(op(disc), op, None)
        assert float(rec[inner].mean()) == pytest.approx(0.7, rel=0.02)
        outside = rec[(xx**2 + yy**2) > 34**2]
        assert abs(float(outside.mean())) < 1e-3 and float(outside.abs().mean()) < 0.015  # streaks only


def test_poisson_noise_mean_matches_line_integrals():
    op = build_operator("ct-lowdose", {"angles": 100}, (32, 32))
    yy, xx = torch.meshgrid(torch.arange(32) - 15.5, torch.arange(32) - 15.5, indexing="ij")
    x = ((xx**2 + yy**2) < 14**2).float() * 0.1
    f = op(x).double()
    noise = build_noise(operator_entry("ct-lowdose").noise)
    n = 64
    y = noise.sample(f.expand(n, *f.shape).contiguous(), generator=torch.Generator().manual_seed(7))
    p = noise.params
    rate = p.n0 * torch.exp(-p.mu * f)
    sd = 1.0 / (p.mu * rate.sqrt())  # delta method for -log(N/N0)/mu
    bias = 1.0 / (2 * p.mu * rate)
    z = (y.mean(0) - f - bias) / (sd / math.sqrt(n))
    assert float(z.mean().abs()) * math.sqrt(z.numel()) < 5  # aggregate z-score
    assert float(z.abs().max()) < 6


def test_copies_and_garbage_collection_free_astra_objects():
    import astra

    op = build_operator("ct", {"angles": 10}, (16, 16))
    x = torch.rand(16, 16)
    y = op(x)
    pid = op._proj._ids["cpu"]
    twin = copy.deepcopy(op)
    torch.testing.assert_close(twin(x), y)
    assert twin._proj._ids["cpu"] != pid
    del op
    gc.collect()
    with pytest.raises(Exception):
        astra.projector.projection_geometry(pid)
    torch.testing.assert_close(twin(x), y)


def test_import_does_not_load_astra():
    code = "import sys, invsolve, invsolve.operators.ct; assert 'astra' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.gpu
def test_cuda_path_matches_cpu(shepp128):
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    op = build_operator("ct", {"angles": 90}, (128, 128))
    x = shepp128[None]
    xc = x.cuda().requires_grad_(True)
    yc = op(xc)
    assert yc.is_cuda and yc.shape == (1, *op.range_shape)
    y = op(x)
    assert float((yc.detach().cpu() - y).norm() / y.norm()) < 0.05
    (yc**2).sum().backward()
    assert xc.grad is not None and xc.grad.is_cuda
    r = torch.randn_like(yc)
    lhs, rhs = (yc.detach().double() * r.double()).sum(), (xc.detach().double() * op.adjoint(r).double()).sum()
    assert float(abs(lhs - rhs) / abs(lhs)) < 0.05
    rec = build_method({"name": "fbp", "filter": "ram-lak"}).run(yc.detach(), op, None)
    assert rec.is_cuda and psnr(rec[0].cpu(), shepp128) > 25
