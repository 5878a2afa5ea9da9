"""`invsolve show` and invsolve.figures: the panels drawn for each kind of file, counted on the Figure."""

import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import err_line
from figure_data import image_files, vector_files
from invsolve.cli import app
from invsolve.figures import figure_for

pytestmark = [pytest.mark.usefixtures("one_thread"), pytest.mark.filterwarnings("ignore:MCMC chains disagree")]
runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    return image_files(tmp_path_factory.mktemp("images"))


@pytest.fixture(scope="module")
def vectors(tmp_path_factory):
    return vector_files(tmp_path_factory.mktemp("vectors"))


def image_axes(fig):
    """The image panels (axes holding an image), not their colorbar axes."""
    return [ax for ax in fig.axes if ax.images]


def panel(fig, name):
    found = [ax for ax in fig.axes if ax.get_label() == name]
    assert len(found) == 1, (name, [ax.get_label() for ax in fig.axes])
    return found[0]


def check_image_panels(fig, n):
    panels = image_axes(fig)
    assert len(panels) == n, [ax.get_label() for ax in panels]
    colorbars = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
    assert len(colorbars) == n  # one colorbar per image panel, nothing else
    for ax in panels:
        im = ax.images[0]
        assert ax.get_title().strip(), ax.get_label()
        assert im.colorbar is not None and im.colorbar.ax.get_ylabel().strip(), ax.get_label()
    assert fig.texts or fig._suptitle is not None  # the figure title names the file
    return panels


def test_measurement_shows_truth_and_sinogram_with_angles(images):
    fig = figure_for(images["measurement"])
    check_image_panels(fig, 2)
    sino = panel(fig, "measurement")
    assert sino.get_xlabel() == "detector pixel" and sino.get_ylabel() == "projection angle"
    ticks = [t.get_text() for t in sino.get_yticklabels() if t.get_text()]
    assert ticks and all(t.endswith("°") for t in ticks)
    assert "m.h5" in fig._suptitle.get_text() and "ct operator" in fig._suptitle.get_text()


def test_reconstruction_with_truth_has_a_symmetric_diverging_error_map(images):
    fig = figure_for(images["reconstruction"])
    check_image_panels(fig, 4)
    err = panel(fig, "error").images[0]
    lo, hi = err.get_clim()
    assert lo == pytest.approx(-hi) and hi > 0 and err.get_cmap().name == "RdBu_r"
    assert "PSNR" in panel(fig, "reconstruction").get_title()
    assert panel(fig, "reconstruction").images[0].get_cmap().name == "gray"
    assert "fbp" in fig._suptitle.get_text()


def test_reconstruction_without_truth_and_with_reference(images):
    check_image_panels(figure_for(images["no_truth"]), 2)
    fig = figure_for(images["no_truth"], reference=images["png"])
    check_image_panels(fig, 4)
    assert "reference" in panel(fig, "ground_truth").get_title()


@pytest.mark.parametrize("key,samples", [("posterior", 0), ("posterior_samples", 4)])
def test_posterior_panels_and_std_on_its_own_scale(images, key, samples):
    fig = figure_for(images[key])
    # measurement, truth, mean, std, error; 5 quantiles; the samples
    check_image_panels(fig, 5 + 5 + samples)
    mean, std = panel(fig, "posterior_mean").images[0], panel(fig, "posterior_std").images[0]
    assert std.get_clim() != mean.get_clim()
    assert std.get_clim()[0] == 0 and std.get_clim()[1] == pytest.approx(float(std.get_array().max()))
    assert std.get_cmap().name not in ("gray", "RdBu_r")
    assert [ax.get_label().startswith("sample_") for ax in image_axes(fig)].count(True) == samples


