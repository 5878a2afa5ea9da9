"""Conditional samplers: the common interface, registry and saved-file format.

A sampler file is written with ``torch.save`` (atomically: temporary file,
then rename) and holds only tensors and plain data::

    {"format": "invsolve-sampler", "version": 1, "sampler": NAME,
     "config": {...},                  # the sampler's settings (JSON types)
     "operator": {"name", "params", "image_shape"}, "noise": {"name", ...},
     "arrays": {NAME: tensor},         # operator arrays (matrix, mask, kernel)
     "state_dict": {...},              # network weights and data statistics
     "provenance": {...},              # version, date, seed, timings, data source
     "training": {...},                # optimizer/generator state for --resume
     "sha256": HEX}                    # digest of state_dict and arrays (absent in older files)

It is read back only with ``torch.load(..., weights_only=True)``, so loading
a file never runs pickled code.  New samplers register a subclass of
:class:`Sampler` in :data:`SAMPLERS`; the hooks ``from_checkpoint`` and
``train`` may be overridden when the generic ones do not fit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from ..config import Params, canonical, validate_params
from ..errors import ConfigError, DataError, InvsolveError, OperatorError, ShapeError
from ..methods import no_track
from ..registry import Registry
from .files import (FORMAT, VERSION, check_complete, checkpoint_path, read_checkpoint,  # noqa: F401
                    save_training, tensors_digest, training_done, write_atomic)
from .networks import Standardizer

__all__ = ["SAMPLERS", "Sampler", "TrainedSampler", "FORMAT", "VERSION", "load_sampler", "read_checkpoint",
           "load_all", "write_atomic", "checkpoint_path", "save_training", "training_done"]

SAMPLERS: Registry[type["Sampler"]] = Registry("sampler")


def load_all() -> None:
    """Import every sampler module so that its registration runs."""
    from . import cflow, cfm, csnf, mmd_flow  # noqa: F401


class Sampler:
    """Base class of amortised conditional samplers x ~ p(x | y).

    Subclasses set ``name`` and ``Config`` and implement :meth:`build_model`,
    :meth:`loss` (training objective on a batch of pairs in working
    coordinates) and :meth:`sample_work` (samples in working coordinates).

    Working coordinates: vectors x̃ = (x − μ_x)/σ_x per entry, condition
    c = (y − μ_y)/σ_y (B, m); images (B, 1, H, W) x̃ = (x − x₀(y))/σ with
    x₀ = the classical initial guess (bicubic, FBP, adjoint) when
    ``residual``, condition c = the standardised x₀ (``condition="guess"``)
    or Aᵀy (``"adjoint"``) as a (B, 1, H, W) image.

    Arguments:
        config: The validated ``Config``.
        operator: The forward operator (vectors: domain (d,); images: (H, W)).
        noise: The noise model.
    """

    name: ClassVar[str] = ""
    Config: ClassVar[type[Params]] = Params

    def __init__(self, config: Params, operator, noise):
        self.config, self.operator, self.noise = config, operator, noise
        self.vector = len(operator.domain_shape) == 1
        xs = operator.domain_shape if self.vector else (1,)
        cs = operator.range_shape if self.vector else (1,)
        self.net = nn.ModuleDict({"xstd": Standardizer(xs), "cstd": Standardizer(cs), "model": self.build_model()})
        self.arrays = {k: np.asarray(v) for k, v in operator.arrays().items()}

    # -- hooks -----------------------------------------------------------------
    def build_model(self) -> nn.Module:
        raise NotImplementedError

    #: True when :meth:`proposals` gives draws with exact log proposal densities (or path weights), so that
    #: ``sample-posterior --importance`` can resample them against the likelihood.
    exact_weights: ClassVar[bool] = False
    #: settings that sampling may change (``sample-posterior -S KEY=VALUE``); the rest is fixed by training
    sampling_settings: ClassVar[tuple[str, ...]] = ()
    #: the arithmetic of the network evaluations when sampling (:meth:`configure` resolves it) and why
    precision: str = "fp32"
    precision_reason: str = ""
    #: The training record of a sampler read from its file (its source, schedule and history); empty until loaded.
    training_state: dict[str, Any] = {}

    def proposals(self, y: torch.Tensor, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """n draws per measurement (B, n, *domain) and their log proposal weights log q (B·n,); only where
        ``exact_weights``."""
        raise NotImplementedError

    #: True when the loss couples the items of a batch (random draws or pairings over
    #: the whole batch): data-parallel training then hands ``loss`` the whole batch
    #: and this rank's ``part`` of it, so every rank makes the same draws.
    batch_coupled: bool = False

    def loss(self, xw: torch.Tensor, c: torch.Tensor, generator: torch.Generator,
             part: slice | None = None) -> torch.Tensor:
        """Scalar training loss of working-space data xw given conditions c (the mean
        over the rows in ``part``, all rows when None)."""
        raise NotImplementedError

    def sample_work(self, c: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """One working-space sample per row of c: (R, *c) -> (R, *work_shape)."""
        raise NotImplementedError

    def set_sampling(self, config: Params) -> None:
        """Take the sampling settings of ``config`` (a validated ``Config`` that differs from the trained one
        only in keys of :attr:`sampling_settings`)."""
        self.config = config

    # -- description -------------------------------------------------------------
    @property
    def operator_spec(self) -> dict[str, Any]:
        return self.operator.spec()

    @property
    def noise_spec(self) -> dict[str, Any]:
        return self.noise.spec()

    @property
    def device(self) -> torch.device:
        return self.net["xstd"].shift.device

    @property
    def work_shape(self) -> tuple[int, ...]:
        return tuple(self.operator.domain_shape) if self.vector else (1, *self.operator.domain_shape)

    def to(self, device) -> "Sampler":
        self.net.to(device)
        self.operator.to(device)
        return self

    # -- coordinates -------------------------------------------------------------
    @torch.no_grad()
    def guess(self, y: torch.Tensor) -> torch.Tensor | None:
        """The image x₀(y) (B, H, W) used as condition and residual base; None for vectors."""
        if self.vector:
            return None
        if self.config.condition == "adjoint":
            return self.operator.adjoint(y)
        from ..methods import initial_guess

        return initial_guess(y, self.operator, self.noise).float()

    def condition(self, y: torch.Tensor, x0: torch.Tensor | None) -> torch.Tensor:
        return self.net["cstd"](y) if self.vector else self.net["cstd"](x0)[:, None]

    def _residual(self) -> bool:
        return not self.vector and bool(self.config.residual)

    def to_work(self, x: torch.Tensor, x0: torch.Tensor | None) -> torch.Tensor:
        if self.vector:
            return self.net["xstd"](x)
        return self.net["xstd"](x - x0 if self._residual() else x)[:, None]

    def from_work(self, w: torch.Tensor, x0: torch.Tensor | None) -> torch.Tensor:
        if self.vector:
            return self.net["xstd"].inverse(w)
        x = self.net["xstd"].inverse(w[:, 0])
        return x + x0 if self._residual() else x

    @torch.no_grad()
    def fit_stats(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """Set the standardisers from simulated pairs x (N, *domain), y (N, *range)."""
        x0 = self.guess(y)
        self.net["cstd"].fit(y if self.vector else x0, per_entry=self.vector)
        self.net["xstd"].fit(x if self.vector else (x - x0 if self._residual() else x), per_entry=self.vector)

    def batch_loss(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator,
                   part: slice | None = None) -> torch.Tensor:
        """The training loss of pairs x (B, *domain), y (B, *range), over the rows in
        ``part`` of the batch (a data-parallel rank's share; all rows when None)."""
        if part is not None and not self.batch_coupled:
            x, y, part = x[part], y[part], None
        x0 = self.guess(y)
        return self.loss(self.to_work(x, x0), self.condition(y, x0), generator, part)

    # -- sampling -----------------------------------------------------------------
    @property
    def chunk_rows(self) -> int:
        return 1 << 16 if self.vector else 64

    @torch.no_grad()
    def sample(self, y: torch.Tensor, n: int, generator: torch.Generator, track=no_track) -> torch.Tensor:
        """n posterior samples per measurement: y (B, *range) -> (B, n, *domain)."""
        rs = tuple(self.operator.range_shape)
        if y.dim() != len(rs) + 1 or tuple(y.shape[1:]) != rs:
            raise ShapeError(f"measurements have shape {tuple(y.shape)}; sampler {self.name!r} expects (B, {rs})")
        self.net.eval()
        y = y.to(self.device, torch.float32)
        x0 = self.guess(y)
        c = self.condition(y, x0)
        rows = torch.arange(len(y), device=self.device).repeat_interleave(n)
        out = []
        bf16 = self.precision == "bf16"
        for sl in track(list(torch.split(rows, self.chunk_rows)), f"sampling ({self.name})", hint="--num-samples N"):
            # bf16 covers the network evaluations only; the sampler's state, the
            # standardisation and the initial guess stay float32
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=bf16):
                w = self.sample_work(c[sl], generator)
            out.append(self.from_work(w.float(), None if x0 is None else x0[sl]))
        return torch.cat(out).reshape(len(y), n, *self.operator.domain_shape)

    def configure(self, precision: str = "auto", compile: bool = False) -> "Sampler":
        """Sampling options of a loaded sampler.

        Arguments:
            precision: ``fp32``, ``bf16`` to run the network evaluations of
                sampling under bfloat16 autocast (training, log-determinants and
                likelihoods are never run in bf16), or ``auto``: bf16 for image
                samplers on a device with fast bf16 (see :mod:`invsolve.precision`),
                float32 for parameter vectors, whose networks are too small to
                gain from it and whose few coordinates would carry its 3-digit rounding.
            compile: Compile the sampling step with ``torch.compile`` (pays off
                for many samples; the first call compiles).
        """
        from ..precision import PRECISIONS, normalize_precision, resolve_precision

        precision = normalize_precision(precision)
        if precision not in PRECISIONS:
            raise ConfigError(f"unknown precision {precision!r}; valid: {', '.join(PRECISIONS)}")
        self.precision, self.precision_reason = resolve_precision(precision, self.device, not self.vector,
                                                                  "float32 for parameter vectors")
        if compile:
            self.sample_work = torch.compile(self.sample_work)  # instance attribute: this sampler only
        return self

    # -- checks and files -----------------------------------------------------------
    def check_measurement(self, measurement) -> None:
        """Raise :class:`OperatorError` unless the measurement's operator and noise match the sampler's."""
        from ..noise import build_noise

        mine, theirs = canonical(self.operator_spec), canonical(measurement.operator)
        for key in ("name", "params", "image_shape"):
            if mine.get(key) != theirs.get(key):
                raise OperatorError(
                    f"the measurement's operator {key} {theirs.get(key)} differs from the sampler's {mine.get(key)}; "
                    f"simulate with the sampler's operator or train a sampler for this one"
                )
        for k, v in (measurement.arrays or {}).items():
            if k in self.arrays and (np.shape(v) != self.arrays[k].shape or not np.allclose(v, self.arrays[k])):
                raise OperatorError(f"the measurement's operator array {k!r} differs from the sampler's; "
                                    "train a sampler for this operator")
        ns = canonical(build_noise(measurement.noise).spec())
        if ns != canonical(self.noise_spec):
            raise OperatorError(f"the measurement's noise {ns} differs from the sampler's {canonical(self.noise_spec)}; "
                                "simulate with the sampler's noise or train a sampler for it")

    def checkpoint(self, provenance: dict | None = None, training: dict | None = None) -> dict[str, Any]:
        ckpt = {
            "format": FORMAT, "version": VERSION, "sampler": self.name,
            "config": self.config.model_dump(mode="json"),
            "operator": self.operator_spec, "noise": self.noise_spec,
            "arrays": {k: torch.as_tensor(v) for k, v in self.arrays.items()},
            "state_dict": {k: v.detach().cpu() for k, v in self.net.state_dict().items()},
            "provenance": provenance or {}, "training": training or {},
        }
        ckpt["sha256"] = tensors_digest(ckpt)
        return ckpt

    @classmethod
    def create(cls, config: dict[str, Any], operator, noise) -> "Sampler":
        return cls(validate_params(cls.Config, config, f"settings of sampler {cls.name!r}"), operator, noise)

    @classmethod
    def from_checkpoint(cls, ckpt: dict[str, Any], device) -> "Sampler":
        """Rebuild a trained sampler from a loaded file's dict."""
        from ..noise import build_noise
        from ..operators import build_operator

        s = ckpt["operator"]
        arrays = {k: v.cpu().numpy() for k, v in ckpt.get("arrays", {}).items()}
        op = build_operator(s["name"], s["params"], tuple(s["image_shape"]), arrays)
        inst = cls.create(ckpt["config"], op, build_noise(ckpt["noise"]))
        inst.net.load_state_dict(ckpt["state_dict"])
        inst.provenance, inst.training_state = ckpt.get("provenance", {}), ckpt.get("training", {})
        return inst.to(device)

    @classmethod
    def train(cls, sampler: "Sampler", source, settings, output, resume: dict | None = None, progress=None,
              provenance: dict | None = None, dist=None) -> dict[str, Any]:
        """Train ``sampler`` on pairs from ``source``; the generic loop of :mod:`.training`."""
        from .training import fit

        return fit(sampler, source, settings, output, resume=resume, progress=progress, provenance=provenance,
                   dist=dist)


TrainedSampler = Sampler


def load_sampler(path: str | Path, device="cpu", allow_partial: bool = False) -> Sampler:
    """Load a trained sampler for :meth:`Sampler.sample`; never runs pickled code.  A file whose training
    did not complete (a checkpoint) is refused, or with ``allow_partial`` used with a warning."""
    from ..device import resolve_device

    dev = resolve_device(device)
    ckpt = read_checkpoint(path, dev)
    check_complete(ckpt, path, allow_partial)
    load_all()
    try:
        cls = SAMPLERS.get(ckpt["sampler"])
    except OperatorError as exc:
        raise DataError(f"{path} uses a sampler this version does not know: {exc}") from None
    try:
        return cls.from_checkpoint(ckpt, dev)
    except InvsolveError as exc:
        raise DataError(f"{path} cannot be rebuilt: {exc}") from None
    except (KeyError, RuntimeError, TypeError, ValueError, AttributeError) as exc:
        why = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        raise DataError(f"{path} does not match sampler {ckpt['sampler']!r} of this version ({why}); retrain it") from None
