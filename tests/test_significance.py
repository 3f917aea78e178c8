"""Intervals and paired tests over users (significance.py), the per-user file (per_user.py), and
`movierec compare` / `summarize` between commits of a temporary git repo."""

import json
import shutil
import subprocess

import numpy as np
import pytest
from click.testing import CliRunner
from scipy import stats

from conftest import REPO
from movierec import compare, per_user, significance
from movierec.cli import cli
from movierec.errors import MovierecError
from movierec.params.compare import CompareParams
from movierec.ranking import ranking_metrics

S = CompareParams(confidence=0.95, resamples=2000, seed=0)


def ranked(values: np.ndarray, users=None) -> dict:
    users = np.arange(len(values)) if users is None else users
    return {"user": np.asarray(users, dtype=np.float64), "ndcg_at_10": np.asarray(values, dtype=np.float64)}


def rated(n: np.ndarray, errors_per_user: list[np.ndarray]) -> dict:
    return {
        "user": np.arange(len(n), dtype=np.float64), "n_ratings": np.asarray(n, dtype=np.float64),
        "sse": np.array([np.sum(e**2) for e in errors_per_user]), "sae": np.array([np.sum(np.abs(e)) for e in errors_per_user]),
    }


def test_a_planted_difference_is_inside_its_interval_and_rejected():
    rng = np.random.default_rng(1)
    a = rng.uniform(0, 0.6, 400)
    b = np.clip(a + 0.05 + rng.normal(0, 0.1, 400), 0, 1)
    d = significance.paired(ranked(a), ranked(b), "ndcg_at_10", S)
    assert d.n_users == 400 and d.delta == pytest.approx(b.mean() - a.mean())
    assert d.low < np.mean(b - a) < d.high and d.low > 0  # covers the planted shift, excludes 0
    assert d.p < 0.01 and significance.verdict("ndcg_at_10", d.delta, d.p, S) == "better"
    assert significance.verdict("rmse", d.delta, d.p, S) == "worse"  # lower is better for errors


def test_with_nothing_planted_the_test_rejects_at_about_the_nominal_rate():
    s = CompareParams(confidence=0.95, resamples=200, seed=0)
    rejected = 0
    for seed in range(300):
        rng = np.random.default_rng(seed)
        base = rng.uniform(0, 1, 60)
        a, b = base + rng.normal(0, 0.2, 60), base + rng.normal(0, 0.2, 60)
        rejected += significance.paired(ranked(a), ranked(b), "ndcg_at_10", s).p < 0.05
    assert 0.02 <= rejected / 300 <= 0.09, rejected


def test_rmse_pairs_by_user_and_matches_the_metric_over_all_ratings():
    rng = np.random.default_rng(2)
    n = rng.integers(1, 30, 200)
    errors_a = [rng.normal(0, 0.9, k) for k in n]
    errors_b = [e * 0.8 for e in errors_a]  # B is better for every user
    d = significance.paired(rated(n, errors_a), rated(n, errors_b), "rmse", S)
    everything = np.concatenate(errors_a)
    assert d.a == pytest.approx(np.sqrt(np.mean(everything**2)), rel=1e-12)
    assert d.delta == pytest.approx(-0.2 * d.a, rel=1e-9) and d.high < 0
    assert significance.verdict("rmse", d.delta, d.p, S) == "better"
    other_split = rated(n + 1, errors_b)
    with pytest.raises(MovierecError, match="different test ratings"):
        significance.paired(rated(n, errors_a), other_split, "rmse", S)


def test_t_and_wilcoxon_p_values_are_scipy_own_on_the_same_per_user_vectors():
    rng = np.random.default_rng(3)
    a = rng.uniform(0, 1, 150)
    b = a + rng.normal(0.03, 0.2, 150)
    assert significance.paired(ranked(a), ranked(b), "ndcg_at_10", S, "t").p == pytest.approx(stats.ttest_rel(b, a).pvalue, rel=1e-12)
    assert significance.paired(ranked(a), ranked(b), "ndcg_at_10", S, "wilcoxon").p == pytest.approx(stats.wilcoxon(b - a).pvalue, rel=1e-12)
    n = rng.integers(1, 9, 150).astype(float)
    mse_a, mse_b = rng.uniform(0.3, 1.5, 150), rng.uniform(0.3, 1.5, 150)
    table_a = {"user": np.arange(150.0), "n_ratings": n, "sse": mse_a * n, "sae": mse_a * n}
    table_b = {"user": np.arange(150.0), "n_ratings": n, "sse": mse_b * n, "sae": mse_b * n}
    assert significance.paired(table_a, table_b, "rmse", S, "t").p == pytest.approx(stats.ttest_rel(mse_b, mse_a).pvalue, rel=1e-9)