def test_training_curves_of_prior_and_sampler_files(images):
    fig = figure_for(images["prior"])
    ax = panel(fig, "training_curves")
    assert len(fig.axes) == 1 and len(ax.lines) == 2  # training and validation NLL
    assert ax.get_xlabel() == "training step" and "NLL" in ax.get_ylabel()
    assert len(ax.lines[0].get_xdata()) == 6 and len(ax.lines[1].get_xdata()) == 3  # every 5 and 10 of 30 steps
    fig = figure_for(images["sampler"])
    ax = panel(fig, "training_curves")
    assert len(fig.axes) == 1 and len(ax.lines) == 2 and "cfm" in fig._suptitle.get_text()


def test_noise_estimate_traces_and_posterior(vectors):
    fig = figure_for(vectors["noise"], index=1)
    names = [ax.get_label() for ax in fig.axes]
    assert names[:3] == ["a_trace", "b_trace", "elbo_trace"] and "curve" in names
    assert len(panel(fig, "a_trace").lines[0].get_xdata()) == 3  # start plus 2 iterations
    assert sum(n.startswith(("marginal_", "pair_")) for n in names) == 6  # corner plot of 3 parameters
    assert "item 1 of 2" in fig._suptitle.get_text()


def test_vector_posteriors_predictive_band_and_corner_or_bars(vectors):
    fig = figure_for(vectors["gixrf_post"])
    curve = panel(fig, "curve")
    assert curve.get_xlabel() == "incidence angle θ [°]" and len(curve.collections) == 2  # A(x) and y bands
    names = [ax.get_label() for ax in fig.axes]
    assert names.count("curve") == 1 and sum(n.startswith(("marginal_", "pair_")) for n in names) == 6
    assert "Ni thickness [nm]" in [ax.get_xlabel() for ax in fig.axes]
    fig = figure_for(vectors["linear_post"])  # no samples stored: mean ± std bars, band from quantile vectors
    names = [ax.get_label() for ax in fig.axes]
    assert names == ["curve", "parameter_0", "parameter_1", "parameter_2"]
    assert len(panel(fig, "curve").collections) == 1
    fig = figure_for(vectors["linear_post_samples"])
    assert sum(ax.get_label().startswith(("marginal_", "pair_")) for ax in fig.axes) == 6
    for key in ("linear", "linear_rec"):
        assert [ax.get_label() for ax in figure_for(vectors[key]).axes][0] == "curve"


def test_cli_writes_png_and_refuses_to_overwrite(images, tmp_path):
    out = tmp_path / "fig.png"
    res = run("show", images["measurement"], images["reconstruction"], images["posterior"], "-o", out)
    assert res.exit_code == 0, res.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    before = out.stat().st_mtime_ns
    assert "already exists" in err_line(run("show", images["measurement"], "-o", out))
    assert out.stat().st_mtime_ns == before
    assert run("show", images["measurement"], "-o", out, "--overwrite").exit_code == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fig.png"]  # no temporary files left


def test_several_files_make_one_figure_with_a_block_each(images):
    fig = figure_for([images["measurement"], images["reconstruction"]])
    assert len(image_axes(fig)) == 2 + 4 and len(fig.subfigs) == 2


def test_cli_errors_are_one_line(images, tmp_path):
    plain = tmp_path / "plain.h5"
    with h5py.File(plain, "w") as f:
        f["data"] = np.zeros(3)
    out = tmp_path / "x.png"
    cases = [((tmp_path / "missing.h5",), "file not found"),
             ((plain,), "not an invsolve result"),
             ((images["png"],), "not an invsolve file"),
             ((images["reconstruction"], "--index", 1), "--index 1 is out of range"),
             ((images["reconstruction"], "--index", -1), "holds 1 item(s)"),
             ((images["no_truth"], "--reference", tmp_path / "none.png"), "not found")]
    for args, text in cases:
        assert text in err_line(run("show", *args, "-o", out)), args
    assert "must end in" in err_line(run("show", images["measurement"], "-o", tmp_path / "x.jpg"))
    assert not out.exists()
