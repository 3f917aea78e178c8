"""params.yaml `data`: which MovieLens release, where the stages read it, its integrity, the rating scale."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from movierec.params.core import PARAMS_FILE, ParamsError, block, bounds


@dataclass(frozen=True)
class DataParams:
    dataset: Literal["ml-latest-small", "ml-100k", "ml-1m", "ml-10m", "ml-20m", "ml-25m", "ml-32m", "ml-latest"]
    path: str
    base_url: str
    sha256: dict[str, str]
    max_download_mb: float = bounds(0, open_low=True)
    min_rating: float = bounds()
    max_rating: float = bounds()
    duplicates: Literal["error", "keep_last"] = "error"

    @property
    def rating_range(self) -> tuple[float, float]:
        return (self.min_rating, self.max_rating)


def load(raw: dict, source: str = PARAMS_FILE) -> DataParams:
    d = block(raw, "data", DataParams, source)
    if d.min_rating >= d.max_rating:
        raise ParamsError(f"{source}: data.min_rating ({d.min_rating}) must be below data.max_rating ({d.max_rating})")
    return d
