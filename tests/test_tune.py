"""`movierec tune`: the search finds a planted optimum, never reads the test split, resumes, and gives
the same trials for the same seed. On tiny data made here; the fits are real Keras fits."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

import planted_architecture
from conftest import REPO, deep_update
from movierec import architectures, tuning
from movierec.cli import cli
from movierec.errors import MovierecError
from movierec.params import core
from movierec.prepare import prepare, save_prepared

PLANTED_SCALE = 0.6


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A folder with params.yaml (plus the `planted` variant and its space) and prepared ratings made
    as mean + user bias + PLANTED_SCALE * wave + noise."""
    real_find = architectures.find
    monkeypatch.setattr(architectures, "available", lambda: ["collab", "mf", "multdae", "planted"])
    monkeypatch.setattr(architectures, "find", lambda name: planted_architecture if name == "planted" else real_find(name))
    rng = np.random.default_rng(0)
    users, movies = (a.ravel() for a in np.meshgrid(np.arange(1, 61), np.arange(1, 41), indexing="ij"))
    keep = rng.random(len(users)) < 0.7
    users, movies = users[keep], movies[keep]
    user_bias = rng.normal(0, 0.4, 61)
    prepared = prepare(pd.DataFrame({"userId": users, "movieId": movies, "rating": 0.0, "timestamp": 0}), test_size=0.15, seed=0)
    # ratings from the encoded ids the model sees
    encoded_user = np.searchsorted(prepared.user_ids, users)
    encoded_movie = np.searchsorted(prepared.movie_ids, movies)
    ratings = 3.2 + user_bias[users] + PLANTED_SCALE * planted_architecture.wave(encoded_user, encoded_movie) + rng.normal(0, 0.1, len(users))
    timestamps = (users * 7919 + movies * 104729) % (400 * 86_400)  # over 400 days, for time_bias
    prepared = prepare(pd.DataFrame({"userId": users, "movieId": movies, "rating": ratings, "timestamp": timestamps}), test_size=0.15, seed=0)
    save_prepared(prepared, tmp_path / "data/prepared")
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    deep_update(params, {
        "variants": {"planted": {"architecture": "planted", "shared": "train", "scale": 0.0, "popularity_prior": 0.0,
                                 "train": {"epochs": 5, "batch_size": 64, "learning_rate": 0.05, "early_stopping_patience": 0, "refit": False}}},
        "tune": {"trials": 16, "spaces": {"planted": {"variants.planted.scale": {"low": 0.0, "high": 2.0}}}},
    })
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _tune(target, trials, study="study.db", lines=None):
    raw = core.read("params.yaml")
    return tuning.tune(raw, "params.yaml", target, trials, study_path=tuning.TUNING_DIR / study, echo=(lines.append if lines is not None else lambda line: None))


def _trials(study: str) -> list[tuple]:
    """(values, objective value) of each stored trial, in order."""
    import optuna

    storage = f"sqlite:///{tuning.TUNING_DIR / study}"
    (summary,) = optuna.get_all_study_summaries(storage)
    return [(t.user_attrs["values"], t.value) for t in optuna.load_study(study_name=summary.study_name, storage=storage).trials]


@pytest.mark.e2e
def test_the_search_finds_the_planted_optimum_within_its_budget(project, capfd):
    lines = []
    best = _tune("planted", None, lines=lines)
    assert best["trials"] == 16 and best["metric"] == "validation_rmse"
    assert abs(best["values"]["variants.planted.scale"] - PLANTED_SCALE) < 0.1, best
    values = _trials("study.db")
    worst_end = max(v for params, v in values if abs(params["variants.planted.scale"] - PLANTED_SCALE) > 0.5)
    assert best["best_value"] < worst_end - 0.1  # the optimum is a real dip, not flat ground
    assert best["command"] == f"dvc exp run -S variants.planted.scale={best['values']['variants.planted.scale']}"
    assert json.loads((project / "data/tuning/planted.json").read_text()) == best
    assert len(lines) == 16 and lines[-1].startswith("trial 16/16: ") and "best " in lines[-1] and " left" in lines[-1]
    assert "Epoch" not in capfd.readouterr().out  # a line per trial, not the fits' epoch lines


