"""The time terms' settings (`movierec.time_bias`): params.yaml `baselines.time_bias`, and a rating
variant's `variants.<name>.time_terms`."""

from __future__ import annotations

from dataclasses import dataclass

from movierec.params.core import bounds


@dataclass(frozen=True)
class TimeTerms:
    """What a rating's day says (a user's drift, a bias per user and day, a movie's bias per time bin),
    as ridge means fitted `iters` rounds: with the user and item biases in the `time_bias` baseline, or
    on a rating variant's own training residuals, added to its predicted ratings of dated rows."""

    bins: int = bounds(1)  # a movie's bias per bin: this many equal spans of the training days
    drift_power: float = bounds(0)  # a user's drift alpha_u * sign(d)|d|^power, d: days from their mean day
    reg_drift: float = bounds(0)  # the ridge penalties of the drift, the (user, day) bias and the (movie, bin) bias
    reg_session: float = bounds(0)
    reg_bin: float = bounds(0)
    iters: int = bounds(1)
