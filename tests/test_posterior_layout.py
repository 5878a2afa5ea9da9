"""The posterior file layout documented in invsolve.posterior holds for a file save_posterior writes."""

import json
import re

import h5py
import numpy as np

from invsolve import api, posterior
from invsolve.api_files import save_posterior
from invsolve.posterior import PosteriorSummary


def _documented() -> dict[str, str]:
    """Dataset name -> its line in the module docstring's layout block."""
    return {m.group(1): m.group(0) for m in re.finditer(r"^\s+/(\w+)\s+float32.*$", posterior.__doc__, re.M)}


def test_written_posterior_matches_the_documented_layout(tmp_path):
    x = np.random.default_rng(0).random((2, 8, 8)).astype("float32")
    m = api.simulate(x, "inpaint", {}, seed=0, device="cpu")
    q = np.stack([x - 0.1, x + 0.1], axis=1).astype("float32")  # (N, Q, H, W)
    s = PosteriorSummary(mean=x, std=np.full_like(x, 0.05), quantiles=q, levels=(0.05, 0.95))
    path = save_posterior(api.Posterior(s, {"name": "test"}, m, 0, "cpu"), tmp_path / "p.h5")
    doc = _documented()
    assert {"reconstruction", "posterior_mean", "posterior_std", "quantiles", "samples"} <= set(doc)
    assert "quantile_levels" in doc["quantiles"]  # where the levels live, as written below
    with h5py.File(path, "r") as f:
        for name in ("reconstruction", "posterior_mean", "posterior_std", "quantiles"):
            assert f[name].dtype == np.float32, name
        assert f["quantiles"].shape == (2, 2, 8, 8)
        assert "samples" not in f  # only when samples are kept
        assert json.loads(f.attrs["quantile_levels"]) == [0.05, 0.95]
        assert json.loads(f.attrs["sampler"])["name"] == "test"
        assert f.attrs["kind"] == "posterior"
