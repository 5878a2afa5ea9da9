"""Classical reconstruction methods: fbp, tv, bicubic, tikhonov."""

from .base import METHODS, Method, Track, build_method, compatible_methods, load_all, no_track

__all__ = ["METHODS", "Method", "Track", "build_method", "load_all", "no_track", "compatible_methods", "initial_guess"]


def initial_guess(y, operator, noise):
    """The classical starting point for iterative methods: FBP for CT, bicubic
    for superresolution, the adjoint applied to y otherwise (the observation
    itself for inpainting and blur).  Shapes: (B, *range) -> (B, H, W)."""
    load_all()
    kind = operator.kind
    if kind == "ct":
        return METHODS.get("fbp")(METHODS.get("fbp").Params()).run(y, operator, noise)
    if kind == "superres":
        return METHODS.get("bicubic")(METHODS.get("bicubic").Params()).run(y, operator, noise)
    if not operator.linear:
        from ..errors import OperatorError

        raise OperatorError(f"operator {operator.name!r} is nonlinear: it has no adjoint to start from")
    return operator.adjoint(y)
