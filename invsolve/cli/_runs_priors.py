"""Strict model of the ``train-prior`` settings (config file + flags)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from ._runs import RunBase, Progressing


class TrainPriorRun(RunBase, Progressing):
    prior: str = "patchnr"
    images: list[str] = Field(min_length=1)
    val: list[str] = Field(default_factory=list)
    output: str
    steps: int | None = Field(None, ge=1)
    batch_size: int | None = Field(None, ge=1)
    lr: float | None = Field(None, gt=0)
    until_plateau: bool = False
    prior_params: dict[str, Any] = Field(default_factory=dict)
    checkpoint_every: int | None = Field(None, ge=1)
    checkpoint: str | None = None
    resume: bool = False

    @field_validator("images", "val", mode="before")
    @classmethod
    def _one_or_many(cls, v):
        return [v] if isinstance(v, str) else v


class SamplePriorRun(RunBase, Progressing):
    """``invsolve sample-prior``: unconditional samples of a diffusion prior."""

    prior_file: str
    output: str
    size: int = Field(64, ge=8, le=4096)
    num: int = Field(16, ge=1)
    steps: int = Field(200, ge=1)
    method: Literal["sde", "ode"] = "sde"
