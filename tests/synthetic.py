"""Tiny MovieLens-format data with planted structure, for fast tests.

Movies fall into three genre clusters; each user loves one cluster (ratings near 4.5) and dislikes the
others (near 2), so a working model must learn cluster membership from ratings alone.
"""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

CLUSTERS = [
    ("Animation|Children|Comedy", "cartoon family pixar"),
    ("Action|Thriller", "explosions heist chase"),
    ("Drama|Romance", "love tearjerker wedding"),
]


def make_movielens(folder: Path, n_users: int = 60, n_movies: int = 45, seed: int = 0) -> Path:
    """Write ratings.csv, movies.csv and tags.csv into `folder` and return it."""
    rng = np.random.default_rng(seed)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    movie_ids = np.arange(n_movies) * 7 + 1  # sparse ids, so encoding matters
    cluster = np.arange(n_movies) % len(CLUSTERS)
    movies = pd.DataFrame(
        {
            "movieId": movie_ids,
            "title": [f"Film {i}, The ({1980 + i})" for i in range(n_movies)],
            "genres": [CLUSTERS[c][0] for c in cluster],
        }
    )
    rows = []
    for user in range(1, n_users + 1):
        liked = user % len(CLUSTERS)
        for m in rng.choice(n_movies, size=int(n_movies * 0.6), replace=False):
            base = 4.5 if cluster[m] == liked else 2.0
            rating = float(np.clip(np.round((base + rng.normal(0, 0.4)) * 2) / 2, 0.5, 5.0))
            rows.append((user, int(movie_ids[m]), rating, 964982703 + len(rows)))
    ratings = pd.DataFrame(rows, columns=["userId", "movieId", "rating", "timestamp"])
    tags = pd.DataFrame(
        [(1, int(movie_ids[m]), CLUSTERS[cluster[m]][1].split()[m % 3], 964982703) for m in range(n_movies)],
        columns=["userId", "movieId", "tag", "timestamp"],
    )
    ratings.to_csv(folder / "ratings.csv", index=False)
    movies.to_csv(folder / "movies.csv", index=False)
    tags.to_csv(folder / "tags.csv", index=False)
    return folder


def zip_movielens(folder: Path, zip_path: Path) -> Path:
    """Pack a MovieLens-format folder the way the official archive is laid out."""
    with zipfile.ZipFile(zip_path, "w") as archive:
        for path in sorted(Path(folder).iterdir()):
            archive.write(path, f"ml-latest-small/{path.name}")
    return zip_path


def sha256s(folder: Path) -> dict[str, str]:
    return {name: hashlib.sha256((Path(folder) / name).read_bytes()).hexdigest() for name in ("ratings.csv", "movies.csv")}


def make_sparse_movielens(folder: Path, n_ratings: int = 3000, n_users: int = 20, n_movies: int = 1200, seed: int = 0) -> Path:
    """Like the first 3,000 rows of latest-small: few users, a large catalogue, so hardly any movie has
    20 ratings. Movie popularity is skewed (Zipf); each user rates n_ratings / n_users distinct movies."""
    rng = np.random.default_rng(seed)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    weights = 1.0 / np.arange(1, n_movies + 1) ** 0.7
    per_user = n_ratings // n_users
    rows = []
    for user in range(1, n_users + 1):
        for m in rng.choice(n_movies, size=per_user, replace=False, p=weights / weights.sum()):
            rows.append((user, int(m) * 3 + 1, float(rng.integers(1, 11)) / 2, 964982703 + len(rows)))
    pd.DataFrame(rows, columns=["userId", "movieId", "rating", "timestamp"]).to_csv(folder / "ratings.csv", index=False)
    pd.DataFrame({
        "movieId": np.arange(n_movies) * 3 + 1,
        "title": [f"Picture {i} ({1950 + i % 70})" for i in range(n_movies)],
        "genres": [CLUSTERS[i % len(CLUSTERS)][0] for i in range(n_movies)],
    }).to_csv(folder / "movies.csv", index=False)
    return folder
