"""Calibration of posterior samplers: SBC ranks, TARP, coverage at many credible levels, posterior
contraction (:mod:`.statistics`), split-conformal recalibration of credible intervals (:mod:`.conformal`)
and calibration files (:mod:`.files`).  The API is :mod:`invsolve.api_calibrate`."""
