"""TensorFlow starts without the libraries Keras would import for features the pipeline never uses,
and those libraries import normally afterwards."""

import platform
import subprocess
import sys

import pytest

from movierec.quiet import hidden


def test_a_hidden_module_cannot_be_imported_inside_the_block_and_can_after():
    name = "movierec_not_a_module_yet"
    with hidden([name]), pytest.raises(ImportError):
        __import__(name)
    assert name not in sys.modules  # nothing left behind: a real import would be tried again


def test_an_already_imported_module_is_left_alone():
    with hidden(["json"]):
        import json
    assert json.dumps([1]) == "[1]"


def test_tensorflow_starts_without_the_keras_extras_and_they_import_afterwards():
    script = (
        "import sys; from movierec.quiet import import_tensorflow, KERAS_EXTRAS\n"
        "tf = import_tensorflow(threads=1)\n"
        "print(sorted(m for m in KERAS_EXTRAS if m in sys.modules))\n"
        "import keras, pandas, sklearn.manifold, matplotlib.pyplot\n"
        "print(float(keras.layers.Dense(1, kernel_initializer='ones')(tf.ones((1, 2)))[0, 0]))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[0] == "[]", f"imported while TensorFlow started: {out[0]}"
    assert out[1] == "2.0"


HEAPS_AFTER_FOUR_THREADS = """
import ctypes, sys, tempfile, threading
from movierec.quiet import one_malloc_arena
if sys.argv[1] == "one":
    one_malloc_arena()
def allocate():
    [bytearray(4096) for _ in range(100)]  # past Python's small-object pool: malloc itself
threads = [threading.Thread(target=allocate) for _ in range(4)]
for t in threads:
    t.start()
for t in threads:
    t.join()
libc = ctypes.CDLL(None)
libc.fopen.restype = ctypes.c_void_p
with tempfile.NamedTemporaryFile(suffix=".xml") as report:
    handle = ctypes.c_void_p(libc.fopen(report.name.encode(), b"w"))
    libc.malloc_info(0, handle)
    libc.fclose(handle)
    print(open(report.name).read().count("<heap nr="))
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's per-thread heaps are what is limited")
def test_threads_share_one_malloc_heap_after_one_malloc_arena():
    def heaps(mode: str) -> int:
        out = subprocess.run([sys.executable, "-c", HEAPS_AFTER_FOUR_THREADS, mode], capture_output=True, text=True, check=True)
        return int(out.stdout)

    assert heaps("default") > 1  # glibc's default: the threads took heaps of their own
    assert heaps("one") == 1
