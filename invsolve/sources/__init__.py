"""Measurements from users' own files: sinograms, raw projections, LoDoPaB-CT files, images and vector scans.

:func:`invsolve.sources.measured.open_source` turns an input (an invsolve file, or a foreign array with an
operator and noise named by the caller) into a source that reads batches of :class:`invsolve.api.Measurement`.
"""
