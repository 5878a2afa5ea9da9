"""Results on a stdout that goes away (a pipe whose reader quit, a closed descriptor) and out-of-memory
errors: quiet exit 141, one line and exit 1, one line naming --batch-size; never a traceback."""

import os
import subprocess
import sys

import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import err_line
from invsolve.cli import app

runner = CliRunner()

pytestmark = pytest.mark.usefixtures("one_thread")

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
ENV.pop("INVSOLVE_DEBUG", None)


@pytest.fixture
def measurement(tmp_path):
    src = tmp_path / "x.npy"
    np.save(src, np.random.default_rng(0).random((3, 16, 16)).astype(np.float32))
    m = tmp_path / "m.h5"
    res = runner.invoke(app, ["simulate", "--operator", "blur", "-i", str(src), "-o", str(m)])
    assert res.exit_code == 0, res.output
    return m


def reconstruct_cmd(m, out):
    return [sys.executable, "-m", "invsolve", "reconstruct", str(m), "--method", "tv", "-M", "iterations=2",
            "--batch-size", "1", "--json", "-o", str(out)]


def complete(out) -> bool:
    with h5py.File(out, "r") as f:
        return bool(np.all(f["completed"][()])) and bool(np.isfinite(f["reconstruction"][()]).all())


def test_broken_pipe_is_quiet_and_exits_141(tmp_path, measurement):
    out = tmp_path / "r.h5"
    p = subprocess.Popen(reconstruct_cmd(measurement, out), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env=ENV)
    p.stdout.close()  # the reader quits before the first line (as `| head -c 10` does soon after)
    err = p.stderr.read().decode()
    assert p.wait(timeout=120) == 141, err
    assert "Error" not in err and "Traceback" not in err and "unexpected" not in err, err
    assert complete(out)


def test_closed_stdout_is_one_line(tmp_path, measurement):
    out = tmp_path / "r.h5"
    res = subprocess.run(reconstruct_cmd(measurement, out), stderr=subprocess.PIPE, env=ENV, timeout=120,
                         preexec_fn=lambda: os.close(1))
    err = res.stderr.decode()
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert res.returncode == 1, err
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "standard output is closed" in lines[0], err
    assert "unexpected" not in err and "Traceback" not in err
    assert complete(out)


def test_listing_into_a_closed_pipe(tmp_path):
    p = subprocess.Popen([sys.executable, "-m", "invsolve", "list"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=ENV)
    p.stdout.close()
    err = p.stderr.read().decode()
    assert p.wait(timeout=120) == 141, err
    assert not err.strip(), err


@pytest.mark.parametrize("exc", [MemoryError(), RuntimeError(
    "[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: can't allocate memory: you tried to allocate "
    "80000000000 bytes. Error code 12 (Cannot allocate memory)"), RuntimeError(
    "CUDA out of memory. Tried to allocate 20.00 GiB (GPU 0; 79.35 GiB total capacity)\nmore lines")])
def test_out_of_memory_while_computing_names_batch_size(tmp_path, measurement, monkeypatch, exc):
    from invsolve import api

    def boom(*a, **k):
        raise exc

    monkeypatch.setattr(api, "reconstruct", boom)
    res = runner.invoke(app, ["reconstruct", str(measurement), "-o", str(tmp_path / "r.h5")])
    line = err_line(res)
    assert "out of memory" in line and "--batch-size" in line and "unexpected" not in line


def test_out_of_memory_while_reading_names_batch_size(tmp_path, monkeypatch):
    src = tmp_path / "x.npy"
    np.save(src, np.zeros((16, 16), np.float32))

    def boom(*a, **k):
        raise MemoryError("Unable to allocate 64.0 GiB for an array with shape (4096, 4096, 1024)")

    monkeypatch.setattr(np, "load", boom)
    res = runner.invoke(app, ["simulate", "--operator", "blur", "-i", str(src), "-o", str(tmp_path / "o.h5")])
    line = err_line(res)
    assert "out of memory" in line and "--batch-size" in line and "cannot read" not in line
    assert "Unable to allocate 64.0 GiB" in line
