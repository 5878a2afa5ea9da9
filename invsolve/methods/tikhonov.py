"""Tikhonov regularisation solved by conjugate gradients."""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field

from ..config import Params
from ..functional.regularizers import finite_differences, finite_differences_adjoint
from ..errors import OperatorError
from .base import METHODS, Method, no_track


class TikhonovParams(Params):
    alpha: float = Field(1e-2, ge=0, description="weight, relative to the squared operator norm")
    reg: Literal["auto", "identity", "gradient"] = Field(
        "auto", description="L in alpha*|L x|^2; auto: gradient for images, identity for parameter vectors")
    iterations: int = Field(100, ge=1, description="maximum CG iterations")
    tol: float = Field(1e-6, gt=0, description="relative residual at which CG stops")


def conjugate_gradient(apply, b: torch.Tensor, x0: torch.Tensor, iterations: int, tol: float, track=no_track):
    """Batched CG for a symmetric positive definite ``apply``; (B, ...) tensors, per-item step sizes."""
    dims = tuple(range(1, b.dim()))
    x = x0.clone()
    r = b - apply(x)
    p = r.clone()
    rs = (r * r).sum(dims, keepdim=True)
    bnorm = (b * b).sum(dims, keepdim=True).sqrt().clamp_min(1e-30)
    for _ in track(range(iterations), "cg", hint="-M iterations=N or -M tol=…"):
        track.note(residual=(rs.sqrt() / bnorm).max())
        if bool((rs.sqrt() <= tol * bnorm).all()):
            break
        Ap = apply(p)
        alpha = rs / (p * Ap).sum(dims, keepdim=True).clamp_min(1e-30)
        x = x + alpha * p
        r = r - alpha * Ap
        rs_new = (r * r).sum(dims, keepdim=True)
        p = r + (rs_new / rs.clamp_min(1e-30)) * p
        rs = rs_new
    return x


@METHODS.register("tikhonov")
class Tikhonov(Method):
    """x = argmin |A x - y|^2 + alpha ||A||^2 |L x|^2, by conjugate gradients on the
    normal equations (A^T A + alpha ||A||^2 L^T L) x = A^T y.  Uses the least-squares
    data term whatever the noise model.  (B, *range) -> (B, *domain): images (B, H, W) or vectors (B, d).

    References:
        Hestenes & Stiefel, Methods of conjugate gradients for solving linear
        systems, J. Res. NBS 49 (1952).
    """

    Params = TikhonovParams
    name = "tikhonov"
    linear_only = True

    @staticmethod
    def regularizer(operator, reg: str) -> str:
        """The L of ``reg`` for ``operator``: ``auto`` is the gradient on images, the identity on vectors."""
        if reg == "auto":
            return "gradient" if len(operator.domain_shape) == 2 else "identity"
        return reg

    def check(self, operator) -> None:
        from ..operators.base import describe_domain

        super().check(operator)
        if self.regularizer(operator, self.params.reg) == "gradient" and len(operator.domain_shape) != 2:
            raise OperatorError(f"tikhonov reg=gradient needs an image, but {operator.name!r} has "
                                f"{describe_domain(operator.domain_shape)}; use -M reg=identity (or reg=auto)")

    def run(self, y, operator, noise, *, generator=None, track=no_track, info=None):
        p = self.params
        with torch.no_grad():
            a = p.alpha * operator.norm_squared(y.dtype, y.device)
            if self.regularizer(operator, p.reg) == "identity":
                def apply(x):
                    return operator.adjoint(operator(x)) + a * x
            else:
                def apply(x):
                    return operator.adjoint(operator(x)) + a * finite_differences_adjoint(finite_differences(x))
            b = operator.adjoint(y)
            return conjugate_gradient(apply, b, torch.zeros_like(b), p.iterations, p.tol, track)
