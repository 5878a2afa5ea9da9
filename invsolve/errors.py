"""Exception hierarchy.

Every error a user can cause (bad files, shapes, names, configs, devices) is an
:class:`InvsolveError`; the CLI prints it as one ``Error: ...`` line and exits
with code 1.  Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

__all__ = [
    "InvsolveError",
    "ConfigError",
    "DataError",
    "ShapeError",
    "CheckpointError",
    "OperatorError",
    "DeviceError",
    "OutputExistsError",
    "DiskFullError",
    "OutputBusyError",
    "Interrupted",
]


class InvsolveError(Exception):
    """Base class of all user-facing errors."""


class ConfigError(InvsolveError):
    """A configuration file, option or parameter is invalid."""


class DataError(InvsolveError):
    """An input file is missing, unreadable or holds invalid values."""


class ShapeError(DataError):
    """An array has the wrong rank or shape."""


class CheckpointError(DataError):
    """A prior or training checkpoint file is missing, damaged or incompatible."""


class OperatorError(InvsolveError):
    """An operator, noise model or method is unknown or incompatible."""


class DeviceError(InvsolveError):
    """The requested device is not available."""


class DiskFullError(DataError):
    """The file system of an output ran out of space (or quota); nothing half-written is left."""


class OutputBusyError(InvsolveError):
    """Another run is writing the same output."""


class OutputExistsError(InvsolveError):
    """The output file exists and ``overwrite`` was not given."""


class Interrupted(InvsolveError):
    """A batch run stopped on SIGINT/SIGTERM after flushing its completed slices."""

    def __init__(self, message: str, exit_code: int = 130):
        super().__init__(message)
        self.exit_code = exit_code
