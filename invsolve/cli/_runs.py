"""Strict models of each command's settings (config file + flags)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from ..config import MAX_SEED, Params
from ..precision import Precision
from ..sources.measured import MeasurementReading

Device = Literal["auto", "cpu", "cuda"]


class RunBase(Params):
    """Settings every command that writes a file shares."""

    seed: int = Field(0, ge=0, le=MAX_SEED, description="random seed, 0 to 2**62")
    device: Device = "auto"
    overwrite: bool = False
    quiet: bool = False
    json_output: bool = Field(False, alias="json")

    model_config = {**Params.model_config, "populate_by_name": True}


class Common(RunBase):
    preview: str | None = None


class Progressing(Params):
    """The progress display of the commands with long loops (``--progress``)."""

    progress: Literal["auto", "bar", "lines", "none"] = "auto"


class SimulateRun(Common):
    input: str | list[str]
    output: str
    operator: str | None = None  # required: refused with the list of names when neither flag nor file gives it
    operator_params: dict[str, Any] = Field(default_factory=dict)
    noise: str | None = None
    noise_params: dict[str, Any] = Field(default_factory=dict)
    batch_size: int = Field(8, ge=1)
    range: tuple[float, float] | None = None

    @field_validator("input", mode="before")
    @classmethod
    def _one_or_many_inputs(cls, v):
        return v[0] if isinstance(v, list) and len(v) == 1 else v

    @field_validator("range", mode="before")
    @classmethod
    def _value_range(cls, v):
        from ..io.scaling import parse_value_range

        return parse_value_range(v, "--range (config key range)")

    @model_validator(mode="after")
    def _operator_given(self) -> "SimulateRun":
        if self.operator is None:
            from ..operators import OPERATORS, load_all

            load_all()
            raise ValueError("missing 'operator' (give --operator or set 'operator' in the config file); valid: "
                             + ", ".join(OPERATORS.names()))
        return self


class BatchRun(Common, Progressing, MeasurementReading):
    """Settings of the commands that run over stacks in batches: the inputs, and how to read data invsolve
    did not write (``operator``, ``operator_params``, ``noise``, ``noise_params``, ``image_size``,
    ``flats``, ``darks``, ``rows``)."""

    allow_partial: bool = False
    wait: bool = False  # for another run writing the same output to end, instead of refusing

    measurement: list[str] = Field(min_length=1)
    output: str
    batch_size: int = Field(8, ge=1)
    shard: str | None = None
    resume: bool = False

    @field_validator("measurement", mode="before")
    @classmethod
    def _one_or_many(cls, v):
        return [v] if isinstance(v, str) else v

    def reading(self) -> MeasurementReading:
        """The description of foreign inputs, as the library takes it."""
        return MeasurementReading(**{k: getattr(self, k) for k in MeasurementReading.model_fields})


class ReconstructRun(BatchRun):
    method: str | None = None
    method_params: dict[str, Any] = Field(default_factory=dict)
    prior: str | None = None
    prior_file: str | None = None
    zero_shot: bool = False
    prior_params: dict[str, Any] = Field(default_factory=dict)


class SamplePosteriorRun(BatchRun):
    sampler: str | None = None
    sampler_file: str | None = None
    prior: str | None = None
    prior_file: str | None = None
    sampler_params: dict[str, Any] = Field(default_factory=dict)
    num_samples: int | None = Field(None, ge=1)
    chains: int | None = Field(None, ge=1)
    quantiles: list[float] = Field(default_factory=lambda: [0.05, 0.25, 0.5, 0.75, 0.95])
    save_samples: bool = False
    precision: Precision = "auto"
    compile: bool = False
    importance: int = Field(0, ge=0)
    calibration: str | None = None


class EvaluateRun(Params):
    inputs: list[str] = Field(min_length=1)
    reference: str | None = None
    train: str | None = None
    seed: int = Field(0, ge=0)
    range: tuple[float, float] | None = None
    json_output: bool = Field(False, alias="json")

    @field_validator("range", mode="before")
    @classmethod
    def _value_range(cls, v):
        from ..io.scaling import parse_value_range

        return parse_value_range(v, "--range (config key range)")

    model_config = {**Params.model_config, "populate_by_name": True}

    @field_validator("inputs", mode="before")
    @classmethod
    def _one_or_many(cls, v):
        return [v] if isinstance(v, str) else v
