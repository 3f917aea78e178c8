"""params.yaml `blend`: which rating variant is blended with the item-neighbour model, and that model's settings."""

from __future__ import annotations

from dataclasses import dataclass

from movierec.params.core import PARAMS_FILE, block, bounds


@dataclass(frozen=True)
class NeighbourParams:
    """`movierec.neighbours`: Surprise's KNNBaseline (item-based, pearson_baseline) and its defaults' names."""

    neighbours: int = bounds(1)  # k: the most similar movies the user rated that a prediction averages
    shrinkage: float = bounds(0)  # similarities over n common raters shrink by (n - 1) / (n - 1 + shrinkage)
    reg_user: float = bounds(0)  # the baseline's ALS penalties and rounds (the bias model's)
    reg_item: float = bounds(0)
    iters: int = bounds(1)
    max_movies: int = bounds(0)  # the catalogue: the max_movies most-rated movies (0: every movie)


@dataclass(frozen=True)
class BlendParams:
    variant: str  # a rating variant that stops early: its validation carve is where the weights are learned
    neighbours: NeighbourParams


def load(raw: dict, source: str = PARAMS_FILE) -> BlendParams:
    return block(raw, "blend", BlendParams, source)
