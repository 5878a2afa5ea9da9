"""EPLL prior: a full-covariance Gaussian mixture on patches, fitted by EM in torch.

    p(x) = Σ_k w_k N(x; μ_k, Σ_k),   nll(x) = −log p(x) − (d/2)·log 2π

(the same constant is left out as for the patch flow, so their NLLs compare).
The MAP regulariser is the mean NLL minimised directly (as in the review of
patch regularisers), not EPLL's half-quadratic splitting.

EM: k-means++ (or random) centres → hard assignment → alternating E steps
(log-sum-exp responsibilities) and M steps with Σ_k + eps·I, until the mean
log-likelihood per patch changes by less than ``tol`` or ``max_iter`` is reached.

References:
    Zoran and Weiss, From learning models of natural image patches to whole
    image restoration, ICCV 2011; the review of patch regularisers, arXiv 2312.16611.
"""

from __future__ import annotations

import math
from typing import Literal, NamedTuple

import torch
from pydantic import Field

from ..config import Params
from ..errors import ConfigError
from ..methods.base import no_track
from .base import PRIORS, PatchPrior, PriorConfig
from .patches import random_patches

__all__ = ["EPLL", "EPLLConfig", "EPLLTraining", "fit_gmm"]

#: Elements of one (patches × K·d) block.  2**20 (8 MB in float64) keeps every
#: block below glibc's largest mmap threshold (32 MB), so blocks are reused from
#: the heap; 2**23 blocks were mapped and zero-filled afresh on each call, and an
#: EM iteration on 20,000 patches (K = 200) took 2.56x as long
#: (``benchmarks/patch_priors.py epll-speed``).
CHUNK = 2 ** 20


class EPLLConfig(PriorConfig):
    n_components: int = Field(200, ge=1, description="mixture components K")
    reg_covar: float = Field(1e-6, ge=0, description="eps added to every covariance diagonal")


class EPLLTraining(Params):
    max_iter: int = Field(1000, ge=1, description="EM iterations at most (--steps overrides)")
    tol: float = Field(1e-4, ge=0, description="stop when the mean log-likelihood per patch changes less")
    n_patches: int = Field(20000, ge=1, description="random training patches used by EM")
    init: Literal["kmeans++", "random"] = Field("kmeans++", description="initial centres")


class Factors(NamedTuple):
    """Precomputed mixture factors, W_k = L_k⁻¹ with Σ_k = L_k L_kᵀ, all after centring by ``center``."""

    center: torch.Tensor  # (d,)
    wcat: torch.Tensor  # (d, K·d): x @ wcat gives every x W_kᵀ side by side
    bias: torch.Tensor  # (K·d,): the blocks (μ_k − c) W_kᵀ
    wstack: torch.Tensor  # (K·d, d): the W_k stacked, for the gradient Σ_k γ_k W_kᵀ z_k
    half_logdet: torch.Tensor  # (K,): Σ log diag L_k = ½ log det Σ_k
    log_w: torch.Tensor  # (K,)


def factors(weights: torch.Tensor, means: torch.Tensor, cov: torch.Tensor) -> Factors:
    """Cholesky-based factors of a mixture: weights (K,), means (K, d), covariances (K, d, d)."""
    k, d = means.shape
    chol = torch.linalg.cholesky(cov)
    eye = torch.eye(d, dtype=cov.dtype, device=cov.device).expand_as(cov)
    w = torch.linalg.solve_triangular(chol, eye, upper=False)  # (K, d, d)
    center = (weights[:, None] * means).sum(0) / weights.sum()
    wt = w.transpose(1, 2)
    bias = torch.einsum("kd,kde->ke", means - center, wt).reshape(k * d)
    half_logdet = torch.log(torch.diagonal(chol, dim1=-2, dim2=-1)).sum(-1)
    return Factors(center, wt.permute(1, 0, 2).reshape(d, k * d), bias, w.reshape(k * d, d), half_logdet,
                   torch.log(weights))


