"""The item-neighbour model against a direct transcription of Surprise's KNNBaseline, and the blend's weights."""

import math

import numpy as np
import pytest
import yaml

from movierec import bayes_mf, biases, blend, neighbours, predictions
from movierec.params.baselines import BayesMFParams
from movierec.params.blend import NeighbourParams
from movierec.prepare import Prepared, Split

from conftest import REPO

PARAMS = NeighbourParams(neighbours=3, shrinkage=5.0, reg_user=2.0, reg_item=1.0, iters=4, max_movies=0)
FACTORS = BayesMFParams(rank=2, rounds=4, seed=0)


def random_ratings(n_users=30, n_movies=25, n=400, seed=0) -> Split:
    rng = np.random.default_rng(seed)
    keys = rng.choice(n_users * n_movies, size=n, replace=False)
    users, movies = keys // n_movies, keys % n_movies
    return Split(users, movies, rng.integers(1, 11, size=n) / 2.0, rng.integers(0, 9000, size=n).astype(np.int32))


def reference(train: Split, users, movies, n_users, n_movies, p: NeighbourParams, catalogue=None) -> list[float]:
    """Surprise 1.1's KNNBaseline.estimate with pearson_baseline (item-based), loop by loop."""
    base = biases.fit_biases(train, n_users, n_movies, reg_user=p.reg_user, reg_item=p.reg_item, n_iters=p.iters)
    catalogue = set(range(n_movies)) if catalogue is None else set(catalogue)
    residual = {}
    for u, m, r in zip(train.user, train.movie, train.rating):
        if m in catalogue:
            residual[(int(u), int(m))] = r - base.predict([u], [m])[0]
    raters = {}
    for (u, m), value in residual.items():
        raters.setdefault(m, {})[u] = value

    def similarity(i, j):
        common = set(raters.get(i, {})) & set(raters.get(j, {}))
        if not common:
            return 0.0
        product = sum(raters[i][u] * raters[j][u] for u in common)
        spread = math.sqrt(sum(raters[i][u] ** 2 for u in common) * sum(raters[j][u] ** 2 for u in common))
        n = len(common)
        return (product / spread if spread else 0.0) * (n - 1) / (n - 1 + p.shrinkage)

    out = []
    for u, i in zip(users, movies):
        estimate = base.predict([u], [i])[0]
        if i in catalogue:
            rated = [(similarity(int(i), j), value) for (v, j), value in residual.items() if v == u]
            top = sorted(rated, key=lambda t: -t[0])[: p.neighbours]
            positive = [(s, value) for s, value in top if s > 0]
            if positive:
                estimate += sum(s * value for s, value in positive) / sum(s for s, _ in positive)
        out.append(estimate)
    return out


@pytest.mark.parametrize("max_movies", [0, 12])
def test_predictions_equal_surprises_knnbaseline_written_out(max_movies):
    train = random_ratings()
    p = NeighbourParams(**{**PARAMS.__dict__, "max_movies": max_movies})
    users, movies = np.repeat(np.arange(30), 25), np.tile(np.arange(25), 30)  # every pair, unseen movie 24 included
    got = neighbours.predict(train, users, movies, 30, 26, p)
    catalogue = neighbours.Catalogue.most_rated_in(train, 26, max_movies).movies if max_movies else None
    np.testing.assert_allclose(got, reference(train, users, movies, 30, 26, p, catalogue), rtol=0, atol=1e-12)


def test_blocks_and_steps_change_no_bit(monkeypatch):
    train = random_ratings(seed=1)
    users, movies = np.repeat(np.arange(30), 25), np.tile(np.arange(25), 30)
    whole = neighbours.predict(train, users, movies, 30, 25, PARAMS)
    monkeypatch.setattr(neighbours, "BLOCK_BYTES", 1)  # one movie per block
    monkeypatch.setattr(neighbours, "GATHER", 7)  # a few candidates per step
    np.testing.assert_array_equal(neighbours.predict(train, users, movies, 30, 25, PARAMS), whole)


def test_least_squares_matches_lapacks_solution():
    rng = np.random.default_rng(0)
    features = np.column_stack([np.ones(500), rng.normal(3.5, 1, 500), rng.normal(3.5, 1, 500)])
    target = features @ [0.2, 0.7, 0.3] + rng.normal(0, 0.1, 500)
    np.testing.assert_allclose(blend.least_squares(features, target), np.linalg.lstsq(features, target, rcond=None)[0], rtol=1e-6)  # within its 1e-9 ridge