def test_only_users_both_sides_measured_are_paired():
    d = significance.paired(ranked([0.1, 0.2, 0.3], [1, 2, 3]), ranked([0.5, 0.2, 0.9], [2, 3, 4]), "ndcg_at_10", S)
    assert d.n_users == 2 and d.a == pytest.approx(0.25) and d.b == pytest.approx(0.35)
    assert significance.paired(ranked([0.1], [1]), ranked([0.5], [2]), "ndcg_at_10", S) is None
    assert significance.paired(ranked([0.1], [1]), ranked([0.5], [1]), "rmse", S) is None  # a ranker has no RMSE


def test_holm_on_hand_checked_p_values():
    # sorted: 0.005 x 4 = 0.02, 0.01 x 3 = 0.03, 0.03 x 2 = 0.06, 0.04 x 1 = 0.04 -> running max 0.06
    assert significance.holm([0.01, 0.04, 0.03, 0.005]).tolist() == pytest.approx([0.03, 0.06, 0.06, 0.02])
    adjusted = significance.holm([0.5, np.nan, 0.9])
    assert np.isnan(adjusted[1]) and adjusted[[0, 2]].tolist() == pytest.approx([1.0, 1.0])  # 0.5 x 2, then max(1.0, 0.9 x 1)


def test_a_column_bolds_the_best_and_whatever_is_within_noise_of_it():
    rng = np.random.default_rng(4)
    best = rng.uniform(0, 1, 300)
    tables = {"best": ranked(best), "twin": ranked(best + rng.normal(0, 0.05, 300)), "bad": ranked(best - 0.2)}
    column = significance.judge_column(tables, "ndcg_at_10", S)
    assert column.tied_with_best == {"best", "twin"}
    low, high = column.intervals["best"]
    assert low < best.mean() < high
    assert significance.judge_column(tables, "rmse", S) is None


def test_per_user_file_round_trips_and_recomputes_the_metrics():
    test_user = np.array([0, 0, 1, 2, 2, 2])
    errors = np.array([0.5, -1.0, 0.25, 0.0, 2.0, -0.5])
    lists = np.array([[3, 4], [5, 6], [7, 3]])
    metrics, ranking = ranking_metrics(lists, test_user, np.array([3, 9, 5, 8, 8, 3]), np.array([5, 1, 4, 2, 2, 4.5]), 4.0, 2, 10)
    table = per_user.table(np.array([11, 12, 13]), per_user.rating_errors(test_user, errors, np.arange(3)), ranking)
    back = per_user.from_csv(per_user.to_csv(table), "x.csv")
    assert back["user"].tolist() == [11, 12, 13] and back["n_ratings"].tolist() == [2, 1, 3]
    rmse = significance.paired(back, back, "rmse", S).a
    assert rmse == pytest.approx(np.sqrt(np.mean(errors**2)), rel=1e-9)
    users, weight, value, _ = per_user.parts(back, "ndcg_at_2")
    assert users.tolist() == [11, 12, 13] and np.mean(value) == pytest.approx(metrics["ndcg_at_2"], rel=1e-9)
    with pytest.raises(MovierecError, match=r"^bad\.csv: a row"):
        per_user.from_csv("user,sse\n1,2\n3\n", "bad.csv")


def test_a_sample_of_users_bounds_the_rating_rows():
    users = per_user.rating_users(np.repeat(np.arange(1000), 3), 50, seed=0)
    assert len(users) == 50 and np.all(np.diff(users) > 0)
    assert len(per_user.rating_users(np.arange(10), 0, seed=0)) == 10


# ------------------------------------------------------------------ compare and summarize on a git repo


def git(root, *args):
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)


def commit_tables(root, tables: dict, message: str, metrics: dict | None = None):
    folder = root / "metrics" / "users"
    shutil.rmtree(folder, ignore_errors=True)
    if tables:
        folder.mkdir(parents=True)
        for name, table in tables.items():
            (folder / f"{name}.csv").write_text(per_user.to_csv(table))
    for name, values in (metrics or {}).items():
        (root / "metrics" / "eval").mkdir(parents=True, exist_ok=True)
        (root / "metrics" / "eval" / f"{name}.json").write_text(json.dumps(values))
    git(root, "add", "-A")
    git(root, "commit", "-q", "--allow-empty", "-m", message)
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def history(tmp_path, monkeypatch):
    """A repo of three commits: no per-user files, then models a and b, then b improved on ndcg."""
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.email", "t@example.com")
    git(root, "config", "user.name", "t")
    shutil.copy(REPO / "params.yaml", root / "params.yaml")
    rng = np.random.default_rng(5)
    a = rng.uniform(0, 0.5, 200)
    first = commit_tables(root, {}, "before per-user files", {"m": {"rmse": 0.9}})
    old = commit_tables(root, {"a": ranked(a), "b": ranked(a + rng.normal(0, 0.01, 200))}, "two models", {"m": {"rmse": 0.91}})
    new = commit_tables(root, {"a": ranked(a), "b": ranked(a + 0.1)}, "b improved", {"m": {"rmse": 0.95}})
    monkeypatch.chdir(root)
    return root, first, old, new


