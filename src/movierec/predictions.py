"""The predictions file, data/predictions/<model>.npz: one schema, one writer, one reader.

The rank stage writes one per variant, the baselines stage one for EASE; evaluation, exploration,
`recommend` and `similar` read it instead of a model, so none of them pays TensorFlow's start-up. It
is small: users x top_n at most, never users x movies. Its arrays (`SCHEMA`):
- `top_users` (n,) int32: the encoded users `scoring.ranking_users` picks for ranking, sorted;
- `top_movies` (n, evaluate.top_n) int32: their best movies not rated in train, best first, PAD = -1;
- `top_scores` (n, evaluate.top_n) float32: the raw scores of those movies (NaN at PAD): a rating
  model's predicted ratings, a ranker's relevance scores;
- `n_params` int64: the model's parameter count;
- `test_predictions` (n_test,) float32: a rating model's raw prediction for each test pair, in
  data/prepared/test.npz order (clipped to the rating scale where used);
- `carve_rows` (n_held,) int64 and `carve_predictions` (n_held,) float32: for a rating model with a
  validation carve, the training rows held out from the model fitted on the carve (data/prepared
  train order) and that model's predictions of them (with its time terms): the blend stage's weights;
- `movie_vectors` (n_movies, d) float32: the learned movie representation (explore, similar);
- the on-demand arrays that score any user (an architecture's `serving`): for matrix factorisation
  `offset`, `user_bias`, `movie_bias`, `user_factors` (rating = offset + user_bias[u] + movie_bias[m]
  + user_factors[u] . movie_vectors[m]); for history rankers (the dae, EASE) `history_weighting`
  (positive_threshold, score_low_weight) and, where the catalogue is capped, `catalogue` (the movies
  it scores, sorted; the others rank last); for rating models ranked with a popularity prior,
  `ranking_prior` (n_movies,), added to the predicted ratings to rank, never to the ratings shown.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from movierec.atomic import atomic_path
from movierec.errors import MovierecError

PREDICTIONS_DIR = Path("data/predictions")
SCHEMA = {
    "top_users": np.int32,
    "top_movies": np.int32,
    "top_scores": np.float32,
    "n_params": np.int64,
    "test_predictions": np.float32,
    "carve_rows": np.int64,
    "carve_predictions": np.float32,
    "movie_vectors": np.float32,
    "offset": np.float32,
    "user_bias": np.float32,
    "movie_bias": np.float32,
    "user_factors": np.float32,
    "history_weighting": np.float32,
    "catalogue": np.int32,
    "ranking_prior": np.float32,
}
REQUIRED = ("top_users", "top_movies", "top_scores", "n_params")


def path(name: str) -> Path:
    return PREDICTIONS_DIR / f"{name}.npz"


def write(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Check `arrays` against the schema, then save them (in the order given) atomically."""
    unknown = sorted(set(arrays) - set(SCHEMA))
    missing = [key for key in REQUIRED if key not in arrays]
    wrong = [key for key, value in arrays.items() if key in SCHEMA and np.asarray(value).dtype != SCHEMA[key]]
    if unknown or missing or wrong:
        raise ValueError(f"{path}: predictions off the schema: unknown {unknown}, missing {missing}, wrong dtype {wrong}")
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)


def read(path: Path, *keys: str, optional: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
    """The `keys` (default: every array) of a predictions file, plus those of `optional` it has.

    Only the arrays asked for are read. A missing file or key is one line naming it and the fix.
    """
    path = Path(path)
    if not path.is_file():
        raise MovierecError(f"{path}: not found; run `dvc repro` first (or `dvc pull` if a remote is set up)")
    with np.load(path, allow_pickle=False) as archive:
        missing = [key for key in keys if key not in archive.files]
        if missing:
            raise MovierecError(f"{path}: no {missing[0]!r} array (written by an older version?); run `dvc repro` to rank again")
        wanted = [*keys, *(key for key in optional if key in archive.files)] if keys or optional else archive.files
        return {key: archive[key] for key in wanted}
