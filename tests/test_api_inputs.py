"""Bad arguments to the Python API fail with invsolve's own errors and a message naming the problem and the fix."""

from __future__ import annotations

import numpy as np
import pytest

from invsolve import api, api_metrology, api_priors, api_samplers
from invsolve.api_evaluate import evaluate, evaluate_vectors
from invsolve.errors import ConfigError, DataError, ShapeError

PNR = {"width": 8, "blocks": 1}


@pytest.fixture(scope="module")
def image_measurement():
    return api.simulate(np.full((8, 8), 0.5, np.float32), "superres", {"factor": 2}, seed=0)


@pytest.fixture(scope="module")
def vector_measurement():
    return api.simulate(np.full((2, 2), 0.5, np.float32), "linear", {"diagonal": [1.0, 2.0]},
                        noise_params={"sigma": 0.01}, seed=0)


@pytest.fixture
def png(tmp_path):
    from skimage import io

    p = tmp_path / "im.png"
    io.imsave(p, np.full((16, 16), 128, np.uint8), check_contrast=False)
    return str(p)


# --- api_evaluate ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(1, 1, 8, 8), (8,)])
def test_evaluate_wrong_rank(shape):
    with pytest.raises(ShapeError, match=r"expected a non-empty \(H, W\) or \(N, H, W\)"):
        evaluate(np.zeros(shape), np.zeros(shape))


def test_evaluate_empty_stack():
    with pytest.raises(ShapeError, match="non-empty"):
        evaluate(np.zeros((0, 8, 8)), np.zeros((0, 8, 8)))


def test_evaluate_none():
    with pytest.raises(DataError, match="estimate must be a numeric array.*NoneType"):
        evaluate(None, np.zeros((8, 8)))
    with pytest.raises(DataError, match="reference must be a numeric array.*NoneType"):
        evaluate(np.zeros((8, 8)), None)


def test_evaluate_result_object(image_measurement):
    rec = api.reconstruct(image_measurement, method="bicubic")
    with pytest.raises(DataError, match=r"got Reconstruction; pass its \.images"):
        evaluate(rec, np.zeros((8, 8)))
    with pytest.raises(DataError, match="got Measurement"):
        evaluate(image_measurement, np.zeros((8, 8)))


def test_evaluate_strings_and_ragged():
    with pytest.raises(DataError, match="got str; read files with load_estimate"):
        evaluate("x.npy", np.zeros((8, 8)))
    with pytest.raises(DataError, match="numeric array"):
        evaluate([[1.0, 2.0], [3.0]], np.zeros((8, 8)))
    with pytest.raises(DataError, match="array of <U1"):
        evaluate(np.array([["a"]]), np.zeros((8, 8)))


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_evaluate_non_finite(bad):
    with pytest.raises(DataError, match="estimate holds NaN or infinite"):
        evaluate(np.full((8, 8), bad), np.zeros((8, 8)))
    with pytest.raises(DataError, match="reference holds NaN or infinite"):
        evaluate(np.zeros((8, 8)), np.full((8, 8), bad))


def test_evaluate_still_works():
    r = evaluate(np.full((2, 8, 8), 0.5), np.full((8, 8), 0.5))
    assert r["psnr"] == float("inf") and len(r["ssim_per_slice"]) == 2


def test_evaluate_vectors_forms():
    r = evaluate_vectors(np.array([1.0, 2.0]), np.array([1.0, 2.0]))
    assert r["rmse"] == 0.0
    r = evaluate_vectors(np.array([[1.0, 2.0], [1.0, 4.0]]), np.array([1.0, 2.0]))
    assert r["rmse_per_parameter"] == [0.0, pytest.approx(np.sqrt(2.0))]
    with pytest.raises(ShapeError, match=r"expected a non-empty \(d,\) or \(N, d\)"):
        evaluate_vectors(np.zeros((2, 3, 4)), np.zeros((2, 3, 4)))
    with pytest.raises(DataError, match="NaN or infinite"):
        evaluate_vectors(np.array([np.nan, 1.0]), np.array([1.0, 1.0]))
    with pytest.raises(DataError, match="NoneType"):
        evaluate_vectors(np.zeros(2), None)


