"""Patch priors: patch extraction, the patchNR flow, training/resume, EPLL, WPP and prior files."""

import math

import numpy as np
import pytest
import torch

from invsolve.errors import CheckpointError, OperatorError, ShapeError
from invsolve.priors import base, patches as P
from invsolve.priors.epll import EPLL, EPLLConfig, fit_gmm
from invsolve.priors.patchnr import PatchNR, PatchNRConfig, soft_clamp
from invsolve.priors.training import train_patchnr
from invsolve.priors.wpp import WPP, WPPConfig

SMALL = PatchNRConfig(patch_size=4, blocks=2, width=32)


pytestmark = pytest.mark.usefixtures("one_thread")


def smooth(h=40, w=40, seed=0):
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    rng = np.random.default_rng(seed)
    img = 0.5 + 0.3 * np.sin(6 * xx + 4 * yy) + 0.01 * rng.standard_normal((h, w))
    return torch.from_numpy(img.astype(np.float32))[None]


# -- patches ---------------------------------------------------------------------


def test_extract_patches_order_and_coverage():
    x = torch.rand(2, 5, 6, requires_grad=True)
    pt = P.extract_patches(x, 3)
    assert pt.shape == (2 * 3 * 4, 9) and P.patch_count(5, 6, 3) == 12
    assert torch.equal(pt[12 + 4 + 2], x[1, 1:4, 2:5].reshape(-1))  # image 1, row 1, col 2
    pt.sum().backward()
    assert (x.grad > 0).all()  # every pixel is reached
    assert x.grad[0, 2, 2] == 9 and x.grad[0, 0, 0] == 1


def test_random_patches_distinct_exact_and_differentiable():
    x = torch.arange(2 * 9 * 10, dtype=torch.float32).reshape(2, 9, 10).requires_grad_(True)
    g = torch.Generator().manual_seed(0)
    pt = P.random_patches(x, 3, 20, g)
    corners = pt[:, 0].long()
    assert len(set(corners.tolist())) == 20  # distinct positions
    for row, c in zip(pt, corners.tolist()):
        b, i, j = c // 90, (c % 90) // 10, c % 10
        assert torch.equal(row, x[b, i:i + 3, j:j + 3].reshape(-1))
    pt.sum().backward()
    assert x.grad.sum() == 20 * 9
    again = P.random_patches(x.detach(), 3, 20, torch.Generator().manual_seed(0))
    assert torch.equal(again, pt.detach())
    assert P.random_patches(x.detach(), 3, 10 ** 6, g).shape == (2 * 7 * 8, 9)  # n beyond total: all
    big = P.random_patches(x.detach(), 3, 100, g)  # 4n > total: the randperm path
    assert len(set(big[:, 0].tolist())) == 100


def test_random_patches_uniform():
    x = torch.arange(121, dtype=torch.float32).reshape(1, 11, 11)  # 100 positions of 2×2 patches
    g = torch.Generator().manual_seed(1)
    counts = torch.zeros(121)
    for _ in range(1000):
        c = P.random_patches(x, 2, 10, g)[:, 0].long()
        assert len(set(c.tolist())) == 10
        counts += torch.bincount(c, minlength=121).float()
    used = counts[counts > 0]
    assert len(used) == 100
    chi2 = ((used - 100) ** 2 / 100).sum()  # 99 dof: mean 99, sd 14
    assert chi2 < 99 + 6 * 14


def test_random_patches_list_of_sizes():
    xs = [torch.rand(8, 9, requires_grad=True), torch.rand(6, 6, requires_grad=True)]
    pt = P.random_patches(xs, 3, 15, torch.Generator().manual_seed(0))
    every = torch.cat([P.extract_patches(xs[0][None], 3), P.extract_patches(xs[1][None], 3)])
    assert pt.shape == (15, 9)
    assert all((every == row).all(1).any() for row in pt)
    pt.sum().backward()
    assert xs[0].grad.sum() + xs[1].grad.sum() == 15 * 9


