"""Progress for people and logs: the line rule, lines on a piped stderr (never stdout), the long-step
heartbeat, the long-run estimate, and the too-short prior warning."""

import io
import json
import os
import subprocess
import sys
import time

import pytest
from typer.testing import CliRunner

from invsolve.cli import app
from invsolve.cli._progress import LineTrack, line_due, make_progress
from invsolve.progress import Track, format_duration

runner = CliRunner()


def test_line_rule_is_the_rarer_of_ten_seconds_and_five_percent_at_most_thirty_seconds():
    assert not line_due(5.0, 0.0, 50, 0, 100)  # half the loop, but only 5 s
    assert not line_due(12.0, 0.0, 3, 0, 100)  # 12 s, but 3 %
    assert line_due(12.0, 0.0, 6, 0, 100)
    assert line_due(31.0, 0.0, 0, 0, 100)  # a step longer than 30 s: a line all the same
    assert not line_due(29.0, 0.0, 0, 0, 100)
    assert line_due(11.0, 0.0, 7, 6, None) and not line_due(11.0, 0.0, 6, 6, None)  # unknown total
    assert format_duration(59.6) == "1:00" and format_duration(3725) == "1:02:05"


def test_line_track_writes_step_total_elapsed_and_objective():
    out = io.StringIO()
    track = LineTrack(stream=out, seconds=0.0, poll=0.01)
    for k in track(range(20), "map (patchnr)"):
        track.note(data=1234.5 + k, prior=7.0)
        time.sleep(0.02)
    lines = out.getvalue().splitlines()
    assert len(lines) >= 3 and lines[-1].startswith("map (patchnr): done 20/20 in 0:00, data 1254  prior 7")
    first = lines[0]
    assert first.startswith("map (patchnr): step ") and "/20 (" in first and "elapsed 0:00" in first
    assert "left" in first and "data 12" in first and "prior 7" in first


def test_line_track_is_silent_for_short_loops_and_beats_during_a_long_step():
    out = io.StringIO()
    for _ in LineTrack(stream=out, seconds=10.0)(range(5), "tv"):
        pass
    assert out.getvalue() == ""  # under 10 s: nothing in the log
    track = LineTrack(stream=out, seconds=10.0, poll=0.01)
    track.most = 0.05  # the 30 s heartbeat, shortened
    for _ in track(range(1), "fbp"):
        time.sleep(0.3)  # one long step
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("fbp: step 0/1 (0%), elapsed 0:00") and lines[-1].startswith("fbp: done 1/1")


def test_long_run_estimate_warns_once_with_the_setting_that_shortens_it(monkeypatch):
    import invsolve.progress as progress

    monkeypatch.setattr(progress, "LONG_RUN_SECONDS", 0.5)
    track = Track()
    with pytest.warns(RuntimeWarning, match=r"tv will take about 0:0\d at this speed \(40 steps, .* s each; .*\); "
                                             r"-M iterations=N shortens it"):
        for _ in track(range(40), "tv", hint="-M iterations=N"):
            time.sleep(0.02)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in track(range(40), "tv", hint="-M iterations=N"):  # the next batch of the same loop: once
            time.sleep(0.02)
        for _ in track(range(5), "tv"):  # short: no estimate
            pass


def test_auto_progress_is_lines_off_a_terminal_and_none_when_quiet():
    assert isinstance(make_progress("auto", quiet=False), LineTrack)  # the test's stderr is not a terminal
    assert type(make_progress("auto", quiet=True)) is Track
    assert type(make_progress("none")) is Track and isinstance(make_progress("lines", quiet=True), LineTrack)


@pytest.fixture
def measurement(tmp_path, phantom_png):
    m = tmp_path / "m.h5"
    res = runner.invoke(app, ["simulate", "--operator", "blur", "-i", str(phantom_png), "-o", str(m), "-q"])
    assert res.exit_code == 0, res.stderr
    return m


def _invsolve(*args, env_seconds="0"):
    env = {**os.environ, "INVSOLVE_PROGRESS_SECONDS": env_seconds, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "invsolve", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=300)


