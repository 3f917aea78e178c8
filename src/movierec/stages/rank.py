"""rank: a fitted variant's lists, ranked as params.yaml's `evaluate` and its `popularity_prior` say,
into data/predictions/<variant>.npz. It loads the fitted model and never refits it, so changing how
lists are made or judged reruns this stage, not the fit.

With several `popularity_prior` values it picks the one whose lists rank the validation carve best,
scored with the model fitted on the carve only (data/models/<variant>/carve.*), and records the choice
in metrics/lists/<variant>.json. A rating variant with a carve also stores that model's predictions of
the carve's held-out rows, for the blend stage.
"""

from __future__ import annotations

from movierec import fitted, lists, predictions, recipes
from movierec.atomic import write_json
from movierec.errors import MovierecError
from movierec.params import core, variants
from movierec.params import evaluate as evaluate_params
from movierec.paths import METRICS_DIR, PREPARED_DIR, recipe
from movierec.prepare import load_prepared
from movierec.quiet import import_tensorflow
from movierec.stages import arguments, one_line_errors


def main(args) -> None:
    raw = core.read(args.params)
    e, v = evaluate_params.load(raw, args.params), variants.load(raw, args.variant, args.params)
    fit_recipe = recipes.read(recipe(args.variant))
    tf = import_tensorflow(threads=fit_recipe.train.threads)  # score with the fit's thread count: the same bits
    tf.config.experimental.enable_op_determinism()
    prepared, folder = load_prepared(PREPARED_DIR), fitted.folder(args.variant)
    grid, chosen = v.popularity_prior, {}
    carve = fitted.load_carve(folder) if len(grid) > 1 or v.module.PREDICTS_RATINGS else None  # a ranker with one prior needs none
    if carve is not None:
        carve_model, held = carve
        split = prepared.carve(held)
    if len(grid) > 1:
        if carve is None:
            raise MovierecError(f"{folder}: no validation carve to choose variants.{args.variant}.popularity_prior on; run `dvc repro` to refit")
        chosen = lists.choose_popularity_prior(v.module.scorer(carve_model, v.settings, split, 0.0), split, grid, e)
    weight = chosen.get("popularity_prior", grid[0])
    terms = fitted.load_time_terms(folder)  # None if the variant has none, or the train stage found they did not help
    arrays = lists.rank(v.module, fitted.load_model(folder), v.settings, prepared, e, weight, terms)
    if carve is not None and v.module.PREDICTS_RATINGS:  # what the blend stage learns its weights on
        arrays.update(lists.carve_predictions(v.module, carve_model, split, held, fit_recipe.time_terms if terms is not None else None))
    predictions.write(predictions.path(args.variant), arrays)
    record = {"popularity_prior": weight, "profile": core.profile_name(raw), **chosen}  # which recipe ran
    write_json(METRICS_DIR / "lists" / f"{args.variant}.json", record)


if __name__ == "__main__":
    with one_line_errors():
        main(arguments(__doc__, variant=True))
