"""Patch priors: the common interface, the registry and the prior file format.

A prior file is ``torch.save`` of plain data only::

    {"format": "invsolve-prior", "version": 1, "prior": NAME,
     "config": {...JSON values...}, "state": {name: tensor},
     "provenance": {...JSON values...}, ["training": {...}],
     "sha256": HEX}                    # state_digest of "state" (absent in older files)

It is read with ``torch.load(..., weights_only=True)``, so loading never runs
pickled code.  Training checkpoints use the same format plus a ``training``
entry (optimizer state, step, random generator states) and load as priors too.
The ``sha256`` digest of the state tensors catches flipped bytes in the weights,
which the zip archive itself does not (torch does not check its CRCs).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import torch
from pydantic import Field
from torch import nn

from ..config import Params, validate_params
from ..errors import CheckpointError, ConfigError, OutputExistsError, ShapeError
from ..io.digest import state_digest
from ..registry import Registry

__all__ = ["PRIORS", "Prior", "PatchPrior", "PriorConfig", "save_prior", "load_prior", "read_prior_file", "FORMAT",
           "VERSION", "load_all", "verify_digest"]

FORMAT = "invsolve-prior"
VERSION = 1

PRIORS: Registry[type["Prior"]] = Registry("prior")


def load_all() -> None:
    """Import every prior module so that :data:`PRIORS` is complete."""
    from . import diffusion, epll, patchnr, wpp  # noqa: F401


class PriorConfig(Params):
    """Settings shared by every patch prior (stored in the prior file)."""

    patch_size: int = Field(6, ge=2, le=32, description="side p of the p×p patches")


class Prior(nn.Module):
    """A learned image prior stored in a prior file: a patch prior or a score (diffusion) prior.

    Subclasses set ``name``, ``Config`` (stored in the file, rebuilds the
    module) and ``Training`` (options of :func:`invsolve.priors.train_prior`).

    Attributes:
        config: The validated ``Config``.
        provenance: Where the prior came from (JSON values; filled by training
            and by :func:`load_prior`).
    """

    name: ClassVar[str] = ""
    Config: ClassVar[type[Params]] = Params
    Training: ClassVar[type[Params]] = Params
    #: True when :meth:`nll` is a negative log density (up to a constant).
    is_density: ClassVar[bool] = True
    #: True when the prior's network can run under bfloat16 autocast (``precision=bf16``); the others keep
    #: their own float32 arithmetic (EPLL's mixture, WPP's transport).
    supports_bf16: ClassVar[bool] = False
    #: What the benchmarks show pays off: ``{"steps": N, "source": where}`` (None: no advice).  Written into
    #: each trained prior's provenance as ``advice``; a prior trained for under a quarter of it warns when used.
    advice: ClassVar[dict[str, Any] | None] = None

    #: What the prior is: ``patch`` (a density on p×p patches: MAP and Langevin) or ``score`` (a diffusion
    #: model of whole images: its own posterior samplers).
    kind: ClassVar[str] = "patch"
    #: Whether its training takes checkpoints, ``--resume`` and torchrun (data parallel).
    checkpoints: ClassVar[bool] = False
    #: Whether it holds per-measurement state (WPP's dual potential) that :meth:`reset` clears: MAP and Langevin
    #: then run one measurement at a time, each from a fresh state.
    stateful: ClassVar[bool] = False

    def __init__(self, config: Params | None = None):
        super().__init__()
        self.config = config if config is not None else self.Config()
        self.provenance: dict[str, Any] = {}

    def reset(self) -> None:
        """Clear per-measurement state before a new measurement (nothing for stateless priors)."""

    def freeze(self) -> "Prior":
        """Evaluation mode, no gradients for the prior's own parameters (for MAP / sampling)."""
        self.eval()
        self.requires_grad_(False)
        return self

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def spec(self) -> dict[str, Any]:
        return {"name": self.name, **self.config.model_dump(mode="json")}

    # -- file support -------------------------------------------------------

    def prepare_state(self, state: dict[str, torch.Tensor]) -> None:
        """Resize data-dependent buffers to match ``state`` before loading (default: nothing)."""

    def after_load(self) -> None:
        """Recompute caches after the state changed (default: nothing)."""

    def load_state(self, state: dict[str, torch.Tensor], source: str) -> None:
        """Load tensors after checking names and shapes; raise :class:`CheckpointError` otherwise."""
        self.prepare_state(state)
        own = self.state_dict()
        missing = sorted(set(own) - set(state))
        extra = sorted(set(state) - set(own))
        if missing or extra:
            what = f"lacks {missing[0]!r}" if missing else f"has an unexpected tensor {extra[0]!r}"
            raise CheckpointError(f"{source} {what} for a {self.name} prior with {self._describe()}; "
                                  "the file is damaged or from an incompatible invsolve version")
        for k, v in own.items():
            t = state[k]
            if not isinstance(t, torch.Tensor) or tuple(t.shape) != tuple(v.shape):
                got = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
                raise CheckpointError(f"{source}: tensor {k!r} has shape {got} but a {self.name} prior with "
                                      f"{self._describe()} needs {tuple(v.shape)}; the file is damaged or "
                                      "its config does not match its weights")
            if t.is_floating_point() and not torch.isfinite(t).all():
                raise CheckpointError(f"{source}: tensor {k!r} holds NaN or infinite values "
                                      "(training diverged?); retrain with a smaller learning rate")
        self.load_state_dict(state, strict=True)
        self.after_load()

    def _describe(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.config.model_dump(mode="json").items())


