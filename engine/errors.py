"""Exceptions the engine raises; each message is one line that says what to do."""


class EngineError(Exception):
    """Base class: a user-facing problem with input to the engine."""


class AvatarError(EngineError):
    """An avatar package is missing, malformed or unreadable."""


class AudioError(EngineError):
    """Audio could not be decoded or is not audio."""
