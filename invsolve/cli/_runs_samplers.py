"""Strict model of the ``train-sampler`` settings (config file + flags)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from ..precision import Precision
from ._runs import RunBase, Progressing


class TrainSamplerRun(RunBase, Progressing):
    sampler: str = "cfm"
    sampler_params: dict[str, Any] = Field(default_factory=dict)
    operator: str
    operator_params: dict[str, Any] = Field(default_factory=dict)
    noise: str | None = None
    noise_params: dict[str, Any] = Field(default_factory=dict)
    images: list[str] | None = None
    crop: int | None = Field(None, ge=4)  # None: 64 for image problems; refused for vector problems
    prior: str | None = None
    prior_params: dict[str, Any] = Field(default_factory=dict)
    dim: int | None = Field(None, ge=1)
    steps: int = Field(2000, ge=1)
    batch_size: int | None = Field(None, ge=2)
    lr: float | None = Field(None, gt=0)
    val_every: int = Field(200, ge=1)
    val_size: int = Field(256, ge=2)
    checkpoint_every: int = Field(500, ge=1)
    schedule: Literal["cosine", "constant"] = "cosine"
    output: str
    resume: bool = False

    @field_validator("images", mode="before")
    @classmethod
    def _one_or_many(cls, v):
        return [v] if isinstance(v, str) else v


class CalibrateRun(RunBase, Progressing):
    """``invsolve calibrate``: pairs from a file or simulated, a sampler as for ``sample-posterior``."""

    pairs_file: str | None = None
    pairs: int | None = Field(None, ge=4)
    images: list[str] | None = None
    sampler: str | None = None
    sampler_file: str | None = None
    prior: str | None = None
    prior_file: str | None = None
    sampler_params: dict[str, Any] = Field(default_factory=dict)
    num_samples: int | None = Field(None, ge=2)
    chains: int | None = Field(None, ge=1)
    masses: list[float] | None = None
    projections: int = Field(8, ge=0)
    pixels: int = Field(8, ge=0)
    bins: int | None = Field(None, ge=2)
    batch_size: int = Field(8, ge=1)
    precision: Precision = "auto"
    allow_partial: bool = False
    output: str

    @field_validator("images", mode="before")
    @classmethod
    def _one_or_many(cls, v):
        return [v] if isinstance(v, str) else v
