"""Import TensorFlow without its C++ start-up chatter (CUDA probing, oneDNN notices) on stderr.

Those lines are written straight to file descriptor 2 before TF's own log settings apply, so the
only way to keep a one-line error one line is to point fd 2 elsewhere while TF starts.

TF's thread pools are created by its first op (device discovery here) and take the machine's core
count unless told otherwise; how work is split over threads changes float rounding, so a fixed
`threads` (params: `train.threads`) makes results the same on any number of cores.

Keras 3 imports, at start-up and only if installed, libraries for features the pipeline never uses:
scikit-learn (its estimator wrappers), matplotlib (image galleries), IPython (notebook display) and
pandas (DataFrame inputs). That is about 2 s of each TensorFlow stage's start, so they are hidden
while TensorFlow starts; Keras guards each import and leaves the feature off. The code that needs
them imports them itself, later, as usual.

TensorFlow's threads allocate from one malloc heap (`one_malloc_arena`), not glibc's default of a
heap per thread: each heap kept the pages its thread's freed tensors left, and the next step's
tensors, allocated on another pool thread, came from another heap. train@dae peaked at 1.6-1.8 GB
with the default and about 1.1 GB with one heap on a 2-core Zen 3; the fits got faster (docs/speed.md).
"""

from __future__ import annotations

import contextlib
import ctypes
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


KERAS_EXTRAS = ("sklearn", "matplotlib", "IPython", "pandas")


@contextlib.contextmanager
def hidden(modules):
    """`import m` raises ImportError inside the block for each of `modules` not yet imported."""
    absent = [m for m in modules if m not in sys.modules]
    sys.modules.update(dict.fromkeys(absent))
    try:
        yield
    finally:
        for m in absent:
            if sys.modules.get(m, ...) is None:
                del sys.modules[m]


M_ARENA_MAX = -8  # glibc's mallopt parameter (malloc.h)


def one_malloc_arena() -> None:
    """Threads started from now on allocate from glibc's main heap, as MALLOC_ARENA_MAX=1 would have it.
    Only the allocator's bookkeeping changes, not a computed bit. Elsewhere (macOS, musl) nothing: their
    allocators have no per-thread heaps to merge."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (AttributeError, OSError, TypeError):  # no mallopt, or no C library to ask (Windows)
        return
    mallopt(M_ARENA_MAX, 1)


def import_tensorflow(threads: int | None = None, start_runtime=None):
    """TensorFlow, imported quietly, with `threads` intra- and inter-op threads. `start_runtime()`, if
    given, is called instead of the device discovery that otherwise starts the runtime here
    (MultiWorkerMirroredStrategy must do that itself)."""
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    one_malloc_arena()  # before TensorFlow starts its thread pools
    with silenced_stderr(), hidden(KERAS_EXTRAS):
        import tensorflow as tf

        if threads is not None:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
        if start_runtime is not None:
            start_runtime()
        tf.config.list_logical_devices()  # device discovery logs too; do it while silenced
    return tf