def test_reflect_pad_matches_numpy():
    x = torch.rand(2, 5, 7)
    want = np.pad(x.numpy(), ((0, 0), (2, 2), (2, 2)), mode="reflect")
    assert np.allclose(P.reflect_pad(x, 2).numpy(), want)
    with pytest.raises(ShapeError, match="reflect padding 5"):
        P.reflect_pad(x, 5)


def test_dihedral_is_the_group_on_spatial_axes():
    x = torch.rand(1, 1, 5, 5)
    outs = [P.dihedral(x, k) for k in range(8)]
    assert len({tuple(o.flatten().tolist()) for o in outs}) == 8  # not a no-op on (1, 1, h, w)
    flat = {tuple(o.flatten().tolist()) for o in outs}
    for a in range(8):
        for b in range(8):
            assert tuple(P.dihedral(P.dihedral(x, a), b).flatten().tolist()) in flat  # closed
    img = torch.rand(1, 7, 7)
    for k in range(8):  # patches of the transformed image = transformed patches (as sets)
        a = P.extract_patches(P.dihedral(img, k), 3)
        b = P.dihedral(P.extract_patches(img, 3).reshape(-1, 3, 3), k).reshape(-1, 9)
        assert torch.equal(a[torch.argsort(a[:, 4])], b[torch.argsort(b[:, 4])])
    pt = torch.rand(50, 9)
    aug = P.random_dihedral(pt, 3, torch.Generator().manual_seed(0))
    for r, s in zip(pt, aug):
        assert any(torch.equal(P.dihedral(r.reshape(3, 3), k).reshape(-1), s) for k in range(8))
    assert not torch.equal(aug, pt)


# -- patchNR -----------------------------------------------------------------------


def test_patchnr_parameter_count_and_clamp():
    assert PatchNR().num_parameters() == 2_908_520
    assert PatchNR(PatchNRConfig(blocks=4)).num_parameters() == 2_326_816
    s = torch.linspace(-100, 100, 101)
    assert (soft_clamp(s, 1.6).abs() < 1.6).all() and torch.equal(soft_clamp(-s, 1.6), -soft_clamp(s, 1.6))


def test_patchnr_inverse_and_logdet_match_autograd():
    torch.manual_seed(0)
    flow = PatchNR(PatchNRConfig(patch_size=3, blocks=3, width=16, clamp=1.6)).double()
    for m in flow.modules():  # larger weights so the couplings are far from the identity
        if isinstance(m, torch.nn.Linear):
            m.weight.data.mul_(3)
    x = torch.rand(4, 9, dtype=torch.float64)
    z, logdet = flow.inverse(x)
    assert torch.allclose(flow(z), x, atol=1e-10)
    for i in range(4):
        jac = torch.autograd.functional.jacobian(lambda v: flow.inverse(v[None])[0][0], x[i])  # (d, d)
        assert torch.allclose(torch.linalg.slogdet(jac)[1], logdet[i], atol=1e-9)
    nll = flow.nll(x)
    assert torch.allclose(nll, 0.5 * z.pow(2).sum(1) - logdet)
    xr = x.clone().requires_grad_(True)
    flow.nll(xr).sum().backward()
    assert torch.isfinite(xr.grad).all() and xr.grad.abs().sum() > 0


def test_training_lowers_the_nll_of_a_smooth_image():
    img, val = smooth(seed=0), smooth(seed=1)
    test = P.random_patches(val, 4, 500, torch.Generator().manual_seed(5))
    p0, _ = train_patchnr(img, None, SMALL, steps=0, seed=0)
    p1, hist = train_patchnr(img, val, SMALL, steps=150, lr=1e-3, seed=0, val_every=50, log_every=25)
    with torch.no_grad():
        before, after = p0.nll(test).mean().item(), p1.nll(test).mean().item()
    assert after < before - 20
    assert [s for s, _ in hist["val"]] == [50, 100, 150] and len(hist["train"]) == 6
    assert hist["val"][-1][1] < hist["val"][0][1]


