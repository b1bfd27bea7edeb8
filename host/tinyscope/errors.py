"""The one exception type users see: a message that says what went wrong and what to do."""

from __future__ import annotations


class TinyscopeError(Exception):
    """An error with a message a user can act on (names the file and the fix).

    The CLI prints ``str(err)`` without a traceback (unless ``--debug``) and exits non-zero.
    """

    exit_code = 2


class UnsupportedModelError(TinyscopeError):
    """The model uses a layer or operator the tinyscope runtime does not support."""


class DeviceError(TinyscopeError):
    """The device (or emulator) did not answer as the protocol says."""

    exit_code = 3


class MismatchError(TinyscopeError):
    """The device runs another model or protocol than the host expects."""

    exit_code = 4