class PatchPrior(Prior):
    """A prior on flattened p×p image patches; subclasses implement :meth:`nll`."""

    Config: ClassVar[type[PriorConfig]] = PriorConfig

    @property
    def patch_size(self) -> int:
        return int(self.config.patch_size)

    @property
    def dim(self) -> int:
        """Length d = p² of a flattened patch."""
        return self.patch_size ** 2

    def check_patches(self, patches: torch.Tensor) -> None:
        if patches.dim() != 2 or patches.shape[1] != self.dim:
            p = self.patch_size
            raise ShapeError(f"{self.name} prior expects patches (n, {self.dim}) ({p}×{p}), "
                             f"got shape {tuple(patches.shape)}")

    def nll(self, patches: torch.Tensor) -> torch.Tensor:
        """Negative log-likelihood of each patch, without the constant (d/2)·log 2π.

        Arguments:
            patches: (n, p²).

        Returns:
            (n,), differentiable with respect to ``patches``.
        """
        raise NotImplementedError

    #: Patches per block in :meth:`regularizer` (bounds the memory of its gradient).
    chunk: int = 8192

    def regularizer(self, patches: torch.Tensor) -> torch.Tensor:
        """The MAP regulariser R on a set of patches of one image: the mean NLL.

        With frozen prior parameters and patches that need a gradient, the
        value and its gradient are computed block by block (``chunk`` patches
        at a time), so memory does not grow with the number of patches; the
        gradient then reaches the patches only (first order).

        Arguments:
            patches: (n, p²), e.g. :func:`random_patches` of the estimate.

        Returns:
            Scalar, differentiable with respect to ``patches``.
        """
        frozen = not any(p.requires_grad for p in self.parameters())
        if frozen and torch.is_grad_enabled() and patches.requires_grad and patches.shape[0] > self.chunk:
            self.check_patches(patches)
            return _ChunkedMeanNLL.apply(patches, self)
        return self.nll(patches).mean()


class _ChunkedMeanNLL(torch.autograd.Function):
    """mean(prior.nll(x)) with its gradient in x computed block by block in the forward pass."""

    @staticmethod
    def forward(ctx, x, prior):
        total, grad = x.new_zeros(()), torch.empty_like(x)
        for i in range(0, x.shape[0], prior.chunk):
            with torch.enable_grad():
                xb = x[i:i + prior.chunk].detach().requires_grad_(True)
                v = prior.nll(xb).sum()
                (g,) = torch.autograd.grad(v, xb)
            grad[i:i + prior.chunk] = g
            total += v.detach()
        ctx.save_for_backward(grad / x.shape[0])
        return total / x.shape[0]

    @staticmethod
    def backward(ctx, g):
        (grad,) = ctx.saved_tensors
        return g * grad, None


