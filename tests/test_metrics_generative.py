"""Metrics of generated images: energy distance, Vendi score, transport novelty distance (memorisation)."""

import numpy as np
import pytest
import torch

from invsolve.diffusion.sde import colored_noise, spectrum
from invsolve.errors import ShapeError
from invsolve.metrics_generative import energy_distance, novelty_threshold, features, transport_novelty, vendi_score


def _draw(n, gen, shift=0.0):
    sp = spectrum((32, 32), "bessel", 1.5, 0.1)
    return (0.5 + shift + 0.15 * colored_noise((n, 32, 32), sp, gen)).numpy()


def test_energy_distance_separates_distributions_and_matches_the_exact_value():
    from invsolve.samplers.mmd_kernel import energy_distance as exact

    g = torch.Generator().manual_seed(0)
    a, b, c = _draw(150, g), _draw(150, g), _draw(150, g, shift=0.1)
    same, shifted = energy_distance(a, b), energy_distance(a, c)
    assert shifted > 5 * same
    ref = float(exact(torch.as_tensor(a).flatten(1).double(), torch.as_tensor(c).flatten(1).double()))
    assert energy_distance(a, c, n_slices=4000) == pytest.approx(ref, rel=0.05)
    with pytest.raises(ShapeError, match="crop the reference"):
        energy_distance(a, c[:, :16, :16])


def test_vendi_score_counts_distinct_images():
    g = torch.Generator().manual_seed(1)
    x = _draw(10, g)
    assert vendi_score(np.repeat(x[:1], 10, 0)) == pytest.approx(1.0, abs=1e-6)
    two = np.concatenate([np.repeat(x[:1], 5, 0), np.repeat(x[1:2], 5, 0)])
    assert 1.0 < vendi_score(two) <= 2.0 + 1e-9
    assert vendi_score(x) > 8  # ten independent random fields: nearly ten distinct images


def test_transport_novelty_flags_copies_and_noisy_copies_as_memorised():
    g = torch.Generator().manual_seed(2)
    train, novel = _draw(200, g), _draw(100, g)
    copies = train[:100].copy()
    noisy = copies + 0.02 * np.random.default_rng(0).standard_normal(copies.shape)
    r_novel, r_copies, r_noisy = (transport_novelty(train, x) for x in (novel, copies, noisy))
    assert r_novel["memorization"] < 0.01 * r_copies["memorization"]
    assert r_copies["memorization"] > 0.4 and r_noisy["memorization"] > 0.4
    assert r_copies["tnovd"] > 2 * r_novel["tnovd"] and r_noisy["tnovd"] > 2 * r_novel["tnovd"]
    # τ lies below the closest distinct pair of training images and above a noisy copy's distance
    f = features(train)
    d = np.sqrt(((f[:, None] - f[None]) ** 2).sum(-1))
    np.fill_diagonal(d, np.inf)
    tau = novelty_threshold(f)
    assert np.sqrt(((features(noisy) - f[:100]) ** 2).sum(-1)).max() < tau <= d.min()
