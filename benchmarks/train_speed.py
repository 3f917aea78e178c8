"""Training throughput: the notebook's own code against the project's training path, side by side.

    python benchmarks/train_speed.py [--reps 5] [--epochs 15] [--skip-rmse]

Both candidates use the same data (the notebook's split of MovieLens latest-small, read from
data/prepared, so run `dvc repro prepare` first), the notebook's collab architecture, batch 32 and
Adam. They are timed one epoch at a time, alternating order each round, after a warm-up epoch; the
script prints median samples/s, their ratio, and each one's test RMSE after a full 15-epoch run.

- reference: the notebook's `make_model` and `model.fit` call as written, ported to Keras 3
  (`tensorflow.keras` -> `keras`), nothing else changed;
- movierec: the collab architecture's `build` + `movierec.training.regime.compiled_model` with params.yaml's `train`
  section (fused Adam, steps_per_execution), fed by `movierec.examples.rating_batches`; and the same with
  `optimizer: lazy_adam`.

For the test RMSE the reference runs as the notebook did, with no seed: Keras then reshuffles the
rows every epoch. It runs a second time after `keras.utils.set_random_seed`, which makes Keras 3
replay one batch order in every epoch (a different training regime, shown for comparison).
movierec is seeded from params.yaml and reshuffles every epoch.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402


def notebook_make_model(n_users, n_movies, embedding_size=50, dense_size=10, min_rating=0.0, max_rating=5.0, join_method="concat"):
    """The notebook's cell, verbatim but for the Keras 3 imports."""
    from keras import Model
    from keras.layers import Concatenate, Dense, Dropout, Embedding, Flatten, Input, Lambda, Multiply
    from keras.regularizers import l2

    user = Input(shape=(1,))
    u_emb = Embedding(n_users, embedding_size, embeddings_initializer="he_normal", embeddings_regularizer=l2(1e-6))(user)
    u_emb = Flatten()(u_emb)
    movie = Input(shape=(1,))
    m_emb = Embedding(n_movies, embedding_size, embeddings_initializer="he_normal", embeddings_regularizer=l2(1e-6))(movie)
    m_emb = Flatten()(m_emb)
    if join_method == "concat":
        x = Concatenate()([u_emb, m_emb])
    elif join_method == "product":
        x = Multiply()([u_emb, m_emb])
    else:
        raise ValueError(f"Unsupported join method: {join_method}")
    x = Dropout(0.05)(x)
    x = Dense(dense_size, activation="relu")(x)
    x = Dropout(0.5)(x)
    x = Dense(1, activation="sigmoid")(x)
    x = Lambda(lambda x: x * (max_rating - min_rating) + min_rating)(x)
    model = Model(inputs=[user, movie], outputs=x)
    model.compile(loss="mse", optimizer="adam")
    return model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--skip-rmse", action="store_true")
    args = ap.parse_args()

    import keras
    import tensorflow as tf

    from movierec.examples import ModelInputs, RatingPairs, rating_batches
    from movierec.params.project import load_params
    from movierec.prepare import load_prepared
    from movierec.training.regime import compiled_model, seed_everything

    params = load_params()
    prepared = load_prepared("data/prepared")
    n_users, n_movies = len(prepared.user_ids), len(prepared.movie_ids)
    variant = params.variants["collab"]
    train_params = variant.train

    def ours(optimizer):
        def make():
            inputs = ModelInputs(n_users, n_movies, (0.0, 5.0), None, 0.0)
            t = dataclasses.replace(train_params, optimizer=optimizer)
            return compiled_model(variant.module, variant.settings, params.shared(variant), inputs, RatingPairs(n_movies), t, None)
        return make

    candidates = {
        "reference": lambda: notebook_make_model(n_users, n_movies),
        f"movierec ({train_params.optimizer})": ours(train_params.optimizer),
        "movierec (lazy_adam)": ours("lazy_adam"),
    }
    x, y = prepared.train.inputs(), prepared.train.rating
    n = len(y)

    def fit(name, model, epochs, **kwargs):
        """The reference as the notebook calls fit; movierec through its own input pipeline."""
        if name == "reference":
            return model.fit(x, y, batch_size=32, epochs=epochs, verbose=0, **kwargs)
        return model.fit(rating_batches(prepared.train, 32, seed=train_params.seed), epochs=epochs, shuffle=False, verbose=0, **kwargs)

    def test_rmse(name, seed):
        """Test RMSE and seconds of one full run; seed None is the notebook's unseeded run."""
        if seed is not None:
            seed_everything(seed)
        model = candidates[name]()
        start = time.perf_counter()
        fit(name, model, args.epochs, validation_data=(prepared.test.inputs(), prepared.test.rating))
        pred = model.predict(prepared.test.inputs(), batch_size=65536, verbose=0).reshape(-1)
        return float(np.sqrt(np.mean((pred - prepared.test.rating) ** 2))), time.perf_counter() - start

    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, TF {tf.__version__}, Keras {keras.__version__}")
    # The unseeded reference runs first: once anything is seeded (and op determinism is on), TF cannot go back.
    unseeded = None if args.skip_rmse else test_rmse("reference", None)

    print(f"{n} training rows, batch 32, {args.reps} alternating single-epoch repetitions after a warm-up epoch")
    seed_everything(train_params.seed)
    built = {name: make() for name, make in candidates.items()}
    for name, model in built.items():
        fit(name, model, 1)
    seconds = {name: [] for name in built}
    names = list(built)
    for rep in range(args.reps):
        for name in names if rep % 2 == 0 else names[::-1]:
            start = time.perf_counter()
            fit(name, built[name], 1)
            seconds[name].append(time.perf_counter() - start)
    reference = np.median(seconds["reference"])
    for name in names:
        median = np.median(seconds[name])
        print(f"{name:26s} {n / median:9.0f} samples/s  ratio {reference / median:5.2f}  (epochs: {', '.join(f'{s:.2f}' for s in seconds[name])} s)")

    if args.skip_rmse:
        return
    print(f"\nTest RMSE after {args.epochs} epochs (test split as validation_data, as in the notebook):")
    results = {"reference": (*unseeded, "no seed, as the notebook")}
    results["reference, seeded"] = (*test_rmse("reference", train_params.seed), f"seed {train_params.seed}: one batch order every epoch")
    for name in names[1:]:
        results[name] = (*test_rmse(name, train_params.seed), f"seed {train_params.seed}")
    for label, (rmse, secs, note) in results.items():
        print(f"{label:26s} test RMSE {rmse:.4f}  (diff vs reference {rmse - results['reference'][0]:+.4f}), {secs:.0f} s, {note}")


if __name__ == "__main__":
    main()
