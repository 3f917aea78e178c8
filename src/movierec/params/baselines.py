"""params.yaml `baselines`: the bias models', EASE's and the Bayesian factor model's settings."""

from __future__ import annotations

from dataclasses import dataclass

from movierec.params.core import PARAMS_FILE, block, bounds
from movierec.params.time_terms import TimeTerms


@dataclass(frozen=True)
class BayesMFParams:
    """`movierec.bayes_mf`: variational Bayesian matrix factorisation."""

    rank: int = bounds(1)  # factors per user and movie: an upper bound, the dimensions the data cannot support shrink away
    rounds: int = bounds(1)  # of updates (every user, then every movie)
    seed: int = bounds(0)  # of the start


@dataclass(frozen=True)
class BaselineParams:
    bias_reg_user: float = bounds(0)
    bias_reg_item: float = bounds(0)
    bias_iters: int = bounds(1)
    time_bias: TimeTerms  # the time_bias baseline's time terms (its user and item terms are bias's)
    ease_reg: float = bounds(0, open_low=True)
    ease_positive_threshold: float = bounds()
    ease_score_low_weight: float = bounds(0, 1)
    ease_max_movies: int = bounds(0)
    bayes_mf: BayesMFParams


def load(raw: dict, source: str = PARAMS_FILE) -> BaselineParams:
    return block(raw, "baselines", BaselineParams, source)
