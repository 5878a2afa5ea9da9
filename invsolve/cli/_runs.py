"""Strict models of each command's settings (config file + flags)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from ..config import Params

Device = Literal["auto", "cpu", "cuda"]


class Common(Params):
    seed: int = 0
    device: Device = "auto"
    overwrite: bool = False
    quiet: bool = False
    json_output: bool = Field(False, alias="json")
    preview: str | None = None

    model_config = {**Params.model_config, "populate_by_name": True}


class SimulateRun(Common):
    input: str
    output: str
    operator: str = "ct"
    operator_params: dict[str, Any] = Field(default_factory=dict)
    noise: str | None = None
    noise_params: dict[str, Any] = Field(default_factory=dict)
    batch_size: int = Field(8, ge=1)


class ReconstructRun(Common):
    measurement: str
    output: str
    method: str = "fbp"
    method_params: dict[str, Any] = Field(default_factory=dict)
    batch_size: int = Field(8, ge=1)


class EvaluateRun(Params):
    inputs: list[str] = Field(min_length=1)
    reference: str | None = None
    json_output: bool = Field(False, alias="json")

    model_config = {**Params.model_config, "populate_by_name": True}