def _rows(n: int, kd: int):
    step = max(1, CHUNK // max(1, kd))
    return [slice(i, min(i + step, n)) for i in range(0, n, step)]


def _z(x: torch.Tensor, f: Factors) -> torch.Tensor:
    """W_k (x_i − μ_k) for a block of rows: (r, d) -> (r, K, d), one matrix product."""
    return ((x - f.center) @ f.wcat - f.bias).view(x.shape[0], -1, x.shape[1])


def log_components(x: torch.Tensor, f: Factors) -> torch.Tensor:
    """log w_k + log N(x_i; μ_k, Σ_k) + (d/2)·log 2π: x (n, d) -> (n, K)."""
    out = x.new_empty((x.shape[0], f.half_logdet.shape[0]))
    for sl in _rows(x.shape[0], f.bias.shape[0]):
        out[sl] = -0.5 * _z(x[sl], f).pow(2).sum(-1) - f.half_logdet + f.log_w
    return out


class _MixtureNLL(torch.autograd.Function):
    """−log p(x) with the gradient Σ_k γ_k Σ_k⁻¹(x − μ_k), computed in row blocks (first order only)."""

    @staticmethod
    def forward(ctx, x, f):
        nll, grad = x.new_empty(x.shape[0]), torch.empty_like(x)
        for sl in _rows(x.shape[0], f.bias.shape[0]):
            z = _z(x[sl], f)  # (r, K, d)
            lp = -0.5 * z.pow(2).sum(-1) - f.half_logdet + f.log_w
            lse = torch.logsumexp(lp, 1)
            gamma = torch.exp(lp - lse[:, None])
            grad[sl] = (z * gamma[..., None]).reshape(z.shape[0], -1) @ f.wstack  # Σ_k γ_k W_kᵀ z_k
            nll[sl] = -lse
        ctx.save_for_backward(grad)
        return nll

    @staticmethod
    def backward(ctx, g):
        (grad,) = ctx.saved_tensors
        return g[:, None] * grad, None


@PRIORS.register("epll")
class EPLL(PatchPrior):
    """Gaussian mixture patch prior (EPLL).  ``nll``: (n, p²) -> (n,).

    Buffers: ``weights`` (K,), ``means`` (K, d), ``covariances`` (K, d, d).
    """

    name = "epll"
    Config = EPLLConfig
    Training = EPLLTraining

    def __init__(self, config: EPLLConfig | None = None):
        super().__init__(config)
        k, d = self.config.n_components, self.dim
        self.register_buffer("weights", torch.full((k,), 1.0 / k))
        self.register_buffer("means", torch.zeros(k, d))
        self.register_buffer("covariances", torch.eye(d).repeat(k, 1, 1))
        self.after_load()

    def after_load(self) -> None:
        """Drop the cached factors (recomputed from the buffers, in float64, on first use)."""
        self._cache: dict = {}

    def factors(self, like: torch.Tensor) -> Factors:
        """The mixture's :class:`Factors` on the device and in the dtype of ``like``."""
        key = (like.device, like.dtype, self.means.device)
        if key not in self._cache:
            f = factors(self.weights.double(), self.means.double(), self.covariances.double())
            self._cache = {key: Factors(*(t.to(like.device, like.dtype) for t in f))}
        return self._cache[key]

    def nll(self, patches: torch.Tensor) -> torch.Tensor:
        """−log p_GMM(x) − (d/2)·log 2π, (n, d) -> (n,); differentiable in the patches."""
        self.check_patches(patches)
        f = self.factors(patches)
        if torch.is_grad_enabled() and patches.requires_grad:
            return _MixtureNLL.apply(patches, f)
        with torch.no_grad():
            return -torch.logsumexp(log_components(patches, f), 1)

    def log_components(self, patches: torch.Tensor) -> torch.Tensor:
        """log w_k + log N(x; μ_k, Σ_k) + (d/2)·log 2π: (n, d) -> (n, K)."""
        return log_components(patches, self.factors(patches))

    @classmethod
    def fit(cls, images, val, config, training, steps=None, seed=0, track=no_track, callback=None):
        """Draw ``n_patches`` training patches and run EM; returns (prior, history)."""
        p = config.patch_size
        dev = images.device if isinstance(images, torch.Tensor) else images[0].device
        gen = torch.Generator(device=dev).manual_seed(seed)
        x = random_patches(images, p, training.n_patches, gen)
        max_iter = training.max_iter if steps is None else int(steps)
        k = config.n_components
        if k > x.shape[0]:
            raise ConfigError(f"EPLL cannot fit {k} components to {x.shape[0]} training patches; use fewer "
                              f"components (-P n_components={max(1, x.shape[0] // 10)}) or more/larger images")
        try:
            w, mu, cov, hist = fit_gmm(x, k, max_iter, training.tol, config.reg_covar, training.init, gen,
                                       track, callback)
        except torch.linalg.LinAlgError:
            raise ConfigError("EPLL fit failed: a covariance is not positive definite; use fewer components "
                              f"(-P n_components=..., now {k}), a larger -P reg_covar or more images") from None
        prior = cls(config).to(dev)
        prior.weights.copy_(w), prior.means.copy_(mu), prior.covariances.copy_(cov)
        prior.after_load()
        if val is not None:
            with torch.no_grad():
                v = prior.nll(random_patches(val, p, training.n_patches, gen)).mean().item()
            hist["val"].append([hist["steps"], v])
            if callback is not None:
                callback({"step": hist["steps"], "val_nll": v})
        return prior.freeze(), hist


def _init_centres(x: torch.Tensor, k: int, how: str, gen: torch.Generator) -> torch.Tensor:
    """k-means++ (D² sampling on up to 20,000 patches) or k random patches as centres: (k, d)."""
    n = x.shape[0]
    if how == "random" or k == 1:
        return x[torch.randperm(n, generator=gen, device=gen.device)[:k].to(x.device)]
    sub = x[torch.randperm(n, generator=gen, device=gen.device)[:20000].to(x.device)]
    centres = [sub[int(torch.randint(len(sub), (1,), generator=gen, device=gen.device))]]
    d2 = (sub - centres[0]).pow(2).sum(1)
    for _ in range(1, k):
        prob = d2 / d2.sum() if d2.sum() > 0 else torch.full_like(d2, 1.0 / len(d2))
        j = int(torch.multinomial(prob.to(gen.device), 1, generator=gen))
        centres.append(sub[j])
        d2 = torch.minimum(d2, (sub - sub[j]).pow(2).sum(1))
    return torch.stack(centres)


def fit_gmm(x, k, max_iter=100, tol=1e-4, reg_covar=1e-6, init="kmeans++", generator=None,
            track=no_track, callback=None):
    """EM for a full-covariance Gaussian mixture, in float64.

    Arguments:
        x: Data, (n, d).
        k: Components.
        max_iter, tol: EM stops after ``max_iter`` iterations or when the mean
            log-likelihood per sample changes by less than ``tol``.
        reg_covar: eps added to each covariance diagonal.
        init: ``kmeans++`` or ``random`` centres (then a hard assignment).
        generator: Random source of the initialisation.

    Returns:
        (weights (k,), means (k, d), covariances (k, d, d), history) in x's dtype;
        history {"train": [[iter, nll]], "val": [], "steps", "converged"}.
    """
    gen = generator if generator is not None else torch.Generator(device=x.device).manual_seed(0)
    xd = x.detach().double()
    n, d = xd.shape
    eye = torch.eye(d, dtype=xd.dtype, device=xd.device)
    center = xd.mean(0)
    centres = _init_centres(xd, k, init, gen)
    resp = torch.zeros(n, k, dtype=xd.dtype, device=xd.device)
    resp[torch.arange(n), torch.cdist(xd, centres).argmin(1)] = 1.0
    hist = {"train": [], "val": [], "steps": 0, "converged": False}
    prev = -math.inf
    for it in track(range(1, max_iter + 1), "fit epll (EM)", hint="--steps N (EM iterations)"):
        nk = resp.sum(0) + 10 * torch.finfo(xd.dtype).eps  # M step
        w, mu = nk / n, (resp.T @ xd) / nk[:, None]
        second = xd.new_zeros(k, d * d)  # Σ_i r_ik (x_i − c)(x_i − c)ᵀ, one product per row block
        for sl in _rows(n, d * d):
            xc = xd[sl] - center
            second += resp[sl].T @ (xc[:, :, None] * xc[:, None, :]).reshape(-1, d * d)
        mc = mu - center
        cov = second.view(k, d, d) / nk[:, None, None] - mc[:, :, None] * mc[:, None, :]
        cov = 0.5 * (cov + cov.transpose(1, 2)) + reg_covar * eye
        lp = log_components(xd, factors(w, mu, cov))  # E step
        lse = torch.logsumexp(lp, 1)
        resp = torch.exp(lp - lse[:, None])
        ll = lse.mean().item()
        hist["train"].append([it, -ll])
        hist["steps"] = it
        if callback is not None:
            callback({"step": it, "train_nll": -ll})
        if abs(ll - prev) < tol:
            hist["converged"] = True
            break
        prev = ll
    dt = x.dtype
    return w.to(dt), mu.to(dt), cov.to(dt), hist
