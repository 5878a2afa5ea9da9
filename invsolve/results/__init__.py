"""Result objects and their files, at the bottom of the library.

:mod:`invsolve.results.types` holds :class:`Measurement`, :class:`Reconstruction`, :class:`Posterior` and
:class:`NoiseEstimate`; :mod:`invsolve.results.files` writes them to HDF5 with their configs and provenance and
reads measurements back.  The API modules build on these; nothing here imports them.
"""

from .files import (MEASUREMENT_KINDS, check_path, check_seed, load_measurement, posterior_attrs,
                    posterior_datasets, reconstruction_attrs, reconstruction_data, save_measurement, save_noise_estimate,
                    save_posterior, save_reconstruction, write_with_measurement)
from .types import Measurement, NoiseEstimate, Posterior, Reconstruction, expect

__all__ = ["MEASUREMENT_KINDS", "Measurement", "NoiseEstimate", "Posterior", "Reconstruction", "check_path",
           "check_seed", "expect", "load_measurement", "posterior_attrs", "posterior_datasets",
           "reconstruction_attrs", "reconstruction_data", "save_measurement", "save_noise_estimate", "save_posterior",
           "save_reconstruction", "write_with_measurement"]
