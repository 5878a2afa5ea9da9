"""Device selection and seeded generators."""

from __future__ import annotations

import torch

from .errors import DeviceError

__all__ = ["resolve_device", "make_generator", "batch_generator", "batch_seed"]


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """``auto`` -> CUDA when available, else CPU; ``cuda`` without CUDA fails clearly."""
    name = str(name)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise DeviceError(
                "--device cuda was requested but CUDA is not available "
                f"(torch {torch.__version__}, {'no CUDA build' if torch.version.cuda is None else 'no GPU found'}); "
                "use --device cpu or --device auto"
            )
        return torch.device(name)
    if name == "cpu":
        return torch.device("cpu")
    raise DeviceError(f"unknown device {name!r}; valid: auto, cpu, cuda")


def make_generator(seed: int, device: torch.device) -> torch.Generator:
    """A generator on ``device`` seeded with ``seed``: same seed, same device, same numbers."""
    from .config import check_seed

    return torch.Generator(device=device).manual_seed(check_seed(seed))


def batch_seed(seed: int, batch: int) -> int:
    """The seed of batch ``batch`` of a run seeded with ``seed``.

    Batch 0 uses ``seed`` itself; later batches an independent stream derived
    from (seed, batch).  Every batch is therefore reproducible on its own, which
    is what lets sharded and resumed runs equal an uninterrupted one.
    """
    if batch == 0:
        return int(seed)
    import numpy as np

    return int(np.random.SeedSequence([int(seed) & 0xFFFFFFFFFFFFFFFF, int(batch)]).generate_state(1, np.uint64)[0])


def batch_generator(seed: int, batch: int, device: torch.device) -> torch.Generator:
    """A generator for batch ``batch`` of a run (see :func:`batch_seed`)."""
    from .config import check_seed

    return torch.Generator(device=device).manual_seed(batch_seed(check_seed(seed), batch))
