"""The real `dvc repro` and `dvc exp run` in a temporary git repo, on tiny synthetic data served as the mirror."""

import json
import math
import os
import re
import signal
import subprocess
import sys

import numpy as np
import pytest
import yaml

from conftest import REPO, git_commit, run
from synthetic import make_sparse_movielens

pytestmark = pytest.mark.e2e


def stages_run(output: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", output))


def eval_metrics(root, variant):
    return json.loads((root / "metrics" / "eval" / f"{variant}.json").read_text())


def test_repro_then_each_edit_reruns_only_what_it_touches(project):
    """A full repro on tiny data; then the acceptance table (RERUN_TABLE): each edit reruns exactly the
    stages it can change; then an experiment through `dvc exp run`."""
    root, env = project
    first = run(["dvc", "repro"], root, env)
    assert stages_run(first.stdout) >= {"download", "prepare", "embed", "align", "recipe@collab", "train@collab", "train@hybrid", "rank@collab", "evaluate@collab", "evaluate@hybrid"}
    counts = json.loads((root / "metrics/data.json").read_text())
    assert counts["n_users"] == 60 and counts["n_movies"] == 45
    for variant in ("collab", "hybrid"):
        scores = eval_metrics(root, variant)
        assert 0 < scores["rmse"] < 2.5 and 0 < scores["mae"] <= scores["rmse"]
    assert (root / "data/models/collab/model.keras").is_file() and (root / "data/predictions/collab.npz").is_file()

    shown = json.dumps(json.loads(run(["dvc", "metrics", "show", "--json"], root, env).stdout))
    for name in ("collab", "hybrid", "mf_content", "blend", "item_knn", "bayes_mf", "bias", "most_popular", "global_mean"):
        assert f"metrics/eval/{name}.json" in shown
    assert "ndcg_at_10" in shown and "rmse_by_movie_ratings" in shown and "genre_coherence" in shown
    report = (root / "metrics/report.md").read_text()
    assert all(name in report for name in ("| collab |", "| mf_content |", "| blend |", "| most_popular |"))
    blended = eval_metrics(root, "blend")  # weights learned on mf_content's validation carve, named after their models
    weights, carve_rmse = blended["weights"], blended["carve_rmse"]
    assert set(weights) == {"intercept", "mf_content", "item_knn", "bayes_mf"} and all(math.isfinite(w) for w in weights.values())
    assert set(carve_rmse) == {"mf_content", "item_knn", "bayes_mf", "blend"} and carve_rmse["blend"] <= min(carve_rmse.values())
    assert re.search(r"\| collab \| \**\d\.\d{4} \[\d\.\d{4}, \d\.\d{4}\]", report)  # RMSE with its interval
    for name in ("collab", "hybrid", "mf_content", "dae", "blend", "item_knn", "global_mean", "bias", "bayes_mf", "most_popular", "ease"):
        header = (root / "metrics/users" / f"{name}.csv").read_text().splitlines()[0]
        assert header.startswith("user,") and ("sse" in header) == (name not in ("dae", "most_popular", "ease")), name
    for figure in ("ranking_at_k", "training_curves", "rmse_by_popularity"):  # the README shows these
        assert (root / "metrics/plots" / f"{figure}.png").read_bytes().startswith(b"\x89PNG"), figure

    run(["dvc", "plots", "show", "-o", "plots_html"], root, env)
    html = (root / "plots_html" / "index.html").read_text()
    for title in ("Training curves", "Predicted against actual", "RMSE by the movie", "map_collab.png"):
        assert title in html, title
    assert "vega@5.20.2" in html and not re.search(r"<script[^>]*\ssrc=", html)  # the libraries inlined: draws offline

    _check_serving_commands(root, env)
    for command in (["evaluate", "collab"], ["explore", "hybrid"], ["recommend", "--user", "1"], ["similar", "film 0, the"]):
        assert not _imports_tensorflow(command, root, env), command  # only train pays TensorFlow's start-up

    git_commit(root, "baseline")
    _check_what_each_edit_reruns(root, env)
    exp = run(["dvc", "exp", "run", "-S", "model.join=product"], root, env)
    ran = stages_run(exp.stdout)
    assert {"train@collab", "train@hybrid", "rank@collab", "evaluate@collab"} <= ran, ran
    assert not ran & {"download", "prepare", "embed", "align", "baselines"}, ran  # nothing before train reruns
    assert not {s for s in ran if s.endswith(("@mf_content", "@dae")) and not s.startswith("recipe@")}, ran  # nor the variants that share no `model`
    table = json.loads(run(["dvc", "exp", "show", "--json"], root, env).stdout)
    assert "rmse" in json.dumps(table) and "product" in json.dumps(table)


VARIANTS = ("collab", "hybrid", "mf_content", "dae")
JUDGING = {f"{stage}@{v}" for stage in ("rank", "evaluate") for v in VARIANTS} | {"baselines", "report"}
REFIT_NOTEBOOK = {f"{stage}@{v}" for stage in ("train", "rank") for v in ("collab", "hybrid")}  # rank reads the recipe's thread count


def _set_param(key: str, value):
    def edit(root):
        params = yaml.safe_load((root / "params.yaml").read_text())
        *path, last = key.split(".")
        block = params
        for part in path:
            block = block[part]
        block[last] = value
        (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return edit


def _replace_in(relative: str, old: str, new: str):
    def edit(root):
        text = (root / relative).read_text()
        assert old in text, f"{relative} no longer holds {old!r}: update the test"
        (root / relative).write_text(text.replace(old, new, 1))
    return edit


def _append_comment(*relatives: str):
    def edit(root):
        for relative in relatives:
            (root / relative).write_text((root / relative).read_text() + "# an edit that changes no output\n")
    return edit


# The acceptance table: an edit, and exactly the stages `dvc repro` then runs, once the cheap
# recipe stages have resolved the edit into each variant's fit settings (they rerun whenever a block
# they read changes, and rewrite the same file when the variant's settings did not change).
RERUN_TABLE = [
    ("evaluate.relevance_threshold", _set_param("evaluate.relevance_threshold", 3.5), JUDGING),
    ("evaluate.top_n", _set_param("evaluate.top_n", 40), JUDGING),
    ("model.join", _set_param("model.join", "product"), REFIT_NOTEBOOK),
    ("train.batch_size", _set_param("train.batch_size", 16), REFIT_NOTEBOOK),  # mf_content and dae set their own
    ("a variant's popularity_prior", _set_param("variants.dae.popularity_prior", 0.2), {"rank@dae", "report"}),
    ("baselines.ease_reg", _set_param("baselines.ease_reg", 300.0), {"baselines"}),
    ("the Bayesian factor model's rank", _set_param("baselines.bayes_mf.rank", 4), {"baselines", "blend"}),  # the blend fits it too
    ("the blend's neighbour count", _set_param("blend.neighbours.neighbours", 20), {"blend"}),
    ("compare.confidence", _set_param("compare.confidence", 0.9), {"report"}),  # how differences are judged
    ("a value of the profile not in use", _set_param("profiles.large.train.epochs", 3), set()),  # profile: notebook
    ("recommend's help", _replace_in("src/movierec/cli.py", "A userId from ratings.csv.", "A userId of ratings.csv."), set()),
    ("serve.py, synth.py, drift.py", _append_comment("src/movierec/serve.py", "src/movierec/synth.py", "src/movierec/drift.py"), set()),
    ("report.py", _append_comment("src/movierec/report.py"), {"report"}),
    ("the tune block and the tuning code", lambda root: (_set_param("tune.seed", 3)(root),
                                                       _append_comment("src/movierec/tuning.py", "src/movierec/params/tune.py")(root)), set()),
    ("the evaluate block's validation message", _replace_in("src/movierec/params/evaluate.py", "must not exceed", "may not exceed"), JUDGING | {"blend"}),
    ("the embed block's validation", _append_comment("src/movierec/params/embed.py"), {"embed", "align"}),
]


def _stages_to_rerun(root, env) -> tuple[set[str], set[str]]:
    """(what `dvc status` lists right after an edit, what it lists once the recipe stages have run)."""
    first = set(json.loads(run(["dvc", "status", "--json"], root, env).stdout))
    recipes = sorted(s for s in first if s.startswith("recipe@"))
    if not recipes:
        return first, first
    run(["dvc", "repro", "--single-item", *recipes], root, env)
    return first, set(json.loads(run(["dvc", "status", "--json"], root, env).stdout))


def _check_what_each_edit_reruns(root, env):
    assert _stages_to_rerun(root, env) == (set(), set())
    for name, edit, expected in RERUN_TABLE:
        edit(root)
        first, then = _stages_to_rerun(root, env)
        assert then == expected, f"{name}: reruns {sorted(then)}, expected {sorted(expected)}"
        assert not {s for s in first if s.startswith("train@")} - expected, f"{name}: dvc status lists fits {sorted(first)}"
        run(["git", "checkout", "--", "."], root, env)  # the edit, and the recipes' dvc.lock entries
        if any(s.startswith("recipe@") for s in first):
            run(["dvc", "checkout", "--quiet"], root, env)  # the outputs of the recipes that ran
    assert _stages_to_rerun(root, env) == (set(), set())  # each edit was undone (else the next row would show it too)


def test_invalid_experiment_value_fails_before_any_work(project):
    root, env = project
    result = run(["dvc", "exp", "run", "-S", "model.join=sum"], root, env, check=False)
    assert result.returncode != 0
    assert "model.join: 'sum' is not accepted; use one of concat, product" in result.stdout + result.stderr
    assert not (root / "data/raw").exists()  # the recipe stages run first


def _start_and_kill_mid_epoch(cmd, root, env, sig):
    """Start `cmd` in its own process group and send `sig` to the group once training has begun an epoch."""
    proc = subprocess.Popen(
        cmd, cwd=root, env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if line.startswith("Epoch 1/"):
            os.killpg(proc.pid, sig)
            break
    proc.wait(timeout=60)
    assert any(line.startswith("Epoch 1/") for line in seen), "".join(seen)
    assert proc.returncode != 0


def test_interrupted_training_leaves_no_model_and_repro_recovers_the_same_metrics(reproduced_collab_project):
    root, env = reproduced_collab_project
    reference = eval_metrics(root, "collab")
    model = root / "data/models/collab"

    _start_and_kill_mid_epoch(["movierec", "train", "collab"], root, env, signal.SIGTERM)
    _start_and_kill_mid_epoch(["dvc", "repro", "--force", "--single-item", "train@collab"], root, env, signal.SIGKILL)
    assert not model.exists()
    assert not list((root / "data/models").glob("*collab*"))  # no temp file either
    assert [p.name for p in (root / "data/predictions").glob("*collab*")] == ["collab.npz"]  # the rank stage's, from before

    run(["dvc", "repro"], root, env)
    assert (model / "model.keras").is_file()
    assert eval_metrics(root, "collab") == reference
    assert not [p for p in (root / "metrics").rglob("*") if p.name.endswith(".tmp")]
    assert "match HEAD" in run(["movierec", "check-drift"], root, env).stdout


def test_check_reproducible_script_passes_then_catches_drift(reproduced_collab_project):
    root, env = reproduced_collab_project
    script = REPO / "scripts" / "check_reproducible.sh"
    ok = run(["bash", str(script)], root, env)
    assert "metrics match HEAD" in ok.stdout

    path = root / "metrics/eval/collab.json"
    tampered = json.loads(path.read_text())
    tampered["rmse"] += 0.01
    path.write_text(json.dumps(tampered))
    git_commit(root, "tampered results")
    bad = run(["bash", str(script)], root, env, check=False)
    assert bad.returncode != 0
    assert "metrics/eval/collab.json:rmse" in bad.stderr and "drifted beyond 0.0001" in bad.stderr


def _imports_tensorflow(args, root, env) -> bool:
    probe = "import sys; from movierec.cli import cli; cli.main(sys.argv[1:], standalone_mode=False); print('tensorflow' in sys.modules)"
    return run([sys.executable, "-c", probe, *args], root, env).stdout.strip().splitlines()[-1] == "True"


def _one_line_error(result, fragment):
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and fragment in lines[0], result.stderr


def _check_serving_commands(root, env):
    """recommend and similar on the trained synthetic models, and their error paths."""
    import numpy as np

    rows = json.loads(run(["movierec", "recommend", "--user", "1", "-k", "5", "--by", "rmse", "--json"], root, env).stdout)
    assert len(rows) == 5
    ratings = (root / "data/raw/movielens/ratings.csv").read_text().splitlines()[1:]
    rated = {int(line.split(",")[1]) for line in ratings if line.split(",")[0] == "1"}
    assert not rated & {r["movieId"] for r in rows}
    # ranked by predicted rating + the popularity prior the rank stage chose, showing the predicted rating
    stored = np.load(root / "data/predictions/mf_content.npz")
    movie_ids = np.load(root / "data/prepared/ids.npz")["movie_ids"]
    prior = stored["ranking_prior"][np.searchsorted(movie_ids, [r["movieId"] for r in rows])] if "ranking_prior" in stored else 0.0
    shown = np.array([r["predicted_rating"] for r in rows])
    inside = (shown[:-1] < 5.0) & (shown[1:] < 5.0)  # clipping at the top can tie the ranking score
    assert np.all(np.diff(shown + prior)[inside] <= 1e-5)
    assert all(0.0 <= r["predicted_rating"] <= 5.0 for r in rows)  # clipped to data.min_rating, data.max_rating
    ranked = json.loads(run(["movierec", "recommend", "--user", "1", "-k", "5", "--variant", "dae", "--json"], root, env).stdout)
    assert len(ranked) == 5 and not rated & {r["movieId"] for r in ranked}
    assert all("relevance_score" in r and "predicted_rating" not in r for r in ranked)  # a ranker: no ratings shown
    assert np.all(np.diff([r["relevance_score"] for r in ranked]) <= 0)
    served = json.loads(run(["movierec", "recommend", "--user", "1", "-k", "5", "--variant", "ease", "--json"], root, env).stdout)
    assert len(served) == 5 and not rated & {r["movieId"] for r in served} and "relevance_score" in served[0]
    ndcg = {name: eval_metrics(root, name).get("ndcg_at_10") for name in ("collab", "hybrid", "mf_content", "dae", "ease")}
    best = max((name for name in ndcg if ndcg[name] is not None), key=ndcg.get)  # EASE competes with the variants
    assert f"by {best} " in run(["movierec", "recommend", "--user", "1"], root, env).stdout.splitlines()[0]

    near = json.loads(run(["movierec", "similar", "film 0, the", "--space", "content", "-k", "3", "--json"], root, env).stdout)
    assert len(near) == 3 and near[0]["similarity"] >= near[-1]["similarity"]
    assert "Film 0, The (1980)" not in {r["title"] for r in near}
    coherence = {v: json.loads((root / "metrics/explore" / f"{v}.json").read_text())["learned"]["genre_coherence"] for v in VARIANTS}
    header = run(["movierec", "similar", "film 0, the", "-k", "3"], root, env).stdout.splitlines()[0]
    assert f"learned space of {max(coherence, key=coherence.get)}; the best learned genre coherence" in header

    _one_line_error(run(["movierec", "recommend", "--user", "99999"], root, env, check=False), "unknown userId")
    _one_line_error(run(["movierec", "similar", "no such film"], root, env, check=False), "no such film")
    (root / "data/predictions/collab.npz").rename(root / "collab.npz.bak")
    _one_line_error(run(["movierec", "recommend", "--user", "1", "--variant", "collab"], root, env, check=False), "run `dvc repro` first")
    (root / "collab.npz.bak").rename(root / "data/predictions/collab.npz")


def test_a_teammate_pulls_results_and_experiments_instead_of_training(reproduced_collab_project, tmp_path):
    """The sharing loop of the README: DVC remote for data and models, a git remote for code, params,
    metrics and experiments. The teammate's clone serves recommendations with no training."""
    root, env = reproduced_collab_project  # trained and committed
    storage, origin, clone = tmp_path / "dvc-storage", tmp_path / "origin.git", tmp_path / "teammate"
    run(["dvc", "remote", "add", "-d", "shared", str(storage)], root, env)
    git_commit(root, "a shared DVC remote")
    run(["dvc", "push"], root, env)
    run(["git", "init", "-q", "--bare", "-b", "main", str(origin)], tmp_path)
    run(["git", "remote", "add", "origin", str(origin)], root, env)
    run(["git", "push", "-q", "origin", "main"], root, env)
    run(["dvc", "exp", "run", "-n", "bias-reg-4", "-S", "baselines.bias_reg_user=4"], root, env)  # cheap: no retraining
    run(["dvc", "exp", "push", "origin", "bias-reg-4"], root, env)

    run(["git", "clone", "-q", str(origin), str(clone)], tmp_path, env)
    assert not (clone / "data/models/collab/model.keras").exists()
    run(["dvc", "pull"], clone, env)
    assert (clone / "data/models/collab/model.keras").read_bytes() == (root / "data/models/collab/model.keras").read_bytes()
    mine = run(["movierec", "recommend", "--user", "1", "--json"], root, env).stdout
    assert json.loads(run(["movierec", "recommend", "--user", "1", "--json"], clone, env).stdout) == json.loads(mine)
    assert run(["movierec", "similar", "film 0, the", "-k", "3"], clone, env).returncode == 0
    assert "up to date" in run(["dvc", "status"], clone, env).stdout
    assert not stages_run(run(["dvc", "repro"], clone, env).stdout)  # nothing to retrain

    assert "bias-reg-4" not in run(["dvc", "exp", "show", "--json"], clone, env).stdout
    run(["dvc", "exp", "pull", "origin", "bias-reg-4"], clone, env)
    shown = run(["dvc", "exp", "show", "--json"], clone, env).stdout
    assert "bias-reg-4" in shown and "rmse" in shown
    compared = json.loads(run(["movierec", "compare", "HEAD", "bias-reg-4", "--format", "json"], clone, env).stdout)["rows"]
    verdicts = {(r["model"], r["metric"]): r for r in compared}
    bias = verdicts[("bias", "rmse")]  # the experiment's one change, paired over the same users
    assert bias["delta"] != 0 and bias["low"] <= bias["delta"] <= bias["high"]
    assert all(r["delta"] == 0 and r["verdict"] == "within noise" for (model, _), r in verdicts.items() if model == "collab")


ALL_STAGES = {"download", "prepare", "embed", "align", "baselines", "blend", "report"} | {
    f"{stage}@{variant}" for stage in ("recipe", "train", "rank", "evaluate", "explore") for variant in ("collab", "hybrid", "mf_content", "dae")
}


def test_a_3000_rating_dataset_of_your_own_runs_through_every_stage(project):
    """Few users, a large catalogue: hardly a movie has 20 ratings. Every stage succeeds; what cannot be
    measured is written as missing with a reason; recommend and similar still behave."""
    root, env = project
    folder = make_sparse_movielens(root / "mydata")
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["data"]["path"] = "mydata"
    params["baselines"]["ease_max_movies"] = 100  # EASE over the 100 most-rated movies only
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    git_commit(root, "own data")
    result = run(["dvc", "repro"], root, env)
    assert stages_run(result.stdout) == ALL_STAGES
    assert json.loads((root / "metrics/data.json").read_text())["n_ratings"] == 3000
    assert 0 < eval_metrics(root, "blend")["rmse"] < 2.5  # its weights learned on the few rows mf_content held out

    coherence = json.loads((root / "metrics/explore/collab.json").read_text())
    assert coherence["learned"]["genre_coherence"] is None and "eligible movies" in coherence["learned"]["reason"]
    neighbours = json.loads((root / "metrics/neighbours/collab.json").read_text())
    assert len(neighbours["learned"]) == 8  # the most-rated movies stand in for the absent well-known titles
    for variant in ("collab", "hybrid", "mf_content"):
        metrics = eval_metrics(root, variant)
        assert 0 < metrics["rmse"] < 2.5 and metrics["n_users_evaluated"] > 0 and metrics["users_sampled"] is False
    ranker = eval_metrics(root, "dae")  # a ranker: ranking metrics, no rating ones
    assert "rmse" not in ranker and ranker["n_users_evaluated"] > 0 and 0 <= ranker["ndcg_at_10"] <= 1
    report = (root / "metrics/report.md").read_text()
    assert "averaged over" in report and "| dae | – | – |" in report
    assert eval_metrics(root, "ease")["n_params"] == 100 * 99 and "| ease | – | – |" in report

    ratings = (folder / "ratings.csv").read_text().splitlines()[1:]
    movie_ids = np.load(root / "data/prepared/ids.npz")["movie_ids"]
    catalogue = set(movie_ids[np.load(root / "data/predictions/ease.npz")["catalogue"]].tolist())
    for user in (1, 7):  # a capped EASE recommends only its 100 movies, those the user has not rated
        rows = json.loads(run(["movierec", "recommend", "--user", str(user), "--variant", "ease", "-k", "200", "--json"], root, env).stdout)
        rated = {int(line.split(",")[1]) for line in ratings if line.split(",")[0] == str(user)}
        assert len(catalogue) == 100 and {r["movieId"] for r in rows} == catalogue - rated

    for user in (1, 7, 20):
        rows = json.loads(run(["movierec", "recommend", "--user", str(user), "-k", "10", "--json"], root, env).stdout)
        rated = {int(line.split(",")[1]) for line in ratings if line.split(",")[0] == str(user)}
        assert len(rows) == 10 and not rated & {r["movieId"] for r in rows}
        by_rmse = json.loads(run(["movierec", "recommend", "--user", str(user), "--by", "rmse", "--json"], root, env).stdout)
        assert all(0.0 <= r["predicted_rating"] <= 5.0 for r in by_rmse)
    for query in ("Picture 0 (1950)", "Picture 5 (1955)"):
        near = json.loads(run(["movierec", "similar", query, "-k", "5", "--min-ratings", "0", "--json"], root, env).stdout)
        assert len(near) == 5 and query not in {r["title"] for r in near}
    header = run(["movierec", "similar", "Picture 0 (1950)", "-k", "3", "--min-ratings", "0"], root, env).stdout.splitlines()[0]
    assert "no genre coherence measured here (metrics/explore), so the best NDCG@k" in header  # nothing to pick a space by


def test_an_architecture_added_as_one_module_runs_through_every_stage(reproduced_collab_project):
    """Adding an architecture is adding a module and a params.yaml entry: a toy one, registered from
    the tests, trains, ranks, evaluates, explores and is served by the real stages and commands."""
    root, env = reproduced_collab_project
    (root / "src/movierec/architectures/toy.py").write_text((REPO / "tests/toy_architecture.py").read_text())
    env = {**env, "PYTHONPATH": str(root / "src")}  # the project's own copy of the package, with the toy in it
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["variants"]["toy"] = {"architecture": "toy", "shared": "train", "l2": 1e-4, "popularity_prior": 0.0}
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    git_commit(root, "a toy architecture")
    ran = stages_run(run(["dvc", "repro"], root, env).stdout)
    assert {f"{stage}@toy" for stage in ("recipe", "train", "rank", "evaluate", "explore")} <= ran, ran
    metrics = eval_metrics(root, "toy")
    assert 0 < metrics["rmse"] < 2.5 and metrics["n_params"] == (60 + 45) * 3 and 0 <= metrics["ndcg_at_10"] <= 1
    assert "| toy |" in (root / "metrics/report.md").read_text()
    ratings = (root / "data/raw/movielens/ratings.csv").read_text().splitlines()[1:]
    rated = {int(line.split(",")[1]) for line in ratings if line.split(",")[0] == "1"}
    for k in (5, 30):  # from its stored list, then scored on demand with its Keras model
        rows = json.loads(run(["movierec", "recommend", "--user", "1", "-k", str(k), "--variant", "toy", "--json"], root, env).stdout)
        assert len(rows) == min(k, 45 - len(rated)) and not rated & {r["movieId"] for r in rows}
        assert np.all(np.diff([r["predicted_rating"] for r in rows]) <= 1e-6)
