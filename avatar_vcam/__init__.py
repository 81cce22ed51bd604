"""avatar-vcam: a photoreal talking head from one photo, on a virtual webcam."""

__version__ = "0.1.0"
