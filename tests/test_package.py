import subprocess
import sys

import pytest

from invsolve.config import load_config_file, parse_assignments
from invsolve.errors import ConfigError


def test_import_is_light():
    code = "import sys, invsolve; print('torch' in sys.modules, 'astra' in sys.modules, 'h5py' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False", "False"]


def test_python_dash_m_and_help_for_every_command():
    from typer.testing import CliRunner

    from invsolve.cli import app

    res = subprocess.run([sys.executable, "-m", "invsolve", "--help"], capture_output=True, text=True)
    assert res.returncode == 0 and "Usage" in res.stdout
    names = {c.name or c.callback.__name__.replace("_", "-") for c in app.registered_commands}
    assert names >= {"simulate", "reconstruct", "sample-posterior", "train-prior", "train-sampler", "estimate-noise",
                     "evaluate", "list", "info"}
    for name in sorted(names):
        assert name in res.stdout
        out = CliRunner().invoke(app, [name, "--help"])
        assert out.exit_code == 0 and "Usage" in out.stdout, name
        assert name in ("list", "info") or "Example" in out.stdout, name  # every command with inputs shows one


def test_parse_assignments():
    assert parse_assignments(["angles=180", "geometry=fan", "box=[1,2,3,4]", "x=1e-3"], "-P") == {
        "angles": 180, "geometry": "fan", "box": [1, 2, 3, 4], "x": 1e-3}
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_assignments(["angles"], "-P")


@pytest.mark.parametrize("suffix,text", [(".toml", "a = 1\n[b]\nc = 'x'\n"), (".yaml", "a: 1\nb:\n  c: x\n"),
                                         (".json", '{"a": 1, "b": {"c": "x"}}')])
def test_config_formats(tmp_path, suffix, text):
    p = tmp_path / f"c{suffix}"
    p.write_text(text)
    assert load_config_file(p) == {"a": 1, "b": {"c": "x"}}


def test_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config_file(tmp_path / "none.toml")
    bad = tmp_path / "c.toml"
    bad.write_text("a = [")
    with pytest.raises(ConfigError, match="cannot parse"):
        load_config_file(bad)
    other = tmp_path / "c.ini"
    other.write_text("")
    with pytest.raises(ConfigError, match="must end in"):
        load_config_file(other)


@pytest.mark.parametrize("code, rc, err", [(3, 3, ""), (None, 0, ""), ("bad thing", 1, "bad thing")])
def test_the_command_leaves_after_its_exit_handlers_with_its_code(code, rc, err):
    # the command ends without the interpreter's teardown; exit handlers and buffered output still go out
    script = ("import atexit, sys; from invsolve.__main__ import _finish; "
              "atexit.register(lambda: print('handler ran')); sys.stdout.write('buffered'); "
              f"_finish({code!r})")
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert res.returncode == rc
    assert res.stdout == "bufferedhandler ran\n"
    assert res.stderr.strip() == err
