"""Batch runs over stacks: shards, resume after a stop or a signal, input lists, per-slice JSON."""

import io
from pathlib import Path
import json
import signal
import subprocess
import sys

import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

from invsolve import api
from invsolve.posteriors import SampleRequest
from invsolve.api_batch import (PosteriorTask, ReconstructTask, expand_inputs, output_paths, parse_shard,
                                run_batches)
from invsolve.cli import app
from invsolve.errors import ConfigError, DataError, Interrupted, OutputExistsError

# the batch tests use MCMC runs far too short to mix: its convergence warning is expected here
pytestmark = pytest.mark.filterwarnings("ignore:MCMC chains disagree:RuntimeWarning")
runner = CliRunner()
MCMC = {"prior": {"name": "gaussian", "std": 1.0}, "chains": 6, "steps": 30, "burn_in": 20, "thin": 2}


@pytest.fixture
def vectors(tmp_path):
    """Six 2-vectors through a diagonal linear operator: a stochastic posterior per slice."""
    x = np.random.default_rng(0).normal(size=(6, 2)).astype(np.float32)
    m = api.simulate(x, "linear", {"diagonal": [1.0, 0.5]}, "gaussian", {"sigma": 0.3}, seed=0, device="cpu")
    return api.save_measurement(m, tmp_path / "m.h5")


def _task(seed=1):
    return PosteriorTask(SampleRequest(sampler="mcmc", sampler_params=dict(MCMC), seed=seed), device="cpu", batch_size=2)


def _read(path, name="posterior_mean"):
    with h5py.File(path) as f:
        return f[name][()], f["completed"][()].astype(bool)


def test_shards_together_write_exactly_one_run(tmp_path, vectors):
    run_batches(_task(), [vectors], tmp_path / "one.h5", batch_size=2)
    ref, done = _read(tmp_path / "one.h5")
    assert done.all() and np.isfinite(ref).all()
    s1 = run_batches(_task(), [vectors], tmp_path / "sh.h5", batch_size=2, shard=(1, 2))
    part, done = _read(tmp_path / "sh.h5")
    assert s1.computed == 4 and done.tolist() == [True, True, False, False, True, True]
    assert np.isnan(part[2:4]).all()
    with pytest.raises(DataError, match="incomplete .4 of 6 slices"):
        api.load_estimate(str(tmp_path / "sh.h5"))
    s2 = run_batches(_task(), [vectors], tmp_path / "sh.h5", batch_size=2, shard=(2, 2))
    both, done = _read(tmp_path / "sh.h5")
    assert s2.computed == 2 and s2.complete == [True] and done.all()
    np.testing.assert_array_equal(both, ref)
    other = run_batches(_task(seed=2), [vectors], tmp_path / "seed2.h5", batch_size=2)
    assert other.complete == [True] and not np.array_equal(_read(tmp_path / "seed2.h5")[0], ref)


def test_stopped_run_resumes_to_the_uninterrupted_result(tmp_path, vectors):
    run_batches(_task(), [vectors], tmp_path / "ref.h5", batch_size=2)
    calls = []
    with pytest.raises(Interrupted, match="--resume") as exc:
        run_batches(_task(), [vectors], tmp_path / "r.h5", batch_size=2,
                    should_stop=lambda: calls.append(1) or len(calls) > 1)
    assert exc.value.exit_code == 130
    assert _read(tmp_path / "r.h5")[1].tolist() == [True, True, False, False, False, False]
    with pytest.raises(OutputExistsError, match="--resume to complete it or --overwrite"):
        run_batches(_task(), [vectors], tmp_path / "r.h5", batch_size=2)
    with pytest.raises(DataError, match="written by another run"):
        run_batches(_task(seed=5), [vectors], tmp_path / "r.h5", batch_size=2, resume=True)
    s = run_batches(_task(), [vectors], tmp_path / "r.h5", batch_size=2, resume=True)
    assert (s.computed, s.skipped, s.complete) == (4, 2, [True])
    for name in ("posterior_mean", "posterior_std", "quantiles"):
        np.testing.assert_array_equal(_read(tmp_path / "r.h5", name)[0], _read(tmp_path / "ref.h5", name)[0])
    s = run_batches(_task(seed=5), [vectors], tmp_path / "r.h5", batch_size=2, overwrite=True)
    assert s.computed == 6 and not np.array_equal(_read(tmp_path / "r.h5")[0], _read(tmp_path / "ref.h5")[0])


def test_batched_api_equals_the_batch_run(tmp_path, vectors):
    post = api.sample_posterior(api.load_measurement(vectors), sampler="mcmc", sampler_params=dict(MCMC), seed=1,
                                device="cpu", batch_size=2)
    run_batches(_task(), [vectors], tmp_path / "b.h5", batch_size=2)
    np.testing.assert_array_equal(post.summary.mean, _read(tmp_path / "b.h5")[0])


