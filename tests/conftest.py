import os
from pathlib import Path

import numpy as np
import pytest
import torch

torch.set_num_threads(min(2, os.cpu_count() or 1))

SHARED = Path(os.environ.get("INVSOLVE_SHARED_DATA", Path(__file__).resolve().parents[1] / ".." / "shared" / "data"))


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA (no GPU on this machine)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def one_thread():
    """Tiny networks run fastest on one thread (and do not fight other jobs for cores); modules opt in with
    ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def err_line(res, exit_code: int = 1) -> str:
    """The one ``Error: ...`` line a failed CLI run (typer's CliRunner result) printed on stderr."""
    assert res.exit_code == exit_code, res.output
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), res.stderr
    return lines[0]


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"shared data folder {SHARED} not found (set INVSOLVE_SHARED_DATA)")
    return SHARED


def phantom(size: int = 64) -> np.ndarray:
    from skimage.data import shepp_logan_phantom
    from skimage.transform import resize

    return resize(shepp_logan_phantom(), (size, size), anti_aliasing=True).astype(np.float32)


@pytest.fixture
def phantom_png(tmp_path) -> Path:
    from skimage import io

    p = tmp_path / "phantom.png"
    io.imsave(p, (np.clip(phantom(64), 0, 1) * 255).round().astype(np.uint8), check_contrast=False)
    return p
