"""Nothing lost: full disks give one line and leave nothing; two runs never share one output; stale temp
files of killed runs are cleaned up."""

import errno
import os
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import err_line
from invsolve.cli import app

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture
def measurement(tmp_path, phantom_png):
    m = tmp_path / "m.h5"
    assert run("simulate", "--operator", "blur", *["-i", phantom_png] * 4, "-o", m, "-q").exit_code == 0
    return m


@pytest.fixture
def full_disk(monkeypatch):
    """Every write of more than 1 kB fails with ENOSPC, as on a full file system (a small tmpfs cannot be
    mounted in a test); and the free space reported is 1 kB."""
    import shutil

    import invsolve.io.atomic as atomic

    real_open = open

    class Full:
        def __init__(self, f):
            self.f, self.n = f, 0

        def write(self, data):
            self.n += len(data)
            if self.n > 1024:
                raise OSError(errno.ENOSPC, "No space left on device")
            return self.f.write(data)

        def __getattr__(self, name):
            return getattr(self.f, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

    def fake_open(path, mode="r", *a, **k):
        f = real_open(path, mode, *a, **k)
        return Full(f) if "w" in mode and os.path.basename(str(path)).startswith(".") else f

    monkeypatch.setattr(atomic, "open", fake_open, raising=False)
    usage = shutil.disk_usage(".")
    monkeypatch.setattr(atomic.shutil, "disk_usage", lambda p: type(usage)(usage.total, usage.total, 1024))


def _left(folder):
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.parametrize("command", ["simulate", "reconstruct", "train-prior", "preview", "show"])
def test_a_full_disk_is_one_line_and_leaves_nothing(tmp_path, phantom_png, measurement, full_disk, command):
    out = tmp_path / "out"
    out.mkdir()
    args = {"simulate": ["simulate", "--operator", "blur", "-i", phantom_png, "-o", out / "m.h5"],
            "reconstruct": ["reconstruct", measurement, "-m", "tv", "-M", "iterations=2", "-o", out / "r.h5"],
            "train-prior": ["train-prior", "-i", phantom_png, "--steps", "2", "-P", "blocks=1", "-P", "width=8",
                            "-o", out / "p.pt"],
            "preview": ["simulate", "--operator", "blur", "-i", phantom_png, "-o", tmp_path / "m2.h5",
                        "--preview", out / "m.png"],
            "show": ["show", measurement, "-o", out / "fig.png"]}[command]
    res = run(*args)
    line = err_line(res)
    assert line.startswith("Error: no space left on device writing ") and " needed, 1 kB free" in line, line
    assert "nothing was written" in line and "unexpected" not in res.stderr
    assert _left(out) == []  # no output, no temp file
    if command == "preview":
        assert not (tmp_path / "m2.h5").exists()  # all or nothing


def test_a_full_disk_during_a_batch_keeps_the_finished_slices(tmp_path, measurement, monkeypatch):
    from invsolve.io import incremental

    real = incremental.IncrementalOutput._store
    calls = []

    def store(self, *a, **k):
        calls.append(1)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, *a, **k)

    monkeypatch.setattr(incremental.IncrementalOutput, "_store", store)
    out = tmp_path / "r.h5"
    line = err_line(run("reconstruct", measurement, "-m", "tv", "-M", "iterations=2", "--batch-size", "2", "-o", out))
    assert line.startswith(f"Error: no space left on device writing {out}; the slices completed so far are kept")
    with h5py.File(out) as f:
        assert f["completed"][()].tolist() == [1, 1, 0, 0]
    monkeypatch.setattr(incremental.IncrementalOutput, "_store", real)
    assert run("reconstruct", measurement, "-m", "tv", "-M", "iterations=2", "--batch-size", "2", "-o", out,
               "--resume", "-q").exit_code == 0


def _invsolve(*args):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "invsolve", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def test_a_second_run_on_the_same_output_is_refused_and_the_first_completes(tmp_path, measurement):
    out = tmp_path / "out.h5"
    lock = tmp_path / ".out.h5.lock"
    first = _invsolve("reconstruct", measurement, "-m", "tv", "-M", "iterations=400", "--batch-size", "1",
                      "-o", out, "--overwrite")
    t = time.monotonic()
    while not lock.exists() and time.monotonic() - t < 60:
        time.sleep(0.05)
    assert lock.exists(), first.communicate()[1]
    second = _invsolve("reconstruct", measurement, "-m", "tv", "-M", "iterations=20", "--batch-size", "1",
                       "-o", out, "--overwrite")
    _, err2 = second.communicate(timeout=120)
    assert second.returncode == 1
    assert err2.strip().splitlines()[-1].startswith(f"Error: output {out} is being written by another invsolve "
                                                   f"run (process {first.pid} on ")
    assert "wait for it to end, or choose another --output" in err2
    _, err1 = first.communicate(timeout=300)
    assert first.returncode == 0, err1
    with h5py.File(out) as f:
        assert f["completed"][()].all() and np.isfinite(f["reconstruction"][()]).all()
        assert '"iterations": 400' in f.attrs["method"]
    assert not lock.exists()  # the last holder removes it


def test_shards_of_one_run_share_the_output_lock(tmp_path, measurement):
    from invsolve.errors import OutputBusyError
    from invsolve.io.output_lock import lock_path, output_lock

    out = tmp_path / "o.h5"
    with output_lock(out, shared=True), output_lock(out, shared=True):
        with pytest.raises(OutputBusyError, match="is being written by another invsolve run; wait for it"):
            with output_lock(out):
                pass
    assert not lock_path(out).exists()


def test_stale_temp_files_of_a_killed_run_are_removed_by_the_next_write(tmp_path, phantom_png):
    import socket

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    host = socket.gethostname().split(".")[0]
    stale = tmp_path / f".m.h5.{host}-{dead.stdout.strip()}.abc123.tmp"
    stale.write_bytes(b"x" * 1000)
    alive = tmp_path / f".m.h5.{host}-{os.getpid()}.def456.tmp"  # a live writer's file stays
    alive.write_bytes(b"y")
    assert run("simulate", "--operator", "blur", "-i", phantom_png, "-o", tmp_path / "m.h5", "-q").exit_code == 0
    assert not stale.exists() and alive.exists()
