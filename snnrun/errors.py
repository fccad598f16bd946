"""Errors a user can cause. The CLI prints them as one line, without a traceback."""


class SnnrunError(Exception):
    """Base class of every user-facing error (bad config, missing file, wrong shape)."""

    exit_code = 2


class ConfigError(SnnrunError):
    """A config value is unknown, mistyped, out of range or missing; the message names its key."""


class DataError(SnnrunError):
    """A dataset file is missing, truncated or of the wrong shape or dtype."""


class ShapeError(SnnrunError):
    """Two connected parts of the network disagree on a tensor shape."""


class DeviceError(SnnrunError):
    """The requested device is not available on this machine."""


class NumericalError(SnnrunError):
    """NaN or Inf appeared in the loss, the weights or a neuron state; the message says where and when."""

    exit_code = 3