def invoke(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_compare_two_commits_names_the_real_change_and_gates_on_it(history):
    root, first, old, new = history
    result = invoke("compare", old, new, "--format", "json")
    assert result.exit_code == 0, result.output
    rows = {(r["model"], r["metric"]): r for r in json.loads(result.output)["rows"]}
    assert rows[("b", "ndcg_at_10")]["verdict"] == "better" and rows[("a", "ndcg_at_10")]["verdict"] == "within noise"
    assert rows[("a", "ndcg_at_10")]["delta"] == 0 and rows[("b", "ndcg_at_10")]["low"] > 0
    backwards = invoke("compare", new, old, "--fail-if-worse", "ndcg_at_10")
    assert backwards.exit_code == 1 and "worse" in backwards.output
    assert invoke("compare", old, new, "--fail-if-worse", "ndcg_at_10").exit_code == 0
    assert "| model | metric |" in invoke("compare", old, new, "--format", "markdown").output
    one = json.loads(invoke("compare", old, new, "--metrics", "ndcg_at_10", "--models", "b", "--format", "json").output)["rows"]
    assert [(r["model"], r["metric"]) for r in one] == [("b", "ndcg_at_10")] and one[0]["p_holm"] == one[0]["p"]


def test_compare_two_models_of_one_revision_and_the_workspace(history):
    root, first, old, new = history
    models = json.loads(invoke("compare", new, "--models", "a,b", "--format", "json").output)["rows"]
    assert len(models) == 1 and models[0]["model"] == "b - a" and models[0]["verdict"] == "better"
    (root / "metrics" / "users" / "b.csv").write_text(per_user.to_csv(ranked(np.zeros(200))))  # an uncommitted rerun
    default = json.loads(invoke("compare", "--format", "json").output)  # HEAD against the workspace
    assert default["b"] == "workspace" and {r["model"]: r["verdict"] for r in default["rows"]} == {"a": "within noise", "b": "worse"}


def test_compare_reads_a_dvc_experiment_by_name(history):
    root, first, old, new = history
    git(root, "update-ref", f"refs/exps/{old[:2]}/{old[2:]}/tiny-exp", new)  # where `dvc exp run` / `exp pull` keep one
    rows = json.loads(invoke("compare", old, "tiny-exp", "--format", "json").output)["rows"]
    assert {r["model"]: r["verdict"] for r in rows} == {"a": "within noise", "b": "better"}


def test_an_experiment_name_run_on_several_commits_means_the_one_run_on_head(history):
    """`dvc exp run -n seed-1` on two commits keeps both; like `dvc exp show`, the name means HEAD's."""
    root, first, old, new = history
    git(root, "update-ref", f"refs/exps/{old[:2]}/{old[2:]}/seed-1", old)
    git(root, "update-ref", f"refs/exps/{new[:2]}/{new[2:]}/seed-1", new)  # new is HEAD
    assert compare.resolve("seed-1") == new
    git(root, "update-ref", f"refs/exps/{first[:2]}/{first[2:]}/seed-2", first)
    git(root, "update-ref", f"refs/exps/{old[:2]}/{old[2:]}/seed-2", old)  # neither on HEAD: ambiguous
    with pytest.raises(MovierecError, match="2 experiments have this name"):
        compare.resolve("seed-2")


def test_a_revision_before_per_user_files_or_a_typo_is_one_line(history):
    root, first, old, new = history
    for revision, message in ((first, "predates per-user results"), ("no-such-rev", "not a git revision, branch or `dvc exp` name")):
        result = CliRunner().invoke(cli, ["compare", revision, new])
        assert result.exit_code == 1 and message in result.output and "Traceback" not in result.output
        assert len(result.output.strip().splitlines()) == 1


def test_summarize_gives_mean_and_spread_over_runs(history):
    root, first, old, new = history
    git(root, "update-ref", f"refs/exps/{new[:2]}/{new[2:]}/seed-1", old)
    git(root, "update-ref", f"refs/exps/{new[:2]}/{new[2:]}/seed-2", first)
    summary = json.loads(invoke("summarize", "--json").output)  # every experiment based on HEAD
    values = summary["models"]["m"]["rmse"]
    assert values["n"] == 2 and values["mean"] == pytest.approx(0.905) and values["std"] == pytest.approx(np.std([0.9, 0.91], ddof=1))
    listed = json.loads(invoke("summarize", first, old, new, "--json").output)["models"]["m"]["rmse"]
    assert listed["n"] == 3 and listed["mean"] == pytest.approx(np.mean([0.9, 0.91, 0.95]))


def test_the_committed_per_user_files_of_every_model_stay_under_a_megabyte():
    from movierec.params.core import BASELINES, BLENDED
    from movierec.params.project import load_params

    files = sorted((REPO / "metrics" / "users").glob("*.csv"))
    assert {f.stem for f in files} == {*load_params(REPO / "params.yaml").variants, *BLENDED, *BASELINES}  # one per model
    assert sum(f.stat().st_size for f in files) < 1_000_000
    for f in files:
        assert len(per_user.from_csv(f.read_text(), f.name)["user"]) <= 610  # a row per evaluated user, never per rating
