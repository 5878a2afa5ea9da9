"""Files that try to make invsolve read other files: stored operator paths, HDF5 external storage, external,
soft and virtual links.  Each is refused with one ``Error: ...`` line and exit code 1; the other file is not
read."""

import json

import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import err_line
from invsolve import api
from invsolve.cli import app
from invsolve.errors import DataError

runner = CliRunner()

pytestmark = pytest.mark.usefixtures("one_thread")


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def image(tmp_path, size=16, name="x.npy"):
    p = tmp_path / name
    np.save(p, np.random.default_rng(0).random((size, size)).astype(np.float32))
    return p


def rewrite_operator(path, drop: str, **params):
    """Point the stored operator's parameters elsewhere and drop the embedded array ``drop``."""
    with h5py.File(path, "r+") as f:
        op = json.loads(f.attrs["operator"])
        op["params"].update(params)
        f.attrs["operator"] = json.dumps(op)
        if drop in f.get("operator_arrays", {}):
            del f["operator_arrays"][drop]


def expect_refusal(res, *words):
    line = err_line(res)
    assert "unexpected" not in line and "Traceback" not in res.output
    for w in words:
        assert w in line, line
    return line


# -- stored operator paths ------------------------------------------------------------------------------------


@pytest.mark.parametrize("operator, key, drop", [("blur", "kernel_file", "kernel"), ("inpaint", "mask_file", "mask")])
def test_stored_path_is_not_followed(tmp_path, operator, key, drop):
    other = tmp_path / "other.npy"
    np.save(other, np.ones((3, 3) if operator == "blur" else (16, 16), np.float32))
    given = tmp_path / "given.npy"
    np.save(given, np.ones((3, 3) if operator == "blur" else (16, 16), np.float32))
    m = tmp_path / "m.h5"
    res = run("simulate", "--operator", operator, "-P", f"{key}={given}", "-i", image(tmp_path), "-o", m)
    assert res.exit_code == 0, res.output
    rewrite_operator(m, drop, **{key: str(other), operator == "blur" and "kernel" or "mask": "file"})
    out = tmp_path / "rec.h5"
    line = expect_refusal(run("reconstruct", m, "--method", "tv", "-M", "iterations=2", "-o", out), key,
                          str(other), f"-P {key}=")
    assert "command line" in line
    assert not out.exists()
    with pytest.raises(DataError, match=key):
        api.load_measurement(m)
    # the same path given by the user is read
    res = run("reconstruct", m, "-P", f"{key}={other}", "--method", "tv", "-M", "iterations=2", "-o", out)
    assert res.exit_code == 0, res.output
    assert api.load_measurement(m, operator_params={key: str(other)}).measurement.shape == (1, 16, 16)


def test_embedded_arrays_win_over_a_rewritten_path(tmp_path):
    """A path beside its embedded array is never opened: the array is used (the path may even be missing)."""
    kernel = tmp_path / "k.npy"
    np.save(kernel, np.ones((3, 3), np.float32))
    m = tmp_path / "m.h5"
    assert run("simulate", "--operator", "blur", "-P", f"kernel_file={kernel}", "-i", image(tmp_path),
               "-o", m).exit_code == 0
    rewrite_operator(m, "none", kernel_file=str(tmp_path / "missing.npy"))
    op = api.load_measurement(m).build_operator()
    assert float(op.kernel.sum()) == pytest.approx(1.0)


def test_stored_angles_file_is_refused(tmp_path):
    angles = tmp_path / "theta.npy"
    np.save(angles, np.linspace(0, 180, 8, endpoint=False))
    m = tmp_path / "m.h5"
    assert run("simulate", "--operator", "ct", "-P", "angles=8", "-i", image(tmp_path), "-o", m).exit_code == 0
    rewrite_operator(m, "none", angles_file=str(angles))
    expect_refusal(run("reconstruct", m, "-o", tmp_path / "r.h5"), "angles_file", "-P angles_file=")


# -- HDF5 objects stored outside the file ----------------------------------------------------------------------


def hostile_h5(tmp_path, kind: str):
    """A file whose /data is stored elsewhere (``kind``: external, elink, soft, virtual), and the other file."""
    arr = np.full((16, 16), 0.25, np.float32)
    other = tmp_path / "secret_big.bin"
    p = tmp_path / f"{kind}.h5"
    with h5py.File(p, "w") as f:
        if kind == "external":
            arr.tofile(other)
            f.create_dataset("data", shape=arr.shape, dtype="f4", external=[(str(other), 0, arr.nbytes)])
        elif kind == "elink":
            other = tmp_path / "secret.h5"
            with h5py.File(other, "w") as g:
                g["x"] = arr
            f["data"] = h5py.ExternalLink(str(other), "/x")
        elif kind == "soft":
            f["data"] = h5py.SoftLink("/missing")
        else:
            other = tmp_path / "secret.h5"
            with h5py.File(other, "w") as g:
                g["x"] = arr
            layout = h5py.VirtualLayout(shape=arr.shape, dtype="f4")
            layout[:] = h5py.VirtualSource(str(other), "x", shape=arr.shape)
            f.create_virtual_dataset("data", layout)
    return p, other


