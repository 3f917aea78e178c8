"""baselines: fit and score the global-mean, user+item bias, time-aware bias, Bayesian MF, most-popular and EASE baselines like the variants,
and store EASE as the rank stage stores a variant (`recommend` serves it)."""

from __future__ import annotations

from movierec import predictions
from movierec.baselines import EASE_WEIGHTS, evaluate_baselines, save_ease
from movierec.evaluate import write_evaluation
from movierec.params import baselines as baselines_params
from movierec.params import core
from movierec.params import data as data_params
from movierec.params import evaluate as evaluate_params
from movierec.paths import PREPARED_DIR
from movierec.prepare import load_prepared
from movierec.stages import arguments, one_line_errors


def main(args) -> None:
    raw = core.read(args.params)
    b, e = baselines_params.load(raw, args.params), evaluate_params.load(raw, args.params)
    evaluations, ease = evaluate_baselines(load_prepared(PREPARED_DIR), b, e, data_params.load(raw, args.params).rating_range)
    for name, (metrics, sample, curve, users) in evaluations.items():
        write_evaluation(name, metrics, sample, curve, users)
    save_ease(ease, predictions.path("ease"), EASE_WEIGHTS)


if __name__ == "__main__":
    with one_line_errors():
        main(arguments(__doc__))
