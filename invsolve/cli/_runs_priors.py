"""Strict model of the ``train-prior`` settings (config file + flags)."""

from __future__ import annotations

from typing import Any

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