def test_metrics_refuse_wrong_rank():
    from invsolve.metrics import image_metrics, ssim

    with pytest.raises(ShapeError, match=r"\(H, W\) images"):
        ssim(np.zeros(8), np.zeros(8))
    with pytest.raises(ShapeError, match=r"\(N, H, W\) stacks"):
        image_metrics(np.zeros((8, 8)), np.zeros((8, 8)))


# --- results.files -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", [None, 3, ""])
def test_load_measurement_path_type(path):
    with pytest.raises(ConfigError, match="path must be a file path"):
        api.load_measurement(path)


@pytest.mark.parametrize("items", [5, (0, 2), slice(0, 2, -1), slice("a", 2)])
def test_load_measurement_items(tmp_path, image_measurement, items):
    p = api.save_measurement(image_measurement, tmp_path / "m.h5")
    with pytest.raises(ConfigError, match=r"items must be a slice with step >= 1.*or None"):
        api.load_measurement(p, items=items)
    assert api.load_measurement(p, items=slice(0, 1)).measurement.shape[0] == 1


def test_save_wrong_objects(tmp_path, image_measurement):
    with pytest.raises(DataError, match="must be an invsolve Measurement.*got ndarray.*api.simulate"):
        api.save_measurement(image_measurement.measurement, tmp_path / "a.h5")
    with pytest.raises(DataError, match="must be an invsolve Reconstruction.*got Measurement.*save_measurement"):
        api.save_reconstruction(image_measurement, tmp_path / "b.h5")
    with pytest.raises(DataError, match="must be an invsolve Posterior.*got dict"):
        api.save_posterior({}, tmp_path / "c.h5")
    assert not list(tmp_path.iterdir())


# --- api_priors ------------------------------------------------------------------------------------------------

def test_train_prior_params_must_be_dict():
    with pytest.raises(ConfigError, match=r"params must be a dict.*got list"):
        api_priors.train_prior("patchnr", np.zeros((8, 8)), params=["width=8"], steps=1, device="cpu")


@pytest.mark.parametrize("steps", [0, -3, 1.5, True])
@pytest.mark.parametrize("name", ["patchnr", "epll"])
def test_train_prior_steps(name, steps):
    with pytest.raises(ConfigError, match="steps must be an integer >= 1"):
        api_priors.train_prior(name, np.zeros((8, 8)), params=PNR if name == "patchnr" else None, steps=steps,
                               device="cpu")


@pytest.mark.parametrize("seed", [2**70, -1, True, 1.5, "0", None])
def test_train_prior_seed(seed):
    with pytest.raises(ConfigError, match="seed must be an integer from 0"):
        api_priors.train_prior("patchnr", np.zeros((8, 8)), params=PNR, steps=1, seed=seed, device="cpu")


@pytest.mark.parametrize("specs", [None, np.zeros((8, 8)), [1, 2]])
def test_read_training_images_types(specs):
    with pytest.raises(ConfigError, match="must be image files, globs, folders.*pass arrays to train_prior"):
        api_priors.read_training_images(specs)


def test_read_training_images_path(png):
    from pathlib import Path

    ims, src = api_priors.read_training_images(Path(png))
    assert len(ims) == 1 and src == [png]


def test_save_prior_wrong_object(tmp_path):
    with pytest.raises(DataError, match="save_prior needs a prior.*got str"):
        api_priors.save_prior("x", tmp_path / "p.pt")


# --- api_samplers ----------------------------------------------------------------------------------------------

S = dict(steps=1, sampler_params={"hidden": 8, "depth": 1, "channels": 4}, overwrite=True, device="cpu")
VEC = dict(sampler="cflow", operator="linear", operator_params={"diagonal": [1.0, 2.0]}, prior="gaussian", dim=2)


@pytest.mark.parametrize("crop", [-4, 0, 3, 2.5, True])
def test_train_sampler_bad_crop(tmp_path, png, crop):
    with pytest.raises(ConfigError, match="--crop must be an integer >= 4"):
        api_samplers.train_sampler("cfm", "superres", images=[png], crop=crop, output=tmp_path / "s.pt", **S)


