"""2-D computed tomography: the ray transform (parallel or fan beam) via ASTRA."""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import torch
from pydantic import Field, model_validator

from ..config import Params
from ..errors import ConfigError
from ..noise.poisson import MU_MAX
from . import _astra
from .base import OPERATORS, Operator, OperatorEntry

__all__ = ["CTParams", "CTOperator"]

_FAN_PROJECTORS = {"linear": "line_fanflat", "line": "line_fanflat", "strip": "strip_fanflat"}


class CTParams(Params):
    geometry: Literal["parallel", "fan"] = Field("parallel", description="parallel beam or fan beam (flat detector)")
    angles: int = Field(180, ge=1, description="number of projection angles")
    angle_start: float = Field(0.0, description="start of the angular range in degrees")
    angle_stop: float | None = Field(
        None, description="end of the angular range in degrees (default: 180 for parallel, 360 for fan)"
    )
    detectors: int | None = Field(None, ge=1, description="detector pixels (default: cover the image diagonal)")
    detector_spacing: float = Field(1.0, gt=0, description="detector pixel pitch, in image pixels")
    source_origin: float | None = Field(None, gt=0, description="fan beam: source-to-centre distance in pixels")
    origin_detector: float | None = Field(None, ge=0, description="fan beam: centre-to-detector distance in pixels")
    projector: Literal["linear", "line", "strip"] = Field(
        "linear", description="ASTRA discretisation (fan beam: linear and line both mean line_fanflat)"
    )
    domain_size: float | None = Field(
        None, gt=0, description="physical side of the image; line integrals are then in these units"
    )

    @model_validator(mode="after")
    def _check(self):
        if self.angle_stop is not None and self.angle_stop <= self.angle_start:
            raise ValueError("angle_stop must be larger than angle_start")
        return self


