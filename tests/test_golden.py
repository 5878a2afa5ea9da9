"""Kept outputs of seeded runs (``tests/golden/files``, written by the code of commit 5dc8a2d, before the
library restructuring): the current readers load every kept file, the kept model files give the kept results
through the current code, and rerunning the commands gives the same arrays and settings.

On the machine kind and software stack that wrote them (``machine.json``) the arrays must match bit for bit;
elsewhere to float tolerance. Attributes that describe the moment or the environment (creation time, timings,
versions, the run fingerprint, which hashes paths) are left out, and the folder the files were written in is
replaced by ``{D}`` in every string.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from invsolve.cli import app

GOLDEN = Path(__file__).parent / "golden"
KEPT = GOLDEN / "files"
sys.path.insert(0, str(GOLDEN))
import commands  # noqa: E402

VOLATILE = {"created", "timings", "run_fingerprint", "python", "torch_version", "invsolve_version", "seconds",
            "train_seconds"}
RECORD = json.loads((KEPT / "machine.json").read_text())
SAME_MACHINE = RECORD["machine"] == commands.machine()


def _plain(value, folder: str):
    """A comparable form of one attribute: JSON strings parsed, paths made folder-free, volatile keys left out."""
    if isinstance(value, bytes):
        value = value.decode()
    if isinstance(value, str):
        value = value.replace(folder, "{D}")
        try:
            parsed = json.loads(value)
        except ValueError:
            return value
        return _plain(parsed, folder) if isinstance(parsed, (dict, list)) else value
    if isinstance(value, dict):
        return {k: _plain(v, folder) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, (list, tuple)):
        return [_plain(v, folder) for v in value]
    if isinstance(value, np.ndarray) and value.dtype.kind in "OSU":
        return [_plain(v, folder) for v in value.tolist()]
    return value


def h5_contents(path: Path, folder: str) -> tuple[dict, dict]:
    """(datasets by name, attributes by 'object@name') of one HDF5 file."""
    data, attrs = {}, {}

    def visit(name, obj):
        for k, v in obj.attrs.items():
            if k not in VOLATILE:
                attrs[f"{name}@{k}"] = _plain(v, folder)
        if isinstance(obj, h5py.Dataset):
            data[name] = obj[()]

    with h5py.File(path, "r") as f:
        visit("/", f)
        f.visititems(visit)
    return data, attrs


def pt_contents(path: Path, folder: str) -> tuple[dict, dict]:
    """(tensors by key path, other values by key path) of one model file, loaded without pickled code."""
    data, rest = {}, {}

    def walk(obj, key):
        if torch.is_tensor(obj):
            data[key] = obj.numpy()
        elif isinstance(obj, dict):
            for k, v in obj.items():
                if k not in VOLATILE:
                    walk(v, f"{key}/{k}")
        else:
            rest[key] = _plain(obj, folder)

    walk(torch.load(path, map_location="cpu", weights_only=True), "")
    return data, rest


def assert_same_arrays(kept: dict, new: dict, what: str) -> None:
    assert sorted(kept) == sorted(new), f"{what}: datasets differ"
    for key, a in kept.items():
        b = new[key]
        assert a.shape == b.shape and a.dtype == b.dtype, f"{what}:{key}: {a.shape} {a.dtype} vs {b.shape} {b.dtype}"
        if SAME_MACHINE or a.dtype.kind not in "fc":
            np.testing.assert_array_equal(b, a, err_msg=f"{what}:{key}")
        else:
            np.testing.assert_allclose(b, a, rtol=1e-3, atol=1e-4, err_msg=f"{what}:{key}")


def _invoke(argv: list[str]) -> int:
    res = CliRunner().invoke(app, [str(a) for a in argv])
    assert res.exit_code == 0, f"invsolve {' '.join(map(str, argv))}\n{res.output}\n{res.stderr}"
    return res.exit_code


@pytest.fixture(scope="module")
def rerun(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("golden")
    commands.run_all(out, _invoke)
    return out


def _kept(suffix: str) -> list[Path]:
    return sorted(p for p in KEPT.iterdir() if p.suffix == suffix)


def test_every_command_output_is_kept():
    outputs = {a.replace("{D}/", "") for cmd in commands.COMMANDS for a in cmd if a.startswith("{D}/")}
    assert outputs <= {p.name for p in KEPT.iterdir()}
    assert len(_kept(".h5")) == 9 and len(_kept(".pt")) == 2


@pytest.mark.parametrize("name", [p.name for p in _kept(".h5")])
def test_rerun_gives_the_kept_file(rerun, name):
    kept_data, kept_attrs = h5_contents(KEPT / name, RECORD["folder"])
    new_data, new_attrs = h5_contents(rerun / name, str(rerun))
    assert_same_arrays(kept_data, new_data, name)
    assert new_attrs == kept_attrs


@pytest.mark.parametrize("name", [p.name for p in _kept(".pt")])
def test_rerun_gives_the_kept_model(rerun, name):
    kept_data, kept_rest = pt_contents(KEPT / name, RECORD["folder"])
    new_data, new_rest = pt_contents(rerun / name, str(rerun))
    assert_same_arrays(kept_data, new_data, name)
    if not SAME_MACHINE:  # losses and file hashes follow the floats
        kept_rest = {k: v for k, v in kept_rest.items() if not k.endswith(("nll", "sha256", "loss"))}
        new_rest = {k: v for k, v in new_rest.items() if k in kept_rest}
    assert new_rest == kept_rest


def test_rerun_draws_the_kept_preview(rerun):
    kept = np.asarray(Image.open(KEPT / "tv.png").convert("RGB"), dtype=np.int16)
    new = np.asarray(Image.open(rerun / "tv.png").convert("RGB"), dtype=np.int16)
    assert kept.shape == new.shape
    if SAME_MACHINE:
        np.testing.assert_array_equal(new, kept)
    else:
        assert np.abs(new - kept).mean() < 2.0


def test_current_readers_load_the_kept_files():
    from invsolve import api
    from invsolve.priors.base import load_prior
    from invsolve.samplers.base import load_sampler

    for name, operator in [("ct.h5", "ct-limited"), ("sr.h5", "superres"), ("lin.h5", "linear")]:
        m = api.load_measurement(KEPT / name)
        with h5py.File(KEPT / name, "r") as f:
            np.testing.assert_array_equal(m.measurement, f["measurement"][()])
            np.testing.assert_array_equal(m.ground_truth, f["ground_truth"][()])
        assert m.operator["name"] == operator
        assert tuple(m.build_operator().range_shape) == m.measurement.shape[1:]
    prior = load_prior(KEPT / "patchnr.pt")
    assert prior.patch_size == 4 and prior.num_parameters() > 0
    sampler = load_sampler(KEPT / "cfm.pt")
    assert sampler.name == "cfm" and sampler.operator_spec["name"] == "linear"


def test_kept_models_give_the_kept_results_through_the_current_code(tmp_path):
    _invoke(["reconstruct", KEPT / "ct.h5", "--prior", "patchnr", "--prior-file", KEPT / "patchnr.pt",
             *commands.MAP, "--output", tmp_path / "map.h5"])
    _invoke(["sample-posterior", KEPT / "lin.h5", "--sampler-file", KEPT / "cfm.pt", "-n", "16", "--seed", "0",
             "--output", tmp_path / "cfm_post.h5"])
    for name in ("map.h5", "cfm_post.h5"):
        assert_same_arrays(h5_contents(KEPT / name, "")[0], h5_contents(tmp_path / name, "")[0], name)


def test_show_draws_every_kept_file(tmp_path):
    files = [str(p) for p in _kept(".h5") if p.name not in ("ct.h5",)]
    _invoke(["show", *files, "--output", tmp_path / "all.png"])
    assert Image.open(tmp_path / "all.png").size[0] > 300