def _jsonable(obj: Any) -> Any:
    return json.loads(json.dumps(obj, default=str))


def save_prior(prior: Prior, path: str | Path, overwrite: bool = False,
               training: dict[str, Any] | None = None) -> Path:
    """Write ``prior`` atomically (temporary file in the same folder, then rename).

    Arguments:
        prior: The prior to save.
        path: Output file (``.pt``).
        overwrite: Replace an existing file.
        training: Extra training state for checkpoints (tensors and plain data).

    Returns:
        The path written.
    """
    p = Path(path)
    if p.exists() and not overwrite:
        raise OutputExistsError(f"output {p} already exists; pass --overwrite to replace it")
    if not p.parent.exists():
        raise CheckpointError(f"output folder {p.parent} does not exist; create it first")
    payload: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "prior": prior.name,
        "config": prior.config.model_dump(mode="json"),
        "state": {k: v.detach().cpu().clone() for k, v in prior.state_dict().items()},
        "provenance": _jsonable(prior.provenance),
    }
    payload["sha256"] = state_digest(payload["state"])
    payload["complete"] = training is None  # a finished prior, or a training checkpoint (with its state)
    if training is not None:
        payload["training"] = training
    import io

    from ..io.atomic import atomic_bytes

    buf = io.BytesIO()  # in memory first: a full disk is then one clean error, never a torn zip archive
    torch.save(payload, buf)
    atomic_bytes(p, buf.getvalue())
    return p


def read_prior_file(path: str | Path, device: str | torch.device = "cpu") -> dict[str, Any]:
    """Read and check the envelope of a prior file; return its payload dict."""
    p = Path(path)
    if not p.is_file():
        hint = "it is a folder" if p.exists() else "check the path, or train one with `invsolve train-prior`"
        raise CheckpointError(f"prior file not found: {p} ({hint})")
    unreadable = (f"{p} is not a readable invsolve prior file (damaged, truncated or another format); "
                  "train one with `invsolve train-prior` or copy it again")
    from ..io.torch_files import load_tensors

    payload = load_tensors(p, device, unreadable, f"{p} holds Python objects other than tensors and plain data; "
                           "refusing to load it (only files written by `invsolve train-prior` load)")
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{p} is not an invsolve prior file (no format={FORMAT!r} entry); "
                              "give a file written by `invsolve train-prior`")
    version = payload.get("version")
    if not isinstance(version, int) or version > VERSION:
        raise CheckpointError(f"{p} has prior format version {version!r}, newer than this invsolve "
                              f"reads ({VERSION}); upgrade invsolve")
    for key, typ in (("prior", str), ("config", dict), ("state", dict)):
        if not isinstance(payload.get(key), typ):
            raise CheckpointError(f"{p} lacks a valid {key!r} entry; the file is damaged, retrain it")
    if "training" in payload:  # a checkpoint: --resume loads its state directly
        verify_digest(payload, str(p))
    return payload


def verify_digest(payload: dict[str, Any], source: str) -> None:
    """Refuse a payload whose state does not match its ``sha256`` digest (files without one pass)."""
    digest = payload.get("sha256")
    if digest is None or digest == state_digest(payload["state"]):
        return
    bad = [k for k, t in payload["state"].items()
           if isinstance(t, torch.Tensor) and t.is_floating_point() and not torch.isfinite(t).all()]
    what = f"; tensor {bad[0]!r} holds NaN or infinite values" if bad else ""
    raise CheckpointError(f"{source} is damaged (checksum mismatch of its weights{what}); retrain it with "
                          "`invsolve train-prior` or restore a copy")


