"""Application-level errors: devices and outputs. One line each, saying what to do."""

from engine.errors import EngineError


class DeviceError(EngineError):
    """An audio device, camera, window or output file cannot be used."""
