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
                      "-o", out, "--overwrite", "--json")
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
    assert "wait for it to end (--wait does), or choose another --output" in err2
    third = _invsolve("reconstruct", measurement, "-m", "tv", "-M", "iterations=30", "--batch-size", "1",
                      "-o", out, "--overwrite", "--wait")
    out1, err1 = first.communicate(timeout=300)
    assert first.returncode == 0, err1
    import json

    done = json.loads(out1.splitlines()[-1])
    assert done["complete"] and done["computed"] == 4  # nothing of the first run was lost to the others
    _, err3 = third.communicate(timeout=300)  # it waited for the first, then replaced its output as asked
    assert third.returncode == 0 and f"waiting for another invsolve run (process {first.pid} on " in err3, err3
    with h5py.File(out) as f:
        assert f["completed"][()].all() and np.isfinite(f["reconstruction"][()]).all()
        assert '"iterations": 30' in f.attrs["method"]
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


VEC = ["--operator", "linear", "-P", "diagonal=[1.0, 0.5, 0.2]", "--noise", "gaussian", "-N", "sigma=0.2"]


def test_an_interrupted_sampler_training_leaves_a_checkpoint_that_is_refused_until_finished(tmp_path, monkeypatch):
    import invsolve.samplers.training as training

    out, ckpt = tmp_path / "s.pt", tmp_path / "s.pt.ckpt"
    train = ["train-sampler", "--sampler", "cfm", *VEC, "--prior", "gaussian", "--dim", 3, "-S", "hidden=16",
             "--steps", 30, "--val-every", 10, "--checkpoint-every", 10, "-o", out, "--seed", 1, "-q"]
    real_validate = training._validate
    calls = []

    def interrupt(*a, **k):  # Ctrl-C at the second validation (step 20), after the checkpoint of step 10
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_validate(*a, **k)

    monkeypatch.setattr(training, "_validate", interrupt)
    res = run(*train)
    assert res.exit_code == 130
    assert err_line(res, exit_code=130) == (f"Error: interrupted (SIGINT); no output was written; the checkpoint {ckpt} "
                                            "is kept: run the same command with --resume to continue")
    assert not out.exists() and ckpt.exists()  # checkpoints live beside the output, never in it
    monkeypatch.setattr(training, "_validate", real_validate)
    np.save(tmp_path / "x.npy", np.zeros((2, 3), np.float32))
    m = tmp_path / "m.h5"
    assert run("simulate", *VEC, "--input", tmp_path / "x.npy", "--output", m, "-q").exit_code == 0
    use = ["sample-posterior", m, "--sampler-file", ckpt, "-n", 8, "-o", tmp_path / "p.h5", "-q"]
    line = err_line(run(*use))
    assert "holds a sampler trained for 10 of its 30 steps" in line and "--allow-partial" in line
    with pytest.warns(UserWarning, match="trained for 10 of its 30 steps; used as it stands"):
        assert run(*use, "--allow-partial").exit_code == 0
    assert run(*train, "--resume").exit_code == 0
    assert out.exists() and not ckpt.exists()
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        assert run("sample-posterior", m, "--sampler-file", out, "-n", 8, "-o", tmp_path / "q.h5", "-q").exit_code == 0


def test_a_prior_training_checkpoint_is_refused_without_allow_partial(tmp_path, phantom_png):
    m = tmp_path / "m.h5"
    assert run("simulate", "--operator", "blur", "-i", phantom_png, "-o", m, "-q").exit_code == 0
    p = tmp_path / "p.pt"
    assert run("train-prior", "-i", phantom_png, "--steps", 4, "--checkpoint-every", 2, "-P", "blocks=1",
               "-P", "width=8", "-o", p, "-q").exit_code == 0
    from invsolve.priors.base import read_prior_file

    assert read_prior_file(p)["complete"] is True and read_prior_file(f"{p}.ckpt")["complete"] is False
    use = ["reconstruct", m, "-m", "map", "--prior-file", f"{p}.ckpt", "-M", "iterations=2", "-q"]
    line = err_line(run(*use, "-o", tmp_path / "r.h5"))
    assert f"{p}.ckpt is a training checkpoint (step 4 of 4), not a finished prior file" in line
    assert "--allow-partial" in line
    with pytest.warns(UserWarning, match=r"is a training checkpoint \(step 4 of 4\); its prior is used as it stands"):
        assert run(*use, "-o", tmp_path / "r2.h5", "--allow-partial").exit_code == 0


def _temps(folder):
    return [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]


