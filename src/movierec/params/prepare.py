"""params.yaml `prepare`: the train/test split."""

from __future__ import annotations

from dataclasses import dataclass

from movierec.params.core import PARAMS_FILE, block, bounds


@dataclass(frozen=True)
class PrepareParams:
    test_size: float = bounds(0, 1, open_low=True, open_high=True)
    seed: int = bounds(0)


def load(raw: dict, source: str = PARAMS_FILE) -> PrepareParams:
    return block(raw, "prepare", PrepareParams, source)
