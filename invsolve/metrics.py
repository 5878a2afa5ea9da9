"""Image quality metrics (scikit-image), as pure functions on arrays in [0, 1]."""

from __future__ import annotations

import numpy as np

__all__ = ["psnr", "ssim", "image_metrics"]


def psnr(reference: np.ndarray, estimate: np.ndarray, data_range: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB of one (H, W) image."""
    from skimage.metrics import peak_signal_noise_ratio

    return float(peak_signal_noise_ratio(reference, estimate, data_range=data_range))


def ssim(reference: np.ndarray, estimate: np.ndarray, data_range: float = 1.0) -> float:
    """Structural similarity (Wang et al. 2004, scikit-image defaults) of one (H, W) image."""
    from skimage.metrics import structural_similarity

    return float(structural_similarity(reference, estimate, data_range=data_range))


def image_metrics(reference: np.ndarray, estimate: np.ndarray) -> dict[str, list[float]]:
    """PSNR and SSIM per slice of (N, H, W) stacks (data range 1)."""
    ref = np.asarray(reference, dtype=np.float64)
    est = np.asarray(estimate, dtype=np.float64)
    return {
        "psnr": [psnr(r, e) for r, e in zip(ref, est)],
        "ssim": [ssim(r, e) for r, e in zip(ref, est)],
    }