def test_inputs_shards_and_outputs_parsing(tmp_path, vectors):
    (tmp_path / "b.h5").write_bytes(vectors.read_bytes())
    found = expand_inputs([str(tmp_path / "*.h5")])
    assert [Path(p).name for p in found] == ["b.h5", "m.h5"]
    assert [Path(p).name for p in expand_inputs(["-"], io.StringIO(f"{vectors}\n# note\n\n{tmp_path / 'b.h5'}\n"))] \
        == ["m.h5", "b.h5"]
    assert expand_inputs([f"{vectors}:/measurement[0:2]"]) == [f"{vectors}:/measurement[0:2]"]  # a dataset and range
    with pytest.raises(DataError, match="no files match"):
        expand_inputs([str(tmp_path / "*.tif")])
    with pytest.raises(DataError, match="input file not found"):
        expand_inputs([str(tmp_path / "nope.h5")])
    assert parse_shard("2/3") == (2, 3) and parse_shard(None) == (1, 1)
    for bad in ("0/2", "3/2", "x", "1-2"):
        with pytest.raises(ConfigError, match="--shard"):
            parse_shard(bad)
    outs = output_paths(found, tmp_path / "out")
    assert [p.name for p in outs] == ["b.h5", "m.h5"] and (tmp_path / "out").is_dir()
    with pytest.raises(ConfigError, match="distinct names"):
        output_paths([tmp_path / "m.h5", tmp_path / "out" / "m.h5"], tmp_path / "o2")


def _simulate(tmp_path, n=4):
    x = np.random.default_rng(1).random((n, 32, 32)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    res = runner.invoke(app, ["simulate", "-i", str(tmp_path / "x.npy"), "--operator", "superres",
                              "-o", str(tmp_path / "m.h5"), "-q"])
    assert res.exit_code == 0, res.output
    return tmp_path / "m.h5"


def test_cli_list_of_inputs_writes_a_folder_with_json_lines(tmp_path):
    m = _simulate(tmp_path, 3)
    (tmp_path / "m2.h5").write_bytes(m.read_bytes())
    res = runner.invoke(app, ["reconstruct", "-", "-m", "tv", "-M", "iterations=20", "-o", str(tmp_path / "out"),
                              "--json", "--batch-size", "2"], input=f"{m}\n{tmp_path / 'm2.h5'}\n")
    assert res.exit_code == 0, res.output
    lines = [json.loads(ln) for ln in res.stdout.splitlines()]
    slices = [ln for ln in lines if ln["event"] == "slice"]
    assert len(slices) == 6 and {s["index"] for s in slices} == {0, 1, 2} and all(s["psnr"] > 10 for s in slices)
    done = lines[-1]
    assert done["event"] == "done" and done["complete"] and done["computed"] == 6 and len(done["outputs"]) == 2
    a = api.load_estimate(str(tmp_path / "out" / "m.h5")).images
    b = api.load_estimate(str(tmp_path / "out" / "m2.h5")).images
    np.testing.assert_array_equal(a, b)
    res = runner.invoke(app, ["reconstruct", str(m), str(tmp_path / "m2.h5"), "-o", str(tmp_path / "x.npy")])
    assert res.exit_code == 1 and "need --output to be a folder" in res.output


def _cli(*args):
    return [sys.executable, "-m", "invsolve", "reconstruct", *map(str, args)]


def test_concurrent_shards_and_sigterm_resume_match_one_run(tmp_path):
    m = _simulate(tmp_path, 4)
    common = ["-m", "tv", "-M", "iterations=200", "--batch-size", "1", "--device", "cpu"]
    ref = tmp_path / "ref.h5"  # the same settings through the API, in this process
    run_batches(ReconstructTask("tv", {"iterations": 200}, 0, "cpu", 1), [m], ref, batch_size=1)
    # two shards at once on one output file
    procs = [subprocess.Popen(_cli(m, *common, "-o", tmp_path / "sh.h5", "--shard", f"{k}/2", "-q"),
                              stderr=subprocess.PIPE, text=True) for k in (1, 2)]
    for p in procs:
        _, err = p.communicate(timeout=240)
        assert p.returncode == 0, err
    np.testing.assert_array_equal(_read(tmp_path / "sh.h5", "reconstruction")[0], _read(ref, "reconstruction")[0])
    # SIGTERM after the first finished slice: the batch in progress completes, then exit 143
    out = tmp_path / "r.h5"
    proc = subprocess.Popen(_cli(m, *common, "-o", out, "--json"), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    first = json.loads(proc.stdout.readline())
    assert first["event"] == "slice" and first["index"] == 0
    proc.send_signal(signal.SIGTERM)
    rest, err = proc.communicate(timeout=240)
    assert proc.returncode == 143 and "SIGTERM" in err and "--resume" in err
    done = _read(out, "reconstruction")[1]
    assert 1 <= done.sum() < 4 and done[: done.sum()].all()
    res = subprocess.run(_cli(m, *common, "-o", out, "--json", "--resume"), capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout.splitlines()[-1])
    assert summary["skipped"] == done.sum() and summary["computed"] == 4 - done.sum() and summary["complete"]
    np.testing.assert_array_equal(_read(out, "reconstruction")[0], _read(ref, "reconstruction")[0])
