"""Content vectors per movie, in the notebook's archive format: an .npz keyed by movieId strings.

The notebook loaded a ready-made `embeddings.npz`. We build ours from the dataset's own text
(title with year, genres, user tags) with TF-IDF and a seeded truncated SVD, so it is deterministic,
the same bits on any CPU (portable_linalg.py); or, where the release has one, from its tag genome
(`embed.source: genome`).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from movierec.atomic import atomic_path
from movierec.errors import MovierecError
from movierec.portable_linalg import normalize_rows, truncated_svd


YEAR = r"\s*\((\d{3})\d\)\s*$"  # "Godfather, The (1972)": the release year at the end of a title


def movie_texts(movies: pd.DataFrame, tags: pd.DataFrame) -> pd.Series:
    """One document per movie: title, its decade, genres as words, and all its user tags.

    The release year becomes a decade word ("1970s"): as a title word, a year is rare enough for
    TF-IDF to weigh it like a topic, and similar-movie lists filled up with unrelated films of the
    same year. A decade is shared by hundreds of movies, so it informs without dominating.
    """
    genres = movies["genres"].str.replace("(no genres listed)", "", regex=False).str.replace("|", " ", regex=False)
    tag_text = tags.groupby("movieId")["tag"].agg(" ".join)
    decade = movies["title"].str.extract(YEAR, expand=False).radd("").add("0s").fillna("")
    title = movies["title"].str.replace(YEAR, "", regex=True)
    text = title + " " + decade + " " + genres + " " + movies["movieId"].map(tag_text).fillna("")
    return pd.Series(text.to_numpy(), index=movies["movieId"].to_numpy())


def tfidf(texts: pd.Series, min_df: int):
    """Sparse TF-IDF rows, as scikit-learn's TfidfVectorizer(min_df, sublinear_tf=True) computes them:
    (1 + log tf) * (1 + log((1 + n) / (1 + df))), rows L2-normalised; but with the C library's log (one
    call per distinct count), not NumPy's, whose AVX-512 code rounds some values otherwise."""
    from sklearn.feature_extraction.text import CountVectorizer

    try:
        counts = CountVectorizer(min_df=min_df, dtype=np.int64).fit_transform(texts.to_numpy()).tocsr()
    except ValueError:
        raise MovierecError(f"embed: no term appears in {min_df}+ movies; lower embed.min_df in params.yaml") from None
    counts.sort_indices()
    n_docs = counts.shape[0]
    doc_freq = np.bincount(counts.indices, minlength=counts.shape[1])
    log = np.vectorize(math.log, otypes=[np.float64])
    tf_values, tf_at = np.unique(counts.data, return_inverse=True)
    df_values, df_at = np.unique(doc_freq, return_inverse=True)
    idf = (1.0 + log((1.0 + n_docs) / (1.0 + df_values)))[df_at.reshape(-1)]
    matrix = counts.astype(np.float64)
    matrix.data = (1.0 + log(tf_values))[tf_at.reshape(-1)] * idf[counts.indices]
    norms = np.sqrt(np.bincount(np.repeat(np.arange(n_docs), np.diff(matrix.indptr)), weights=matrix.data * matrix.data, minlength=n_docs))
    matrix.data /= np.repeat(np.where(norms > 0, norms, 1.0), np.diff(matrix.indptr))
    return matrix


def build_content_vectors(texts: pd.Series, *, dim: int, min_df: int, seed: int) -> dict[str, np.ndarray]:
    """TF-IDF then truncated SVD to `dim` components, rows L2-normalised; returns {movieId: float32 vector}."""
    matrix = tfidf(texts, min_df)
    n_terms = matrix.shape[1]
    if dim >= min(n_terms, matrix.shape[0]):
        raise MovierecError(
            f"params.yaml: embed.dim={dim} must be below both the vocabulary size ({n_terms} terms) "
            f"and the number of movies ({matrix.shape[0]}); lower embed.dim"
        )
    vectors = normalize_rows(truncated_svd(matrix, dim, seed)).astype(np.float32)
    return {str(movie_id): row for movie_id, row in zip(texts.index, vectors)}


def genome_vectors(scores: pd.DataFrame, *, dim: int, seed: int) -> dict[str, np.ndarray]:
    """Tag-genome relevances (movieId, tagId, relevance rows) -> {movieId: float32 vector of length `dim`}.

    One dense float32 row of tag relevances per movie that has a genome row (13,816 x 1,128 on ml-25m,
    about 62 MB), centred per tag, reduced by a seeded truncated SVD, rows L2-normalised like the text
    vectors. Movies without genome rows get no key: align gives them zeros and counts them.
    """
    movie_ids, movie_row = np.unique(scores["movieId"].to_numpy(), return_inverse=True)
    tag_ids, tag_col = np.unique(scores["tagId"].to_numpy(), return_inverse=True)
    if dim >= min(len(tag_ids), len(movie_ids)):
        raise MovierecError(
            f"params.yaml: embed.dim={dim} must be below both the number of genome tags ({len(tag_ids)}) "
            f"and of movies with a genome ({len(movie_ids)}); lower embed.dim"
        )
    relevance = np.zeros((len(movie_ids), len(tag_ids)), dtype=np.float32)
    seen = np.zeros(relevance.shape, dtype=bool)
    relevance[movie_row, tag_col] = scores["relevance"].to_numpy(dtype=np.float32)
    seen[movie_row, tag_col] = True
    if int(seen.sum()) != len(scores):
        raise MovierecError("genome-scores.csv: some (movieId, tagId) pairs appear more than once; keep one row per pair")
    del seen
    relevance -= relevance.mean(axis=0, dtype=np.float64).astype(np.float32)
    vectors = normalize_rows(truncated_svd(relevance, dim, seed)).astype(np.float32)
    return {str(movie_id): row for movie_id, row in zip(movie_ids, vectors)}


def save_archive(vectors: dict[str, np.ndarray], path: Path) -> None:
    with atomic_path(path) as tmp:
        np.savez(tmp, **vectors)
