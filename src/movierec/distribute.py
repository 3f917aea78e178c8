"""Data-parallel training on `tf.distribute`: which strategy, which task this process is, and a local launcher.

`train.distribute` chooses the strategy: `none` (the default strategy), `mirrored` (the local
devices; one on a CPU) or `multi_worker` (synchronous all-reduce between processes, configured
the standard way by the `TF_CONFIG` environment variable). Every worker runs the same command on the
same data and params; only the chief writes outputs. `launch` starts N such workers on 127.0.0.1
for trying it on one machine; on a real cluster each host sets its own `TF_CONFIG` and nothing is
launched.
"""

from __future__ import annotations

import functools
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

from movierec.errors import MovierecError
from movierec.quiet import import_tensorflow

# No per-collective timeout (`CommunicationOptions(timeout_seconds=...)`): TensorFlow arms it with a
# sleeping thread per collective, and with one all-reduce per step the process ran out of threads
# within an epoch here. A worker that dies is caught by the coordination service's heartbeats, which
# MultiWorkerMirroredStrategy turns on: the other workers' next collective fails within seconds.


@dataclass(frozen=True)
class Task:
    """This process's place in a `TF_CONFIG` cluster."""

    kind: str  # "chief" or "worker"
    index: int
    is_chief: bool
    rank: int  # this worker's replica number: the chief first, then the workers in order
    count: int  # how many workers the cluster has


def current_task(environ=os.environ) -> Task | None:
    """The task `TF_CONFIG` names, or None when it is unset (a single process, which is the chief).

    The chief is the "chief" task if the cluster has one, else worker 0 (TensorFlow's own rule)."""
    raw = environ.get("TF_CONFIG")
    if not raw:
        return None
    try:
        config = json.loads(raw)
        cluster, task = config["cluster"], config["task"]
        kind, index = task["type"], int(task["index"])
        members = cluster[kind]
    except (ValueError, KeyError, TypeError) as exc:
        raise MovierecError(
            f"TF_CONFIG: not a valid cluster spec ({type(exc).__name__}: {exc}); expected "
            '{"cluster": {"worker": ["host:port", ...]}, "task": {"type": "worker", "index": i}}'
        ) from None
    if kind not in ("chief", "worker") or not 0 <= index < len(members):
        raise MovierecError(
            f"TF_CONFIG: task {kind} {index} is not in the cluster {sorted(cluster)}; "
            "task.type must be chief or worker and task.index below the number of its addresses"
        )
    has_chief = "chief" in cluster
    is_chief = kind == "chief" or (not has_chief and index == 0)
    rank = index + (1 if has_chief and kind == "worker" else 0)
    count = len(cluster.get("chief", [])) + len(cluster.get("worker", []))
    return Task(kind, index, is_chief, rank, count)


def is_chief(kind: str) -> bool:
    """Whether this process writes the outputs: always, unless it is a non-chief multi_worker task."""
    task = current_task() if kind == "multi_worker" else None
    return task is None or task.is_chief


@functools.cache
def make_strategy(kind: str, threads: int | None = None):
    """The `tf.distribute` strategy for `train.distribute`; None for `none` (Keras' default).

    Cached: a process makes at most one. Call it before anything else starts TensorFlow's runtime:
    the strategies configure the runtime's devices and collectives themselves, and the runtime takes
    its `threads` (train.threads) only before it starts."""
    if kind == "none":
        return None
    if kind == "multi_worker" and current_task() is None:
        raise MovierecError(
            "train.distribute is multi_worker but TF_CONFIG is not set; run `movierec train VARIANT` with "
            "train.workers > 1 to launch local workers, or set TF_CONFIG on each host (see docs/distributed.md)"
        )
    made = []

    def start_runtime():
        import tensorflow as tf

        made.append(tf.distribute.MirroredStrategy() if kind == "mirrored" else tf.distribute.MultiWorkerMirroredStrategy())

    if "tensorflow" in sys.modules:
        start_runtime()  # fails with TensorFlow's own message if the runtime has already started
    else:
        import_tensorflow(threads, start_runtime)
    return made[0]


