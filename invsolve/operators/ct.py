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
from .base import OPERATORS, LinearOperator, OperatorEntry
from .ct_geometry import angle_grid, angle_weights, check_angle_list, covered_range, fan_vectors, parallel_vectors

__all__ = ["CTParams", "CTOperator"]

_FAN_PROJECTORS = {"linear": "line_fanflat", "line": "line_fanflat", "strip": "strip_fanflat"}


class CTParams(Params):
    geometry: Literal["parallel", "fan"] = Field("parallel", description="parallel beam or fan beam (flat detector)")
    angles: int | list[float] = Field(
        180, description="number of projection angles, or the measured angles as a list (in angle_unit)"
    )
    angles_file: str | None = Field(
        None, description="read the measured angles from FILE.npy, a text file or FILE.h5:/dataset (e.g. "
        "/exchange/theta, degrees)"
    )
    angle_unit: Literal["deg", "rad"] = Field("deg", description="unit of listed angles and angle files")
    angle_start: float = Field(0.0, description="start of the angular range in degrees")
    angle_stop: float | None = Field(
        None, description="end of the angular range in degrees (default: 180 for parallel, 360 for fan)"
    )
    endpoint: bool | None = Field(
        None, description="count form: unset = cell midpoints (k+0.5)*step (ODL, LoDoPaB); false = "
        "linspace(start, stop, n, endpoint=False); true = includes stop"
    )
    angle_convention: Literal["astra", "odl"] = Field(
        "astra", description="odl: angles are ODL's phi on the array as stored (LoDoPaB-CT); ASTRA's theta = phi-90"
    )
    detectors: int | None = Field(None, ge=1, description="detector pixels (default: cover the image diagonal)")
    detector_spacing: float | Literal["diagonal"] = Field(
        1.0, description="detector pixel pitch in image pixels, or 'diagonal': the detectors span exactly the "
        "image diagonal (ODL's parallel_beam_geometry, LoDoPaB-CT)"
    )
    center: float | Literal["auto"] | None = Field(
        None, description="rotation axis on the detector, pixel-centre index ((N-1)/2 = centred; tomopy's "
        "N/2 is +0.5); auto: estimated from the sinogram"
    )
    center_offset: float = Field(0.0, description="rotation axis offset from the detector middle, detector pixels")
    detector_offset: float = Field(
        0.0, description="fan beam: detector shift, pixels (parallel beam: adds to center_offset)"
    )
    source_origin: float | None = Field(None, gt=0, description="fan beam: source-to-centre distance in pixels")
    origin_detector: float | None = Field(None, ge=0, description="fan beam: centre-to-detector distance in pixels")
    projector: Literal["linear", "line", "strip"] = Field(
        "linear", description="ASTRA discretisation (fan beam: linear and line both mean line_fanflat)"
    )
    domain_size: float | None = Field(
        None, gt=0, description="physical side of the image; line integrals are then in these units"
    )
    angles_source: str | None = Field(None, description="where listed angles came from (set by angles_file)")

    @model_validator(mode="before")
    @classmethod
    def _read_angles_file(cls, values):
        if not isinstance(values, dict) or values.get("angles_file") is None:
            return values
        from ..sources.angles import read_angles

        spec = str(values["angles_file"])
        if isinstance(values.get("angles"), list):
            raise ValueError("give the angles either as a list or as angles_file, not both")
        arr, unit = read_angles(spec)
        count = values.get("angles")
        if isinstance(count, int) and not isinstance(count, bool) and count != len(arr):
            raise ValueError(f"angles={count} but {spec} holds {len(arr)} angles; drop -P angles=")
        given = values.get("angle_unit")
        if unit is not None and given is not None and given != unit:
            raise ValueError(f"{spec} declares its angles in {unit}, not {given}; drop -P angle_unit=")
        return {**values, "angles": [float(v) for v in arr], "angles_file": None, "angles_source": spec,
                "angle_unit": given or unit or "deg"}

    @model_validator(mode="after")
    def _check(self):
        if self.angle_stop is not None and self.angle_stop <= self.angle_start:
            raise ValueError("angle_stop must be larger than angle_start")
        if isinstance(self.angles, bool) or (isinstance(self.angles, int) and self.angles < 1):
            raise ValueError("angles must be a count of at least 1 or a list of angles")
        if isinstance(self.angles, list):
            check_angle_list(self.angles, self.angle_unit)
            if self.endpoint is not None:
                raise ValueError("endpoint applies to the count form of angles, not to a list; drop -P endpoint=")
        if not isinstance(self.detector_spacing, str) and self.detector_spacing <= 0:
            raise ValueError("detector_spacing must be positive (or 'diagonal')")
        if self.center is not None and self.center_offset:
            raise ValueError("give the rotation axis as center (a detector index) or center_offset, not both")
        return self


