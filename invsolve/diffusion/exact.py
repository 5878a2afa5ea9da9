"""A Gaussian image distribution with its exact diffusion score: the known answer for the samplers.

For x₀ ~ N(μ, C) (model units, flattened d = H·W) and the forward process z_t = m x₀ + σ η, η ~ N(0, Q),

    E[η | z_t] = σ Q (m² C + σ² Q)⁻¹ (z_t − m μ),

which is what a perfectly trained noise-prediction network returns.  :class:`GaussianScore` has the methods
of :class:`invsolve.priors.diffusion.DiffusionPrior` that the samplers use, so a sampler run with it can be
checked against the closed-form posterior of a linear-Gaussian problem (:func:`gaussian_posterior`).
"""

from __future__ import annotations

import torch

from .sde import apply_covariance, marginal, spectrum

__all__ = ["GaussianScore", "gaussian_posterior"]


class GaussianScore:
    """The exact score of N(μ, C) on an (H, W) grid (float64).

    Arguments:
        mean: μ (H, W), model units.
        cov: C (d, d), d = H·W.
        noise, smoothness, length, window: the forward noise Q as in :class:`DiffusionConfig`.
        beta_min, beta_max: the VP schedule.
    """

    def __init__(self, mean, cov, noise="white", smoothness=1.1, length=0.354, window=None, beta_min=0.1,
                 beta_max=20.0):
        self.mu = torch.as_tensor(mean, dtype=torch.float64)
        self.shape = tuple(self.mu.shape)
        self.C = torch.as_tensor(cov, dtype=torch.float64)
        self.noise, self.smoothness, self.length = noise, smoothness, length
        self.window = window or self.shape[0]
        self.beta_min, self.beta_max = beta_min, beta_max
        d = self.mu.numel()
        eye = torch.eye(d, dtype=torch.float64).reshape(d, *self.shape)
        spec = self.spectrum(self.shape, self.window)
        self.Q = apply_covariance(eye, spec).reshape(d, d)  # Q as a matrix on the pixels

    def spectrum(self, shape, window, device=None):
        return spectrum(tuple(shape), self.noise, self.smoothness, self.length, max(shape) / window, device)

    def marginal(self, t):
        return marginal(torch.as_tensor(t, dtype=torch.float64), self.beta_min, self.beta_max)

    def beta(self, t):
        return self.beta_min + torch.as_tensor(t, dtype=torch.float64) * (self.beta_max - self.beta_min)

    def eps(self, z, t, window=None):
        m, s = (float(v) for v in self.marginal(t))
        r = (z.double().flatten(1) - m * self.mu.flatten()).T  # (d, B)
        e = s * self.Q @ torch.linalg.solve(m * m * self.C + s * s * self.Q, r)
        return e.T.reshape(z.shape).to(z.dtype)

    def denoise(self, z, t, window=None):
        e = self.eps(z, t, window)
        m, s = (float(v) for v in self.marginal(t))
        return (z - s * e) / m, e

    to_model = staticmethod(lambda x: 2 * x - 1)
    to_image = staticmethod(lambda z: (z + 1) / 2)


def gaussian_posterior(mu_x, cov_x, A, y, noise_var):
    """Mean and covariance of x | y for x ~ N(mu_x, cov_x), y = A x + N(0, noise_var I); flat float64."""
    P = torch.linalg.inv(cov_x) + A.T @ A / noise_var
    cov = torch.linalg.inv(P)
    mean = cov @ (torch.linalg.solve(cov_x, mu_x) + A.T @ y / noise_var)
    return mean, cov