def build_from_payload(payload: dict[str, Any], source: str) -> Prior:
    """A prior module from a checked payload (see :func:`read_prior_file`)."""
    load_all()
    name = payload["prior"]
    if name not in PRIORS:
        raise CheckpointError(f"{source} holds an unknown prior {name!r}; this invsolve knows "
                              f"{', '.join(PRIORS.names())} (a newer version wrote it?)")
    cls = PRIORS.get(name)
    try:
        config = validate_params(cls.Config, payload["config"], f"config of the {name} prior in {source}")
    except ConfigError as exc:
        raise CheckpointError(f"{exc}; the file is damaged or from an incompatible version") from None
    prior = cls(config)
    if "training" not in payload:  # checkpoints were checked by read_prior_file
        verify_digest(payload, source)
    prior.load_state(payload["state"], source)
    prov = payload.get("provenance")
    prior.provenance = dict(prov) if isinstance(prov, dict) else {}
    return prior


def load_prior(path: str | Path, device: str | torch.device = "cpu", name: str | None = None,
               patch_size: int | None = None, allow_partial: bool = True) -> Prior:
    """Load a prior file written by :func:`save_prior` (or, with ``allow_partial``, a training checkpoint).

    Arguments:
        path: The ``.pt`` file.
        device: Where to put the tensors (``auto``, ``cpu``, ``cuda``).
        name: Refuse files holding another prior than this one.
        patch_size: Refuse files with another patch size.
        allow_partial: Accept a training checkpoint (``.ckpt``, a prior whose training did not complete),
            with a warning; False refuses it (the reconstruct and sample-posterior default).

    Returns:
        The prior in evaluation mode with frozen parameters.

    Raises:
        CheckpointError: Missing, damaged, truncated or incompatible file.
    """
    from ..device import resolve_device

    dev = resolve_device(device)
    payload = read_prior_file(path, dev)
    _check_complete(payload, path, allow_partial)
    if name is not None and payload["prior"] != name:
        raise CheckpointError(f"{path} holds a {payload['prior']!r} prior, not {name!r}; "
                              f"use --prior {payload['prior']} or give a {name} prior file")
    prior = build_from_payload(payload, str(path)).to(dev)
    if patch_size is not None and prior.kind == "patch" and prior.patch_size != patch_size:
        p = prior.patch_size
        raise CheckpointError(f"{path} holds a prior on {p}×{p} patches, but {patch_size}×{patch_size} "
                              f"patches are needed; retrain with -P patch_size={patch_size}")
    return prior.freeze()


def _check_complete(payload: dict, path: str | Path, allow_partial: bool) -> None:
    """A training checkpoint (its payload holds the ``training`` state) is no finished prior: refused, or with
    ``allow_partial`` a warning naming its step."""
    training = payload.get("training")
    if payload.get("complete") is True or not isinstance(training, dict):
        return
    step = training.get("step")
    steps = (training.get("settings") or {}).get("steps") if isinstance(training.get("settings"), dict) else None
    where = f"step {step}" + (f" of {steps}" if steps else "")
    if not allow_partial:
        raise CheckpointError(f"{path} is a training checkpoint ({where}), not a finished prior file; use the "
                              "file train-prior wrote at the end (--output), or pass --allow-partial to use it "
                              "anyway")
    import warnings

    warnings.warn(f"{path} is a training checkpoint ({where}); its prior is used as it stands (--allow-partial)",
                  UserWarning, stacklevel=3)


def check_training(prior: Prior, path: str | Path) -> None:
    """Warn when ``prior`` (loaded from ``path``) was trained for far fewer steps than its ``advice`` (the
    file's, else the class's) says pays off: under a quarter of them."""
    import warnings

    prov = prior.provenance or {}
    advice = prov.get("advice") if isinstance(prov.get("advice"), dict) else type(prior).advice
    steps = prov.get("steps")
    if not advice or not isinstance(steps, int) or not isinstance(advice.get("steps"), int):
        return
    if steps * 4 < advice["steps"]:
        source = advice.get("source", "the benchmarks")
        warnings.warn(f"{path} is a {prior.name} prior trained for {steps} steps; {source} shows it pays off over "
                      f"TV from about {advice['steps']} steps: compare with `-m tv`, which may do as well, or train "
                      f"longer (train-prior --steps {advice['steps']}, or --resume from a checkpoint)", UserWarning,
                      stacklevel=3)
