"""params.yaml `baselines`: the bias models' and EASE's settings."""

from __future__ import annotations

from dataclasses import dataclass

from movierec.params.core import PARAMS_FILE, block, bounds


@dataclass(frozen=True)
class BaselineParams:
    bias_reg_user: float = bounds(0)
    bias_reg_item: float = bounds(0)
    bias_iters: int = bounds(1)
    time_bins: int = bounds(1)
    time_drift_power: float = bounds(0)
    time_reg_drift: float = bounds(0)
    time_reg_session: float = bounds(0)
    time_reg_bin: float = bounds(0)
    ease_reg: float = bounds(0, open_low=True)
    ease_positive_threshold: float = bounds()
    ease_score_low_weight: float = bounds(0, 1)
    ease_max_movies: int = bounds(0)


def load(raw: dict, source: str = PARAMS_FILE) -> BaselineParams:
    return block(raw, "baselines", BaselineParams, source)
