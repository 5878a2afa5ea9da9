"""Write the example images shipped in data/ from scikit-image's bundled data.

    python data/make_examples.py

phantom.png  128x128 Shepp-Logan phantom (scikit-image, generated)
camera.png   128x128 crop of scikit-image's "camera" (public domain)
stack.h5     /images: 4x64x64 stack of ellipse phantoms (seeded) for batch examples
learn.png    128x128: scikit-image's "gravel" (public domain), rows/cols 0..255, halved: a patch prior's one
             training image (granular, like the material micro-CT slices)
test.png     96x96: "gravel" rows/cols 320..511, halved the same way: a test image the prior has not seen
"""

from pathlib import Path

import h5py
import numpy as np
from skimage import data, io
from skimage.draw import ellipse
from skimage.transform import resize

HERE = Path(__file__).resolve().parent


def ellipses(rng: np.random.Generator, size: int = 64, n: int = 6) -> np.ndarray:
    img = np.zeros((size, size), np.float32)
    for _ in range(n):
        r, c = rng.uniform(0.3, 0.7, 2) * size
        a, b = rng.uniform(0.08, 0.3, 2) * size
        rr, cc = ellipse(r, c, a, b, shape=img.shape, rotation=rng.uniform(0, np.pi))
        img[rr, cc] += rng.uniform(0.2, 0.6)
    return np.clip(img, 0, 1)


def main() -> None:
    ph = resize(data.shepp_logan_phantom(), (128, 128), anti_aliasing=True)
    io.imsave(HERE / "phantom.png", (np.clip(ph, 0, 1) * 255).round().astype(np.uint8), check_contrast=False)
    cam = resize(data.camera()[64:448, 64:448], (128, 128), anti_aliasing=True)
    io.imsave(HERE / "camera.png", (cam * 255).round().astype(np.uint8), check_contrast=False)
    gravel = data.gravel().astype(np.float64) / 255.0
    for name, crop, side in (("learn", gravel[:256, :256], 128), ("test", gravel[320:, 320:], 96)):
        img = resize(crop, (side, side), anti_aliasing=True)
        io.imsave(HERE / f"{name}.png", (np.clip(img, 0, 1) * 255).round().astype(np.uint8), check_contrast=False)
    rng = np.random.default_rng(0)
    with h5py.File(HERE / "stack.h5", "w") as f:
        f.create_dataset("images", data=np.stack([ellipses(rng) for _ in range(4)]))


if __name__ == "__main__":
    main()
