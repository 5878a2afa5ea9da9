"""Patch extraction, random patch draws, reflect padding and dihedral augmentation.

Pure functions on torch tensors.  Images are (B, H, W) (or a list of (H, W)
tensors of different sizes where noted); patches are flattened rows (n, p²)
in row-major order, so ``patches.view(n, p, p)`` gives them back as squares.

References:
    Altekrüger et al., PatchNR: learning from very few images by patch
    normalizing flow regularization, Inverse Problems 39 (2023), arXiv 2205.12021.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from ..errors import ShapeError

__all__ = [
    "patch_count",
    "extract_patches",
    "random_patches",
    "reflect_pad",
    "dihedral",
    "random_dihedral",
    "DIHEDRAL",
]

#: Number of elements of the dihedral group of the square (4 rotations x optional flip).
DIHEDRAL = 8


def patch_count(h: int, w: int, p: int) -> int:
    """Number of stride-1 p×p patches of an h×w image (no padding)."""
    return max(h - p + 1, 0) * max(w - p + 1, 0)


def _check(x: torch.Tensor, p: int) -> None:
    if x.dim() != 3:
        raise ShapeError(f"expected images (B, H, W), got shape {tuple(x.shape)}")
    if p < 1 or x.shape[-2] < p or x.shape[-1] < p:
        raise ShapeError(f"{p}×{p} patches do not fit images of size {tuple(x.shape[-2:])}")


def extract_patches(x: torch.Tensor, p: int) -> torch.Tensor:
    """All stride-1 p×p patches of every image, without padding.

    Arguments:
        x: Images, (B, H, W).
        p: Patch size.

    Returns:
        Patches, (B·L, p²) with L = (H-p+1)(W-p+1); image-major, then row-major
        over patch positions.  Differentiable with respect to ``x``.
    """
    _check(x, p)
    cols = F.unfold(x[:, None], kernel_size=p)  # (B, p², L)
    return cols.transpose(1, 2).reshape(-1, p * p)


def _distinct_indices(total: int, n: int, generator: torch.Generator | None, device) -> torch.Tensor:
    """n distinct integers in [0, total), uniformly over n-subsets, in random order.

    For small n, draw n at random and redraw duplicates until none are left.
    The procedure commutes with every permutation of [0, total), so the result
    is uniform over ordered n-subsets, like ``randperm(total)[:n]`` but O(n).
    """
    if 4 * n > total:
        return torch.randperm(total, generator=generator, device=device)[:n]
    idx = torch.randint(total, (n,), generator=generator, device=device)
    while True:
        s, order = torch.sort(idx, stable=True)
        dup = torch.zeros(n, dtype=torch.bool, device=device)
        dup[order[1:][s[1:] == s[:-1]]] = True  # every repeat after its first occurrence
        k = int(dup.sum())
        if k == 0:
            return idx
        idx[dup] = torch.randint(total, (k,), generator=generator, device=device)


def _gather(x: torch.Tensor, pos: torch.Tensor, p: int) -> torch.Tensor:
    """Patches of x (B, H, W) at flat positions pos (n,) over (B, H-p+1, W-p+1) -> (n, p²)."""
    b, h, w = x.shape
    ww = w - p + 1
    per = (h - p + 1) * ww
    img, rem = pos // per, pos % per
    top = img * (h * w) + (rem // ww) * w + rem % ww  # flat index of each patch's corner
    r = torch.arange(p, device=x.device)
    offs = (r[:, None] * w + r[None, :]).reshape(-1)  # (p²,)
    return x.reshape(-1)[top[:, None] + offs[None, :]]


def random_patches(
    x: torch.Tensor | Sequence[torch.Tensor],
    p: int,
    n: int | None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """n distinct random stride-1 p×p patches, drawn uniformly without replacement.

    The positions are drawn over all images together (each position equally
    likely).  When ``n`` is None or at least the number of positions, every
    patch is returned in :func:`extract_patches` order and no random numbers
    are drawn.  Patches are gathered from ``x``, so gradients flow to the pixels.

    Arguments:
        x: Images, (B, H, W), or a list of (H, W) images of different sizes.
        p: Patch size.
        n: Number of patches.
        generator: Source of randomness (its device is used for the draw).

    Returns:
        Patches, (n, p²) (or (total, p²)).
    """
    if not isinstance(x, torch.Tensor):
        return _random_patches_list(list(x), p, n, generator)
    _check(x, p)
    total = x.shape[0] * patch_count(x.shape[1], x.shape[2], p)
    if n is None or n >= total:
        return extract_patches(x, p)
    dev = generator.device if generator is not None else x.device
    pos = _distinct_indices(total, int(n), generator, dev).to(x.device)
    return _gather(x, pos, p)


def _random_patches_list(xs: list[torch.Tensor], p: int, n: int | None, generator) -> torch.Tensor:
    for im in xs:
        _check(im[None], p)
    counts = torch.tensor([patch_count(im.shape[-2], im.shape[-1], p) for im in xs])
    total = int(counts.sum())
    if n is None or n >= total:
        return torch.cat([extract_patches(im[None], p) for im in xs])
    dev = generator.device if generator is not None else xs[0].device
    pos = _distinct_indices(total, int(n), generator, dev).cpu()
    starts = torch.cumsum(counts, 0) - counts
    which = torch.searchsorted(torch.cumsum(counts, 0), pos, right=True)
    out = torch.empty((int(n), p * p), dtype=xs[0].dtype, device=xs[0].device)
    pieces = []
    for i, im in enumerate(xs):
        sel = (which == i).nonzero().flatten()
        if len(sel):
            pieces.append((sel, _gather(im[None], (pos[sel] - starts[i]).to(im.device), p)))
    if any(t.requires_grad for _, t in pieces):  # keep the graph: concatenate and reorder
        order = torch.cat([s for s, _ in pieces])
        return torch.cat([t for _, t in pieces])[torch.argsort(order).to(out.device)]
    for sel, t in pieces:
        out[sel.to(out.device)] = t
    return out


def reflect_pad(x: torch.Tensor, pad: int) -> torch.Tensor:
    """Mirror padding without repeating the edge pixel (``numpy.pad(mode="reflect")``).

    Arguments:
        x: Images, (B, H, W); ``pad`` must be smaller than H and W.
        pad: Pixels added on every side.

    Returns:
        Images, (B, H + 2·pad, W + 2·pad).
    """
    if pad == 0:
        return x
    if pad < 0 or pad >= min(x.shape[-2:]):
        raise ShapeError(f"reflect padding {pad} needs 0 <= pad < image size {tuple(x.shape[-2:])}")
    return F.pad(x[:, None], (pad,) * 4, mode="reflect")[:, 0]


def dihedral(x: torch.Tensor, k: int) -> torch.Tensor:
    """The k-th of the 8 rotations/reflections of the square, on the last two axes.

    k = 0..3 rotates by k·90° counter-clockwise; k = 4..7 transposes first
    (a reflection), then rotates by (k-4)·90°.  Only the spatial axes are
    touched, whatever the leading axes are.

    Arguments:
        x: (..., H, W).
        k: Index of the symmetry, 0..7.

    Returns:
        (..., H, W), or (..., W, H) for transforms that swap the axes of a
        non-square input.
    """
    if not 0 <= k < DIHEDRAL:
        raise ValueError(f"dihedral index must be in 0..7, got {k}")
    if k >= 4:
        x = x.transpose(-2, -1)
    return torch.rot90(x, k % 4, dims=(-2, -1))


def random_dihedral(patches: torch.Tensor, p: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Apply an independent random dihedral transform to each flattened patch.

    Arguments:
        patches: (n, p²).
        p: Patch size.
        generator: Source of the transform indices.

    Returns:
        (n, p²), each row transformed by one of the 8 symmetries of the square.
    """
    n = patches.shape[0]
    sq = patches.reshape(n, p, p)
    dev = generator.device if generator is not None else patches.device
    k = torch.randint(DIHEDRAL, (n,), generator=generator, device=dev).to(patches.device)
    every = torch.stack([dihedral(sq, j) for j in range(DIHEDRAL)])  # (8, n, p, p)
    return every[k, torch.arange(n, device=patches.device)].reshape(n, p * p)
