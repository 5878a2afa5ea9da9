"""The contract every normalizing flow of invsolve keeps: its inverse inverts, its log-determinant is the one
autograd's Jacobian gives, gradients reach every parameter, it survives a save and load, and (for the vector
conditional flow, whose density importance resampling uses) its density integrates to one."""

import math

import pytest
import torch

from invsolve.noise import build_noise
from invsolve.operators import build_operator
from invsolve.priors.patchnr import PatchNR, PatchNRConfig
from invsolve.samplers import SAMPLERS, load_all
from invsolve.samplers.importance import flow_log_prob


def _perturb(module: torch.nn.Module, scale: float, seed: int) -> None:
    """Move every parameter off its (identity-like) initial value, so that the checks see a real map."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g, dtype=p.dtype))


def _cflow(d: int, latent: str = "gaussian"):
    load_all()
    op = build_operator("linear", {"diagonal": [1.0 / (i + 1) for i in range(d)]}, (d,))
    smp = SAMPLERS.get("cflow").create({"blocks": 3, "hidden": 32, "latent": latent}, op,
                                       build_noise({"name": "gaussian", "sigma": 0.1}))
    _perturb(smp.net["model"], 0.1, 1)
    return smp.to("cpu")


@pytest.mark.parametrize("latent", ["gaussian", "mixture"])
def test_the_vector_conditional_flow_keeps_the_contract(tmp_path, latent):
    smp = _cflow(3, latent)
    smp.net.double().eval()
    g = torch.Generator().manual_seed(2)
    x, y = torch.randn(5, 3, generator=g, dtype=torch.float64), torch.randn(5, 3, generator=g, dtype=torch.float64)
    c = smp.net["cstd"](y)
    w = smp.to_work(x, None)
    z, logdet, h = smp._to_latent(w, c)
    # the inverse inverts
    back = z
    for b in reversed(smp.net["model"]["blocks"]):
        back = b.inverse(back, h)
    torch.testing.assert_close(back, w, rtol=0, atol=1e-10)
    # log|det ∂z/∂w| is the Jacobian's
    for i in range(len(w)):
        jac = torch.autograd.functional.jacobian(lambda v: smp._to_latent(v[None], c[i : i + 1])[0][0], w[i])
        assert abs(float(torch.linalg.slogdet(jac)[1] - logdet[i].detach())) < 1e-9
    # gradients reach every parameter of the flow
    smp.net.float().train()
    smp.net["model"].zero_grad()
    smp.loss(w.float(), c.float(), torch.Generator().manual_seed(3)).backward()
    dead = [n for n, p in smp.net["model"].named_parameters() if p.grad is None or float(p.grad.abs().sum()) == 0]
    assert not dead, f"no gradient reaches {dead}"
    # a saved and loaded flow gives the same densities
    smp.net.eval()
    before = flow_log_prob(smp, x.float(), y.float())
    again = type(smp).from_checkpoint(smp.checkpoint(), "cpu")
    torch.testing.assert_close(flow_log_prob(again, x.float(), y.float()), before, rtol=0, atol=0)


def test_the_vector_conditional_flow_density_integrates_to_one():
    # importance resampling divides by q(x | y): on a grid over the plane, ∫ q(x | y) dx = 1
    smp = _cflow(2)
    smp.net.double().eval()
    with torch.no_grad():
        smp.net["xstd"].shift.copy_(torch.tensor([0.3, -0.2]))
        smp.net["xstd"].scale.copy_(torch.tensor([0.5, 3.0]))  # the standardiser's Jacobian (1.5) counts too
    n, half = 301, 9.0
    axis = torch.linspace(-half, half, n, dtype=torch.float64)
    grid = torch.stack(torch.meshgrid(axis, axis, indexing="ij"), -1).reshape(-1, 2)
    x = grid * smp.net["xstd"].scale.double() + smp.net["xstd"].shift.double()
    for yv in ([0.5, -1.0], [0.0, 0.0]):
        y = torch.tensor([yv], dtype=torch.float64).expand(len(x), 2)
        c = smp.net["cstd"](y)
        with torch.no_grad():
            logq = smp.log_q_vector(*smp._to_latent(smp.to_work(x, None), c))
        cell = float((2 * half / (n - 1)) ** 2 * smp.net["xstd"].scale.prod())
        total = float(logq.exp().sum()) * cell
        assert abs(total - 1.0) < 2e-3, total


def test_the_patchnr_flow_keeps_the_contract(tmp_path):
    torch.manual_seed(0)
    flow = PatchNR(PatchNRConfig(patch_size=3, blocks=3, width=32)).double()
    _perturb(flow, 0.05, 4)
    g = torch.Generator().manual_seed(5)
    z = torch.randn(6, 9, generator=g, dtype=torch.float64)
    x = flow(z)
    zb, logdet = flow.inverse(x)
    torch.testing.assert_close(zb, z, rtol=0, atol=1e-10)  # the inverse inverts
    for i in range(3):
        jac = torch.autograd.functional.jacobian(lambda v: flow.inverse(v[None])[0][0], x[i])
        assert abs(float(torch.linalg.slogdet(jac)[1] - logdet[i])) < 1e-9
    flow.zero_grad()
    flow.nll(x.detach()).mean().backward()
    dead = [n for n, p in flow.named_parameters() if p.grad is None or float(p.grad.abs().sum()) == 0]
    assert not dead, f"no gradient reaches {dead}"
    from invsolve.priors.base import load_prior, save_prior

    path = save_prior(flow.float(), tmp_path / "p.pt")
    again = load_prior(path)
    torch.testing.assert_close(again.nll(x.float().detach()), flow.nll(x.float().detach()), rtol=0, atol=0)
    # the exact NLL constant makes exp(-NLL) a density: d/2 · log 2π
    assert math.isclose(PatchNR.exact_nll_constant(9), 4.5 * math.log(2 * math.pi))
