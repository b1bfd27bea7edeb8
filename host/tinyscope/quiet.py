"""Quiet TensorFlow: no TF / absl / oneDNN / converter lines on a user's terminal.

:func:`configure` sets the environment *before* TensorFlow is imported (the CLI calls it
first thing); :func:`native_output` swallows what C++ code prints straight to the process's
file descriptors (the converter's ``fully_quantize: 0, ...``, TFLM's allocation notes). With
``--debug`` everything is shown. Warnings that matter to the user are raised by tinyscope
itself in its own words (e.g. :class:`tinyscope.data.DataWarning`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator

_state = {"debug": False}

# What TensorFlow, absl and gRPC read at import time.
QUIET_ENV = {
    "TF_CPP_MIN_LOG_LEVEL": "3",  # C++ INFO/WARNING/ERROR lines (oneDNN, cuda, absl)
    "GRPC_VERBOSITY": "ERROR",
    "GLOG_minloglevel": "3",
    "ABSL_MIN_LOG_LEVEL": "3",
}


def configure(debug: bool = False) -> None:
    """Quiet (or, with ``debug``, verbose) TensorFlow; call before TensorFlow is imported."""
    _state["debug"] = debug
    if debug:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0")
        return
    for key, value in QUIET_ENV.items():
        os.environ[key] = value
    for name in ("tensorflow", "absl", "keras", "h5py"):
        logging.getLogger(name).setLevel(logging.ERROR)
    for module in ("tensorflow", "keras", "absl", "tf_keras", "ai_edge_litert", "tflite_micro"):
        warnings.filterwarnings("ignore", module=module)


def debug() -> bool:
    return _state["debug"]


@contextlib.contextmanager
def native_output() -> Iterator[None]:
    """Send what native code writes to stdout/stderr to a scratch file while the block runs
    (shown with ``--debug``); Python-level output in the block is captured too."""
    if _state["debug"]:
        yield
        return
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with tempfile.TemporaryFile() as sink:
        try:
            os.dup2(sink.fileno(), 1)
            os.dup2(sink.fileno(), 2)
            with contextlib.redirect_stdout(open(os.devnull, "w")) as devnull:  # noqa: SIM115
                try:
                    yield
                finally:
                    devnull.close()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
