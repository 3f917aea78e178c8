"""evaluate: score one ranked variant on the test split: ratings, ranking and error breakdowns."""

from __future__ import annotations

from movierec import predictions
from movierec.evaluate import evaluate_variant, write_evaluation
from movierec.params import core
from movierec.params import data as data_params
from movierec.params import evaluate as evaluate_params
from movierec.paths import PREPARED_DIR
from movierec.prepare import load_prepared
from movierec.stages import arguments, one_line_errors


def main(args) -> None:
    raw = core.read(args.params)
    e, rating_range = evaluate_params.load(raw, args.params), data_params.load(raw, args.params).rating_range
    stored = predictions.read(predictions.path(args.variant), "top_users", "top_movies", "n_params", optional=("test_predictions",))
    metrics, sample, curve, users = evaluate_variant(stored, load_prepared(PREPARED_DIR), e, rating_range)
    metrics["n_params"] = int(stored["n_params"])
    write_evaluation(args.variant, metrics, sample, curve, users)


if __name__ == "__main__":
    with one_line_errors():
        main(arguments(__doc__, variant=True))