def test_resume_equals_uninterrupted(tmp_path):
    img, val = smooth(), smooth(seed=1)
    kw = dict(lr=1e-3, seed=3, val_every=4, log_every=3, val_patches=64)
    full, hfull = train_patchnr(img, val, SMALL, steps=12, **kw)
    ck = tmp_path / "c.pt"

    def interrupt(record):  # Ctrl-C at step 8, after the checkpoint of step 7 (the default cosine decay)
        if record["step"] == 8:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_patchnr(img, val, SMALL, steps=12, checkpoint_every=7, checkpoint_path=ck, callback=interrupt, **kw)
    res, hres = train_patchnr(img, val, SMALL, steps=12, checkpoint_every=7, checkpoint_path=ck, resume=True, **kw)
    a, b = full.state_dict(), res.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert hres["train"] == hfull["train"] and hres["val"] == hfull["val"] and hres["resumed_from"] == 7
    with pytest.raises(CheckpointError, match="steps=12, this run asks 20"):  # the decay is fixed by the total
        train_patchnr(img, val, SMALL, steps=20, checkpoint_path=ck, resume=True, **kw)
    const = {**kw, "schedule": "constant"}  # a constant lr: a finished run extends to more steps
    ref, _ = train_patchnr(img, val, SMALL, steps=12, **const)
    train_patchnr(img, val, SMALL, steps=7, checkpoint_every=7, checkpoint_path=tmp_path / "k.pt", **const)
    ext, _ = train_patchnr(img, val, SMALL, steps=12, checkpoint_path=tmp_path / "k.pt", resume=True, **const)
    assert all(torch.equal(x, y) for x, y in zip(ref.state_dict().values(), ext.state_dict().values()))
    with pytest.raises(CheckpointError, match="batch_size"):
        train_patchnr(img, val, SMALL, steps=12, checkpoint_path=ck, resume=True, **{**kw, "batch_size": 8})
    with pytest.raises(CheckpointError, match="other images"):
        train_patchnr(smooth(seed=9), val, SMALL, steps=12, checkpoint_path=ck, resume=True, **kw)


def test_compile_failure_is_one_clear_error(monkeypatch):
    from invsolve.errors import ConfigError

    def broken(model):  # what a machine without a C++ compiler gives at the first compiled call
        def call(x):
            raise RuntimeError("InvalidCxxCompiler: No working C++ compiler found\n(long inductor log)")
        return call

    monkeypatch.setattr(torch, "compile", broken)
    with pytest.raises(ConfigError, match=r"compile=true failed on this machine \(InvalidCxxCompiler: No working C\+\+ "
                       r"compiler found\); install a C\+\+ compiler or train without -P compile=true"):
        train_patchnr(smooth(), None, SMALL, steps=2, compile=True)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")  # inside torch.compile
