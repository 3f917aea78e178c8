"""params.yaml `compare`: how differences are judged (the report's intervals, `movierec compare`). Nothing upstream of the report reads it."""

from __future__ import annotations

from dataclasses import dataclass

from movierec.params.core import PARAMS_FILE, block, bounds


@dataclass(frozen=True)
class CompareParams:
    confidence: float = bounds(0.5, 1, open_high=True)
    resamples: int = bounds(100)
    seed: int = bounds(0)


def load(raw: dict, source: str = PARAMS_FILE) -> CompareParams:
    return block(raw, "compare", CompareParams, source)
