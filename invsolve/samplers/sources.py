"""Training pairs (x, y = noise(A x)) simulated on the fly: random crops of an
image set or draws from a vector prior.  Every draw takes a torch.Generator,
so a seed fixes the whole training stream.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..errors import ConfigError
from ..io.images import IMAGE_SUFFIXES, expand_image_spec  # noqa: F401  (IMAGE_SUFFIXES re-exported)

__all__ = ["ImageSource", "PriorSource", "image_specs", "read_image_set", "IMAGE_SUFFIXES"]


def image_specs(specs: Any) -> list[str]:
    """``specs`` (one path or a list of them) as a list of str; ConfigError for anything else (e.g. arrays)."""
    from ..io.images import spec_list

    return spec_list(specs, "images", "save an (N, H, W) array with numpy.save and pass the .npy path")


def read_image_set(specs: list[str] | str) -> tuple[list[np.ndarray], list[str]]:
    """Images (H, W) float32 from files, globs, folders or ``FILE.h5:/stack``; and the file list."""
    from ..io.images import read_images

    specs = image_specs(specs)
    if not specs:
        raise ConfigError("no training images: give --images FILES|GLOB|FOLDER|FILE.h5:/stack")
    images, files = [], []
    for spec in specs:
        for f in expand_image_spec(spec):
            stack, _ = read_images(f)
            images.extend(np.ascontiguousarray(s) for s in stack)
            files.append(f)
    return images, files


class ImageSource:
    """Random crops (with random flips and 90° turns) of an image set.

    Arguments:
        images: List of (H, W) float32 arrays.
        crop: Side of the square crops; the operator acts on (crop, crop).
        operator, noise: The measurement model.
        augment: Random flips and rotations by multiples of 90°.
        files: The source names, for provenance.
    """

    #: image sources have no vector prior (the prior of a :class:`PriorSource` is its ``prior``)
    prior = None

    def __init__(self, images, crop: int, operator, noise, augment: bool = True, files=None):
        if isinstance(crop, bool) or not isinstance(crop, (int, np.integer)) or crop < 4:
            raise ConfigError(f"--crop must be an integer of at least 4, got {crop!r}; e.g. --crop 64")
        small = [im.shape for im in images if min(im.shape) < crop]
        if small:
            raise ConfigError(f"--crop {crop} is larger than an image of shape {small[0]}; use a smaller crop")
        self.crop, self.operator, self.noise, self.augment = int(crop), operator, noise, augment
        self.images = [torch.from_numpy(np.asarray(im, dtype=np.float32)) for im in images]
        self.files = list(files or [])

    def draw(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """x (n, crop, crop), y (n, *range) on the operator's device."""
        g, c = generator, self.crop
        dev = g.device
        idx = torch.randint(len(self.images), (n,), generator=g, device=dev).tolist()
        out = []
        for i in idx:
            im = self.images[i]
            r = int(torch.randint(im.shape[0] - c + 1, (1,), generator=g, device=dev))
            s = int(torch.randint(im.shape[1] - c + 1, (1,), generator=g, device=dev))
            p = im[r: r + c, s: s + c]
            if self.augment:
                k, flip = torch.randint(8, (1,), generator=g, device=dev).item() % 4, bool(
                    torch.randint(2, (1,), generator=g, device=dev))
                p = torch.rot90(p, k, (0, 1))
                p = p.flip(1) if flip else p
            out.append(p)
        x = torch.stack(out).to(dev)
        with torch.no_grad():
            y = self.noise.sample(self.operator(x), generator=g)
        return x, y

    def spec(self) -> dict[str, Any]:
        return {"kind": "images", "crop": self.crop, "augment": self.augment, "count": len(self.images),
                "files": self.files[:1000]}


class PriorSource:
    """Parameters drawn from a vector prior, pushed through the operator.

    Arguments:
        prior: A :class:`invsolve.samplers.priors.VectorPrior` of dimension d.
        operator, noise: The measurement model (operator domain (d,)).
    """

    def __init__(self, prior, operator, noise):
        if tuple(operator.domain_shape) != (prior.dim,):
            raise ConfigError(f"prior dimension {prior.dim} differs from the operator's input {operator.domain_shape}")
        self.prior, self.operator, self.noise = prior, operator, noise

    def draw(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """x (n, d), y (n, m)."""
        x = self.prior.sample(n, generator, device=generator.device)
        with torch.no_grad():
            y = self.noise.sample(self.operator(x), generator=generator)
        return x, y

    def spec(self) -> dict[str, Any]:
        return {"kind": "prior", "prior": self.prior.spec()}
