"""The notebook's preprocessing, exactly: label-encode users and movies over all ratings, then split by rows.

LabelEncoder maps each id to its rank among the sorted unique ids, so the encoders are just the sorted
id arrays. The split is sklearn's `train_test_split` on the rows in file order: any change of order or
of the call changes which rows land in test.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from movierec.atomic import atomic_path
from movierec.errors import MovierecError

SECONDS_PER_DAY = 86_400

if TYPE_CHECKING:  # the stages that load a split need no pandas (its import costs a few tenths of a second)
    import pandas as pd


@dataclass(frozen=True)
class Split:
    """Encoded (user, movie, rating, day) rows; `user_ids[u]` / `movie_ids[m]` give back the original ids.

    `day` is the rating's day (int32, days since 1970-01-01 UTC), what the time-aware baseline reads;
    None in a split built by hand without one, which reads as every rating on day 0.
    """

    user: np.ndarray
    movie: np.ndarray
    rating: np.ndarray
    day: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.rating)

    def inputs(self) -> list[np.ndarray]:
        return [self.user, self.movie]

    def take(self, rows: np.ndarray) -> Split:
        """The rows `rows` (indices) of this split, in that order."""
        return Split(self.user[rows], self.movie[rows], self.rating[rows], None if self.day is None else self.day[rows])

    def days(self) -> np.ndarray:
        """`day`, or zeros without one."""
        return np.zeros(len(self), dtype=np.int32) if self.day is None else self.day


@dataclass(frozen=True)
class Prepared:
    user_ids: np.ndarray
    movie_ids: np.ndarray
    train: Split
    test: Split

    def carve(self, held_rows: np.ndarray) -> Prepared:
        """The validation carve as a split: the training rows not in `held_rows` as its train, those as
        its test. The test split is not in it."""
        fit_rows = np.setdiff1d(np.arange(len(self.train)), held_rows)
        return Prepared(self.user_ids, self.movie_ids, self.train.take(fit_rows), self.train.take(held_rows))

    def counts(self) -> dict[str, int]:
        return {
            "n_users": len(self.user_ids),
            "n_movies": len(self.movie_ids),
            "n_ratings": len(self.train) + len(self.test),
            "n_train": len(self.train),
            "n_test": len(self.test),
        }


def prepare(ratings: pd.DataFrame, *, test_size: float, seed: int) -> Prepared:
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import LabelEncoder

    n = len(ratings)
    n_test = int(np.ceil(test_size * n))
    if n_test < 1 or n - n_test < 1:
        raise MovierecError(
            f"ratings: {n} rows are too few to split with prepare.test_size={test_size}; "
            "add ratings or change prepare.test_size so both train and test get at least one row"
        )
    user_encoder, movie_encoder = LabelEncoder(), LabelEncoder()
    day = np.floor_divide(ratings["timestamp"].to_numpy(dtype=np.int64), SECONDS_PER_DAY)
    X = np.stack(
        [user_encoder.fit_transform(ratings["userId"]), movie_encoder.fit_transform(ratings["movieId"]), day], axis=1
    )
    y = ratings["rating"].to_numpy()
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=test_size, random_state=seed)
    split = lambda X, y: Split(X[:, 0], X[:, 1], y, X[:, 2].astype(np.int32))  # noqa: E731
    return Prepared(
        user_ids=user_encoder.classes_, movie_ids=movie_encoder.classes_, train=split(X_train, y_train), test=split(X_test, y_test)
    )


def save_prepared(prepared: Prepared, out_dir: Path) -> None:
    with atomic_path(out_dir, directory=True) as tmp:

        np.savez(tmp / "ids.npz", user_ids=prepared.user_ids, movie_ids=prepared.movie_ids)
        for name in ("train", "test"):
            split = getattr(prepared, name)
            np.savez(tmp / f"{name}.npz", user=split.user, movie=split.movie, rating=split.rating, day=split.days())


def load_prepared(folder: Path) -> Prepared:
    folder = Path(folder)
    try:
        ids = np.load(folder / "ids.npz", allow_pickle=False)
        splits = {name: np.load(folder / f"{name}.npz", allow_pickle=False) for name in ("train", "test")}
    except FileNotFoundError as exc:
        raise MovierecError(f"{exc.filename}: missing; run `dvc repro prepare` first") from None
    for name, s in splits.items():
        if "day" not in s.files:
            raise MovierecError(f"{folder / name}.npz: no 'day' array (written before ratings kept their time); run `dvc repro prepare`")
    return Prepared(
        user_ids=ids["user_ids"],
        movie_ids=ids["movie_ids"],
        **{name: Split(s["user"], s["movie"], s["rating"], s["day"]) for name, s in splits.items()},
    )
