"""MAP with a patch prior and Langevin sampling: known posteriors and a small SR check."""

import numpy as np
import pytest
import torch

from invsolve.langevin import LangevinParams, langevin_sample
from invsolve.noise import build_noise
from invsolve.priors.base import PatchPrior
from invsolve.operators import build_operator


class GaussianPixelPrior(PatchPrior):
    """N(0, s^2 I) as a 1x1 'patch prior': R = mean_i x_i^2 / (2 s^2) over all pixels (its capabilities, such as
    bf16 and per-measurement state, are the base class's declared defaults)."""

    name = "gaussian-test"
    patch_size = 1  # below the configs' range of learned priors

    def __init__(self, s):
        super().__init__()
        self.s = s

    def regularizer(self, patches):
        return (patches**2).mean() / (2 * self.s**2)


# 1200 kept steps are 12 correlation times of the unobserved pixels (1/step): the moments are right to the
# stated Monte Carlo error, and split-R̂ rightly says the chains are short (the mixed case is tested below)
@pytest.mark.filterwarnings("ignore:Langevin chains have not mixed")
def test_langevin_matches_closed_form_gaussian_posterior():
    H = W = 8
    sigma, s = 0.5, 1.0
    op = build_operator("inpaint", {"fraction": 0.5, "mask_seed": 1}, (H, W)).double()
    noise = build_noise({"name": "gaussian", "sigma": sigma})
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, H, W, generator=g, dtype=torch.float64) * s
    y = noise.sample(op(x), generator=g)
    prior = GaussianPixelPrior(s)
    # lam * mean over the H*W pixels = the full Gaussian prior energy
    params = LangevinParams(chains=24, steps=1500, burn_in=300, thin=2, step_size=0.01, lam=H * W,
                            n_patches=H * W, padding=0, init_noise=0.0)
    settings = {"lam": H * W, "n_patches": H * W, "padding": 0}  # as resolve_settings returns them
    post = langevin_sample(y, op, noise, prior, params, settings, generator=torch.Generator().manual_seed(1))
    m = op.mask.double()
    prec = m / sigma**2 + 1 / s**2
    exact_mean = (m * y[0] / sigma**2) / prec
    exact_var = 1 / prec
    # Monte Carlo error: ~24 chains x ~12 effective samples each
    err = np.abs(post.mean[0] - exact_mean.numpy()) / np.sqrt(exact_var.numpy())
    assert err.max() < 0.35 and err.mean() < 0.12
    ratio = post.std[0] ** 2 / exact_var.numpy()
    assert 0.85 < ratio.mean() < 1.12
    assert np.all((ratio > 0.5) & (ratio < 1.6))


