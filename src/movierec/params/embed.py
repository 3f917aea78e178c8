"""params.yaml `embed`: the content vectors per movie."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from movierec.params.core import PARAMS_FILE, block, bounds


@dataclass(frozen=True)
class EmbedParams:
    archive: str
    source: Literal["text", "genome"]
    dim: int = bounds(1)
    min_df: int = bounds(1)
    seed: int = bounds(0)


def load(raw: dict, source: str = PARAMS_FILE) -> EmbedParams:
    return block(raw, "embed", EmbedParams, source)
