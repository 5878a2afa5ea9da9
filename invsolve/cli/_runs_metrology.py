"""Strict model of the ``estimate-noise`` settings (config file + flags)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from ._runs import RunBase, Progressing


class EstimateNoiseRun(RunBase, Progressing):
    measurements: str
    output: str
    operator: str | None = None
    operator_params: dict[str, Any] = Field(default_factory=dict)
    prior: str | None = None
    prior_params: dict[str, Any] = Field(default_factory=dict)
    iterations: int | None = Field(None, ge=1)
    estep: Literal["forward_kl", "reverse_kl", "cfm"] | None = None
    em_params: dict[str, Any] = Field(default_factory=dict)
    checkpoint: str | None = None
    resume: bool = False