def test_small_map_superres_with_brief_patchnr_beats_bicubic():
    from skimage import data

    from invsolve.api_priors import train_prior
    from invsolve.methods import build_method
    from invsolve.methods.patch_map import PatchMAP, map_energy
    from invsolve.metrics import psnr

    img = data.brick().astype(np.float32) / 255  # a texture: train on the top, test below
    train, test = img[:256], img[320:384, 100:164].copy()
    prior, _ = train_prior("patchnr", train, None, {"blocks": 3, "width": 64, "batch_size": 128, "lr": 1e-3},
                           steps=400, seed=0, device="cpu")
    prior.freeze()
    op = build_operator("superres", {}, test.shape)
    noise = build_noise({"name": "gaussian", "sigma": 0.01})
    y = noise.sample(op(torch.from_numpy(test)[None]), generator=torch.Generator().manual_seed(0))
    bic = build_method({"name": "bicubic"}).run(y, op, noise)[0].numpy()
    method = PatchMAP(PatchMAP.Params(iterations=60, lr=0.01, n_patches=4000, precision="fp32", tol=0), prior=prior)
    seen = []
    rec = method.run(y, op, noise, generator=torch.Generator().manual_seed(0),
                     on_step=lambda k, x: seen.append((k, x.clone())))[0].numpy()
    assert psnr(test, rec) > psnr(test, bic) + 0.5
    assert [k for k, _ in seen] == list(range(1, 61))  # on_step sees every iterate
    # the superresolution preset returns the mean of the last sixth of the iterates
    tail = torch.stack([x for _, x in seen[-10:]]).mean(0)[0].numpy()
    np.testing.assert_allclose(rec, tail, rtol=0, atol=1e-6)
    assert psnr(test, seen[-1][1][0].numpy()) > psnr(test, seen[0][1][0].numpy())
    # bf16 subnets: the same estimate to within 0.1 dB (30.14 against 30.16 here), and at a weight where the
    # prior term dominates (lam 1e6) a gradient nearly parallel to float32's (cosine 0.998 here)
    fast = PatchMAP(PatchMAP.Params(iterations=60, lr=0.01, n_patches=4000, precision="bf16", tol=0), prior=prior)
    rec16 = fast.run(y, op, noise, generator=torch.Generator().manual_seed(0))[0].numpy()
    assert abs(psnr(test, rec16) - psnr(test, rec)) < 0.1
    x = torch.from_numpy(test)[None].clone().requires_grad_(True)
    grads = []
    for precision in ("fp32", "bf16"):
        e = map_energy(x, y, op, noise, prior, 1e6, 4000, 5, torch.Generator().manual_seed(3), precision)
        assert e.dtype == torch.float32
        grads.append(torch.autograd.grad(e.sum(), x)[0].flatten())
    assert torch.nn.functional.cosine_similarity(grads[0], grads[1], 0) > 0.99


def test_presets_carry_to_the_image_size():
    """The superres preset (lam for 150² data values, N_p for 600² pixels) scales with the problem size."""
    from invsolve.methods.patch_map import PRESETS, PatchMAP, resolve_settings
    from invsolve.operators import build_operator

    base = PRESETS[("superres", "patchnr")]
    full = resolve_settings(build_operator("superres", {}, (600, 600)), "patchnr", PatchMAP.Params())
    assert full["lam"] == pytest.approx(base["lam"]) and full["n_patches"] == base["n_patches"]
    half = resolve_settings(build_operator("superres", {}, (300, 300)), "patchnr", PatchMAP.Params())
    assert half["lam"] == pytest.approx(base["lam"] / 4) and half["n_patches"] == base["n_patches"] // 4
    assert half["lr"] == base["lr"] and half["iterations"] == base["iterations"]
    kept = resolve_settings(build_operator("superres", {}, (300, 300)), "patchnr",
                            PatchMAP.Params(lam=3.0, size_scaling=True))
    assert kept["lam"] == 3.0 and kept["n_patches"] == base["n_patches"] // 4
    off = resolve_settings(build_operator("superres", {}, (300, 300)), "patchnr", PatchMAP.Params(size_scaling=False))
    assert off["lam"] == base["lam"] and off["n_patches"] == base["n_patches"]
    tiny = resolve_settings(build_operator("superres", {}, (32, 32)), "patchnr", PatchMAP.Params())
    assert tiny["n_patches"] == 1000


def test_ct_preset_scales_with_the_sinogram():
    from invsolve.methods.patch_map import PRESETS, PatchMAP, resolve_settings
    from invsolve.operators import build_operator

    op = build_operator("ct-limited", {}, (128, 128))
    s = resolve_settings(op, "patchnr", PatchMAP.Params())
    values = op.range_shape[0] * op.range_shape[1]
    assert op.range_shape[0] == 800
    assert s["lam"] == pytest.approx(700.0 * values / (800 * 513))
    assert s["n_patches"] == round(PRESETS[("ct-limited", "patchnr")]["n_patches"] * 128**2 / 362**2)


