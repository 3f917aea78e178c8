"""A rating variant's `time_terms`: fitted on its training residuals, stored with the model, added to its
predictions of the test pairs (each on its own day) and to nothing else."""

import copy

import numpy as np
import pytest
import yaml

from conftest import REPO
from movierec import fitted, lists, predictions, recipes
from movierec.params import core, variants
from movierec.params.evaluate import EvaluateParams
from movierec.params.time_terms import TimeTerms
from movierec.prepare import Prepared, Split
from movierec.time_bias import TimeBias, fit_residual_terms

TERMS = TimeTerms(bins=4, drift_power=0.4, reg_drift=5.0, reg_session=1.0, reg_bin=5.0, iters=10)


def _dated_rows(seed=0, n=4000, n_users=30, n_movies=20):
    """Ratings = a static part a model could know + each user's mood on the day they rated."""
    rng = np.random.default_rng(seed)
    users, movies = rng.integers(0, n_users, n), rng.integers(0, n_movies, n)
    session = rng.integers(0, 8, n)
    day = (18_000 + rng.integers(0, 500, (n_users, 8))[users, session]).astype(np.int32)
    static = 3.5 + rng.normal(0, 0.5, n_users)[users] + rng.normal(0, 0.5, n_movies)[movies]
    mood = rng.normal(0, 0.7, (n_users, 8))[users, session]
    return Split(users, movies, static + mood + rng.normal(0, 0.1, n), day), static, n_users, n_movies


def test_terms_fitted_on_a_models_residuals_recover_what_it_missed_of_each_day():
    rows, static, n_users, n_movies = _dated_rows()
    fit, held = np.arange(3000), np.arange(3000, 4000)
    terms = fit_residual_terms(rows.take(fit), static[fit], n_users, n_movies, TERMS)
    error = lambda predicted: np.sqrt(np.mean((predicted - rows.rating[held]) ** 2))  # noqa: E731
    assert error(static[held] + terms.predict_rows(rows.take(held))) < 0.4 * error(static[held])  # measured: 0.13 against 0.70
    assert not terms.user_bias.any() and not terms.item_bias.any()  # time terms only: the model keeps its own biases


@pytest.mark.parametrize("moods", [True, False])
def test_the_carve_keeps_the_terms_only_where_the_days_say_something(moods):
    """On ratings with a mood per (user, day) the terms lower the held-out RMSE and are kept; on the same
    static part plus noise that ignores the day they fit that noise and are dropped."""
    from movierec.training.regime import time_terms_on_carve

    rng = np.random.default_rng(2)
    n, n_users, n_movies = 4000, 30, 20
    user_bias, movie_bias = rng.normal(0, 0.5, n_users), rng.normal(0, 0.5, n_movies)
    users, movies, session = rng.integers(0, n_users, n), rng.integers(0, n_movies, n), rng.integers(0, 8, n)
    day = (18_000 + rng.integers(0, 500, (n_users, 8))[users, session]).astype(np.int32)
    day_effect = rng.normal(0, 0.7, (n_users, 8))[users, session] if moods else 0.0
    rating = 3.5 + user_bias[users] + movie_bias[movies] + day_effect + rng.normal(0, 0.7, n)
    rows = Split(users, movies, rating, day)
    predict = lambda u, m: 3.5 + user_bias[u] + movie_bias[m]  # noqa: E731 - a model that knows the static part
    prepared = Prepared(np.arange(n_users), np.arange(n_movies), rows, rows)
    verdict = time_terms_on_carve(predict, rows.take(np.arange(3000)), rows.take(np.arange(3000, n)), prepared, TERMS, (0.0, 10.0))
    rmse = verdict["time_terms_validation_rmse"]
    assert verdict["time_terms_kept"] is moods and (rmse["with"] < rmse["without"]) is moods


