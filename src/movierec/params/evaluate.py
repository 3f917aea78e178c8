"""params.yaml `evaluate`: how lists are made and judged. No fit reads it."""

from __future__ import annotations

from dataclasses import dataclass

from movierec.params.core import PARAMS_FILE, ParamsError, block, bounds


@dataclass(frozen=True)
class EvaluateParams:
    k: int = bounds(1)
    relevance_threshold: float = bounds()
    top_n: int = bounds(1)
    max_users: int = bounds(0)
    seed: int = bounds(0)


def load(raw: dict, source: str = PARAMS_FILE) -> EvaluateParams:
    e = block(raw, "evaluate", EvaluateParams, source)
    if e.k > e.top_n:
        raise ParamsError(
            f"{source}: evaluate.k ({e.k}) must not exceed evaluate.top_n ({e.top_n}), "
            "the length of the lists the rank stage stores; raise evaluate.top_n"
        )
    return e
