"""Metrics of generated images: energy distance, Vendi score and the transport novelty distance.

All take stacks of images (N, H, W) in [0, 1] and return floats; they are pure functions of their inputs
and seeds.

- **Energy distance** (the MMD of the Riesz kernel K = −‖x − y‖, invsolve's ½ convention) between the
  flattened generated and reference images, by the sorting kernel of :mod:`invsolve.samplers.mmd_kernel`
  (sliced, exact in expectation over the random directions), so thousands of images cost seconds.
- **Vendi score**: exp of the Shannon entropy of the eigenvalues of K/n for the cosine kernel of the
  flattened, centred images; 1 for n copies of one image, n for n orthogonal ones.
- **Transport novelty distance** (TNovD): the exact optimal-transport plan π between features of the training
  images and of the generated ones (uniform weights, Euclidean cost C) is split by a threshold τ into a
  quality and a memorisation term, TNovD = Σ π max(C − τ, 0) + M Σ π max(τ − C, 0).  τ is the cost below
  which a training image is a near copy of another (chosen so that "d₁ ≤ τ" best matches the rule
  d₁² ≤ d₂²/9 on each training image's first and second nearest-neighbour distances), and M balances the
  terms on two halves of the training set: the plan's mass above τ over its mass below (1 when no mass is
  below τ, the case of a training set without near copies, where the ratio is undefined).  The features are those of a fixed extractor, ``downsampled16``:
  each image area-averaged to 16×16, centred and scaled to unit norm (no network, so it is the same
  everywhere and needs no weights).

References:
    Székely & Rizzo, Energy statistics (2013); Hertrich et al., Generative sliced MMD flows with Riesz
    kernels, ICLR 2024, arXiv 2305.11463; Friedman & Dieng, The Vendi score, TMLR 2023, arXiv 2210.02410;
    Hagemann, Müller, George, Benner, Transport novelty distance, 2025, arXiv 2512.09514.
"""

from __future__ import annotations

import numpy as np
import torch

from .errors import ShapeError

__all__ = ["energy_distance", "vendi_score", "features", "novelty_threshold", "transport_novelty", "FEATURES"]

#: The fixed feature extractor of :func:`transport_novelty`.
FEATURES = "downsampled16"
#: A training image is a near copy of its nearest neighbour when d₁² ≤ d₂² / NEAR_COPY_RATIO.
NEAR_COPY_RATIO = 9.0


def _stack(x, what: str) -> torch.Tensor:
    a = torch.as_tensor(np.asarray(x, dtype=np.float64))
    if a.ndim != 3 or a.shape[0] < 2:
        raise ShapeError(f"{what} must be a stack of at least 2 images (N, H, W), got shape {tuple(a.shape)}")
    if not torch.isfinite(a).all():
        raise ShapeError(f"{what} hold NaN or infinite values")
    return a


def energy_distance(generated, reference, *, n_slices: int = 1000, seed: int = 0) -> float:
    """Sliced energy distance (½ convention) between two stacks of images of one size."""
    from .samplers.mmd_kernel import sliced_energy_distance

    x, y = _stack(generated, "generated images"), _stack(reference, "reference images")
    if x.shape[1:] != y.shape[1:]:
        raise ShapeError(f"generated images are {tuple(x.shape[1:])} but reference images {tuple(y.shape[1:])}; "
                         "compare images of one size (crop the reference to the samples' size)")
    gen = torch.Generator().manual_seed(int(seed))
    return float(sliced_energy_distance(x.flatten(1), y.flatten(1), n_slices, generator=gen))


def vendi_score(images) -> float:
    """exp(−Σ λ log λ) over the eigenvalues λ of K/n, K the cosine kernel of the centred images."""
    x = _stack(images, "images").flatten(1)
    x = x - x.mean(1, keepdim=True)
    x = x / x.norm(dim=1, keepdim=True).clamp(min=1e-12)
    n = x.shape[0]
    # the nonzero eigenvalues of X Xᵀ/n and Xᵀ X/n agree: take the smaller matrix
    k = (x @ x.T if n <= x.shape[1] else x.T @ x) / n
    lam = torch.linalg.eigvalsh(k).clamp(min=0)
    lam = lam[lam > 1e-12]
    return float(torch.exp(-(lam * lam.log()).sum()))


def features(images) -> np.ndarray:
    """The ``downsampled16`` features (N, 256): 16×16 area averages, centred, unit norm."""
    x = _stack(images, "images")[:, None]
    f = torch.nn.functional.adaptive_avg_pool2d(x, 16).flatten(1)
    f = f - f.mean(1, keepdim=True)
    return (f / f.norm(dim=1, keepdim=True).clamp(min=1e-12)).numpy()


def novelty_threshold(train_features: np.ndarray, candidates: int = 500) -> float:
    """τ: the distance below which "d₁ ≤ τ" best matches the near-copy rule d₁² ≤ d₂²/9 over the training set."""
    d = np.sqrt(((train_features[:, None] - train_features[None]) ** 2).sum(-1))
    np.fill_diagonal(d, np.inf)
    two = np.sort(d, axis=1)[:, :2]
    d1, d2 = two[:, 0], two[:, 1]
    label = d1 ** 2 <= d2 ** 2 / NEAR_COPY_RATIO
    taus = np.linspace(0, d1.max(), candidates)
    agree = np.array([np.equal(d1 <= t, label).mean() for t in taus])
    # the largest of the best: with no near copies in the training set, just below its closest distinct pair
    return float(taus[np.flatnonzero(agree == agree.max()).max()])


def _plan(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    import ot

    cost = np.sqrt(((a[:, None] - b[None]) ** 2).sum(-1))
    return ot.emd(np.full(len(a), 1 / len(a)), np.full(len(b), 1 / len(b)), cost), cost


def transport_novelty(train, generated, *, tau: float | None = None, seed: int = 0) -> dict[str, float]:
    """TNovD of generated images against the training images (see the module docstring).

    Returns:
        {"tnovd", "quality", "memorization", "tau", "m"}: the distance, its two terms (the memorisation term
        before the factor M), the threshold and M.
    """
    ft, fg = features(train), features(generated)
    tau = novelty_threshold(ft) if tau is None else float(tau)
    perm = np.random.default_rng(seed).permutation(len(ft))
    half = len(ft) // 2
    p_half, c_half = _plan(ft[perm[:half]], ft[perm[half:2 * half]])
    close = p_half[c_half <= tau].sum()
    m = float(p_half[c_half > tau].sum() / close) if close > 0 else 1.0
    plan, cost = _plan(ft, fg)
    quality = float((plan * np.maximum(cost - tau, 0)).sum())
    memo = float((plan * np.maximum(tau - cost, 0)).sum())
    return {"tnovd": quality + m * memo, "quality": quality, "memorization": memo, "tau": tau, "m": m}