def test_compiled_training_follows_the_eager_run():
    img = smooth()
    kw = dict(steps=20, lr=1e-3, seed=2, log_every=5)
    eager, he = train_patchnr(img, None, SMALL, **kw)
    comp, hc = train_patchnr(img, None, SMALL, compile=True, **kw)
    assert [s for s, _ in hc["train"]] == [5, 10, 15, 20]
    np.testing.assert_allclose([v for _, v in hc["train"]], [v for _, v in he["train"]], rtol=1e-3, atol=1e-3)
    x = P.random_patches(smooth(seed=4), 4, 200, torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(comp.nll(x), eager.nll(x), rtol=1e-3, atol=1e-2)


# -- EPLL ----------------------------------------------------------------------------


def test_one_component_gmm_is_the_gaussian_nll():
    d = 9
    a = torch.randn(d, d, dtype=torch.float64)
    cov, mu = a @ a.T + 0.5 * torch.eye(d, dtype=torch.float64), torch.randn(d, dtype=torch.float64)
    prior = EPLL(EPLLConfig(patch_size=3, n_components=1)).double()
    prior.means.copy_(mu[None]), prior.covariances.copy_(cov[None]), prior.weights.fill_(1.0)
    prior.after_load()
    x = torch.randn(20, d, dtype=torch.float64, requires_grad=True)
    mvn = torch.distributions.MultivariateNormal(mu, cov)
    want = -mvn.log_prob(x) - 0.5 * d * math.log(2 * math.pi)
    got = prior.nll(x)
    assert torch.allclose(got, want, atol=1e-9)
    (g1,) = torch.autograd.grad(got.sum(), x)
    (g2,) = torch.autograd.grad(want.sum(), x)
    assert torch.allclose(g1, g2, atol=1e-8)


def test_epll_row_blocks_of_any_size_give_the_same_nll_and_gradient(monkeypatch):
    import invsolve.priors.epll as epll

    g = torch.Generator().manual_seed(3)
    prior = EPLL(EPLLConfig(patch_size=2, n_components=3)).double()
    a = torch.randn(3, 4, 4, dtype=torch.float64, generator=g)
    prior.covariances.copy_(a @ a.transpose(1, 2) + 0.1 * torch.eye(4, dtype=torch.float64))
    prior.means.copy_(torch.randn(3, 4, dtype=torch.float64, generator=g))
    prior.weights.copy_(torch.tensor([0.2, 0.3, 0.5], dtype=torch.float64))
    prior.after_load()
    x = torch.randn(101, 4, dtype=torch.float64, generator=g, requires_grad=True)
    monkeypatch.setattr(epll, "CHUNK", 10 ** 6)  # one block
    whole = prior.nll(x)
    (g_whole,) = torch.autograd.grad(whole.sum(), x)
    monkeypatch.setattr(epll, "CHUNK", 7 * 12)  # blocks of 7 rows, the last one short
    blocked = prior.nll(x)
    (g_blocked,) = torch.autograd.grad(blocked.sum(), x)
    assert len(epll._rows(101, 12)) == 15
    assert torch.allclose(blocked, whole, atol=1e-12) and torch.allclose(g_blocked, g_whole, atol=1e-12)


def test_em_recovers_two_components_and_max_iter_tol_take_effect():
    g = torch.Generator().manual_seed(0)
    mus = torch.tensor([[2.0, 0.0, 1.0, -1.0], [-2.0, 1.0, 0.0, 1.0]])
    lab = (torch.rand(3000, generator=g) < 0.3).long()
    x = mus[lab] + 0.3 * torch.randn(3000, 4, generator=g)
    w, mu, cov, hist = fit_gmm(x, 2, max_iter=200, tol=1e-6, generator=torch.Generator().manual_seed(1))
    order = torch.argsort(mu[:, 0])
    assert torch.allclose(mu[order], mus.flip(0), atol=0.05)
    assert torch.allclose(w[order], torch.tensor([0.3, 0.7]), atol=0.03)
    assert torch.allclose(cov[0], 0.09 * torch.eye(4), atol=0.02)
    assert hist["converged"] and hist["steps"] < 200
    _, _, _, h3 = fit_gmm(x, 2, max_iter=3, tol=0.0, generator=torch.Generator().manual_seed(1))
    assert h3["steps"] == 3 and not h3["converged"]


# -- WPP -----------------------------------------------------------------------------


def test_wpp_value_gradient_and_duality():
    from scipy.optimize import linear_sum_assignment

    g = torch.Generator().manual_seed(0)
    prior = WPP(WPPConfig(patch_size=2, n_reference=30, psi_steps=1, psi_lr=1e-2))
    prior.reference = torch.rand(30, 4, generator=g)
    prior.reset()
    assert prior.regularizer(prior.reference.clone()).item() == pytest.approx(0.0, abs=1e-6)
    prior.reset()
    x = torch.rand(30, 4, generator=g, requires_grad=True)
    r = prior.regularizer(x)
    r.backward()
    first = r.item()
    j = torch.cdist(x.detach(), prior.reference).argmin(1)  # ψ = 0 in the first pass: nearest neighbour
    assert torch.allclose(x.grad, 2 / 30 * (x.detach() - prior.reference[j]), atol=1e-6)
    rows, cols = linear_sum_assignment(torch.cdist(x.detach(), prior.reference).pow(2).numpy())
    w2 = torch.cdist(x.detach(), prior.reference).pow(2)[rows, cols].mean().item()
    values = [prior.regularizer(x.detach()).item() for _ in range(400)]  # warm-started ψ
    assert max(values) <= w2 + 1e-5  # weak duality
    assert values[-1] > values[0] and values[-1] > 0.9 * w2
    prior.config = prior.config.model_copy(update={"restart_psi": True})
    assert prior.regularizer(x.detach()).item() == pytest.approx(first, abs=1e-6)


# -- prior files -----------------------------------------------------------------------


def _priors():
    img = smooth()
    flow, _ = train_patchnr(img, None, SMALL, steps=3, seed=0)
    gmm, _ = EPLL.fit(img, None, EPLLConfig(patch_size=4, n_components=3),
                      EPLL.Training(n_patches=500, max_iter=5), seed=0)
    wpp, _ = WPP.fit(img, None, WPPConfig(patch_size=4, n_reference=200), WPP.Training(eval_patches=100), seed=0)
    return [flow, gmm, wpp]


def test_save_load_roundtrip_gives_identical_nll(tmp_path):
    x = P.random_patches(smooth(seed=2), 4, 50, torch.Generator().manual_seed(0))
    for prior in _priors():
        prior.provenance = {"seed": 0, "note": "x"}
        f = base.save_prior(prior, tmp_path / f"{prior.name}.pt")
        back = base.load_prior(f, name=prior.name, patch_size=4)
        assert type(back) is type(prior) and back.provenance == {"seed": 0, "note": "x"}
        with torch.no_grad():
            assert torch.equal(back.nll(x), prior.nll(x))
        assert not any(p.requires_grad for p in back.parameters())
    assert not list(tmp_path.glob(".*.tmp"))


def test_bad_prior_files_are_refused(tmp_path):
    flow = _priors()[0]
    good = base.save_prior(flow, tmp_path / "p.pt")
    with pytest.raises(CheckpointError, match="not found"):
        base.load_prior(tmp_path / "missing.pt")
    (tmp_path / "trunc.pt").write_bytes(good.read_bytes()[:5000])
    with pytest.raises(CheckpointError, match="damaged"):
        base.load_prior(tmp_path / "trunc.pt")
    (tmp_path / "text.pt").write_text("hello")
    with pytest.raises(CheckpointError, match="damaged"):
        base.load_prior(tmp_path / "text.pt")
    torch.save({"weights": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not an invsolve prior"):
        base.load_prior(tmp_path / "other.pt")
    torch.save({"format": "invsolve-prior", "obj": OperatorError("x")}, tmp_path / "code.pt")
    with pytest.raises(CheckpointError, match="refusing"):
        base.load_prior(tmp_path / "code.pt")
    with pytest.raises(CheckpointError, match="'patchnr' prior, not 'epll'"):
        base.load_prior(good, name="epll")
    with pytest.raises(CheckpointError, match="6×6 patches are needed"):
        base.load_prior(good, patch_size=6)
    payload = torch.load(good, weights_only=True)
    payload["config"]["patch_size"] = 6
    torch.save(payload, tmp_path / "shape.pt")
    with pytest.raises(CheckpointError, match="has shape"):
        base.load_prior(tmp_path / "shape.pt")
    payload = torch.load(good, weights_only=True)
    payload["state"]["couplings.0.g1.0.weight"][0, 0] = float("nan")
    torch.save(payload, tmp_path / "nan.pt")
    with pytest.raises(CheckpointError, match="NaN"):
        base.load_prior(tmp_path / "nan.pt")
    payload["prior"] = "glow"
    torch.save(payload, tmp_path / "name.pt")
    with pytest.raises(CheckpointError, match="unknown prior 'glow'"):
        base.load_prior(tmp_path / "name.pt")


def test_chunked_regularizer_matches_plain_autograd():
    flow = PatchNR(SMALL).double().freeze()
    x = torch.rand(50, 16, dtype=torch.float64, requires_grad=True)
    want = flow.nll(x).mean()
    (g_want,) = torch.autograd.grad(want, x)
    flow.chunk = 7
    got = flow.regularizer(x)
    (g_got,) = torch.autograd.grad(got, x)
    assert torch.allclose(got, want) and torch.allclose(g_got, g_want)