def test_tv_on_step_sees_every_iterate_and_tv_improves_on_bicubic():
    from skimage import data

    from invsolve.methods import build_method
    from invsolve.metrics import psnr

    test = data.camera()[200:264, 200:264].astype(np.float32) / 255
    op = build_operator("superres", {}, test.shape)
    noise = build_noise({"name": "gaussian", "sigma": 0.01})
    y = noise.sample(op(torch.from_numpy(test)[None]), generator=torch.Generator().manual_seed(0))
    seen = []
    rec = build_method({"name": "tv", "iterations": 40}).run(y, op, noise, on_step=lambda k, x: seen.append((k, x.clone())))
    assert [k for k, _ in seen] == list(range(1, 41))
    torch.testing.assert_close(seen[-1][1], rec, rtol=0, atol=0)
    first, last = psnr(test, seen[0][1][0].numpy()), psnr(test, rec[0].numpy())
    bic = psnr(test, build_method({"name": "bicubic"}).run(y, op, noise)[0].numpy())
    assert last > first and last > bic + 0.5, (bic, first, last)


def test_map_tv_warm_start_begins_at_tvs_reconstruction():
    """init=tv starts the MAP from TV's own result (Adam's first step moves each pixel by at most lr)."""
    from skimage import data

    from invsolve.methods import build_method
    from invsolve.methods.patch_map import PatchMAP

    test = data.camera()[200:232, 200:232].astype(np.float32) / 255
    op = build_operator("superres", {}, test.shape)
    noise = build_noise({"name": "gaussian", "sigma": 0.01})
    y = noise.sample(op(torch.from_numpy(test)[None]), generator=torch.Generator().manual_seed(0))
    tv = build_method({"name": "tv"}).run(y, op, noise)
    bic = build_method({"name": "bicubic"}).run(y, op, noise)
    lr = 1e-4
    for init, start in (("tv", tv), ("classical", bic)):
        seen = []
        PatchMAP(PatchMAP.Params(iterations=1, lr=lr, lam=1.0, n_patches=64, init=init),
                 prior=GaussianPixelPrior(1.0)).run(y, op, noise, generator=torch.Generator().manual_seed(0),
                                                    on_step=lambda k, x: seen.append(x.clone()))
        assert (seen[0] - start).abs().max() <= lr * 1.01, init
    assert (tv - bic).abs().max() > 100 * lr  # the two starts are distinguishable


def test_superres_padding_gives_border_pixels_a_full_share_of_patches():
    """With the preset's reflect padding (patch size - 1) every pixel lies in at least p² patch positions;
    without padding a corner pixel lies in one."""
    from invsolve.methods.patch_map import PatchMAP, map_energy, resolve_settings

    op = build_operator("superres", {}, (24, 24))
    noise = build_noise({"name": "gaussian", "sigma": 0.01})
    pad = resolve_settings(op, "patchnr", PatchMAP.Params())["padding"]
    assert pad == 5

    class Count:  # R = sum of all patch entries: d R / d x_ij counts the positions covering pixel ij
        patch_size = 6

        def regularizer(self, patches):
            return patches.sum()

    counts = {}
    for p in (0, pad):
        x = torch.zeros(1, 24, 24, dtype=torch.float64, requires_grad=True)
        y = torch.zeros(1, *op.range_shape, dtype=torch.float64)
        e = map_energy(x, y, op.double(), noise, Count(), 1.0, 10**6, p) - noise.nll(y, op.double()(x))
        (g,) = torch.autograd.grad(e.sum(), x)
        counts[p] = g[0]
    assert counts[0][0, 0] == 1 and counts[0][12, 12] == 36
    assert counts[pad].min() >= 36