WORDS = {"external": ("stored outside the file", "secret_big.bin"), "elink": ("external link", "secret.h5"),
         "soft": ("soft link", "/missing", "does not exist"), "virtual": ("virtual dataset", "secret.h5")}


@pytest.mark.parametrize("kind", list(WORDS))
def test_input_dataset_outside_the_file_is_refused(tmp_path, kind):
    p, _ = hostile_h5(tmp_path, kind)
    out = tmp_path / "o.h5"
    expect_refusal(run("simulate", "--operator", "blur", "-i", f"{p}:/data", "-o", out), f"{p}:/data", *WORDS[kind])
    assert not out.exists()
    res = run("reconstruct", "--operator", "blur", f"{p}:/data", "-o", out)
    expect_refusal(res, *WORDS[kind])
    assert not out.exists()


@pytest.mark.parametrize("kind", list(WORDS))
def test_measurement_stored_outside_the_file_is_refused(tmp_path, kind):
    m = tmp_path / "m.h5"
    assert run("simulate", "--operator", "blur", "-i", image(tmp_path), "-o", m).exit_code == 0
    src, _ = hostile_h5(tmp_path, kind)
    with h5py.File(m, "r+") as f:
        del f["measurement"]
        if kind == "external":
            with h5py.File(src, "r") as s:
                ext = s["data"].external
            f.create_dataset("measurement", shape=(1, 16, 16), dtype="f4", external=[(ext[0][0], 0, 1024)])
        elif kind == "elink":
            f["measurement"] = h5py.ExternalLink(str(tmp_path / "secret.h5"), "/x")
        elif kind == "soft":
            f["measurement"] = h5py.SoftLink("/missing")
        else:
            layout = h5py.VirtualLayout(shape=(1, 16, 16), dtype="f4")
            layout[0] = h5py.VirtualSource(str(tmp_path / "secret.h5"), "x", shape=(16, 16))
            f.create_virtual_dataset("measurement", layout)
    out = tmp_path / "r.h5"
    expect_refusal(run("reconstruct", m, "-o", out), f"{m}:/measurement", *WORDS[kind])
    assert not out.exists()
    with pytest.raises(DataError, match="measurement"):
        api.load_measurement(m)


def test_soft_link_inside_the_file_is_read(tmp_path):
    p = tmp_path / "s.h5"
    with h5py.File(p, "w") as f:
        f["real"] = np.full((16, 16), 0.5, np.float32)
        f["alias"] = h5py.SoftLink("/real")
    from invsolve.io.images import read_array

    assert float(read_array(f"{p}:/alias").mean()) == pytest.approx(0.5)


# -- config files that expand ----------------------------------------------------------------------------------


def yaml_bomb(path, levels=9):
    """~600 bytes that expand to 9**levels strings, nested under method_params.lam."""
    lines = ["method: tv", "method_params:", "  lam:", '    l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", '
             '"lol", "lol"]']
    for i in range(1, levels):
        lines.append(f"    l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_nested_yaml_bomb_is_refused_fast(tmp_path):
    import time

    m = tmp_path / "m.h5"
    assert run("simulate", "--operator", "blur", "-i", image(tmp_path), "-o", m).exit_code == 0
    cfg = yaml_bomb(tmp_path / "bomb.yaml")
    assert cfg.stat().st_size < 1000
    start = time.perf_counter()
    res = run("reconstruct", m, "--config", cfg, "-o", tmp_path / "r.h5")
    assert time.perf_counter() - start < 2
    expect_refusal(res, "bomb.yaml", "too many YAML aliases", "write the values out")


def test_recursive_yaml_alias_is_refused(tmp_path):
    from invsolve.config import load_config_file
    from invsolve.errors import ConfigError

    cfg = tmp_path / "loop.yaml"
    cfg.write_text("method_params: &a\n  lam: *a\n")
    with pytest.raises(ConfigError, match="contains it"):
        load_config_file(cfg)


def test_a_few_yaml_aliases_still_work(tmp_path):
    from invsolve.config import load_config_file

    cfg = tmp_path / "ok.yaml"
    cfg.write_text("a: &box [1, 2, 3]\nmethod_params:\n  lo: *box\n  hi: *box\n")
    assert load_config_file(cfg)["method_params"] == {"lo": [1, 2, 3], "hi": [1, 2, 3]}


@pytest.mark.parametrize("suffix", [".json", ".toml", ".yaml"])
def test_huge_config_file_is_refused_unparsed(tmp_path, suffix):
    import time

    cfg = tmp_path / f"big{suffix}"
    body = ", ".join(["1.0"] * 1_200_000)
    cfg.write_text({".json": '{"method_params": {"lam": [%s]}}', ".toml": "[method_params]\nlam = [%s]\n",
                    ".yaml": "method_params:\n  lam: [%s]\n"}[suffix] % body)
    start = time.perf_counter()
    res = run("reconstruct", tmp_path / "m.h5", "--config", cfg, "-o", tmp_path / "r.h5")
    assert time.perf_counter() - start < 2
    expect_refusal(res, f"big{suffix}", "MiB", "keep arrays in files")
