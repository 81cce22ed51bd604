"""The engine: audio -> motion -> frames, with no devices; usable as a library."""

from .avatar import Avatar, load_avatar
from .config import EngineConfig
from .engine import Engine
from .errors import AudioError, AvatarError, EngineError
from .frames import AudioChunk, VideoFrame
from .motion import CHANNELS, MotionFrame
from .session import Session

__all__ = [
    "CHANNELS", "AudioChunk", "AudioError", "Avatar", "AvatarError", "Engine", "EngineConfig",
    "EngineError", "MotionFrame", "Session", "VideoFrame", "load_avatar",
]