def test_map_average_returns_the_mean_of_the_last_iterates():
    """average=a returns the mean of the last round(a · iterations) iterates; average=0 the last one;
    the superresolution preset of patchNR averages the last sixth."""
    from invsolve.methods.patch_map import PatchMAP, resolve_settings

    op = build_operator("superres", {}, (16, 16))
    noise = build_noise({"name": "gaussian", "sigma": 0.05})
    y = noise.sample(op(torch.rand(1, 16, 16, generator=torch.Generator().manual_seed(1))),
                     generator=torch.Generator().manual_seed(2))
    assert resolve_settings(op, "patchnr", PatchMAP.Params())["average"] == pytest.approx(1 / 6)
    assert resolve_settings(op, "epll", PatchMAP.Params())["average"] == 0
    from invsolve.langevin import LangevinParams

    assert "average" not in resolve_settings(op, "patchnr", LangevinParams())  # a tail mean is MAP's alone
    for average, tail in ((0.25, 3), (0.0, 1)):
        seen = []
        out = PatchMAP(PatchMAP.Params(iterations=12, lr=0.05, lam=1.0, n_patches=40, average=average),
                       prior=GaussianPixelPrior(0.5)).run(y, op, noise, generator=torch.Generator().manual_seed(0),
                                                          on_step=lambda k, x: seen.append(x.clone()))
        assert len(seen) == 12
        torch.testing.assert_close(out, torch.stack(seen[-tail:]).mean(0), rtol=0, atol=1e-6)
        assert tail == 1 or (out - seen[-1]).abs().max() > 1e-4  # the iterates moved: the mean is not the last


def test_map_bf16_is_refused_for_priors_other_than_patchnr():
    from invsolve.errors import ConfigError
    from invsolve.methods.patch_map import PatchMAP

    op = build_operator("superres", {}, (16, 16))
    noise = build_noise({"name": "gaussian", "sigma": 0.05})
    method = PatchMAP(PatchMAP.Params(precision="bf16"), prior=GaussianPixelPrior(0.5))
    with pytest.raises(ConfigError, match=r"precision=bf16 applies to priors with a network \(patchnr\), not 'gaussian-test'"):
        method.run(torch.zeros(1, 4, 4), op, noise)


def test_langevin_settings_that_collect_nothing_are_refused():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=r"steps \(500\) must exceed burn_in \(500\)"):
        LangevinParams(steps=500)


@pytest.mark.filterwarnings("ignore:Langevin chains have not mixed")  # 30 steps: reproducibility only
def test_langevin_with_wpp_is_reproducible_and_resets_the_dual_per_measurement():
    from skimage import data

    from invsolve.priors.wpp import WPP, WPPConfig

    img = torch.from_numpy(data.camera()[::8, ::8].astype(np.float32) / 255)  # 64×64
    prior, _ = WPP.fit(img[None], None, WPPConfig(patch_size=4, n_reference=200), WPP.Training(eval_patches=100),
                       seed=0)
    op = build_operator("inpaint", {"fraction": 0.7, "mask_seed": 1}, (24, 24))
    noise = build_noise({"name": "gaussian", "sigma": 0.05})
    x = torch.stack([img[:24, :24], img[30:54, 30:54]])
    y = noise.sample(op(x), generator=torch.Generator().manual_seed(0))
    params = LangevinParams(chains=2, steps=30, burn_in=10, thin=5, step_size=1e-4, lam=50.0, n_patches=64,
                            padding=0)
    settings = {"lam": 50.0, "n_patches": 64, "padding": 0}

    def sample(yy, seed):
        return langevin_sample(yy, op, noise, prior, params, settings, generator=torch.Generator().manual_seed(seed))

    a, b = sample(y, 3), sample(y, 3)  # the second run starts from the ψ the first one left: reset
    np.testing.assert_array_equal(a.mean, b.mean)
    np.testing.assert_array_equal(a.std, b.std)
    assert a.mean.shape == (2, 24, 24) and np.isfinite(a.std).all() and (a.std > 0).all()
    assert not np.array_equal(a.mean, sample(y, 4).mean)
    # the dual starts afresh for each measurement: the second one's result does not depend on the first
    y2 = torch.stack([y[0].flip(-1), y[1]])
    c = sample(y2, 3)
    assert not np.array_equal(a.mean[0], c.mean[0])
    np.testing.assert_array_equal(a.mean[1], c.mean[1])