def test_terms_round_trip_through_the_model_folder(tmp_path):
    import keras

    rows, static, n_users, n_movies = _dated_rows(seed=1)
    terms = fit_residual_terms(rows, static, n_users, n_movies, TERMS)
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    fitted.save(tmp_path / "m", model, time_terms=terms)
    again = fitted.load_time_terms(tmp_path / "m")
    assert isinstance(again, TimeBias)
    np.testing.assert_array_equal(again.predict_rows(rows), terms.predict_rows(rows))
    fitted.save(tmp_path / "plain", model)
    assert fitted.load_time_terms(tmp_path / "plain") is None


def test_rank_adds_the_terms_to_the_test_predictions_and_leaves_the_lists_alone(tmp_path):
    from test_models import PARAMS, build

    v = PARAMS.variants["mf_content"]
    n_users, n_movies = 7, 11
    content = np.random.default_rng(1).normal(size=(n_movies, 4)).astype(np.float32)
    net = build(v, n_users=n_users, n_movies=n_movies, content=content, global_mean=3.0)
    day = lambda n: np.arange(n, dtype=np.int32) * 37 + 18_000  # noqa: E731
    train = Split(np.array([0, 0, 1, 2, 3, 4, 5, 6, 0, 1]), np.array([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]), np.linspace(1, 5, 10), day(10))
    test = Split(np.array([0, 1, 6, 2]), np.array([9, 10, 8, 0]), np.array([5.0, 4.0, 4.5, 1.0]), day(4) + 5)
    prepared = Prepared(np.arange(n_users), np.arange(n_movies), train, test)
    e = EvaluateParams(k=3, relevance_threshold=4.0, top_n=4, max_users=0, seed=0)
    terms = fit_residual_terms(train, np.full(10, 3.0), n_users, n_movies, TERMS)
    assert np.abs(terms.predict_rows(test)).max() > 1e-3  # the check below means something
    plain = lists.rank(v.module, net, v.settings, prepared, e, 0.0)
    timed = lists.rank(v.module, net, v.settings, prepared, e, 0.0, terms)
    expected = (plain["test_predictions"].astype(np.float64) + terms.predict_rows(test)).astype(np.float32)
    np.testing.assert_array_equal(timed["test_predictions"], expected)
    for key in set(plain) - {"test_predictions", "n_params"}:
        np.testing.assert_array_equal(timed[key], plain[key])
    assert timed["n_params"] == plain["n_params"] + 1 + n_users + len(terms.session_keys) + n_movies * TERMS.bins  # the terms count too
    predictions.write(tmp_path / "p.npz", timed)  # still the one schema


def _params():
    return yaml.safe_load((REPO / "params.yaml").read_text())


def test_time_terms_are_validated_and_only_for_rating_models():
    raw = _params()
    assert variants.load(raw, "mf_content").time_terms is not None and variants.load(raw, "collab").time_terms is None
    wrong = copy.deepcopy(raw)
    wrong["variants"]["dae"]["time_terms"] = raw["variants"]["mf_content"]["time_terms"]
    with pytest.raises(core.ParamsError, match=r"^params.yaml: variants.dae.time_terms: architecture multdae ranks, .*remove time_terms$"):
        variants.load(wrong, "dae")
    typo = copy.deepcopy(raw)
    typo["variants"]["mf_content"]["time_terms"]["reg_sesion"] = 1.0
    with pytest.raises(core.ParamsError, match="unknown key variants.mf_content.time_terms.reg_sesion"):
        variants.load(typo, "mf_content")
    negative = copy.deepcopy(raw)
    negative["variants"]["mf_content"]["time_terms"]["reg_bin"] = -1.0
    with pytest.raises(core.ParamsError, match="variants.mf_content.time_terms.reg_bin"):
        variants.load(negative, "mf_content")


def test_the_recipe_carries_the_terms_so_changing_them_refits(tmp_path):
    from movierec.params import data as data_params

    raw = _params()
    for name in ("mf_content", "collab"):
        v = variants.load(raw, name)
        recipes.write(tmp_path / f"{name}.json", v, v.module.shared(raw, "params.yaml"), data_params.load(raw).rating_range)
        assert recipes.read(tmp_path / f"{name}.json").time_terms == v.time_terms
