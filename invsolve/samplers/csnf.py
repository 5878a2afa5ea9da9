"""Conditional stochastic normalizing flow (``csnf``) for parameter vectors: conditional coupling blocks
interleaved with Metropolis–Hastings or MALA layers whose targets anneal from the latent law to the posterior.

Sampling (z -> x, in working coordinates w = (x − μ_x)/σ_x): z ~ N(0, I); then for k = 1 … K, the coupling
blocks of layer k, then ``mcmc_steps`` Markov steps that leave

    p_k(w | y) ∝ exp(−U_k(w)),   U_k(w) = λ_k U(w; y) + (1 − λ_k) ½‖w‖²,   λ_k = k / K,

invariant, where U(w; y) = −log p(x(w)) + NLL(y | A x(w)) is the posterior energy of the training prior p
and the noise model.  A prior on a box (uniform) is handled by working in logit coordinates,
x = low + (high − low)·sigmoid(u), w = standardised u, with the log-Jacobian in U: every draw lies in the
box, and no Markov layer meets a forward model's extrapolation outside it (the scatterometry surrogate has
spurious low-energy basins there, behind barriers that local moves do not cross; soft walls as in the
reference code leave draws stranded in them).  The last layer targets the posterior itself, so its Markov steps move draws between
and within modes that the deterministic blocks alone would smear or misweight; ``final_steps`` more steps at
λ = 1 finish the sampling (the trained path is unchanged, and the posterior stays invariant).

Training is by forward KL on simulated pairs: the flow is run backwards (x -> z); a Markov layer, being
reversible for its target, is its own backward kernel and adds U_k(out) − U_k(in) to the log-determinant;
the loss is the mean of ½‖z‖² − log-determinant per entry.  The Markov steps are differentiable in their
input (MH: the proposal or the input itself; MALA: through the gradient of U as well), so the blocks learn
through them.

Why not a library: zuko's flows have no stochastic layers, and no maintained package provides conditional
SNFs; the couplings are those of :mod:`.cflow`.

References:
    Hagemann, Hertrich, Steidl, Stochastic normalizing flows for inverse problems: a Markov chains
    viewpoint, SIAM/ASA JUQ 10(3) (2022), arXiv 2109.11375; Wu, Köhler, Noé, Stochastic normalizing
    flows, NeurIPS 2020, arXiv 2002.06707.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from ..config import Params
from ..errors import ConfigError
from ..mcmc import metropolis_accept
from .base import SAMPLERS, Sampler
from .cflow import _Coupling
from .networks import MLP

__all__ = ["CSNFConfig", "ConditionalSNF"]


class CSNFConfig(Params):
    layers: int = Field(4, ge=1, description="K: units of [coupling blocks, Markov steps]; λ_k = k / K")
    blocks: int = Field(2, ge=1, description="coupling blocks per unit")
    hidden: int = Field(128, ge=8, description="subnet width")
    depth: int = Field(2, ge=1, description="hidden layers per subnet")
    cond_features: int = Field(64, ge=1, description="size of the learned condition embedding")
    clamp: float = Field(2.0, gt=0, description="soft clamp c of the log-scales")
    kernel: Literal["mh", "mala"] = Field("mh", description="Markov layers: Metropolis–Hastings (Gaussian random "
                                          "walk) or Metropolis-adjusted Langevin")
    mcmc_steps: int = Field(10, ge=1, description="Markov steps per unit")
    step_size: float = Field(0.3, gt=0, description="MH proposal std, or MALA step h, in standardised units")
    final_steps: int = Field(40, ge=0, description="sampling only: further Markov steps at λ = 1 after the last "
                             "unit (they leave the posterior invariant; -S final_steps= at sampling)")


@SAMPLERS.register("csnf")
class ConditionalSNF(Sampler):
    """Conditional stochastic normalizing flow x = T(z; y) with annealed Markov layers (vector problems).

    Shapes: c (R, m) standardised measurements; samples (R, d) in working coordinates.
    The posterior energy needs the training prior: it is the vector prior the sampler was trained with.
    """

    name = "csnf"
    sampling_settings = ("final_steps", "step_size")
    Config = CSNFConfig
    vprior = None  # the training prior (a VectorPrior), set by ``train`` and ``from_checkpoint``

    def build_model(self) -> nn.Module:
        c = self.config
        if not self.vector:
            raise ConfigError("csnf is for vector problems (linear, surrogate, gixrf); use cflow or cfm for images")
        d, m = self.operator.domain_shape[0], self.operator.range_shape[0]
        if d < 2:
            raise ConfigError("csnf needs at least 2 parameters (its couplings split the vector); use cfm for 1-D")
        mods = nn.ModuleDict({"cond": MLP(m, c.cond_features, c.hidden, 1)})
        mods["units"] = nn.ModuleList(
            nn.ModuleList(_Coupling(d, lambda a, b: MLP(a + c.cond_features, 2 * b, c.hidden, c.depth,
                                                        zero_last=True), 10 * k + j, c.clamp)
                          for j in range(c.blocks)) for k in range(c.layers))
        return mods

    # -- coordinates: logit coordinates for a box prior ---------------------------------------------------------
    def _box(self):
        box = None if self.vprior is None else self.vprior.box()
        return None if box is None else tuple(t.to(self.device, torch.float32) for t in box)

    def _to_u(self, x: torch.Tensor) -> torch.Tensor:
        box = self._box()
        if box is None:
            return x
        p = ((x - box[0]) / (box[1] - box[0])).clamp(1e-6, 1 - 1e-6)
        return torch.log(p) - torch.log1p(-p)

    def _from_u(self, u: torch.Tensor) -> torch.Tensor:
        box = self._box()
        return u if box is None else box[0] + (box[1] - box[0]) * torch.sigmoid(u)

    def _log_jac(self, u: torch.Tensor) -> torch.Tensor:
        """log|det ∂x/∂u| (R,): 0 without a box."""
        box = self._box()
        if box is None:
            return torch.zeros(len(u), device=u.device)
        return (torch.log(box[1] - box[0]) + F.logsigmoid(u) + F.logsigmoid(-u)).sum(1)

    def to_work(self, x, x0):
        return self.net["xstd"](self._to_u(x))

    def from_work(self, w, x0):
        return self._from_u(self.net["xstd"].inverse(w))

    @torch.no_grad()
    def fit_stats(self, x, y):
        self.net["cstd"].fit(y, per_entry=True)
        self.net["xstd"].fit(self._to_u(x), per_entry=True)

    # -- the annealed energies ------------------------------------------------------------------------------
    def _y(self, c: torch.Tensor) -> torch.Tensor:
        return self.net["cstd"].inverse(c)

    def energy(self, w: torch.Tensor, y: torch.Tensor, lam: float) -> torch.Tensor:
        """U_k(w) (R,) for working-space w (R, d), raw measurements y (R, m) and λ = ``lam``."""
        if self.vprior is None:
            raise ConfigError("this csnf sampler has no training prior recorded; retrain it with "
                              "`invsolve train-sampler --sampler csnf --prior ...`")
        latent = 0.5 * (w.float() ** 2).sum(1)
        if lam == 0:
            return latent
        u = self.net["xstd"].inverse(w.float())
        x, box = self._from_u(u), self._box()
        lp = self.vprior.log_prob(x if box is None else x.clamp(*box))
        energy = -lp - self._log_jac(u) + self.noise.nll(y, self.operator(x))
        return lam * energy + (1 - lam) * latent

    def _grad(self, w, y, lam, create_graph: bool):
        with torch.enable_grad():
            wg = w if w.requires_grad else w.detach().requires_grad_(True)
            u = self.energy(wg, y, lam)
            g = torch.autograd.grad(u.sum(), wg, create_graph=create_graph)[0]
        return u, g

    def markov(self, w: torch.Tensor, y: torch.Tensor, lam: float, generator: torch.Generator,
               train: bool = False, steps: int | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``steps`` (default ``mcmc_steps``) steps leaving p_k invariant: w (R, d) -> (w_out, U_k(w), U_k(w_out))."""
        c = self.config
        h, steps = c.step_size, c.mcmc_steps if steps is None else steps
        if c.kernel == "mh":
            u = u0 = self.energy(w, y, lam)
            for _ in range(steps):
                prop = w + h * torch.randn(w.shape, generator=generator, device=w.device)
                up = self.energy(prop, y, lam)
                acc = metropolis_accept(u - up, generator)
                w = torch.where(acc[:, None], prop, w)
                u = torch.where(acc, up, u)
            return w, u0, u
        u, g = self._grad(w, y, lam, train)
        u0 = u
        for _ in range(steps):
            xi = torch.randn(w.shape, generator=generator, device=w.device)
            prop = w - h * g + (2 * h) ** 0.5 * xi
            up, gp = self._grad(prop, y, lam, train)
            back = w - prop + h * gp  # the reverse move's noise, times sqrt(2h)
            log_q = (-(back**2).sum(1) / (4 * h)) + (xi**2).sum(1) / 2  # log q(w | w') − log q(w' | w)
            acc = metropolis_accept(u - (up - log_q), generator)
            w = torch.where(acc[:, None], prop, w)
            u, g = torch.where(acc, up, u), torch.where(acc[:, None], gp, g)
        return w, u0, u

    # -- training and sampling ------------------------------------------------------------------------------
    def loss(self, xw, c, generator, part=None):
        m, K = self.net["model"], self.config.layers
        y, h = self._y(c), m["cond"](c)
        w, logdet = xw, torch.zeros(len(xw), device=xw.device)
        for k in range(K, 0, -1):
            w, u_in, u_out = self.markov(w, y, k / K, generator, train=True)
            logdet = logdet + (u_out - u_in)
            for b in m["units"][k - 1]:
                w, ld = b(w, h)
                logdet = logdet + ld
        return ((0.5 * (w**2).sum(1) - logdet) / w.shape[1]).mean()

    def _forward(self, c, generator, weights: bool):
        """The sampling path z -> w for conditions c (R, m): w (R, d) and, with ``weights``, the log proposal
        weight log q (R,) of the path in working coordinates: log p_Z(z) − Σ log|det ∂w_out/∂w_in| of the
        blocks − Σ (U_k(out) − U_k(in)) of the Markov layers (Wu et al., eq. 9; the Markov layers' backward
        kernel is themselves)."""
        m, K = self.net["model"], self.config.layers
        y, h = self._y(c), m["cond"](c)
        w = torch.randn((len(c), self.operator.domain_shape[0]), generator=generator, device=c.device)
        log_q = -0.5 * (w**2).sum(1) - 0.5 * w.shape[1] * math.log(2 * math.pi) if weights else None
        for k in range(1, K + 1):
            for b in reversed(m["units"][k - 1]):
                w = b.inverse(w, h)
                if weights:  # the block maps w_out -> w_in with log|det| ld; its inverse divides the density
                    log_q = log_q + b(w, h)[1]
            steps = self.config.mcmc_steps + (self.config.final_steps if k == K else 0)
            w, u_in, u_out = self.markov(w, y, k / K, generator, steps=steps)
            w = w.detach()
            if weights:
                log_q = log_q - (u_out - u_in).detach()
        return w, log_q

    def sample_work(self, c, generator):
        return self._forward(c, generator, False)[0]

    exact_weights = True

    @torch.no_grad()
    def proposals(self, y: torch.Tensor, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """n draws per measurement y (B, m) with their log proposal weights: (B, n, d), (B·n,) in the units of
        x, so that log p(x, y) − log q is an importance weight whose mean is p(y) (path importance sampling)."""
        self.net.eval()
        y = y.to(self.device, torch.float32)
        c = self.condition(y, None).repeat_interleave(n, 0)
        ws, lqs = [], []
        for cc in torch.split(c, self.chunk_rows):
            w, lq = self._forward(cc, generator, True)
            ws.append(w)
            lqs.append(lq)
        w = torch.cat(ws)
        u = self.net["xstd"].inverse(w)  # log q of x: less the standardiser's and the box map's log-Jacobians
        log_q = torch.cat(lqs) - torch.log(self.net["xstd"].scale).sum() - self._log_jac(u)
        return self.from_work(w, None).reshape(len(y), n, -1), log_q

    @classmethod
    def train(cls, sampler, source, settings, output, resume=None, progress=None, provenance=None, dist=None):
        prior = source.prior
        if prior is None:
            raise ConfigError("csnf trains on vector problems with a prior: give --prior and --dim")
        sampler.vprior = prior
        return super().train(sampler, source, settings, output, resume=resume, progress=progress,
                             provenance=provenance, dist=dist)

    @classmethod
    def from_checkpoint(cls, ckpt, device):
        from .priors import build_prior

        inst = super().from_checkpoint(ckpt, device)
        src = (inst.training_state or {}).get("source") or {}
        inst.vprior = build_prior(src["prior"]) if src.get("kind") == "prior" else None
        return inst