class CTOperator(Operator):
    """The 2-D ray transform: line integrals of an image along parallel or fan-beam rays.

    Shapes: (B, H, W) -> (B, angles, detectors).  The image is centred on the
    rotation axis with square pixels; without ``domain_size`` the line
    integrals are in pixel units, with it they are in the units of
    ``domain_size``, the physical length of the longer image side (the
    projections are multiplied by the pixel size ``domain_size / max(H, W)``).  Angles sit at the midpoints of
    ``angles`` equal cells of [angle_start, angle_stop), in degrees; 1000
    angles on [0, 180) are (k + 0.5)·0.18°, as in LoDoPaB-CT and ODL.

    The default detector count is the smallest odd number of pixels that
    covers the image diagonal (for fan beam: the diagonal's shadow on the
    detector), 2·ceil(r / spacing) + 1; for 362×362 that is 513 as in
    LoDoPaB-CT (whose 513 detectors span exactly the diagonal, a pitch of 0.998
    pixels; pass ``detector_spacing=0.99795`` to match it exactly).

    The adjoint is ASTRA's back projection, which on the CPU is the exact
    transpose of the forward projection.  On CUDA tensors (with a CUDA-enabled
    ASTRA) the ``cuda`` projector is used instead; there FP and BP are only
    approximately adjoint.  Fan beam has no ``linear`` projector in ASTRA:
    ``linear`` maps to ``line_fanflat``.

    Presets: ``ct-lowdose`` (LoDoPaB-CT-like: parallel, 1000 angles, domain
    0.26 m, Poisson noise with N0 = 4096) and ``ct-limited`` (angle indices
    100..899 of those: 800 angles on [18°, 162°)).

    References:
        Leuschner et al., LoDoPaB-CT, a benchmark dataset for low-dose CT
        reconstruction, Scientific Data 8:109 (2021), arXiv 1910.01113;
        Altekrueger et al., PatchNR, Inverse Problems 39 (2023), arXiv 2205.12021;
        van Aarle et al., Fast and flexible X-ray tomography using the ASTRA
        toolbox, Optics Express 24(22) (2016).
    """

    Params = CTParams
    kind = "ct"

    def __init__(self, params: CTParams, image_shape, arrays=None):
        super().__init__(params, image_shape, arrays)
        p = params
        H, W = self.image_shape
        n = max(H, W)
        radius = 0.5 * math.hypot(H, W)  # half the image diagonal, in pixels
        self.fan = p.geometry == "fan"
        stop = p.angle_stop if p.angle_stop is not None else (360.0 if self.fan else 180.0)
        self.angle_range = math.radians(stop - p.angle_start)
        step = (stop - p.angle_start) / p.angles
        self.angles_deg = p.angle_start + (np.arange(p.angles) + 0.5) * step
        angles = np.deg2rad(self.angles_deg)
        self.pixel_size = p.domain_size / n if p.domain_size is not None else 1.0
        if self.fan:
            self.source_origin = float(p.source_origin if p.source_origin is not None else 2.0 * n)
            self.origin_detector = float(p.origin_detector if p.origin_detector is not None else 2.0 * n)
            if self.source_origin <= radius:
                raise ConfigError(
                    f"fan-beam source_origin {self.source_origin:g} lies inside the image "
                    f"(half-diagonal {radius:.1f} pixels); use source_origin > {math.ceil(radius)}"
                )
            # shadow of the circle of radius r seen from the source, on the detector
            half = self.magnification * self.source_origin * radius / math.sqrt(self.source_origin**2 - radius**2)
        else:
            self.source_origin = self.origin_detector = math.inf
            half = radius
        self.detector_count = p.detectors if p.detectors is not None else 2 * math.ceil(half / p.detector_spacing) + 1
        self.detector_spacing = p.detector_spacing
        if self.fan:
            g = _astra.fan_geometry(
                angles, self.detector_count, p.detector_spacing, self.source_origin, self.origin_detector
            )
            projector = _FAN_PROJECTORS[p.projector]
        else:
            g = _astra.parallel_geometry(angles, self.detector_count, p.detector_spacing)
            projector = p.projector
        self._proj = _astra.Projector2D(self.image_shape, g, projector, scale=self.pixel_size)

    @property
    def range_shape(self) -> tuple[int, int]:
        return (self.params.angles, self.detector_count)

    @property
    def magnification(self) -> float:
        """(source-detector) / (source-centre) distance; 1 for parallel beam."""
        if not self.fan:
            return 1.0
        return (self.source_origin + self.origin_detector) / self.source_origin

    @property
    def angles_rad(self) -> np.ndarray:
        """Projection angles in radians, (angles,)."""
        return np.deg2rad(self.angles_deg)

    def detector_positions(self) -> np.ndarray:
        """Centres of the detector pixels on the detector, in pixels, (detectors,)."""
        return (np.arange(self.detector_count) - (self.detector_count - 1) / 2) * self.detector_spacing

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._proj.fp(x)

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return self._proj.bp(y)


_LODOPAB = {"angles": 1000, "domain_size": 0.26}
_LOWDOSE_NOISE = {"name": "poisson", "n0": 4096, "mu": MU_MAX}

OPERATORS.add(
    "ct",
    OperatorEntry(
        CTOperator,
        {},
        noise={"name": "gaussian", "sigma": 1.0},
        summary="2-D ray transform via ASTRA (parallel or fan beam); line integrals in pixel units",
    ),
)
OPERATORS.add(
    "ct-lowdose",
    OperatorEntry(
        CTOperator,
        dict(_LODOPAB),
        noise=dict(_LOWDOSE_NOISE),
        summary="LoDoPaB-CT-like: parallel, 1000 angles on [0,180), domain 0.26 m, Poisson N0=4096",
    ),
)
OPERATORS.add(
    "ct-limited",
    OperatorEntry(
        CTOperator,
        {**_LODOPAB, "angles": 800, "angle_start": 18.0, "angle_stop": 162.0},
        noise=dict(_LOWDOSE_NOISE),
        summary="limited angle (patchNR): LoDoPaB angles 100..899, 800 on [18,162), Poisson N0=4096",
    ),
)