class CTOperator(LinearOperator):
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
    LoDoPaB-CT, whose 513 detectors span exactly the diagonal (a pitch of
    0.997944 pixels): ``detector_spacing="diagonal"`` gives that, as the
    LoDoPaB presets do.

    Measured scans: ``angles`` may be a list (or ``angles_file``: ``.npy``, text,
    ``FILE.h5:/exchange/theta``) in ``angle_unit``; the count form places the
    angles at cell midpoints unless ``endpoint`` says otherwise (false:
    ``linspace(start, stop, n, endpoint=False)``).  ``center`` (a pixel-centre
    index, (N − 1)/2 in the middle) or ``center_offset`` puts the rotation axis
    off the detector's middle, ``detector_offset`` shifts a fan-beam detector;
    both use ASTRA's vector geometries.  ``angle_convention="odl"`` reads the
    angles as ODL's φ on the same array (ASTRA's θ = φ − 90°), LoDoPaB-CT's
    convention.

    The adjoint is ASTRA's back projection, which on the CPU is the exact
    transpose of the forward projection.  On CUDA tensors (with a CUDA-enabled
    ASTRA) the ``cuda`` projector is used instead; there FP and BP are only
    approximately adjoint.  Fan beam has no ``linear`` projector in ASTRA:
    ``linear`` maps to ``line_fanflat``.

    Presets: ``ct-lowdose`` (LoDoPaB-CT's geometry as ODL builds it: parallel,
    1000 angles at (k + ½)·0.18° in ODL's convention, 513 detectors spanning
    the diagonal, domain 0.26 m, Poisson noise with N0 = 4096; it reads
    LoDoPaB's ``observation_*.hdf5:/data`` as they are) and ``ct-limited``
    (angle indices 100..899 of those: 800 angles on [18°, 162°)).

    References:
        Leuschner et al., LoDoPaB-CT, a benchmark dataset for low-dose CT
        reconstruction, Scientific Data 8:109 (2021), arXiv 1910.01113;
        Altekrueger et al., PatchNR, Inverse Problems 39 (2023), arXiv 2205.12021;
        van Aarle et al., Fast and flexible X-ray tomography using the ASTRA
        toolbox, Optics Express 24(22) (2016).
    """

    Params = CTParams
    kind = "ct"
    file_params = {"angles_file": ()}  # read into ``angles`` when the parameters are validated

    def __init__(self, params: CTParams, image_shape, arrays=None):
        super().__init__(params, image_shape, arrays)
        p = params
        if p.center == "auto":
            raise ConfigError("center=auto is estimated from a measured sinogram (reconstruct, sample-posterior "
                              "and estimate-noise do it); give the axis position as a number here")
        H, W = self.image_shape
        n = max(H, W)
        radius = 0.5 * math.hypot(H, W)  # half the image diagonal, in pixels
        self.fan = p.geometry == "fan"
        self.angles_deg = self._angles_deg(p)
        angles = np.deg2rad(self.angles_deg)
        if p.angle_convention == "odl":  # ODL's phi on the same array is ASTRA's theta + 90 degrees
            angles = angles - math.pi / 2
        full = 2 * math.pi if self.fan else math.pi
        self.angle_range = min(covered_range(angles), full) if isinstance(p.angles, list) else \
            math.radians((p.angle_stop if p.angle_stop is not None else (360.0 if self.fan else 180.0)) - p.angle_start)
        # quadrature weights of the angles, adding up to the range sampled (at most a full scan)
        self.angle_weights = angle_weights(angles, full) if isinstance(p.angles, list) else \
            np.full(len(angles), min(self.angle_range, full) / len(angles))
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
        diagonal = p.detector_spacing == "diagonal"
        self.detector_count = p.detectors if p.detectors is not None else \
            2 * math.ceil(half / (1.0 if diagonal else p.detector_spacing)) + 1
        self.detector_spacing = 2 * half / self.detector_count if diagonal else float(p.detector_spacing)
        self.center_offset = self._center_offset(p)
        self.detector_offset = float(p.detector_offset)
        g, projector = self._geometry(p, angles)
        self._proj = _astra.Projector2D(self.image_shape, g, projector, scale=self.pixel_size)

    @classmethod
    def declared_size(cls, params: CTParams, image_shape) -> tuple[str, int] | None:
        """Angles × detectors of the sinogram (the detector count bounded from above when not given)."""
        n_angles = len(params.angles) if isinstance(params.angles, list) else int(params.angles)
        H, W = image_shape[-2:]
        detectors = params.detectors if params.detectors is not None else 2 * math.ceil(math.hypot(H, W)) + 1
        return f"-P angles={n_angles} and {detectors} detectors", n_angles * int(detectors)

    def _angles_deg(self, p: CTParams) -> np.ndarray:
        if isinstance(p.angles, list):
            return check_angle_list(p.angles, p.angle_unit)
        stop = p.angle_stop if p.angle_stop is not None else (360.0 if self.fan else 180.0)
        return angle_grid(p.angles, p.angle_start, stop, p.endpoint)

    def _center_offset(self, p: CTParams) -> float:
        """Axis position on the detector, pixels from its middle ((N - 1)/2)."""
        mid = (self.detector_count - 1) / 2
        off = float(p.center) - mid if p.center is not None else float(p.center_offset)
        if abs(off) >= mid + 0.5:
            given = f"center={p.center:g}" if p.center is not None else f"center_offset={p.center_offset:g}"
            raise ConfigError(f"{given} puts the rotation axis off the detector (pixels 0..{self.detector_count - 1});"
                              f" give a center between 0 and {self.detector_count - 1}")
        return off

    def _geometry(self, p: CTParams, angles: np.ndarray) -> tuple[dict, str]:
        """The ASTRA geometry and CPU projector; vector geometries only where an offset needs them, so an
        unshifted scan is bit for bit ASTRA's plain ``parallel``/``fanflat`` geometry."""
        if self.fan:
            projector = _FAN_PROJECTORS[p.projector]
            if self.center_offset or self.detector_offset:
                vec = fan_vectors(angles, self.detector_spacing, self.source_origin, self.origin_detector,
                                  self.center_offset, self.detector_offset)
                return _astra.vector_geometry("fanflat_vec", vec, self.detector_count), "line_fanflat"
            return _astra.fan_geometry(angles, self.detector_count, self.detector_spacing, self.source_origin,
                                       self.origin_detector), projector
        shift = self.center_offset + self.detector_offset
        if shift:
            # ASTRA's line kernel on parallel_vec differs from plain 'parallel' at axis-aligned angles;
            # linear and strip agree with it (measured to 4e-4 of 64-pixel sums)
            vec = parallel_vectors(angles, self.detector_spacing, shift)
            return _astra.vector_geometry("parallel_vec", vec, self.detector_count), p.projector
        return _astra.parallel_geometry(angles, self.detector_count, self.detector_spacing), p.projector

    @classmethod
    def image_shape_for(cls, params, range_shape):
        """N×N for N detector pixels (the usual reconstruction grid of a scan); with detectors spanning the
        diagonal (the LoDoPaB presets) the side n whose diagonal the N detectors cover (513 -> 362)."""
        if len(range_shape) != 2:
            return None
        N = int(range_shape[1])
        if params.detector_spacing == "diagonal" and params.geometry == "parallel" and params.detectors is None:
            n = int(round((N - 1) / math.sqrt(2)))
            if 2 * math.ceil(n / math.sqrt(2)) + 1 == N:
                return (n, n)
        return (N, N)

    @property
    def range_shape(self) -> tuple[int, int]:
        return (len(self.angles_deg), self.detector_count)

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
        """Centres of the detector pixels relative to the foot of the source's perpendicular on the detector
        (its middle without ``detector_offset``), in pixels, (detectors,)."""
        mid = (self.detector_count - 1) / 2 + self.detector_offset
        return (np.arange(self.detector_count) - mid) * self.detector_spacing

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._proj.fp(x)

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return self._proj.bp(y)


# LoDoPaB-CT's geometry as ODL's parallel_beam_geometry builds it for 362x362 on [-0.13, 0.13]^2 m: angles at
# the midpoints of 1000 cells of [0, pi) in ODL's convention, 513 detectors spanning the image diagonal
_LODOPAB = {"angles": 1000, "domain_size": 0.26, "angle_convention": "odl", "detector_spacing": "diagonal"}
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
        summary="LoDoPaB-CT (ODL geometry): 1000 angles on [0,180), 513 detectors over the diagonal, Poisson N0=4096",
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