def test_image_source_refuses_bad_crop():
    from invsolve.samplers.sources import ImageSource

    with pytest.raises(ConfigError, match="--crop must be an integer of at least 4"):
        ImageSource([np.zeros((8, 8), np.float32)], -4, None, None)


@pytest.mark.parametrize("images", [np.zeros((2, 16, 16)), [np.zeros((16, 16))], 5])
def test_train_sampler_images_must_be_paths(tmp_path, images):
    with pytest.raises(ConfigError, match="images must be image files, globs.*numpy.save"):
        api_samplers.train_sampler("cfm", "superres", images=images, crop=8, output=tmp_path / "s.pt", **S)


def test_train_sampler_seed(tmp_path):
    with pytest.raises(ConfigError, match="seed must be an integer from 0"):
        api_samplers.train_sampler(**VEC, seed=2**70, output=tmp_path / "s.pt", **S)


def test_train_sampler_crop_on_vector_problem(tmp_path):
    with pytest.raises(ConfigError, match="acts on vectors; --crop is for image problems"):
        api_samplers.train_sampler(**VEC, crop=32, output=tmp_path / "s.pt", **S)


def test_train_sampler_prior_params_on_image_problem(tmp_path, png):
    with pytest.raises(ConfigError, match="acts on images; --prior-param is for vector problems"):
        api_samplers.train_sampler("cfm", "superres", images=[png], prior_params={"components": 2},
                                   output=tmp_path / "s.pt", **S)


def test_train_sampler_params_must_be_dicts(tmp_path):
    with pytest.raises(ConfigError, match="prior_params must be a dict"):
        api_samplers.train_sampler(**VEC, prior_params=["components=2"], output=tmp_path / "s.pt", **S)


# --- api_metrology ---------------------------------------------------------------------------------------------

def test_estimate_noise_needs_measurement(vector_measurement):
    with pytest.raises(DataError, match="must be an invsolve Measurement.*got ndarray"):
        api_metrology.estimate_noise(vector_measurement.measurement, settings={"iterations": 1})
    with pytest.raises(ConfigError, match="seed must be an integer from 0"):
        api_metrology.estimate_noise(vector_measurement, settings={"iterations": 1}, seed=2**70)


@pytest.mark.parametrize("levels", [(2.0,), (0.0, 0.5), (), 0.5, ("a",), (True,)])
def test_mcmc_posterior_levels(vector_measurement, levels):
    with pytest.raises(ConfigError, match=r"quantile levels must be a non-empty sequence of numbers in \(0, 1\)"):
        api_metrology.mcmc_posterior(vector_measurement, params={"steps": 2, "burn_in": 1}, levels=levels)


def test_mcmc_posterior_needs_measurement(vector_measurement):
    with pytest.raises(DataError, match="must be an invsolve Measurement.*got ndarray"):
        api_metrology.mcmc_posterior(vector_measurement.measurement)


def test_check_levels_sorts():
    assert api_metrology.check_levels([0.9, 0.1]) == (0.1, 0.9)


def test_api_entry_points_refuse_wrong_kinds_of_arguments():
    with pytest.raises(DataError, match="not a numeric array"):
        api.simulate([[1.0, 2.0], [3.0]], "blur")
    with pytest.raises(DataError, match="not 'x64.npy'"):
        api.simulate("x64.npy", "blur")
    with pytest.raises(ShapeError, match="are empty"):
        api.simulate(np.zeros((0, 16, 16)), "blur")
    with pytest.raises(ConfigError, match="operator_params must be a dict"):
        api.simulate(np.zeros((16, 16)), "blur", operator_params=["sigma=1"])
    with pytest.raises(ConfigError, match="batch_size must be an integer of at least 1"):
        api.simulate(np.zeros((16, 16)), "blur", batch_size=0)
    m = api.simulate(np.random.default_rng(0).random((16, 16)), "blur", seed=0)
    with pytest.raises(DataError, match="Measurement"):
        api.reconstruct(m.measurement)
    with pytest.raises(ConfigError, match="method_params must be a dict"):
        api.reconstruct(m, "tv", [("lam", 1)])
    with pytest.raises(ConfigError, match="quantile levels must be a sequence"):
        api.sample_posterior(m, sampler="mcmc", levels=0.5)