def prepared_with_carve(seed=0):
    train, test = random_ratings(seed=seed), random_ratings(n=120, seed=seed + 100)
    ids = np.arange(30), np.arange(25)
    return Prepared(*ids, train, test), np.arange(0, len(train), 5)


def test_the_weights_are_learned_on_the_carve_and_never_read_the_test_ratings():
    prepared, held = prepared_with_carve()
    rng = np.random.default_rng(3)
    carve_predictions = prepared.train.rating[held] + rng.normal(0, 0.5, len(held))
    test_predictions = rng.uniform(1, 5, len(prepared.test))
    result = blend.fit(prepared, held, carve_predictions, test_predictions, PARAMS, FACTORS, (0.0, 5.0))
    poisoned = Prepared(prepared.user_ids, prepared.movie_ids, prepared.train,
                        Split(prepared.test.user, prepared.test.movie, np.full(len(prepared.test), 99.0), prepared.test.day))
    again = blend.fit(poisoned, held, carve_predictions, test_predictions, PARAMS, FACTORS, (0.0, 5.0))
    np.testing.assert_array_equal(again.weights, result.weights)
    np.testing.assert_array_equal(again.test, result.test)
    assert result.weights[1] > 0.5  # the carve predictions are the ratings plus noise: they carry the blend
    assert set(result.carve_rmse) == {"variant", "item_knn", "bayes_mf", "blend"}
    assert result.carve_rmse["blend"] <= min(result.carve_rmse.values()) + 1e-12


def test_the_partners_are_refitted_on_every_training_row_and_take_the_weight_a_poor_variant_leaves():
    """Ratings from user and movie biases: the variant's predictions are noise, the partners see the biases."""
    rng = np.random.default_rng(5)
    n_users, n_movies = 60, 40
    keys = rng.choice(n_users * n_movies, size=1500, replace=False)
    users, movies = keys // n_movies, keys % n_movies
    expected = 3.0 + rng.normal(0, 0.6, n_users)[users] + rng.normal(0, 0.6, n_movies)[movies]
    rows = Split(users, movies, np.clip(np.round(2 * (expected + rng.normal(0, 0.3, len(keys)))) / 2, 0.5, 5.0), np.zeros(len(keys), np.int32))
    prepared = Prepared(np.arange(n_users), np.arange(n_movies), rows.take(np.arange(1200)), rows.take(np.arange(1200, 1500)))
    held = np.arange(0, 1200, 4)
    result = blend.fit(prepared, held, rng.uniform(1, 5, len(held)), rng.uniform(1, 5, 300), PARAMS, FACTORS, (0.0, 5.0))
    refitted = bayes_mf.fit(prepared.train, n_users, n_movies, FACTORS).predict_rows(prepared.test)
    np.testing.assert_array_equal(result.partner_test["bayes_mf"], refitted)
    np.testing.assert_array_equal(result.partner_test["item_knn"], neighbours.predict(prepared.train, prepared.test.user, prepared.test.movie, n_users, n_movies, PARAMS))
    assert abs(result.weights[1]) < 0.1 and result.weights[2] + result.weights[3] > 0.8
    assert result.carve_rmse["blend"] < result.carve_rmse["variant"] - 0.5


def test_a_variant_without_carve_predictions_is_one_line_naming_the_file_and_the_fix(tmp_path, monkeypatch, capsys):
    from movierec.stages import blend as stage

    monkeypatch.chdir(tmp_path)
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["blend"]["variant"] = "collab"  # stops after its epochs: no carve
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    predictions.write(predictions.path("collab"), {"top_users": np.zeros(1, np.int32), "top_movies": np.zeros((1, 1), np.int32),
                                                   "top_scores": np.zeros((1, 1), np.float32), "n_params": np.int64(1)})
    monkeypatch.setattr("sys.argv", ["blend"])
    with pytest.raises(SystemExit) as exit_:
        with stage.one_line_errors():
            stage.main(stage.arguments(stage.__doc__))
    assert exit_.value.code == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "data/predictions/collab.npz: no predictions of a validation carve" in err and "blend.variant" in err


def test_collinear_predictions_still_get_weights():
    features = np.column_stack([np.ones(50), np.full(50, 3.0), np.linspace(1, 5, 50)])  # the variant predicts a constant
    weights = blend.least_squares(features, np.linspace(1, 5, 50))
    assert np.all(np.isfinite(weights))
    np.testing.assert_allclose(features @ weights, np.linspace(1, 5, 50), atol=1e-6)
