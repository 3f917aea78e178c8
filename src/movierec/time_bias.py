"""Time-aware baseline predictors (Koren, KDD 2009): what the day of a rating says, in NumPy.

The `time_bias` baseline fits them with the user and item biases; a rating variant with `time_terms`
fits them on its own training residuals. Every step is elementwise arithmetic or an ordered
`np.bincount` sum, so a fit is the same bits on any CPU.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from movierec.params.time_terms import TimeTerms
from movierec.prepare import Split


@dataclass(frozen=True)
class TimeBias:
    """Time-aware baseline predictors (Koren, "Collaborative filtering with temporal dynamics", KDD 2009):

        mu + b_u + alpha_u * dev_u(t) + b_{u,t} + b_i + b_{i,bin(t)}

    on a rating's day t: a user's drift away from their mean rating day (dev_u(t) = sign(t - t_u)
    |t - t_u|^power, t_u their mean training day, rounded down), a bias per user and day (the mood of a
    rating session), and a movie's bias per time bin (`bins` equal spans of the training days;
    a day outside them falls in the nearest). A (user, day) or (movie, bin) the training rows never saw
    gets 0. As the `time_bias` baseline, next to `bias` (the same model without time): what the time
    signal is worth. As a rating variant's `time_terms`, without user and item biases (all zero), on what
    the model leaves of its training rows.
    """

    mu: float
    user_bias: np.ndarray
    item_bias: np.ndarray
    drift: np.ndarray  # alpha_u
    mean_day: np.ndarray  # t_u (int64)
    drift_curve: np.ndarray  # |d|^power for d = 0 .. len - 1 days (larger |d| clamp to the last)
    session_keys: np.ndarray  # sorted (user, day) keys of the training rows (`_session_key`)
    session_bias: np.ndarray
    bin_edges: tuple[int, int, int]  # first day, last day, number of bins
    item_bin_bias: np.ndarray  # (n_movies * bins): movie m's bin b at m * bins + b

    def bins(self, days: np.ndarray) -> np.ndarray:
        first, last, n = self.bin_edges
        span = max(last - first + 1, 1)
        return np.clip((np.asarray(days, dtype=np.int64) - first) * n // span, 0, n - 1)

    def deviation(self, users: np.ndarray, days: np.ndarray) -> np.ndarray:
        d = np.asarray(days, dtype=np.int64) - self.mean_day[users]
        return np.sign(d) * self.drift_curve[np.minimum(np.abs(d), len(self.drift_curve) - 1)]

    def sessions(self, users: np.ndarray, days: np.ndarray) -> np.ndarray:
        """Each row's session bias (0 for a (user, day) the training rows never saw)."""
        keys = _session_key(users, days)
        if not len(self.session_keys):
            return np.zeros(len(keys))
        at = np.minimum(np.searchsorted(self.session_keys, keys), len(self.session_keys) - 1)
        return np.where(self.session_keys[at] == keys, self.session_bias[at], 0.0)

    @property
    def time_params(self) -> int:
        """The time terms' parameter count: each user's drift, each (user, day) and each (movie, bin)."""
        return len(self.drift) + len(self.session_bias) + len(self.item_bin_bias)

    def arrays(self) -> dict[str, np.ndarray]:
        """Its arrays, for an .npz file (`from_arrays` reads them back)."""
        return {f.name: np.asarray(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_arrays(cls, arrays) -> TimeBias:
        values = {f.name: arrays[f.name] for f in dataclasses.fields(cls)}
        return cls(**{**values, "mu": float(values["mu"]), "bin_edges": tuple(int(x) for x in values["bin_edges"])})

    def predict_rows(self, rows: Split) -> np.ndarray:
        users, movies, days = np.asarray(rows.user), np.asarray(rows.movie), rows.days()
        n_bins = self.bin_edges[2]
        return (
            self.mu + self.user_bias[users] + self.drift[users] * self.deviation(users, days) + self.sessions(users, days)
            + self.item_bias[movies] + self.item_bin_bias[movies * n_bins + self.bins(days)]
        )


def _session_key(users: np.ndarray, days: np.ndarray) -> np.ndarray:
    """One int64 per (user, day): the user in the high 32 bits, the day (offset to be non-negative) in the low."""
    return (np.asarray(users, dtype=np.int64) << 32) + (np.asarray(days, dtype=np.int64) + (1 << 31))


def fit_time_biases(train: Split, n_users: int, n_movies: int, terms: TimeTerms, *, reg_user: float, reg_item: float) -> TimeBias:
    """The user and item biases (penalties `reg_user`, `reg_item`; math.inf holds one at 0) and the time
    terms `terms` describes, each in turn by its closed-form ridge update given the others, `terms.iters`
    rounds (as the bias baseline is fitted).

    Every step is elementwise arithmetic or an ordered `np.bincount` sum, and the power comes from the
    C library per whole number of days (numpy's own vectorised power rounds differently on AVX-512),
    so the fit is the same bits on any CPU.
    """
    users, movies, r = np.asarray(train.user), np.asarray(train.movie), np.asarray(train.rating, dtype=np.float64)
    days = train.days().astype(np.int64)
    mu = float(r.mean()) if len(r) else 0.0
    n_u = np.bincount(users, minlength=n_users)
    mean_day = np.bincount(users, weights=days, minlength=n_users) // np.maximum(n_u, 1)  # float sum of whole days: exact
    mean_day = mean_day.astype(np.int64)
    longest = int(np.abs(days - mean_day[users]).max(initial=0))
    curve = np.array([math.pow(d, terms.drift_power) for d in range(longest + 1)], dtype=np.float64)
    first, last = (int(days.min()), int(days.max())) if len(days) else (0, 0)
    keys, session = np.unique(_session_key(users, days), return_inverse=True)
    session = session.reshape(-1).astype(np.int32 if len(keys) < 2**31 else np.int64)  # half the memory on 32M ratings
    model = TimeBias(mu, np.zeros(n_users), np.zeros(n_movies), np.zeros(n_users), mean_day, curve, keys,
                     np.zeros(len(keys)), (first, last, terms.bins), np.zeros(n_movies * terms.bins))
    dev = model.deviation(users, days)
    item_bin = (movies * terms.bins + model.bins(days)).astype(np.int32 if n_movies * terms.bins < 2**31 else np.int64)
    del days
    # each term: what it indexes per row, and its ridge update's denominator (a user's drift: on dev, not on 1)
    index = {"user_bias": users, "drift": users, "session_bias": session, "item_bias": movies, "item_bin_bias": item_bin}
    reg = {"user_bias": reg_user, "drift": terms.reg_drift, "session_bias": terms.reg_session, "item_bias": reg_item, "item_bin_bias": terms.reg_bin}
    denominator = {
        name: reg[name] + (np.bincount(where, weights=dev * dev, minlength=len(getattr(model, name))) if name == "drift"
                           else np.bincount(where, minlength=len(getattr(model, name))))
        for name, where in index.items()
    }

    def on_rows(name: str, values: np.ndarray) -> np.ndarray:
        return values[index[name]] * dev if name == "drift" else values[index[name]]

    total = np.zeros(len(r))  # the rows' sum of every term: memory stays a few arrays of the ratings' length
    for _ in range(terms.iters):
        for name, where in index.items():
            before = on_rows(name, getattr(model, name))
            residual = r - mu
            residual -= total
            residual += before  # what this term has to explain, given the others
            if name == "drift":
                residual *= dev
            value = ratio(np.bincount(where, weights=residual, minlength=len(getattr(model, name))), denominator[name])
            del residual
            model = dataclasses.replace(model, **{name: value})
            total -= before
            del before
            total += on_rows(name, value)
    return model


def ratio(sums: np.ndarray, denom: np.ndarray) -> np.ndarray:
    """sums / denom, 0 where denom is 0."""
    return np.divide(sums, denom, out=np.zeros_like(sums), where=denom > 0)


def fit_residual_terms(rows: Split, predicted: np.ndarray, n_users: int, n_movies: int, terms: TimeTerms) -> TimeBias:
    """The time terms alone (drift, session, time bin; no user or item bias), fitted on what a model's
    predictions of the rows it trained on leave: added to its predictions of dated rows (`predict_rows`)."""
    residual = np.asarray(rows.rating, dtype=np.float64) - np.asarray(predicted, dtype=np.float64)
    return fit_time_biases(Split(rows.user, rows.movie, residual, rows.day), n_users, n_movies, terms, reg_user=math.inf, reg_item=math.inf)


def held_out_terms(predict, fitted_rows: Split, held: Split, n_users: int, n_movies: int, terms: TimeTerms) -> np.ndarray:
    """The time terms' part of a carve model's predictions of its held-out rows: the terms fitted, as the
    train stage fits them, on what the model (`predict`, trained on `fitted_rows` only) leaves of those."""
    residual_model = fit_residual_terms(fitted_rows, predict(fitted_rows.user, fitted_rows.movie), n_users, n_movies, terms)
    return residual_model.predict_rows(held)
