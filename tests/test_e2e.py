"""The real `dvc repro` and `dvc exp run` in a temporary git repo, on tiny synthetic data served as the mirror."""

import json
import re

import pytest

from conftest import git_commit, run

pytestmark = pytest.mark.e2e


def stages_run(output: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", output))


def eval_metrics(root, variant):
    return json.loads((root / "metrics" / "eval" / f"{variant}.json").read_text())


def test_repro_then_experiment_reruns_only_training(project):
    root, env = project
    first = run(["dvc", "repro"], root, env)
    assert stages_run(first.stdout) >= {"download", "prepare", "embed", "align", "train@collab", "train@hybrid", "evaluate@collab", "evaluate@hybrid"}
    counts = json.loads((root / "metrics/data.json").read_text())
    assert counts["n_users"] == 60 and counts["n_movies"] == 45
    for variant in ("collab", "hybrid"):
        scores = eval_metrics(root, variant)
        assert 0 < scores["rmse"] < 2.5 and 0 < scores["mae"] <= scores["rmse"]
    assert (root / "data/models/collab.keras").is_file()

    shown = json.loads(run(["dvc", "metrics", "show", "--json"], root, env).stdout)
    assert "metrics/eval/collab.json" in json.dumps(shown)

    git_commit(root, "baseline")
    exp = run(["dvc", "exp", "run", "-S", "model.join=product"], root, env)
    ran = stages_run(exp.stdout)
    assert ran and all(s.startswith(("train@", "evaluate@")) for s in ran), ran
    table = json.loads(run(["dvc", "exp", "show", "--json"], root, env).stdout)
    assert "rmse" in json.dumps(table) and "product" in json.dumps(table)


def test_invalid_experiment_value_fails_before_any_work(project):
    root, env = project
    result = run(["dvc", "exp", "run", "-S", "model.join=sum"], root, env, check=False)
    assert result.returncode != 0
    assert "model.join: 'sum' is not accepted; use one of concat, product" in result.stdout + result.stderr
    assert not (root / "data/raw").exists()
