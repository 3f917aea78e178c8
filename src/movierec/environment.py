"""What makes results independent of the machine, and the record of what produced them.

Three things change the bits of a float computation without changing the code: the number of threads
a library splits its work over (BLAS sums in a different order), the kernels a library picks for the
CPU at run time, and the library versions. The first two we fix: every command pins BLAS/OpenMP to one
thread and TensorFlow to a thread count from params (`train.threads`) instead of the machine's core
count, runs TensorFlow's products in Eigen's kernels rather than oneDNN's and caps oneDNN at AVX2
(`pin_kernels`); NumPy's own products and factorisations go through portable_linalg.py, whose results
do not depend on BLAS's kernels. The third we record: the stages whose results depend on
floating-point libraries write `environment_record()` next to their outputs (git-tracked, not a DVC
metric), so `movierec check-drift` can say which difference can explain a drift.
"""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata
from pathlib import Path

BLAS_THREADS = 1
THREAD_ENV_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS")
ONEDNN_ISA_VAR, ONEDNN_ISA = "ONEDNN_MAX_CPU_ISA", "AVX2"
# TensorFlow's matrix products in Eigen's own compiled kernels, not oneDNN's: oneDNN's sgemm splits a
# product over as many threads as its size over the L2 cache per core allows (and the physical core
# count), so AMD Zen 3 and Zen 4 summed the same products in other orders (benchmarks/results/cpu_kernels.md).
TF_KERNEL_ENV = {"TENSORFLOW_USE_CUSTOM_CONTRACTION_KERNEL": "false", "TF_ENABLE_ONEDNN_OPTS": "0"}
PROMISED_INSTRUCTION_SETS = ("x86-64 AVX2", "x86-64 AVX-512")  # `instruction_set()`s that give the same bits
PACKAGES = ("numpy", "scipy", "scikit-learn", "pandas", "tensorflow", "keras", "dvc", "dvclive")


def pin_kernels(n: int = BLAS_THREADS) -> None:
    """One BLAS/OpenMP thread, TensorFlow's products in Eigen's kernels and oneDNN capped at AVX2, for
    this process and its children.

    The thread count makes results independent of the machine's core count. oneDNN picks its kernels,
    their summation order and its thread split from the CPU (instruction set, cache sizes, cores), so
    TensorFlow is kept off it (TF_KERNEL_ENV), and whatever still calls it gets AVX2's kernels, what every
    x86-64 CPU since 2013 has. The environment variables cover libraries loaded later (they read them
    once, at load); threadpoolctl covers those already loaded. Measured cost: docs/reproducibility.md.
    """
    os.environ[ONEDNN_ISA_VAR] = ONEDNN_ISA
    os.environ.update(TF_KERNEL_ENV)
    for var in THREAD_ENV_VARS:
        os.environ[var] = str(n)
    if "numpy" in sys.modules:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=n)


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def instruction_set() -> str:
    """The CPU family as far as results go: `x86-64 AVX-512`, `x86-64 AVX2`, `x86-64 without AVX2`, or
    another architecture (`arm64`...). Same bits are promised across PROMISED_INSTRUCTION_SETS."""
    machine = platform.machine().lower()
    if machine not in ("x86_64", "amd64"):
        return machine
    flags: set[str] = set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            flags = next((set(line.split(":", 1)[1].split()) for line in f if line.startswith("flags")), set())
    except OSError:
        pass
    if "avx512f" in flags:
        return "x86-64 AVX-512"
    return "x86-64 AVX2" if "avx2" in flags and "fma" in flags else "x86-64 without AVX2"


def l1_data_cache() -> str | None:
    """The first core's level-1 data cache size as the kernel reports it ("32K"): Eigen sizes the blocks
    of TensorFlow's matrix products by it, and a sum longer than one block is added block by block."""
    for index in sorted(Path("/sys/devices/system/cpu/cpu0/cache").glob("index*")):
        try:
            if (index / "level").read_text().strip() == "1" and (index / "type").read_text().strip() == "Data":
                return (index / "size").read_text().strip()
        except OSError:
            continue
    return None


def environment_record(tf_threads: int | None = None) -> dict:
    """Versions, BLAS build and thread counts, and the CPU: what can change floating-point results."""
    from threadpoolctl import threadpool_info

    def version(name: str) -> str | None:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return None

    blas = [
        {k: lib.get(k) for k in ("internal_api", "version", "architecture", "num_threads", "threading_layer")}
        for lib in threadpool_info()
    ]
    record = {
        "python": platform.python_version(),
        "platform": f"{platform.system()} {platform.machine()}",
        "cpu": cpu_model(),
        "instruction_set": instruction_set(),
        "l1_data_cache": l1_data_cache(),
        "onednn_max_cpu_isa": os.environ.get(ONEDNN_ISA_VAR),
        "cpu_count": os.cpu_count(),
        "packages": {name: version(name) for name in PACKAGES},
        "blas": sorted(blas, key=lambda lib: (str(lib["internal_api"]), str(lib["version"]))),
    }
    if tf_threads is not None:
        record["tensorflow_threads"] = tf_threads
    return record


def differences(recorded: dict, current: dict, prefix: str = "") -> list[str]:
    """Human-readable `field: recorded -> current` lines for every field that differs."""
    out = []
    for key in sorted(set(recorded) | set(current)):
        old, new = recorded.get(key), current.get(key)
        if isinstance(old, dict) and isinstance(new, dict):
            out += differences(old, new, f"{prefix}{key}.")
        elif old != new:
            out.append(f"{prefix}{key}: {old} -> {new}")
    return out
