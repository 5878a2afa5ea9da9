"""Image quality metrics (scikit-image), as pure functions on arrays in [0, 1]."""

from __future__ import annotations

import numpy as np

__all__ = ["psnr", "ssim", "image_metrics", "vector_metrics"]


def _check_pair(reference: np.ndarray, estimate: np.ndarray, ndim: int | None, want: str) -> None:
    """ShapeError unless both arrays have the same shape, of rank ``ndim`` (None: any rank)."""
    from .errors import ShapeError

    a, b = tuple(np.shape(reference)), tuple(np.shape(estimate))
    if (ndim is not None and len(a) != ndim) or a != b:
        raise ShapeError(f"metrics need two {want} of one shape, got {a} and {b}; pass matching arrays")


def psnr(reference: np.ndarray, estimate: np.ndarray, data_range: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB of one (H, W) image (inf for identical images)."""
    from skimage.metrics import peak_signal_noise_ratio

    _check_pair(reference, estimate, None, "images")
    if np.array_equal(reference, estimate):
        return float("inf")
    return float(peak_signal_noise_ratio(reference, estimate, data_range=data_range))


def ssim(reference: np.ndarray, estimate: np.ndarray, data_range: float = 1.0) -> float:
    """Structural similarity of one (H, W) image: scikit-image's defaults (7×7 uniform window), the window
    shrunk to the largest odd size that fits an image under 7 pixels on a side.

    References:
        Wang, Bovik, Sheikh, Simoncelli, Image quality assessment: from error visibility to structural
        similarity, IEEE Trans. Image Process. 13(4) (2004).
    """
    from skimage.metrics import structural_similarity

    from .errors import ShapeError

    _check_pair(reference, estimate, 2, "(H, W) images")
    side = min(reference.shape[-2:])
    win = min(7, side if side % 2 else side - 1)
    if win < 3:
        raise ShapeError(f"SSIM needs images of at least 3x3 pixels, got {reference.shape[-2]}x{reference.shape[-1]}")
    return float(structural_similarity(reference, estimate, data_range=data_range, win_size=win))


def image_metrics(reference: np.ndarray, estimate: np.ndarray) -> dict[str, list[float]]:
    """PSNR and SSIM per slice of (N, H, W) stacks (data range 1)."""
    ref = np.asarray(reference, dtype=np.float64)
    est = np.asarray(estimate, dtype=np.float64)
    _check_pair(ref, est, 3, "(N, H, W) stacks")
    return {
        "psnr": [psnr(r, e) for r, e in zip(ref, est)],
        "ssim": [ssim(r, e) for r, e in zip(ref, est)],
    }


def vector_metrics(reference: np.ndarray, estimate: np.ndarray) -> dict[str, list[float]]:
    """Errors of parameter-vector estimates (N, d) against the truth (N, d), per parameter over the N items:
    the root-mean-square error and the mean relative error |x̂ − x| / |x| (entries with x = 0 left out)."""
    ref = np.asarray(reference, dtype=np.float64)
    est = np.asarray(estimate, dtype=np.float64)
    _check_pair(ref, est, 2, "(N, d) arrays")
    err = est - ref
    nz = ref != 0
    rel = np.where(nz, np.abs(err) / np.where(nz, np.abs(ref), 1.0), 0.0)
    counts = nz.sum(0)
    return {
        "rmse": np.sqrt(np.mean(err**2, axis=0)).tolist(),
        "relative_error": [float(r.sum() / c) if c else float("nan") for r, c in zip(rel.T, counts)],
    }