def test_sigterm_during_training_says_what_it_left(tmp_path):
    out = tmp_path / "s.pt"
    p = _invsolve("train-sampler", "--sampler", "cfm", *VEC, "--prior", "gaussian", "--dim", 3, "-S", "hidden=16",
                  "--steps", 1000000, "--checkpoint-every", 20, "-o", out, "-q")
    t = time.monotonic()
    while not (tmp_path / "s.pt.ckpt").exists() and time.monotonic() - t < 120:
        time.sleep(0.05)
    p.terminate()
    _, err = p.communicate(timeout=60)
    assert p.returncode == 143, err
    *warned, last = err.strip().splitlines()
    assert last == (f"Error: interrupted (SIGTERM); no output was written; the checkpoint {out}.ckpt is kept: run "
                    "the same command with --resume to continue")
    assert any(ln.startswith("train cfm: stopped at ") for ln in err.splitlines()) or "train cfm:" not in err
    assert [w.split(" will take about")[0] for w in warned] == ["Warning: train cfm"]  # a run of days says so
    assert not out.exists() and _temps(tmp_path) == []


def _kill_loop(tmp_path, phantom_png, delays, sig=None):
    import signal

    sig = sig or signal.SIGTERM
    name = signal.Signals(sig).name
    images = [a for _ in range(24) for a in ("-i", str(phantom_png))]
    for i, delay in enumerate(delays):
        out = tmp_path / f"m{name}{i}.h5"
        p = _invsolve("simulate", "--operator", "ct", "-P", "angles=90", *images, "-o", out, "-q")
        time.sleep(delay)
        p.send_signal(sig)
        _, err = p.communicate(timeout=120)
        if p.returncode == -int(sig):  # killed while the interpreter itself started or ended, outside invsolve's code
            assert err == "" and _temps(tmp_path) == []
            if out.exists():
                with h5py.File(out) as f:
                    assert f["measurement"].shape[0] == 24
            continue
        assert p.returncode in (0, 128 + int(sig)), (delay, err)
        assert "Traceback" not in err and "unexpected" not in err and "Exception ignored" not in err
        if p.returncode == 0:
            with h5py.File(out) as f:
                assert f["measurement"].shape[0] == 24  # whole
        else:
            assert err.strip().splitlines()[-1] in (f"Error: interrupted ({name}); no output was written",
                                                    f"Error: interrupted ({name}); {out} was written before it "
                                                    "and is complete")
            assert out.exists() == ("was written before it" in err)
        assert _temps(tmp_path) == []  # never a temp file left behind


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGINT"])
def test_a_signal_at_some_points_of_simulate_leaves_a_whole_output_or_none(tmp_path, phantom_png, sig):
    import signal

    _kill_loop(tmp_path, phantom_png, [0.3, 1.5, 3.0], getattr(signal, sig))


@pytest.mark.slow
def test_sigterm_at_many_points_of_simulate(tmp_path, phantom_png):
    import signal

    rng = np.random.default_rng(0)
    _kill_loop(tmp_path, phantom_png, list(rng.uniform(0.1, 5.0, 20)))
    _kill_loop(tmp_path, phantom_png, list(rng.uniform(0.1, 5.0, 20)), signal.SIGINT)


def test_operator_settings_that_would_take_all_memory_are_refused_before_allocating(tmp_path, phantom_png,
                                                                                   monkeypatch):
    line = err_line(run("simulate", "--operator", "ct", "-P", "angles=2000000000", "-i", phantom_png,
                        "-o", tmp_path / "m.h5"))
    assert "operator 'ct' with -P angles=2000000000 and" in line and "GiB limit" in line
    assert "INVSOLVE_MAX_MEMORY_GB" in line
    m = tmp_path / "m.h5"  # a hostile measurement: a small sinogram whose stored operator claims 10^9 angles
    assert run("simulate", "--operator", "ct", "-P", "angles=30", "-i", phantom_png, "-o", m, "-q").exit_code == 0
    import json

    with h5py.File(m, "r+") as f:
        op = json.loads(f.attrs["operator"])
        op["params"]["angles"] = 10**9
        f.attrs["operator"] = json.dumps(op)
    t = time.monotonic()
    line = err_line(run("reconstruct", m, "-m", "fbp", "-o", tmp_path / "r.h5"))
    assert "angles=1000000000" in line and "GiB limit" in line and time.monotonic() - t < 10
    from invsolve.operators import check_size

    with pytest.warns(RuntimeWarning, match=r"holds 3e\+08 values \(1.12 GiB\) per measurement"):
        check_size("ct", ("-P angles=1000000", 3 * 10**8))
    monkeypatch.setenv("INVSOLVE_MAX_MEMORY_GB", "0.5")
    from invsolve.errors import ConfigError

    with pytest.raises(ConfigError, match="above the 0.5 GiB limit"):
        check_size("ct", ("-P angles=1000000", 3 * 10**8))


