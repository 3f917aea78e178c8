"""Which TensorFlow ops give other bits on another CPU? Each op's output hashed here and under qemu-user
emulating another vendor's CPU, side by side.

    python benchmarks/emulated_cpu.py [--cpu EPYC-Milan]      # needs qemu-user (apt-get install qemu-user)

qemu-user runs this same Python and TensorFlow on an emulated CPU: its CPUID tells another vendor, other
cache sizes and instruction sets (what OpenBLAS, oneDNN and Eigen read to pick their code), and it
computes the instructions that are only approximate (rsqrtps, rcpps) its own way, as Intel's and AMD's
differ from each other. An op that prints "differs" depends on the CPU; the pipeline must not use it where
its bits reach an output. The matrix products cover the shapes the variants train with (forward and both
gradient products), including sums far deeper than a 32 KiB L1 cache's blocks. With the stages' settings
(`environment.pin_kernels`), as every stage runs.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import sys

# (m, k, n): m x k times k x n. collab and hybrid at batch 32 and 4096 (the large profile), mf_content's
# content projection, the dae's two layers over 9,724 movies, and a few larger ones.
PRODUCTS = [(32, 400, 32), (4096, 100, 10), (4096, 332, 32), (512, 300, 64), (4096, 300, 16), (128, 9724, 400),
            (128, 400, 9724), (512, 20000, 64), (4096, 4096, 8), (1000, 1000, 1000)]


def probe() -> dict[str, str]:
    """Each op's output md5 (prefix), computed in this process."""
    from movierec.environment import pin_kernels

    pin_kernels()
    import numpy as np
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(2)
    tf.config.threading.set_inter_op_parallelism_threads(2)
    tf.config.experimental.enable_op_determinism()
    rng = np.random.default_rng(0)

    def md5(*arrays) -> str:
        return hashlib.md5(b"".join(np.asarray(a).tobytes() for a in arrays)).hexdigest()[:10]

    out = {}
    for m, k, n in PRODUCTS:
        a, b, dy = (tf.constant(rng.normal(size=s).astype(np.float32)) for s in ((m, k), (k, n), (m, n)))
        out[f"matmul {m}x{k} . {k}x{n}, and its gradients"] = md5(
            tf.matmul(a, b), tf.matmul(dy, b, transpose_b=True), tf.matmul(a, dy, transpose_a=True))
    x = tf.constant(rng.random(1 << 16, dtype=np.float32) * 100 + 0.01)
    rows = tf.constant(rng.random((64, 1000), dtype=np.float32))
    logits = tf.constant(rng.normal(size=(128, 1000)).astype(np.float32))
    weights = rng.random((128, 1000))
    labels = tf.constant((weights / weights.sum(axis=1, keepdims=True)).astype(np.float32))  # not tf.nn.softmax: it differs
    for name, op in [
        ("sqrt", lambda: tf.sqrt(x)), ("divide", lambda: 1.0 / x), ("exp", lambda: tf.exp(x / 50)),
        ("log", lambda: tf.math.log(x)), ("tanh", lambda: tf.tanh(x / 50)), ("sigmoid", lambda: tf.sigmoid(x / 50)),
        ("reduce_sum over 1,000", lambda: tf.reduce_sum(rows, axis=1)),
        ("softmax cross-entropy (the dae's loss) and its gradient", lambda: _xent(tf, labels, logits)),
        ("rsqrt", lambda: tf.math.rsqrt(x)), ("reciprocal", lambda: tf.math.reciprocal(x)),
        ("l2_normalize", lambda: tf.math.l2_normalize(rows, axis=1)), ("softmax", lambda: tf.nn.softmax(logits)),
    ]:
        result = op()
        out[name] = md5(*result) if isinstance(result, tuple) else md5(result)
    return out


def _xent(tf, labels, logits):
    with tf.GradientTape() as tape:
        tape.watch(logits)
        loss = tf.nn.softmax_cross_entropy_with_logits(labels, logits)
    return loss, tape.gradient(loss, logits)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cpu", default="EPYC-Milan", help="qemu's CPU model (qemu-x86_64 -cpu help)")
    parser.add_argument("--probe", action="store_true", help=argparse.SUPPRESS)  # run the ops, print hashes
    args = parser.parse_args()
    if args.probe:
        for name, digest in probe().items():
            print(f"{digest}\t{name}")
        return
    qemu = shutil.which("qemu-x86_64")
    if qemu is None:
        sys.exit("emulated_cpu: qemu-x86_64 not found; install it (apt-get install qemu-user)")

    def run(prefix: list[str]) -> dict[str, str]:
        result = subprocess.run([*prefix, sys.executable, __file__, "--probe"], capture_output=True, text=True, check=True)
        return {name: digest for digest, name in (line.split("\t") for line in result.stdout.splitlines())}

    native, emulated = run([]), run([qemu, "-cpu", args.cpu])
    width = max(map(len, native))
    print(f"{'op':{width}}  {'this CPU':10}  {args.cpu:10}  verdict")
    for name, digest in native.items():
        print(f"{name:{width}}  {digest:10}  {emulated[name]:10}  {'same bits' if digest == emulated[name] else 'differs'}")


if __name__ == "__main__":
    main()
