"""Import TensorFlow without its C++ start-up chatter (CUDA probing, oneDNN notices) on stderr.

Those lines are written straight to file descriptor 2 before TF's own log settings apply, so the
only way to keep a one-line error one line is to point fd 2 elsewhere while TF starts.
"""

from __future__ import annotations

import contextlib
import os
import sys


@contextlib.contextmanager
def silenced_stderr():
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def import_tensorflow(start_runtime=None):
    """TensorFlow, imported quietly. `start_runtime()`, if given, is called instead of the device
    discovery that otherwise starts the runtime here (MultiWorkerMirroredStrategy must do that itself)."""
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with silenced_stderr():
        import tensorflow as tf

        if start_runtime is not None:
            start_runtime()
        tf.config.list_logical_devices()  # device discovery logs too; do it while silenced
    return tf
