"""Content digests of saved tensors, to refuse damaged prior and sampler files.

A flipped byte inside a weight tensor leaves a zip archive readable and the
tensors loadable; only a digest written beside them tells.
"""

from __future__ import annotations

import hashlib
from typing import Any

import torch

__all__ = ["state_digest"]


def state_digest(state: dict[str, Any]) -> str:
    """SHA-256 (hex) of named tensors: names, dtypes, shapes and bytes, in name order."""
    h = hashlib.sha256()
    for name in sorted(state):
        t = state[name]
        if not isinstance(t, torch.Tensor):
            h.update(f"{name}|{type(t).__name__}|{t!r}\n".encode())
            continue
        t = t.detach().cpu().contiguous().reshape(-1)
        h.update(f"{name}|{t.dtype}|{tuple(state[name].shape)}\n".encode())
        h.update(t.view(torch.uint8).numpy().tobytes())
    return h.hexdigest()