def _gaussian_case(H=8, init_noise=0.0):
    sigma, s = 0.5, 1.0
    op = build_operator("inpaint", {"fraction": 0.5, "mask_seed": 1}, (H, H)).double()
    noise = build_noise({"name": "gaussian", "sigma": sigma})
    g = torch.Generator().manual_seed(0)
    y = noise.sample(op(torch.randn(1, H, H, generator=g, dtype=torch.float64) * s), generator=g)
    return op, noise, GaussianPixelPrior(s), y


def test_converged_langevin_reports_mixing_and_does_not_warn():
    import warnings

    op, noise, prior, y = _gaussian_case()
    # a large start, long forgotten after the burn-in; the unobserved pixels' correlation time is 1/step = 20
    params = LangevinParams(chains=8, steps=2000, burn_in=200, thin=2, step_size=0.05, lam=64, n_patches=64,
                            padding=0, init_noise=0.5)
    settings = {"lam": 64, "n_patches": 64, "padding": 0}
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        post = langevin_sample(y, op, noise, prior, params, settings, generator=torch.Generator().manual_seed(1))
    info = post.info
    assert info["draws_per_chain"] == 900 and info["diagnostic_pixels"] == 64
    assert 0.99 < info["split_rhat_median"][0] < 1.03 and info["split_rhat_max"][0] < 1.1
    assert info["unmixed_share"][0] == 0.0
    assert 100 < info["ess_min"][0] <= info["ess_median"][0] < 8 * 900 * 1.5
    assert info["start_noise_share"][0] < 0.05


def test_langevin_that_has_not_left_its_start_warns():
    """The issue's case: a CT-sized step (2e-7) for 100 steps leaves the std map at init_noise (0.01)."""
    op, noise, prior, y = _gaussian_case(H=16)
    params = LangevinParams(chains=4, steps=100, burn_in=20, thin=1, step_size=2e-7, lam=256, n_patches=256,
                            padding=0, init_noise=0.01)
    settings = {"lam": 256, "n_patches": 256, "padding": 0}
    with pytest.warns(RuntimeWarning, match=r"Langevin chains have not mixed .*starting noise \(init_noise\)"
                                            r".*raise -S steps"):
        post = langevin_sample(y, op, noise, prior, params, settings, generator=torch.Generator().manual_seed(1))
    assert post.std.mean() == pytest.approx(0.01, rel=0.1)  # the std map is the starting noise
    assert post.info["start_noise_share"][0] > 0.9 and post.info["unmixed_share"][0] > 0.5


def test_langevin_diagnostics_of_chains_with_known_mixing():
    from invsolve.posterior import effective_sample_size, split_rhat

    g = torch.Generator().manual_seed(0)
    iid = torch.randn(1, 4, 1000, 3, generator=g, dtype=torch.float64)
    assert split_rhat(iid).max() < 1.01
    ess = effective_sample_size(iid)
    assert torch.all((ess > 3000) & (ess < 5000))  # 4000 independent draws
    ar = torch.zeros(1, 4, 1000, 1, dtype=torch.float64)  # AR(1) with rho 0.9: ESS = n (1-rho)/(1+rho)
    e = torch.randn(ar.shape, generator=g, dtype=torch.float64)
    for t in range(1, 1000):
        ar[:, :, t] = 0.9 * ar[:, :, t - 1] + e[:, :, t]
    assert 4000 * 0.1 / 1.9 * 0.7 < float(effective_sample_size(ar)) < 4000 * 0.1 / 1.9 * 1.4
    apart = iid + torch.arange(4, dtype=torch.float64)[None, :, None, None]  # chains at different places
    assert split_rhat(apart).min() > 1.3
