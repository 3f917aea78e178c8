"""The notebook's `nlp_weights`: content vectors stacked in movie-encoder order, zeros where a movie has none."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from movierec.errors import MovierecError


def load_archive(path: Path, dim: int) -> dict[str, np.ndarray]:
    """Load an untrusted .npz (pickles refused) and check that keys are movieIds and vectors finite and `dim` long."""
    path = Path(path)
    if not path.is_file():
        raise MovierecError(f"{path}: content archive not found; run `dvc repro embed` or fix embed.archive in params.yaml")
    try:
        archive = np.load(path, allow_pickle=False)
    except (ValueError, OSError, zipfile.BadZipFile) as exc:
        raise MovierecError(f"{path}: not a readable .npz archive ({exc}); rebuild it with np.savez") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise MovierecError(f"{path}: a single array, not an .npz archive keyed by movieId")
    vectors = {}
    with archive:
        for key in archive.files:
            if not key.lstrip("-").isdigit():
                raise MovierecError(f"{path}: key {key!r} is not a movieId; keys must be movieId strings like '1'")
            try:
                vector = archive[key]
            except ValueError:
                raise MovierecError(f"{path}: entry {key!r} holds pickled objects, which are refused; store float arrays") from None
            if vector.shape != (dim,) or not np.issubdtype(vector.dtype, np.number):
                raise MovierecError(
                    f"{path}: movieId {key}: vector of shape {vector.shape}, expected ({dim},); "
                    "rebuild the archive or set embed.dim to its length"
                )
            if not np.isfinite(vector).all():
                raise MovierecError(f"{path}: movieId {key}: vector has NaN or inf values; fix the archive")
            vectors[str(int(key))] = vector.astype(np.float32)
    return vectors


def align(archive: dict[str, np.ndarray], movie_ids: np.ndarray, dim: int) -> tuple[np.ndarray, dict]:
    """Return the (n_movies, dim) matrix in encoder order and its coverage."""
    matrix = np.zeros((len(movie_ids), dim), dtype=np.float32)
    found = 0
    for row, movie_id in enumerate(movie_ids):
        vector = archive.get(str(movie_id))
        if vector is not None:
            matrix[row] = vector
            found += 1
    coverage = {"movies": len(movie_ids), "with_vector": found, "coverage": found / len(movie_ids)}
    return matrix, coverage