def test_an_interrupt_swallowed_by_a_finalizer_still_ends_the_command_as_interrupted(tmp_path, capsys):
    import signal
    from pathlib import Path

    import typer

    from invsolve.cli._common import handle_errors

    class Closing:  # raises the signal in its finalizer, where Python reports and drops the KeyboardInterrupt
        def __del__(self):
            os.kill(os.getpid(), signal.SIGTERM)

    out = tmp_path / "o.txt"

    @handle_errors
    def command(output: str):
        Path(output).write_text("whole")
        Closing()  # collected at once: the interrupt is raised and swallowed inside __del__
        return None

    with pytest.raises(typer.Exit) as exc:
        command(output=str(out))
    assert exc.value.exit_code == 143
    err = capsys.readouterr().err
    assert err.strip() == f"Error: interrupted (SIGTERM); {out} was written before it and is complete"
    assert "Exception ignored" not in err and "Traceback" not in err


@pytest.mark.slow
def test_sigterm_at_many_points_of_a_batch_keeps_whole_slices_and_resume_finishes(tmp_path, measurement):
    rng = np.random.default_rng(1)
    out = tmp_path / "r.h5"
    args = ["reconstruct", measurement, "-m", "tv", "-M", "iterations=300", "--batch-size", "1", "-o", out]
    for delay in rng.uniform(0.2, 8.0, 8):
        p = _invsolve(*args, "--resume" if out.exists() else "--overwrite", "-q")
        time.sleep(delay)
        p.terminate()
        _, err = p.communicate(timeout=300)
        assert p.returncode in (0, 143, -15), err
        assert "Traceback" not in err and "unexpected" not in err
        assert _temps(tmp_path) == [] and not (tmp_path / ".r.h5.lock").exists()
        if out.exists():
            with h5py.File(out) as f:  # every slice flagged complete is whole
                done = f["completed"][()].astype(bool)
                assert np.isfinite(f["reconstruction"][()][done]).all()
    p = _invsolve(*args, "--resume" if out.exists() else "--overwrite", "-q")
    assert p.wait(timeout=300) == 0
    with h5py.File(out) as f:
        assert f["completed"][()].all()


def test_a_batch_whose_inputs_cannot_fit_is_refused_before_any_work(tmp_path, measurement, full_disk, monkeypatch):
    from invsolve import api_batch

    def never(*a, **k):
        raise AssertionError("computed although the output cannot fit")

    monkeypatch.setattr(api_batch.ReconstructTask, "compute", never)
    line = err_line(run("reconstruct", measurement, "-m", "tv", "-o", tmp_path / "r.h5"))
    assert line.startswith(f"Error: no space left on device writing {tmp_path / 'r.h5'} (") and "1 kB free" in line


def test_one_signal_stops_a_run_of_one_batch_at_once(tmp_path, phantom_png):
    m = tmp_path / "one.h5"
    assert run("simulate", "--operator", "blur", "-i", phantom_png, "-o", m, "-q").exit_code == 0
    out = tmp_path / "r.h5"
    p = _invsolve("reconstruct", m, "-m", "tv", "-M", "iterations=1000000", "-o", out, "-q")
    t = time.monotonic()
    while not (tmp_path / ".r.h5.lock").exists() and time.monotonic() - t < 60:
        time.sleep(0.05)
    time.sleep(1.0)
    p.terminate()
    _, err = p.communicate(timeout=60)
    assert p.returncode == 143, err
    assert err.strip().splitlines()[-1] == ("Error: aborted during a batch on SIGTERM; no slice was complete, so "
                                            "nothing was written")
    assert not out.exists() and _temps(tmp_path) == []


def test_a_tv_result_records_the_preset_values_it_used(tmp_path, measurement):
    import json

    out = tmp_path / "r.h5"
    assert run("reconstruct", measurement, "-m", "tv", "-M", "iterations=2", "-o", out, "-q").exit_code == 0
    with h5py.File(out) as f:
        spec = json.loads(f.attrs["method"])
    assert spec["lam"] is None and spec["used"]["lam"] > 0 and spec["used"]["lr"] > 0
    from invsolve.figures.panels import describe_spec

    assert f"lam={spec['used']['lam']:.4g}" in describe_spec(spec)
