"""explore: the notebook's "Embeddings exploration": genre coherence, neighbours, a 2-D map, a projector export."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from movierec import data, predictions
from movierec.errors import MovierecError
from movierec.explore import explore_spaces, movies_in_encoder_order
from movierec.params import core
from movierec.params import data as data_params
from movierec.params import train as train_params
from movierec.paths import CONTENT_MATRIX, EXPLORE_DIR, METRICS_DIR, PREPARED_DIR
from movierec.prepare import load_prepared
from movierec.stages import arguments, one_line_errors


def main(args) -> None:
    raw = core.read(args.params)
    folder, seed = Path(data_params.load(raw, args.params).path), train_params.load(raw, source=args.params).seed
    prepared = load_prepared(PREPARED_DIR)
    movies = movies_in_encoder_order(data.load_movies(folder), prepared.movie_ids)
    if not CONTENT_MATRIX.is_file():
        raise MovierecError(f"{CONTENT_MATRIX}: missing; run `dvc repro align` first")
    v = args.variant
    coherence = explore_spaces(
        predictions.read(predictions.path(v), "movie_vectors")["movie_vectors"], np.load(CONTENT_MATRIX, allow_pickle=False),
        movies, prepared.train.movie, seed,
        coherence_path=METRICS_DIR / "explore" / f"{v}.json",
        neighbours_path=METRICS_DIR / "neighbours" / f"{v}.json",
        map_png=METRICS_DIR / "plots" / f"map_{v}.png",
        projector_dir=EXPLORE_DIR / v,
    )
    print(", ".join(
        f"{name}: coherence {c['genre_coherence']:.3f} vs random {c['random_baseline']:.3f}" if c["genre_coherence"] is not None
        else f"{name}: coherence not computed ({c['reason']})"
        for name, c in coherence.items()
    ))


if __name__ == "__main__":
    with one_line_errors():
        main(arguments(__doc__, variant=True))
