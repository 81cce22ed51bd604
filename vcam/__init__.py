"""avatar-vcam, the application: CLI, daemon, devices, control API, OBS and sinks.

The library it drives is :mod:`engine` (audio -> motion -> frames, no devices); the avatar
packages and their registry are :mod:`avatars`.
"""

__version__ = "0.1.0"
