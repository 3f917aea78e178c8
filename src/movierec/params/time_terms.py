"""params.yaml `variants.<name>.time_terms`: the time terms a rating variant adds to its predictions."""

from __future__ import annotations

from dataclasses import dataclass

from movierec.params.core import bounds


@dataclass(frozen=True)
class TimeTerms:
    """`variants.<name>.time_terms` (rating models): the `time_bias` baseline's time terms (a user's drift,
    a bias per user and day, a movie's bias per time bin), fitted on the variant's own training
    residuals after its fit and added to its predicted ratings of dated rows (the test pairs)."""

    bins: int = bounds(1)
    drift_power: float = bounds(0)
    reg_drift: float = bounds(0)
    reg_session: float = bounds(0)
    reg_bin: float = bounds(0)
    iters: int = bounds(1)
