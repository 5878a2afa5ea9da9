"""The result objects of invsolve: measurements, reconstructions, posteriors and noise estimates.

They sit at the bottom of the library: the API functions (:mod:`invsolve.api` and its siblings) make them,
:mod:`invsolve.results.files` writes and reads them, and nothing here imports the API.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import DataError

__all__ = ["Measurement", "NoiseEstimate", "Posterior", "Reconstruction", "expect"]


@dataclass
class Measurement:
    """Simulated or loaded data with everything needed to reconstruct it.

    Attributes:
        measurement: (N, *range_shape) noisy data.
        operator: Operator spec {"name", "params", "image_shape"}.
        noise: Noise spec {"name", ...params}.
        arrays: Arrays the operator needs (mask, kernel).
        ground_truth: (N, *image_shape) clean images (N, H, W) or parameter vectors (N, d), when known.
        single: The input was one image or vector, not a stack.
        source: Where the clean input came from (a path), for provenance.
        seed: The simulation's seed (None for measured data).
        device: Device the simulation ran on.
        timings: Seconds per step (``simulate``).
        provenance: For data invsolve did not simulate: the file and dataset it came from, the SHA-256 of
            the array as read, the operator and noise as given, and how it was read (layout, flats, centre).
    """

    measurement: np.ndarray
    operator: dict[str, Any]
    noise: dict[str, Any]
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    ground_truth: np.ndarray | None = None
    single: bool = False
    source: str = ""
    seed: int | None = None
    device: str = "cpu"
    timings: dict[str, float] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)

    def build_operator(self, device: Any = "cpu"):
        """The operator of this measurement, on ``device``."""
        from ..operators import build_operator

        s = self.operator
        return build_operator(s["name"], s["params"], tuple(s["image_shape"]), self.arrays).to(device)


@dataclass
class Reconstruction:
    """A reconstruction plus the measurement it came from.

    Attributes:
        images: (N, *image_shape): images (N, H, W), or parameter vectors (N, d) of a linear vector operator.
        method: Method spec {"name", ...settings}; with a prior also "prior", "prior_file", "settings".
        measurement: The :class:`Measurement` reconstructed.
        seed: The run's seed; device: where it ran; timings: seconds per step.
        iterations_run: (N,) int32, the iterations an iterative method ran per item (None for direct methods).
        converged: (N,) bool, whether the stopping rule ended the item's run before its iteration cap.
    """

    images: np.ndarray
    method: dict[str, Any]
    measurement: Measurement
    seed: int
    device: str
    timings: dict[str, float] = field(default_factory=dict)
    iterations_run: np.ndarray | None = None
    converged: np.ndarray | None = None


@dataclass
class Posterior:
    """Posterior outputs for every item of a measurement.

    Attributes:
        summary: A :class:`invsolve.posterior.PosteriorSummary`: ``mean`` and ``std`` (N, *x_shape),
            ``quantiles`` (N, Q, *x_shape) at ``levels`` (Q,), ``samples`` (N, S, *x_shape) when kept (else
            None); x_shape is (H, W) for images, (d,) for parameter vectors.
        sampler: Sampler spec {"name", ...settings} (with importance resampling: the effective sample sizes).
        measurement: The :class:`Measurement` sampled; seed, device, timings: as for reconstructions.
    """

    summary: Any
    sampler: dict[str, Any]
    measurement: Measurement
    seed: int
    device: str
    timings: dict[str, float] = field(default_factory=dict)


@dataclass
class NoiseEstimate:
    """EM-DeepGEM output (:func:`invsolve.api_metrology.estimate_noise`): (a, b), traces and posterior samples, with
    the :class:`Measurement` they came from."""

    a: float
    b: float
    result: Any
    measurement: Measurement
    prior: dict[str, Any]
    settings: dict[str, Any]
    seed: int
    device: str
    timings: dict[str, float] = field(default_factory=dict)


#: What each result object is and where one comes from, for the messages of :func:`expect`.
_ORIGIN = {
    "Measurement": "api.simulate or api.load_measurement",
    "Reconstruction": "api.reconstruct",
    "Posterior": "api.sample_posterior",
    "NoiseEstimate": "api_metrology.estimate_noise",
}


def expect(obj: Any, cls: type, what: str) -> None:
    """Raise :class:`DataError` unless ``obj`` is a ``cls`` (an invsolve result object such as ``Measurement``).

    Arguments:
        obj: The object a caller passed.
        cls: The class it must be an instance of.
        what: The argument's name, for the message.
    """
    if isinstance(obj, cls):
        return
    name = cls.__name__
    hint = ""
    if isinstance(obj, np.ndarray) and name == "Measurement":
        hint = "; wrap data with its operator by api.simulate, or read a file with api.load_measurement"
    elif name != "Measurement" and type(obj).__name__ == "Measurement":
        hint = f"; save a Measurement with save_measurement, or {_ORIGIN.get(name, 'the API')} it first"
    elif isinstance(obj, (str, os.PathLike)) and name == "Measurement":
        hint = "; read the file with api.load_measurement first"
    raise DataError(f"{what} must be an invsolve {name} (from {_ORIGIN.get(name, 'the API')}), got "
                    f"{type(obj).__name__}{hint}")
