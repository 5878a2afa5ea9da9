"""Python API of the diffusion prior: unconditional samples at any resolution, and posterior sampling.

Example:
    >>> import numpy as np
    >>> from invsolve import api_diffusion, api_priors
    >>> imgs = np.random.default_rng(0).random((1, 32, 32), dtype=np.float32)
    >>> prior, _ = api_priors.train_prior("diffusion", imgs, params={"window": 16, "width": 8}, steps=2)
    >>> api_diffusion.sample_prior(prior, size=24, num=2, steps=3).shape
    (2, 24, 24)
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch

from .errors import ConfigError, OperatorError

__all__ = ["sample_prior", "posterior_samples", "SAMPLER_NAMES", "load_diffusion_prior", "evaluate_samples",
           "read_prior_samples"]

#: The posterior samplers of diffusion priors (``sample-posterior --sampler``).
SAMPLER_NAMES = ("diffpir", "dps", "annealed-langevin")


def load_diffusion_prior(prior_file: str, device="cpu", allow_partial: bool = False):
    """A diffusion prior file (``train-prior --prior diffusion``), refusing a patch prior by name."""
    from .priors.base import check_training, load_prior

    pr = load_prior(prior_file, device=device, allow_partial=allow_partial)
    if pr.kind != "score":
        raise OperatorError(f"{prior_file} holds a {pr.name!r} patch prior, not a diffusion prior; sample it with "
                            f"--prior {pr.name} (Langevin), or give a file from `train-prior --prior diffusion`")
    check_training(pr, prior_file)
    return pr


def sample_prior(prior, size: int | tuple[int, int] = 64, num: int = 16, *, steps: int = 200,
                 method: str = "sde", seed: int = 0, device: str = "auto", window: float | None = None,
                 track: Callable = None) -> np.ndarray:
    """Unconditional samples of a diffusion prior: (num, H, W) float32 in image units.

    Arguments:
        prior: A :class:`invsolve.priors.diffusion.DiffusionPrior` or the path of its file.
        size: Side (or (H, W)) of the samples.
        num: How many.
        steps: Reverse-time steps from t = 1 to :data:`invsolve.diffusion.sde.T_MIN`.
        method: ``sde`` (Euler–Maruyama of the reverse SDE) or ``ode`` (the probability-flow ODE).
        seed: Seeds the starting noise and every step's noise.
        device: ``auto``, ``cpu`` or ``cuda``.
        window: Pixels per training window of this grid (default: the side, i.e. the sample is one window
            at resolution ``size``; the prior's ``window`` gives native-resolution images of ``size`` pixels).

    References:
        Song et al., Score-based generative modeling through SDEs, ICLR 2021, arXiv 2011.13456.
    """
    from .device import make_generator, resolve_device
    from .diffusion.samplers.base import reverse_step
    from .diffusion.sde import colored_noise, time_grid
    from .methods.base import no_track

    dev = resolve_device(device)
    if isinstance(prior, str):
        prior = load_diffusion_prior(prior, dev)
    shape = (int(size), int(size)) if np.isscalar(size) else tuple(int(s) for s in size)
    if min(shape) < 8:
        raise ConfigError(f"size {shape} is below 8 pixels; give --size 8 or more")
    if method not in ("sde", "ode"):
        raise ConfigError(f"method {method!r} is not known (valid: sde, ode)")
    for name, v in (("num", num), ("steps", steps)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ConfigError(f"{name} must be an integer of at least 1, got {v!r}")
    prior = prior.to(dev)
    win = float(window if window is not None else max(shape))
    gen = make_generator(seed, dev)
    spec = prior.spectrum(shape, win, dev)
    ts = time_grid(int(steps)).tolist()
    z = colored_noise((int(num), *shape), spec, gen, dev)
    with torch.no_grad():
        for i in (track or no_track)(range(int(steps)), "sample prior", hint="--steps N"):
            eps = prior.eps(z, ts[i], win)
            noise = colored_noise(z.shape, spec, gen, dev) if method == "sde" else None
            z = reverse_step(prior, z, eps, ts[i], ts[i] - ts[i + 1], noise)
        z0, _ = prior.denoise(z, ts[-1], win)
    out = prior.to_image(z0).float().cpu().numpy()
    if not np.isfinite(out).all():
        raise ConfigError("the prior's samples hold NaN or infinite values: the prior file may be damaged or its "
                          "training diverged; retrain it, or raise --steps")
    return out


def posterior_samples(prior, operator, noise, y: torch.Tensor, sampler: str, params: dict[str, Any] | None,
                      num: int, generator: torch.Generator | None, track: Callable, window: float | None = None):
    """n posterior draws per measurement of y (B, *range): (B, num, H, W) in image units, and the sampler's
    validated settings.

    Arguments:
        prior: A loaded diffusion prior.
        operator: A linear image operator; noise: its noise model.
        sampler: ``diffpir``, ``dps`` or ``annealed-langevin``.
        params: The sampler's settings (``-S key=value``).
        window: Pixels per training window on this grid (default the prior's: native resolution).
    """
    from .config import validate_params
    from .diffusion.samplers import DIFFUSION_SAMPLERS, Problem, load_all
    from .operators.base import describe_domain

    load_all()
    cls = DIFFUSION_SAMPLERS.get(sampler)
    if len(operator.domain_shape) != 2 or not operator.linear:
        raise OperatorError(f"diffusion priors sample images under a linear operator, not {operator.name!r} "
                            f"({describe_domain(operator.domain_shape)}); use --sampler mcmc for parameter vectors")
    p = validate_params(cls.Params, dict(params or {}), f"parameters of sampler {sampler!r}")
    prob = Problem(prior, y, operator, noise, tuple(operator.domain_shape),
                   float(window if window is not None else prior.config.window))
    xs = cls(p).run(prob, int(num), generator, track)
    return xs, {"name": sampler, **p.model_dump(mode="json")}


def read_prior_samples(path: str) -> np.ndarray | None:
    """The /samples (N, H, W) of a ``sample-prior`` file; None when ``path`` is not one (any other input of
    ``evaluate``, an invsolve result or a plain HDF5 file among them)."""
    import h5py

    if not str(path).endswith((".h5", ".hdf5")) or not h5py.is_hdf5(path):
        return None
    from .io.hdf5 import read_result

    with h5py.File(path, "r") as f:
        if f.attrs.get("kind") != "prior_samples":
            return None
    read_result(path, data=False)  # the format checks of every invsolve file
    with h5py.File(path, "r") as f:
        return np.asarray(f["samples"], dtype=np.float32)


def _crops(images: list[np.ndarray], shape: tuple[int, int], n: int, rng: np.random.Generator) -> np.ndarray:
    """n random crops of ``shape`` from the images (whole images when they have that shape)."""
    from .errors import ShapeError

    fit = [im for im in images if im.shape[0] >= shape[0] and im.shape[1] >= shape[1]]
    if not fit:
        raise ShapeError(f"no reference image is as large as the {shape[0]}×{shape[1]} samples; give larger "
                         "reference images, or draw smaller samples (--size)")
    out = []
    for _ in range(n):
        im = fit[rng.integers(len(fit))]
        r, c = rng.integers(im.shape[0] - shape[0] + 1), rng.integers(im.shape[1] - shape[1] + 1)
        out.append(im[r:r + shape[0], c:c + shape[1]])
    return np.stack(out).astype(np.float32)


def evaluate_samples(samples: np.ndarray, reference: list[np.ndarray], train: list[np.ndarray] | None = None, *,
                     crops: int | None = None, seed: int = 0) -> dict[str, Any]:
    """Energy distance to held-out images, Vendi score, and (with ``train``) the transport novelty distance.

    Arguments:
        samples: Generated images (N, H, W).
        reference: Held-out images; ``crops`` random H×W crops of them (default N) are the reference set.
        train: The training images; as many H×W crops of them as samples are the training set of TNovD.
        seed: Seeds the crops and the slicing directions.

    Returns:
        {"energy_distance", "vendi", "reference_crops"[, "tnovd", "tnovd_quality", "tnovd_memorization",
        "tnovd_tau", "tnovd_m", "features"]}.
    """
    from .metrics_generative import FEATURES, energy_distance, transport_novelty, vendi_score

    rng = np.random.default_rng(seed)
    n, shape = len(samples), tuple(samples.shape[1:])
    ref = _crops(list(reference), shape, int(crops or n), rng)
    out: dict[str, Any] = {"energy_distance": energy_distance(samples, ref, seed=seed), "vendi": vendi_score(samples),
                           "reference_crops": len(ref)}
    if train is not None:
        tn = transport_novelty(_crops(list(train), shape, max(n, 2), rng), samples, seed=seed)
        out.update({f"tnovd_{k}" if k != "tnovd" else k: v for k, v in tn.items()}, features=FEATURES)
    return out