def test_progress_lines_go_to_a_piped_stderr_and_never_to_stdout(tmp_path, measurement):
    res = _invsolve("reconstruct", measurement, "-m", "tv", "-M", "iterations=60", "-o", tmp_path / "r.h5", "--json")
    assert res.returncode == 0, res.stderr
    lines = [ln for ln in res.stderr.splitlines() if ln.startswith("tv: ")]
    assert lines and lines[-1].startswith("tv: done 60/60") and "data " in lines[-1] and "tv " in lines[-1][9:]
    assert all(json.loads(ln) for ln in res.stdout.splitlines())  # stdout holds the JSON records only
    assert "tv:" not in res.stdout
    res = _invsolve("reconstruct", measurement, "-m", "tv", "-M", "iterations=60", "-o", tmp_path / "q.h5",
                    "--progress", "none")
    assert res.returncode == 0 and "tv:" not in res.stderr, res.stderr
    bad = _invsolve("reconstruct", measurement, "-o", tmp_path / "x.h5", "--progress", "loud")
    assert bad.returncode == 1 and "progress" in bad.stderr and "auto" in bad.stderr


def test_training_lines_show_the_nll(tmp_path, phantom_png):
    res = _invsolve("train-prior", "--prior", "patchnr", "-i", phantom_png, "--steps", "100", "-P", "blocks=1",
                    "-P", "width=16", "-o", tmp_path / "p.pt")
    assert res.returncode == 0, res.stderr
    lines = [ln for ln in res.stderr.splitlines() if ln.startswith("train patchnr: ")]
    assert lines[-1].startswith("train patchnr: done 100/100") and "train NLL " in lines[-1]


def test_a_briefly_trained_prior_is_flagged_when_used(tmp_path, phantom_png, measurement):
    p = tmp_path / "p.pt"
    res = runner.invoke(app, ["train-prior", "--prior", "patchnr", "-i", str(phantom_png), "--steps", "20",
                              "-P", "blocks=1", "-P", "width=16", "-o", str(p), "-q"])
    assert res.exit_code == 0, res.stderr
    with pytest.warns(UserWarning, match=r"trained for 20 steps; benchmarks/RESULTS.md .* pays off over TV from "
                                         r"about 12000 steps.*--steps 12000"):
        res = runner.invoke(app, ["reconstruct", str(measurement), "-m", "map", "--prior-file", str(p),
                                  "-M", "iterations=2", "-o", str(tmp_path / "r.h5"), "-q"])
    assert res.exit_code == 0, res.stderr
    from invsolve.priors.base import read_prior_file

    assert read_prior_file(p)["provenance"]["advice"]["steps"] == 12000


def test_outer_work_prefixes_the_lines_and_beats_between_loops():
    out = io.StringIO()
    track = LineTrack(stream=out, seconds=0.0, poll=0.01)
    track.most = 0.05
    track.set_outer("1/3 slices done")
    for _ in track(range(2), "tv"):
        time.sleep(0.03)
    time.sleep(0.2)  # between loops (writing, reading the next batch)
    track.set_outer(None)
    time.sleep(0.05)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("1/3 slices done | tv: step ")
    assert any(ln.startswith("1/3 slices done, elapsed 0:00") for ln in lines)
    assert track._thread is None  # no loop and no outer work: the watcher has ended


def test_batch_lines_name_the_slices_done(tmp_path, phantom_png):
    m = tmp_path / "s.h5"
    res = runner.invoke(app, ["simulate", "--operator", "blur", *["-i", str(phantom_png)] * 3, "-o", str(m), "-q"])
    assert res.exit_code == 0, res.stderr
    res = _invsolve("reconstruct", m, "-m", "tv", "-M", "iterations=20", "--batch-size", "1", "-o", tmp_path / "r.h5")
    assert res.returncode == 0, res.stderr
    lines = res.stderr.splitlines()
    for k in range(3):
        assert any(ln.startswith(f"{k}/3 slices done | tv: done 20/20") for ln in lines), res.stderr
