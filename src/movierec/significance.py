"""Is a difference real? Intervals and paired tests over users, from the per-user files (`per_user.py`).

Users are the unit of resampling: a model's test figures are sums over users, and two models (or two
revisions of one) are judged on the same users, so every comparison is paired. scipy.stats does the
resampling (`bootstrap`, percentile intervals; `permutation_test`, swapping each user's two values);
`ttest_rel` and `wilcoxon` are offered for cross-checking. Across the rows of one comparison, Holm's
correction keeps the chance of calling any within-noise row real below 1 - confidence.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from movierec.errors import MovierecError
from movierec.params.compare import CompareParams
from movierec.per_user import parts

LOWER_IS_BETTER = ("rmse", "mae")
TESTS = ("permutation", "t", "wilcoxon")


def _figure(weight, value, root: bool, axis=-1):
    """The metric over a set of users: sum(value) / sum(weight), its square root for RMSE."""
    ratio = np.sum(value, axis=axis) / np.sum(weight, axis=axis)
    return np.sqrt(ratio) if root else ratio


def interval(weight: np.ndarray, value: np.ndarray, root: bool, s: CompareParams) -> tuple[float, float]:
    """The metric's bootstrap percentile interval over users."""
    from scipy.stats import bootstrap

    if len(weight) < 2:
        return float("nan"), float("nan")
    result = bootstrap(
        (weight, value), lambda w, v, axis=-1: _figure(w, v, root, axis), paired=True, vectorized=True,
        n_resamples=s.resamples, confidence_level=s.confidence, method="percentile", rng=np.random.default_rng(s.seed),
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


@dataclass(frozen=True)
class Difference:
    """B - A over the users both were measured on."""

    n_users: int
    a: float
    b: float
    delta: float
    low: float
    high: float
    p: float


def paired(a: dict, b: dict, metric: str, s: CompareParams, test: str = "permutation", where: str = "") -> Difference | None:
    """B - A of `metric` between two per-user tables, with its bootstrap interval and the p-value of a
    paired test (`TESTS`): the permutation test swaps each user's A and B values, the t and Wilcoxon
    tests read each user's own figure (mean squared or absolute error for RMSE and MAE). None if
    either table lacks the metric or they share no user."""
    from scipy import stats

    part_a, part_b = parts(a, metric), parts(b, metric)
    if part_a is None or part_b is None:
        return None
    users, ia, ib = np.intersect1d(part_a[0], part_b[0], return_indices=True)
    if len(users) == 0:
        return None
    weight, root = part_a[1][ia], part_a[3]
    if not np.array_equal(weight, part_b[1][ib]):
        raise MovierecError(f"{where}{metric}: the two sides count different test ratings for the same users (other test splits); compare revisions that share data and prepare")
    va, vb = part_a[2][ia], part_b[2][ib]
    fa, fb = float(_figure(weight, va, root)), float(_figure(weight, vb, root))

    def delta(x, y, axis=-1):
        return _figure(weight, y, root, axis) - _figure(weight, x, root, axis)

    rng = np.random.default_rng(s.seed)
    low = high = p = float("nan")
    if len(users) >= 2:
        ci = stats.bootstrap(
            (weight, va, vb), lambda w, x, y, axis=-1: _figure(w, y, root, axis) - _figure(w, x, root, axis),
            paired=True, vectorized=True, n_resamples=s.resamples, confidence_level=s.confidence, method="percentile", rng=rng,
        ).confidence_interval
        low, high = float(ci.low), float(ci.high)
        if np.array_equal(va, vb):
            p = 1.0
        elif test == "permutation":
            p = float(stats.permutation_test(  # one batch: the same p, about 3x faster than scipy's default batching
                (va, vb), delta, permutation_type="samples", vectorized=True, n_resamples=s.resamples, batch=s.resamples, rng=rng,
            ).pvalue)
        elif test == "t":
            p = float(stats.ttest_rel(vb / weight, va / weight).pvalue)
        elif test == "wilcoxon":
            p = float(stats.wilcoxon(vb / weight - va / weight).pvalue)
        else:
            raise MovierecError(f"--test {test}: unknown test; use one of {', '.join(TESTS)}")
    return Difference(len(users), fa, fb, fb - fa, low, high, p)


def holm(p_values) -> np.ndarray:
    """Holm's step-down adjusted p-values (NaN stays NaN): reject row i at level alpha when adjusted[i] < alpha."""
    p = np.asarray(p_values, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    known = np.flatnonzero(~np.isnan(p))
    order = known[np.argsort(p[known], kind="stable")]
    m = len(order)
    out[order] = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    return out


def verdict(metric: str, delta: float, adjusted_p: float, s: CompareParams) -> str:
    """"better" or "worse" (B against A) when the corrected p is below 1 - confidence, else "within noise"."""
    if np.isnan(adjusted_p) or adjusted_p >= 1 - s.confidence or delta == 0:
        return "within noise"
    return "better" if (delta < 0) == (metric in LOWER_IS_BETTER) else "worse"


@dataclass(frozen=True)
class Column:
    """One metric across models: each model's interval, and the models not significantly different
    from the best (the best included; paired tests against it, Holm-corrected across the column)."""

    intervals: dict[str, tuple[float, float]]
    tied_with_best: frozenset[str]


def judge_column(tables: dict[str, dict], metric: str, s: CompareParams) -> Column | None:
    """`Column` of `metric` over the per-user tables of the models that hold it; None if none does."""
    held = {name: p for name, t in tables.items() if (p := parts(t, metric)) is not None}
    if not held:
        return None
    figures = {name: float(_figure(p[1], p[2], p[3])) for name, p in held.items()}
    pick = min if metric in LOWER_IS_BETTER else max
    best = pick(figures, key=figures.get)
    others = [name for name in held if name != best]
    differences = [paired(tables[best], tables[name], metric, s, where=f"{name}: ") for name in others]
    adjusted = holm([d.p if d else np.nan for d in differences])
    tied = {best} | {n for n, d, q in zip(others, differences, adjusted) if d and verdict(metric, d.delta, q, s) == "within noise"}
    return Column({name: interval(p[1], p[2], p[3], s) for name, p in held.items()}, frozenset(tied))
