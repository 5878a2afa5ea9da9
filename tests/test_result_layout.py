"""The result-file layout described in invsolve.results.files holds for the files its writers write: every
dataset and attribute written is described for its kind, and every one described is written (optional ones
aside)."""

import json
import re
from types import SimpleNamespace

import h5py
import numpy as np
import pytest

from invsolve import api
from invsolve.posterior import PosteriorSummary
from invsolve.results import NoiseEstimate, files, save_noise_estimate, save_posterior

#: described but written only in some runs
OPTIONAL = {"ground_truth", "operator_arrays", "input", "measurement_seed", "iterations_run", "converged", "samples",
            "calibrated_quantiles"}


def documented() -> dict[str, dict[str, str]]:
    """kind -> {name (datasets with a leading /): its line} from the module docstring's layout block."""
    out: dict[str, dict[str, str]] = {}
    kind = None
    for line in files.__doc__.splitlines():
        head = re.match(r"^ {4}\S.*\(kind = \"(\w+)\"\)", line)
        if head:
            kind = head.group(1)
            out[kind] = {}
        elif kind and re.match(r"^ {8}\S", line):
            out[kind][line.split()[0]] = line.strip()
        elif line.strip() and not line.startswith(" "):
            kind = None
    common = out.pop("measurement")
    return {"measurement": common, **{k: {**common, **v} for k, v in out.items()}}


def written(path) -> tuple[set[str], set[str], h5py.File]:
    f = h5py.File(path, "r")
    return {"/" + k for k in f.keys()}, set(f.attrs.keys()), f


def check(kind, path):
    doc = documented()[kind]
    names, attrs, f = written(path)
    with f:
        assert f.attrs["kind"] == kind
        got = names | attrs
        undocumented = got - set(doc)
        assert not undocumented, f"{kind} file writes {sorted(undocumented)}, which the layout does not describe"
        missing = {n for n in doc if n.lstrip("/") not in OPTIONAL} - got
        assert not missing, f"the {kind} layout describes {sorted(missing)}, which the file lacks"
        for name in names:  # the dtypes described
            m = re.match(r"^/\S+\s+(float32|float64)\b", doc[name])
            if m:
                assert f[name.lstrip("/")].dtype == np.dtype(m.group(1)), name
        return {k: f[k][()] for k in f.keys() if isinstance(f[k], h5py.Dataset)}, dict(f.attrs)


@pytest.fixture()
def measurement():
    x = np.random.default_rng(0).random((2, 8, 8)).astype("float32")
    return x, api.simulate(x, "inpaint", {}, seed=0, device="cpu")


def test_every_kind_is_described():
    assert set(documented()) == {"measurement", "reconstruction", "posterior", "noise_estimate"}
    assert "quantile_levels" in documented()["posterior"]["/quantiles"]  # where the levels live, as written


def test_measurement_and_reconstruction_files_match_the_layout(tmp_path, measurement):
    x, m = measurement
    check("measurement", api.save_measurement(m, tmp_path / "m.h5"))
    data, attrs = check("reconstruction", api.save_reconstruction(api.reconstruct(m, "tv", device="cpu"),
                                                                   tmp_path / "r.h5"))
    assert data["iterations_run"].shape == (2,) and set(np.unique(data["converged"])) <= {0.0, 1.0}
    assert json.loads(attrs["method"])["name"] == "tv"


def test_posterior_file_matches_the_layout(tmp_path, measurement):
    x, m = measurement
    q = np.stack([x - 0.1, x + 0.1], axis=1).astype("float32")  # (N, Q, H, W)
    s = PosteriorSummary(mean=x, std=np.full_like(x, 0.05), quantiles=q, levels=(0.05, 0.95))
    data, attrs = check("posterior", save_posterior(api.Posterior(s, {"name": "test"}, m, 0, "cpu"), tmp_path / "p.h5"))
    assert data["quantiles"].shape == (2, 2, 8, 8)
    assert "samples" not in data  # only when samples are kept
    assert json.loads(attrs["quantile_levels"]) == [0.05, 0.95]
    assert json.loads(attrs["sampler"])["name"] == "test"


def test_noise_estimate_file_matches_the_layout(tmp_path):
    v = np.random.default_rng(1).random((3, 4)).astype("float32")
    m = api.simulate(v, "linear", {"diagonal": [1.0, 2.0, 3.0, 4.0]}, noise="mixed",
                     noise_params={"a": 0.01, "b": 0.1}, seed=0, device="cpu")
    T, S, d = 3, 4, v.shape[1]
    res = SimpleNamespace(samples=np.zeros((3, S, d)), a_trace=np.linspace(0.1, 0.2, T + 1),
                          b_trace=np.linspace(0.1, 0.2, T + 1), elbo_trace=np.zeros(T), seconds_trace=np.arange(T) * 1.0,
                          info={"sampler": "cflow", "sampler_config": {}, "iterations": T}, best_iteration=T)
    est = NoiseEstimate(0.2, 0.2, res, m, {"name": "uniform"}, {"iterations": T}, 0, "cpu")
    data, attrs = check("noise_estimate", save_noise_estimate(est, tmp_path / "e.h5"))
    assert data["estimate"].tolist() == [0.2, 0.2] and data["a_trace"].shape == (T + 1,)
    assert json.loads(attrs["noise"]) == {"name": "mixed", "a": 0.2, "b": 0.2}