@pytest.mark.e2e
def test_the_test_split_is_never_read_and_the_same_seed_gives_the_same_trials(project):
    clean = {target: _tune(target, 3, f"{target}-clean.db") for target in ("planted", "ease", "time_bias")}
    rng = np.random.default_rng(1)
    with np.load(project / "data/prepared/test.npz") as test:
        poisoned = {k: rng.permutation(test[k]) for k in ("user", "movie")}
        poisoned["rating"] = rng.uniform(0.5, 5.0, len(test["rating"]))
        poisoned["day"] = rng.integers(0, 20_000, len(test["day"])).astype(np.int32)
    np.savez(project / "data/prepared/test.npz", **poisoned)
    for target in ("planted", "ease", "time_bias"):
        again = _tune(target, 3, f"{target}-poisoned.db")
        assert {k: again[k] for k in ("values", "best_value")} == {k: clean[target][k] for k in ("values", "best_value")}
        assert _trials(f"{target}-poisoned.db") == _trials(f"{target}-clean.db")  # every trial, bit for bit


@pytest.mark.e2e
def test_a_resumed_study_continues_from_its_stored_trials(project):
    _tune("ease", 2)
    first = _trials("study.db")
    lines = []
    best = _tune("ease", 4, lines=lines)
    assert lines[0] == "Resuming ease: 2 trials stored, 2 to run"
    assert _trials("study.db")[:2] == first and best["trials"] == 4
    lines.clear()
    _tune("ease", 4, lines=lines)  # nothing missing: nothing runs
    assert lines == ["Resuming ease: 4 trials stored, 0 to run"] and len(_trials("study.db")) == 4


@pytest.mark.parametrize("space, message", [
    ({"variants.planted.scael": {"low": 0, "high": 1}}, "tune.spaces.planted.variants.planted.scael: variants.planted.scael is not in the params (did you mean 'scale'?)"),
    ({"variants.planted.scale": {"low": 1, "high": 0}}, "need numbers low < high"),
    ({"variants.planted.scale": {"low": -1.0, "high": 1.0}}, "tune.spaces.planted.variants.planted.scale: -1.0 is not accepted"),
    ({"variants.planted.scale": {"choices": []}}, "choices: give a non-empty list"),
])
def test_a_bad_space_is_one_line_naming_its_key(project, space, message):
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["tune"]["spaces"]["planted"] = space
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    result = CliRunner().invoke(cli, ["tune", "planted"])
    assert result.exit_code == 1 and result.exception.__class__ is SystemExit
    assert message in result.output and len(result.output.strip().splitlines()) == 1, result.output


def test_a_target_without_a_space_or_a_study_of_another_space_is_refused(project):
    with pytest.raises(MovierecError, match="tune: 'bias' cannot be tuned \\(bias has a closed form"):
        _tune("bias", 1)
    with pytest.raises(MovierecError, match="tune: 'bayes_mf' cannot be tuned \\(bayes_mf estimates its own penalties"):
        _tune("bayes_mf", 1)
    params = yaml.safe_load((project / "params.yaml").read_text())
    del params["tune"]["spaces"]["collab"]
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    with pytest.raises(MovierecError, match="tune.spaces: no space for collab; add tune.spaces.collab"):
        _tune("collab", 1)
    _tune("ease", 1)
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["tune"]["spaces"]["ease"]["baselines.ease_reg"]["high"] = 900.0
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    with pytest.raises(MovierecError, match="study.db: this study searched another space or metric; delete the file"):
        _tune("ease", 2)


def test_the_command_prints_the_best_values_and_the_line_that_runs_them(project):
    result = CliRunner().invoke(cli, ["tune", "ease", "--trials", "3"])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert [line.split(":")[0] for line in lines[:3]] == ["trial 1/3", "trial 2/3", "trial 3/3"]
    best = json.loads((project / "data/tuning/ease.json").read_text())
    assert lines[3] == f"Best of 3 trials (0 pruned): validation_ndcg_at_10 {best['best_value']:.4f} (trial {best['best_trial']})"
    assert lines[4] == f"params.yaml's own values (trial 1): validation_ndcg_at_10 {best['current_value']:.4f}"
    assert lines[5] == ("params.yaml's own values did best: nothing to change" if best["best_is_current"] else f"Try it through the pipeline: {best['command']}")
    assert best["best_is_current"] == (best["best_trial"] == 1)
    assert best["command"].startswith("dvc exp run -S baselines.ease_reg=") and (project / "data/tuning/ease.db").is_file()


def test_every_baseline_is_a_target_or_says_why_it_is_not():
    from movierec.params.core import BASELINES
    from movierec.params.tune import BASELINE_TARGETS, UNSEARCHED

    assert sorted([*BASELINE_TARGETS, *UNSEARCHED]) == sorted(BASELINES)
