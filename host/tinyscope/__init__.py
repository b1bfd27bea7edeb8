"""tinyscope: see what your int8 CNN really computes on a microcontroller."""

__version__ = "0.1.0"
