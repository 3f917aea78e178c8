"""Same inputs and params give the same bits whatever the machine's cores and thread settings,
the environment is the locked one, and `check-drift` says where a drift started."""

import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import zipfile
from importlib import metadata

import numpy as np
import pytest

from conftest import REPO, git_commit, require_shared_data, run, write_params

# Outputs of each stage that must be bitwise identical (the .keras zip holds its save time; its
# weights are what the rank stage's predictions file is computed from).
STAGE_OUTPUTS = {
    "prepare": ["data/prepared", "metrics/data.json"],
    "embed": ["data/content/embeddings.npz"],
    "align": ["data/features/content.npy", "metrics/align.json"],
    "baselines": ["metrics/eval/bias.json", "metrics/eval/most_popular.json", "metrics/predictions/bias.csv"],
    "train collab": ["metrics/train/collab"],
    "rank collab": ["data/predictions/collab.npz"],
}


def _digest(root, relative) -> str:
    path = root / relative
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    h = hashlib.sha256()
    for f in files:
        h.update(f.relative_to(root).as_posix().encode() + f.read_bytes())
    return h.hexdigest()


def _one_core():
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})


def _run_stages(root, env, threads: int, one_core: bool) -> dict[str, str]:
    thread_env = {var: str(threads) for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
    digests = {}
    for stage, outputs in STAGE_OUTPUTS.items():
        result = subprocess.run(
            ["movierec", *stage.split()], cwd=root, env={**os.environ, **env, **thread_env},
            capture_output=True, text=True, preexec_fn=_one_core if one_core else None,
        )
        assert result.returncode == 0, f"{stage}: {result.stderr}"
        digests.update({out: _digest(root, out) for out in outputs})
    return digests


@pytest.mark.e2e
def test_every_stage_gives_the_same_bits_on_one_core_and_on_two_threads(make_project):
    root, env = make_project(only=("collab",))
    run(["movierec", "download"], root, env)
    single = _run_stages(root, env, threads=1, one_core=True)
    multi = _run_stages(root, env, threads=2, one_core=False)
    assert single == multi, [out for out in single if single[out] != multi[out]]


# Fits and ranks variants in one process (one TensorFlow start), with TensorFlow's kernels and oneDNN's
# instruction set as the stages set them ("project"), or left to the caller's environment and TensorFlow's
# defaults ("caller"): prints each predictions file's hash.
FIT_AND_RANK = """
import argparse, hashlib, os, sys
from movierec import environment
if sys.argv[1] == "caller":
    environment.ONEDNN_ISA = os.environ.get("ONEDNN_MAX_CPU_ISA", "ALL")
    environment.TF_KERNEL_ENV = {}  # TensorFlow's products left to oneDNN, as TensorFlow's defaults have it
environment.pin_kernels()
from movierec.stages import rank, recipe, train
for variant in sys.argv[2:]:
    for stage in (recipe, train, rank):
        stage.main(argparse.Namespace(params="params.yaml", variant=variant, workers=None))
    with open(f"data/predictions/{variant}.npz", "rb") as f:
        print(variant, hashlib.sha256(f.read()).hexdigest())
import tensorflow as tf  # an op that starts from the CPU's approximate instruction: what another CPU changes
print("rsqrt", hashlib.sha256(tf.math.rsqrt(tf.range(1.0, 4097.0)).numpy().tobytes()).hexdigest())
"""


def _ready_to_train(make_project, variants):
    root, env = make_project(only=variants)
    for stage in ("download", "prepare", "embed", "align"):
        run(["movierec", stage], root, env)
    return root, env


def _fit_and_rank(root, env, isa: str, setting: str, variants, extra_env=None, cpu: list[str] = (), retries: int = 0) -> tuple[dict[str, str], int]:
    """Each predictions file's hash (and the "rsqrt" probe's), and how many oneDNN primitives ran
    (counted with ONEDNN_VERBOSE=1 in extra_env); `cpu`: a command to run the process on another CPU.
    `retries`: runs again a process killed by a signal (qemu-user now and then crashes a multithreaded
    program inside the emulator); a run that finishes must give the same bits."""
    from movierec.environment import TF_KERNEL_ENV

    caller_env = {**os.environ, **env}
    for var in ("ONEDNN_MAX_CPU_ISA", *TF_KERNEL_ENV):
        caller_env.pop(var, None)
    if isa != "ALL":
        caller_env["ONEDNN_MAX_CPU_ISA"] = isa
    for _ in range(retries + 1):
        result = subprocess.run(
            [*cpu, sys.executable, "-c", FIT_AND_RANK, setting, *variants], cwd=root, env={**caller_env, **(extra_env or {})},
            capture_output=True, text=True,
        )
        if result.returncode >= 0:
            break
    assert result.returncode == 0, f"exit {result.returncode}: {result.stdout[-1500:]} {result.stderr[-1500:]}"
    hashes = dict(line.split() for line in result.stdout.splitlines() if line.split() and line.split()[0] in (*variants, "rsqrt"))
    return hashes, result.stdout.count("onednn_verbose,v1,primitive,exec")


@pytest.mark.e2e
def test_no_onednn_kernel_runs_in_a_fit_or_its_lists(make_project):
    """oneDNN splits a product over threads by the CPU's L2 cache per core and its core count (AMD Zen 3
    and Zen 4 trained to other bits), so TensorFlow runs its products in Eigen's kernels: with oneDNN's
    log on, a fit and its lists call none of oneDNN's primitives; left to TensorFlow's defaults they do."""
    root, env = _ready_to_train(make_project, ("collab",))
    verbose = {"ONEDNN_VERBOSE": "1"}
    assert _fit_and_rank(root, env, "ALL", "project", ("collab",), verbose)[1] == 0
    assert _fit_and_rank(root, env, "ALL", "caller", ("collab",), verbose)[1] > 0


@pytest.mark.e2e
def test_every_architecture_gives_the_same_bits_whatever_instruction_set_onednn_could_use(make_project):
    """Another CPU (AVX2 only, or AVX-512) makes oneDNN pick other kernels; with the stages' own settings
    (TensorFlow off oneDNN, oneDNN capped at AVX2) a fit and its lists do not change when the caller's
    environment caps it otherwise (SSE4.1 stands in for an older kernel family, "ALL" for this machine's
    best). Left to TensorFlow's defaults the same two settings give other bits, so this test can fail."""
    variants = ("collab", "mf_content", "dae")
    root, env = _ready_to_train(make_project, variants)
    capped = [_fit_and_rank(root, env, isa, "project", variants)[0] for isa in ("ALL", "SSE41")]
    assert capped[0] == capped[1]
    uncapped = [_fit_and_rank(root, env, isa, "caller", ("collab",))[0] for isa in ("ALL", "SSE41")]
    assert uncapped[0] != uncapped[1]


@pytest.mark.e2e
def test_every_architecture_gives_the_same_bits_on_an_emulated_cpu_of_the_other_vendor(make_project):
    """qemu-user runs the same fits and lists on another CPU: an AMD EPYC Milan's CPUID (its vendor, cache
    sizes and instruction sets, which OpenBLAS, oneDNN and Eigen read to pick their code) and qemu's own
    results for the instructions that are only approximate (rsqrtps, rcpps), as Intel's and AMD's differ.
    Every predictions file keeps its bits; the rsqrt probe does not, so the emulated CPU does change
    what a CPU can change, and this test can fail (the dae failed it while it used tf.math.l2_normalize)."""
    qemu = shutil.which("qemu-x86_64")
    if qemu is None or platform.machine() != "x86_64":
        message = "needs qemu-user on x86-64 (apt-get install qemu-user): it emulates another vendor's CPU"
        pytest.fail(message) if os.environ.get("CI") == "true" else pytest.skip(message)
    # Not mf_content: qemu 7.2 itself misorders numpy's quicksort argsort of int64 keys (its time terms'
    # np.unique), which real AVX2 and AVX-512 CPUs do not (benchmarks/results/cpu_kernels.md).
    variants = ("collab", "hybrid", "dae")
    root, env = _ready_to_train(make_project, variants)
    native = _fit_and_rank(root, env, "ALL", "project", variants)[0]
    emulated = _fit_and_rank(root, env, "ALL", "project", variants, cpu=[qemu, "-cpu", "EPYC-Milan"], retries=1)[0]
    assert native.pop("rsqrt") != emulated.pop("rsqrt")
    assert native == emulated and set(native) == set(variants)


@pytest.mark.e2e
def test_numpy_code_paths_for_other_cpus_change_no_output(make_project):
    """NumPy picks AVX-512, AVX2 or baseline code for its loops and transcendental functions at run time
    (its AVX-512 log1p and log2 round some inputs otherwise); every stage outside TensorFlow gives the
    same bits with NumPy's AVX-512 paths turned off as with them on."""
    from numpy._core._multiarray_umath import __cpu_dispatch__

    avx512 = " ".join(t for t in __cpu_dispatch__ if t.startswith(("X86_V4", "AVX512")))
    root, env = make_project(only=("collab",))
    run(["movierec", "download"], root, env)
    outputs = {"embed": ["data/content/embeddings.npz"], "prepare": ["data/prepared"], "align": ["data/features/content.npy"],
               "baselines": ["data/predictions/ease.npz", "metrics/eval/bias.json", "metrics/eval/ease.json"]}
    digests = []
    numpy_log1p = "import hashlib, numpy as np; print(hashlib.sha256(np.log1p(np.arange(10**6)).tobytes()).hexdigest())"
    numpy_itself = []
    for disabled in ("", avx512):
        for stage in outputs:
            run(["movierec", stage], root, {**env, "NPY_DISABLE_CPU_FEATURES": disabled})
        digests.append({out: _digest(root, out) for outs in outputs.values() for out in outs})
        numpy_itself.append(run(["python", "-c", numpy_log1p], root, {"NPY_DISABLE_CPU_FEATURES": disabled}).stdout)
    assert digests[0] == digests[1]
    if _has_avx512():
        assert numpy_itself[0] != numpy_itself[1]  # what the stages avoid: numpy's own log1p does change


def _has_avx512() -> bool:
    with open("/proc/cpuinfo", encoding="utf-8") as f:
        return "avx512f" in f.read()


@pytest.mark.slow
def test_real_content_vectors_do_not_depend_on_blas_threads(tmp_path):
    """On latest-small the SVD's matrix products are large enough for BLAS to split them: this is
    where a thread-count dependence showed (issue 11)."""
    with zipfile.ZipFile(require_shared_data() / "ml-latest-small.zip") as archive:
        archive.extractall(tmp_path)
    write_params(tmp_path / "params.yaml", {"data": {"path": str(tmp_path / "ml-latest-small")}})
    digests = []
    for threads, one_core in ((1, True), (2, False)):
        env = {**os.environ, "OPENBLAS_NUM_THREADS": str(threads), "OMP_NUM_THREADS": str(threads)}
        subprocess.run(["movierec", "embed"], cwd=tmp_path, env=env, check=True, capture_output=True, preexec_fn=_one_core if one_core else None)
        digests.append(_digest(tmp_path, "data/content/embeddings.npz"))
    assert digests[0] == digests[1]


def test_installed_packages_are_the_locked_versions():
    """The README installs from requirements.lock; results in dvc.lock were produced with exactly these."""
    pins = dict(re.findall(r"^([A-Za-z0-9_.\-]+)==([^\s;]+)", (REPO / "requirements.lock").read_text(), re.M))
    assert {"tensorflow", "keras", "numpy", "scikit-learn", "dvc"} <= set(pins)

    def installed(name):
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return None

    wrong = {name: (version, installed(name)) for name, version in pins.items() if installed(name) != version}
    assert not wrong, f"installed versions differ from requirements.lock (pinned, installed): {wrong}; run `pip install -r requirements.lock -e \".[dev]\"`"


@pytest.mark.e2e
def test_check_drift_names_the_first_stage_that_diverged(make_project):
    root, env = make_project(only=("collab",))
    run(["dvc", "repro"], root, env)
    git_commit(root, "results")
    recorded = json.loads((root / "metrics/environment/collab.json").read_text())
    assert recorded["packages"]["tensorflow"] and recorded["blas"] and recorded["tensorflow_threads"] == 2

    # A rounding-level change to align's output, then the stages after it rerun from it.
    features = root / "data/features/content.npy"
    matrix = np.load(features)
    matrix[0, 0] = np.nextafter(matrix[0, 0], np.float32(1))
    np.save(features, matrix)
    run(["dvc", "commit", "-f", "align"], root, env)
    run(["dvc", "repro"], root, env)
    environment = json.loads((root / "metrics/environment/collab.json").read_text())
    environment["packages"]["numpy"] = "0.0.1"
    environment["instruction_set"] = "aarch64"  # as if run on ARM
    (root / "metrics/environment/collab.json").write_text(json.dumps(environment))

    result = run(["movierec", "check-drift", "--tolerance", "0"], root, env, check=False)
    out = result.stdout + result.stderr
    assert "first stage whose outputs differ from HEAD's dvc.lock: align (data/features)" in out
    assert f"packages.numpy: {recorded['packages']['numpy']} -> 0.0.1" in out
    assert recorded["instruction_set"].startswith("x86-64") and recorded["onednn_max_cpu_isa"] == "AVX2"
    assert f"CPU family {recorded['instruction_set']} -> aarch64: the same bits are not promised here" in out


def test_check_drift_says_whether_same_bits_are_promised_between_two_cpu_families():
    from movierec.drift import cpu_family_verdict

    def cpu(instruction_set, l1="32K"):
        return {"instruction_set": instruction_set, "l1_data_cache": l1}

    assert cpu_family_verdict(cpu("x86-64 AVX2"), cpu("x86-64 AVX2")) == []
    assert cpu_family_verdict(cpu("x86-64 AVX2"), cpu("x86-64 AVX2", "48K")) == []  # Eigen's blocks do not follow it (measured)
    assert "an output that differs is a bug" in cpu_family_verdict(cpu("x86-64 AVX-512", "48K"), cpu("x86-64 AVX2"))[0]
    assert "not promised" in cpu_family_verdict(cpu("x86-64 AVX-512"), cpu("arm64"))[0]
    assert "not promised" in cpu_family_verdict(cpu("x86-64 without AVX2"), cpu("x86-64 AVX2"))[0]
    assert cpu_family_verdict({}, cpu("x86-64 AVX2")) == []  # nothing recorded: nothing to judge


def test_stage_order_puts_a_stage_after_the_folder_of_outputs_it_reads():
    """report reads the folder metrics/eval, evaluate writes files inside it: report comes after."""
    from movierec.drift import stage_order

    lock = {"stages": {
        "report": {"deps": [{"path": "metrics/eval"}], "outs": [{"path": "metrics/report.md"}]},
        "evaluate": {"deps": [{"path": "data/predictions"}], "outs": [{"path": "metrics/eval/a.json"}]},
        "train": {"deps": [], "outs": [{"path": "data/predictions/a.npz"}]},
    }}
    assert stage_order(lock) == ["train", "evaluate", "report"]
