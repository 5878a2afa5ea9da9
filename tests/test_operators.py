"""Contract tests over every registered operator and preset."""

import pytest
import torch

from invsolve.errors import ConfigError, DataError, OperatorError, ShapeError
from invsolve.operators import OPERATORS, LinearOperator, build_operator, load_all

load_all()
NAMES = OPERATORS.names()
SHAPE = (48, 48)
# operators on vectors need their own parameters and a (d,) shape
VECTOR = {"linear": ({"diagonal": [1.0, 0.5, 0.25, 2.0, -1.0, 3.0]}, (6,)),
          "gixrf": ({"num_angles": 8}, (3,)), "surrogate": ({}, (3,))}


def make(name):
    params, shape = VECTOR.get(name, ({}, SHAPE))
    try:
        return build_operator(name, params, shape)
    except DataError as exc:  # the surrogate's default model lives in the shared data folder
        pytest.skip(str(exc))


def test_registry_has_the_issue_operators():
    assert {"ct", "ct-lowdose", "ct-limited", "superres", "inpaint", "blur"} <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_adjointness(name):
    op = make(name)
    assert op.linear == isinstance(op, LinearOperator) == hasattr(op, "adjoint")
    if not op.linear:
        pytest.skip(f"{name} is nonlinear: no adjoint")
    g = torch.Generator().manual_seed(0)
    x = torch.rand((3, *op.domain_shape), generator=g)
    y = torch.rand((3, *op.range_shape), generator=g)
    lhs = (op(x).double() * y.double()).sum()
    rhs = (x.double() * op.adjoint(y).double()).sum()
    assert abs(float(lhs - rhs)) / abs(float(lhs)) < 1e-5


@pytest.mark.parametrize("name", NAMES)
def test_gradient_matches_finite_differences(name):
    op = make(name)
    g = torch.Generator().manual_seed(1)
    dt = torch.float32 if name.startswith("ct") else torch.float64
    x = torch.rand((1, *op.domain_shape), generator=g, dtype=dt)
    v = torch.rand((1, *op.domain_shape), generator=g, dtype=dt)
    w = torch.rand((1, *op.range_shape), generator=g, dtype=dt)

    def loss(z):
        return (op(z) ** 2 * w).sum() * 0.5

    xg = x.clone().requires_grad_(True)
    loss(xg).backward()
    h = 1e-2 if dt == torch.float32 else 1e-5
    with torch.no_grad():
        fd = (loss(x + h * v) - loss(x - h * v)) / (2 * h)
    an = (xg.grad * v).sum()
    assert abs(float(fd - an)) <= 1e-3 * abs(float(an))


@pytest.mark.parametrize("name", NAMES)
def test_batch_equals_items_and_T_cached(name):
    op = make(name)
    x = torch.rand((2, *op.domain_shape), generator=torch.Generator().manual_seed(2))
    yb = op(x)
    assert tuple(yb.shape) == (2, *op.range_shape)
    torch.testing.assert_close(yb[1], op(x[1]))
    if not op.linear:
        return
    assert op.T.T is op and op.T is op.T
    torch.testing.assert_close(op.T(yb), op.adjoint(yb))


@pytest.mark.parametrize("name", NAMES)
def test_wrong_shape_is_refused(name):
    op = make(name)
    with pytest.raises(ShapeError, match="expected"):
        op(torch.zeros(5, 7))
    with pytest.raises(ShapeError):
        op(torch.zeros(1, 1, *op.domain_shape))


def test_unknown_operator_lists_valid_names():
    with pytest.raises(OperatorError, match=r"unknown operator 'ct-limted'.*valid: .*ct-limited"):
        build_operator("ct-limted")


def test_unknown_parameter_fails():
    with pytest.raises(ConfigError, match="unknown key 'factr'"):
        build_operator("superres", {"factr": 2}, SHAPE)


def test_superres_preset_matches_patchnr():
    op = build_operator("superres", {}, (600, 600))
    assert op.range_shape == (150, 150)
    assert op.kernel.shape[-2:] == (16, 16)
    assert float(op.kernel.sum()) == pytest.approx(1.0, abs=1e-6)
    assert op.offset == 7.5
    valid = build_operator("superres", {"boundary": "valid"}, (600, 600))
    assert valid.range_shape == (147, 147)


def test_superres_periodic_needs_divisible_size():
    with pytest.raises(ConfigError, match="divisible"):
        build_operator("superres", {}, (50, 50))


def test_inpaint_masks():
    op = build_operator("inpaint", {"fraction": 0.3, "mask_seed": 5}, (100, 100))
    assert abs(float(op.mask.mean()) - 0.7) < 0.03
    again = build_operator("inpaint", {"fraction": 0.3, "mask_seed": 5}, (100, 100))
    assert torch.equal(op.mask, again.mask)
    box = build_operator("inpaint", {"mask": "box", "box": [10, 20, 5, 6]}, (40, 40))
    assert float((1 - box.mask).sum()) == 30 and float(box.mask[12, 22]) == 0
    with pytest.raises(ConfigError, match="does not fit"):
        build_operator("inpaint", {"mask": "box", "box": [38, 0, 5, 5]}, (40, 40))


def test_blur_preserves_constants():
    op = build_operator("blur", {}, (32, 32))
    torch.testing.assert_close(op(torch.ones(32, 32)), torch.ones(32, 32))
