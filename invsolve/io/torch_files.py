"""Reading files written by ``torch.save`` without running pickled code: the one safe load behind the prior and
sampler file readers (:func:`invsolve.priors.base.read_prior_file`, :func:`invsolve.samplers.files.read_checkpoint`),
which then check their own envelopes."""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

from ..errors import CheckpointError

__all__ = ["load_tensors"]


def load_tensors(path: Path, device, unreadable: str, pickled: str) -> Any:
    """``torch.load(path, weights_only=True)``, with one-line errors.

    Arguments:
        path: An existing file.
        device: ``map_location``.
        unreadable: The message for a file that is not a readable torch archive (truncated, damaged, another format).
        pickled: The message for an archive holding Python objects other than tensors and plain data.

    Raises:
        CheckpointError: With ``unreadable`` or ``pickled``.
    """
    import torch

    if not zipfile.is_zipfile(path):  # torch.save writes zip archives; a truncated one fails here too
        raise CheckpointError(unreadable)
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError:
        raise CheckpointError(pickled) from None
    except Exception:  # truncated zip, not a torch file, I/O errors: torch's text spans lines
        raise CheckpointError(unreadable) from None