def this_workers_share(dataset):
    """Map each global batch ((user, movie), rating) to this worker's contiguous slice of it, plus the
    global batch size. Every worker builds the same seeded batches, so together they cover each global
    batch exactly once, and the step's maths matches one worker's up to float rounding."""
    import tensorflow as tf

    task = current_task()
    rank, count = (task.rank, task.count) if task else (0, 1)

    def share(inputs, rating):
        n = tf.shape(rating)[0]
        lo, hi = n * rank // count, n * (rank + 1) // count
        return tuple(x[lo:hi] for x in inputs), rating[lo:hi], tf.cast(n, tf.float32)

    return dataset.map(share)


def should_launch(kind: str, workers: int) -> bool:
    """Launch local workers when multi_worker is asked for and this process is not already a task."""
    return kind == "multi_worker" and current_task() is None and workers > 1


def free_ports(n: int) -> list[int]:
    """n distinct free TCP ports on 127.0.0.1 (held open together so they differ, then released)."""
    sockets = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def local_tf_configs(workers: int) -> list[str]:
    addresses = [f"127.0.0.1:{port}" for port in free_ports(workers)]
    return [json.dumps({"cluster": {"worker": addresses}, "task": {"type": "worker", "index": i}}) for i in range(workers)]


def launch(argv: list[str], workers: int, out=None) -> None:
    """Run `argv` as `workers` local processes, each with its own TF_CONFIG; forward their output line
    by line as "[worker i] ..."; return when all succeed. If one fails, stop the others and raise a
    one-line MovierecError (outputs are written only by the chief, atomically, after success, so a
    failed run leaves none). The workers die with the launcher, even if it is killed (SIGKILL)."""
    out = out or sys.stdout
    lines: queue.Queue = queue.Queue()
    procs = [
        subprocess.Popen(argv, env={**os.environ, "TF_CONFIG": tf_config, "PYTHONUNBUFFERED": "1"},
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, preexec_fn=_die_with_parent)
        for tf_config in local_tf_configs(workers)
    ]
    readers = [threading.Thread(target=_forward, args=(i, proc, lines), daemon=True) for i, proc in enumerate(procs)]
    for reader in readers:
        reader.start()
    previous = signal.signal(signal.SIGTERM, _exit_on_sigterm)  # so `finally` stops the workers
    failed = None
    try:
        running = set(range(workers))
        while running and not failed:
            try:
                i, line = lines.get(timeout=0.2)
                out.write(f"[worker {i}] {line}")
                out.flush()
            except queue.Empty:
                pass
            for i in sorted(running):
                code = procs[i].poll()
                if code is not None:
                    running.discard(i)
                    failed = failed or ((i, code) if code != 0 else None)
    finally:
        signal.signal(signal.SIGTERM, previous)
        _stop(procs)
        for reader in readers:
            reader.join(timeout=5)
        while not lines.empty():
            i, line = lines.get()
            out.write(f"[worker {i}] {line}")
        out.flush()
    if failed:
        i, code = failed
        how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
        raise MovierecError(f"worker {i} of {workers} {how}; the run was stopped and wrote no outputs (its log is above)")


def _exit_on_sigterm(signum, frame):
    raise SystemExit(128 + signum)


def _die_with_parent() -> None:
    """In the child, before exec: ask Linux to SIGKILL it when the launcher dies (no-op elsewhere)."""
    if sys.platform.startswith("linux"):
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


STOP_GRACE_SECONDS = 10


def _stop(procs: list[subprocess.Popen]) -> None:
    """Interrupt the workers still running (SIGINT: their atomic writes clean up their temp files),
    then kill those that have not exited within the grace period (stuck in a collective)."""
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for proc in procs:
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _forward(i: int, proc: subprocess.Popen, lines: queue.Queue) -> None:
    for line in proc.stdout:
        lines.put((i, line))
