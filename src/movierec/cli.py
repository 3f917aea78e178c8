"""The `movierec` command, for people: `recommend`, `similar`, `compare`, `summarize`, `tune`, `synth`, `check-drift`, and each pipeline
stage by name (the same entries dvc.yaml runs, `python -m movierec.stages.<stage>`).

No stage imports this file, so editing a help text here reruns nothing. Expected mistakes raise
MovierecError, printed as one line with a non-zero exit and no traceback. Only `train` imports
TensorFlow at once; `recommend` does only for a user without a stored list (see serve.py).
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from movierec.errors import MovierecError


class _Group(click.Group):
    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except MovierecError as exc:
            raise click.ClickException(str(exc)) from None


@click.group(cls=_Group)
@click.option("--params", "params_file", default="params.yaml", show_default=True, help="Params file to read.")
@click.pass_context
def cli(ctx, params_file):
    """Train, compare and serve neural movie recommenders on MovieLens."""
    from movierec.environment import pin_kernels

    pin_kernels()  # same bits on any number of cores and any x86-64 CPU: see environment.py
    ctx.obj = {"params_file": params_file}


def _raw_params(ctx) -> dict:
    from movierec.params import core

    return core.read(ctx.obj["params_file"])


def _run_stage(ctx, stage: str, variant: str | None = None, **options) -> None:
    """Run a pipeline stage's own entry (`python -m movierec.stages.<stage>`), as dvc.yaml does."""
    import argparse
    import importlib

    importlib.import_module(f"movierec.stages.{stage}").main(argparse.Namespace(params=ctx.obj["params_file"], variant=variant, **options))


STAGES = {  # stage: (help, takes a VARIANT)
    "download": ("Fetch the MovieLens release data.dataset into data/raw (or from $MOVIEREC_DATA_MIRROR) and verify it.", False),
    "prepare": ("Encode users and movies and split the ratings exactly as the notebook did.", False),
    "embed": ("Build content vectors per movie (TF-IDF + SVD of titles, genres and tags, or the tag genome).", False),
    "align": ("Stack the content vectors in movie-encoder order (zeros where missing) and report coverage.", False),
    "recipe": ("Resolve VARIANT's fit settings from params.yaml into data/recipes/VARIANT.json.", True),
    "rank": ("Rank VARIANT's lists with its fitted model into data/predictions/VARIANT.npz.", True),
    "evaluate": ("Score VARIANT's predictions on the test split: ratings, ranking and error breakdowns.", True),
    "explore": ("Explore VARIANT's movie vectors: genre coherence, neighbours, a 2-D map, a projector export.", True),
    "baselines": ("Fit and score the global-mean, bias, time-aware bias, most-popular and EASE baselines like the variants.", False),
    "blend": ("Blend blend.variant's predicted ratings with an item-neighbour model's, weighted on its validation carve.", False),
    "report": ("Write metrics/report.md and its figures: every model side by side.", False),
}


def _stage_command(stage: str, help_text: str, takes_variant: bool):
    if takes_variant:
        @click.argument("variant")
        @click.pass_context
        def command(ctx, variant):
            _run_stage(ctx, stage, variant)
    else:
        @click.pass_context
        def command(ctx):
            _run_stage(ctx, stage)
    cli.command(stage, help=help_text)(command)


for _stage, (_help, _takes_variant) in STAGES.items():
    _stage_command(_stage, _help, _takes_variant)


@cli.command()
@click.argument("variant")
@click.option("--workers", type=click.IntRange(1), default=None,
              help="Train on N local worker processes (multi_worker); default: params train.workers.")
@click.pass_context
def train(ctx, variant, workers):
    """Resolve VARIANT's recipe, then fit it into data/models/VARIANT (the recipe and train stages).

    With train.distribute=multi_worker and no TF_CONFIG, it launches train.workers local workers."""
    _run_stage(ctx, "recipe", variant)
    _run_stage(ctx, "train", variant, workers=workers)


def _catalog(ctx):
    """Raw params, prepared data, and movies.csv rows in movie-encoder order (row m describes movie m)."""
    from movierec import data
    from movierec.explore import movies_in_encoder_order
    from movierec.params import data as data_params
    from movierec.paths import PREPARED_DIR
    from movierec.prepare import load_prepared

    raw = _raw_params(ctx)
    prepared = load_prepared(PREPARED_DIR)
    movies = movies_in_encoder_order(data.load_movies(Path(data_params.load(raw, ctx.obj["params_file"]).path)), prepared.movie_ids)
    return raw, prepared, movies


def _model_or_best(ctx, raw: dict, name: str | None, by: str, baselines: tuple[str, ...] = ()) -> str:
    """The requested variant or one of `baselines` (checked), or the best of them by `by` (ndcg or rmse) in metrics/eval."""
    from movierec.evaluate import read_evaluation
    from movierec.params import evaluate as evaluate_params
    from movierec.params import variants
    from movierec.serve import best_variant, check_model_name

    names = variants.names(raw, ctx.obj["params_file"])
    k = evaluate_params.load(raw, ctx.obj["params_file"]).k
    name = name or best_variant({n: read_evaluation(n) for n in [*names, *baselines]}, by, k)
    check_model_name(name, names, baselines)
    return name


_BY = click.option(
    "--by", type=click.Choice(["ndcg", "rmse"]), default="ndcg", show_default=True,
    help="Which variant by default: the best test NDCG@k (its lists) or the best test RMSE (its ratings).",
)


def _read_json(path: Path) -> dict | None:
    import json

    return json.loads(path.read_text()) if path.is_file() else None


def _content_matrix():
    import numpy as np

    from movierec.paths import CONTENT_MATRIX

    if not CONTENT_MATRIX.is_file():
        raise MovierecError(f"{CONTENT_MATRIX}: missing; run `dvc repro align` first")
    return np.load(CONTENT_MATRIX, allow_pickle=False)


def _print_rows(rows: list[dict], as_json: bool, header: str) -> None:
    import json

    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    click.echo(header)
    for i, row in enumerate(rows, 1):
        values = "  ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for k, v in row.items() if k not in ("title", "genres"))
        click.echo(f"{i:>3}. {row['title']}  [{row['genres']}]  {values}")


@cli.command()
@click.option("--user", "user_id", type=int, required=True, help="A userId from ratings.csv.")
@click.option("-k", "k", default=10, show_default=True, type=click.IntRange(1))
@click.option("--variant", default=None, help="A variant of params.yaml, or ease. Default: the best by --by.")
@_BY
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
def recommend(ctx, user_id, k, variant, by, as_json):
    """Top-k movies USER has not rated: by predicted rating (clipped to the scale) for rating models,
    by relevance score for rankers."""
    from movierec import serve
    from movierec.params import data as data_params
    from movierec.paths import METRICS_DIR

    raw, prepared, movies = _catalog(ctx)
    name = _model_or_best(ctx, raw, variant, by, serve.SERVED_BASELINES)
    served = serve.served_model(raw, name, METRICS_DIR / "lists")
    user = serve.encoded_user(prepared, user_id)
    picks, scores = serve.recommend(prepared, user, k, served, data_params.load(raw, ctx.obj["params_file"]).rating_range)
    what = "predicted_rating" if served.predicts_ratings else "relevance_score"
    rows = serve.movie_rows(movies, picks, scores, what)
    _print_rows(rows, as_json, f"Top {len(rows)} for user {user_id} by {name} (movieId, {what.replace('_', ' ')}):")


@cli.command()
@click.argument("query")
@click.option("-k", "k", default=10, show_default=True, type=click.IntRange(1))
@click.option("--space", type=click.Choice(["learned", "content"]), default="learned", show_default=True,
              help="learned: the model's movie vectors; content: the aligned content vectors.")
@click.option("--variant", default=None, help="Model for the learned space. Default: the best by --by.")
@click.option(
    "--by", type=click.Choice(["coherence", "ndcg", "rmse"]), default="coherence", show_default=True,
    help="Which variant by default: the best learned genre coherence (whose space puts same-genre movies nearest), "
    "the best test NDCG@k, or the best test RMSE.",
)
@click.option("--min-ratings", default=5, show_default=True, type=click.IntRange(0),
              help="Only show movies with at least this many training ratings (their vectors mean something).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
def similar(ctx, query, k, space, variant, by, min_ratings, as_json):
    """Movies nearest to QUERY (a title, any case, year optional, or a movieId) by cosine similarity."""
    from movierec import explore, predictions, serve
    from movierec.params import variants

    raw, prepared, movies = _catalog(ctx)
    name, why = None, ""
    if space == "learned" and variant is None and by == "coherence":
        best = serve.best_space({n: _read_json(Path("metrics/explore") / f"{n}.json") for n in variants.names(raw, ctx.obj["params_file"])})
        if best is not None:
            name, why = best[0], f"; the best learned genre coherence, {best[1]:.3f}, in metrics/explore"
        else:
            name, why = _model_or_best(ctx, raw, None, "ndcg"), "; no genre coherence measured here (metrics/explore), so the best NDCG@k"
    elif space == "learned":
        name = _model_or_best(ctx, raw, variant, by)
    vectors = predictions.read(predictions.path(name), "movie_vectors")["movie_vectors"] if name else _content_matrix()
    counts = explore.rating_counts(prepared.train.movie, len(prepared.movie_ids))
    index, picks, sims = serve.similar(vectors, movies, query, k, counts, min_ratings)
    rows = serve.movie_rows(movies, picks, sims, "similarity", counts)
    where = f"{space} space" + (f" of {name}" if name else "")
    _print_rows(rows, as_json, f"Nearest to {movies.title[index]} in the {where}{why} (movieId, cosine, training ratings >= {min_ratings}):")


@cli.command()
@click.argument("revisions", nargs=-1)
@click.option("--models", default=None, help="Comma-separated models to compare (default: every model both sides have). "
              "With one revision and two models, compare those two models at that revision.")
@click.option("--metrics", default=None, help="Comma-separated metrics to compare (e.g. rmse,ndcg_at_10; default: every one both sides have). "
              "Fewer rows, a milder Holm correction.")
@click.option("--test", type=click.Choice(["permutation", "t", "wilcoxon"]), default="permutation", show_default=True,
              help="The paired test over users behind p: permutation (swaps each user's two values), or scipy's ttest_rel or wilcoxon.")
@click.option("--format", "fmt", type=click.Choice(["plain", "markdown", "json"]), default="plain", show_default=True)
@click.option("--fail-if-worse", "fail_metric", default=None, metavar="METRIC",
              help="Exit 1 if B is significantly worse than A on METRIC (e.g. ndcg_at_10) for any model: a CI gate.")
@click.pass_context
def compare(ctx, revisions, models, metrics, test, fmt, fail_metric):
    """Is B better than A, or within noise? Every model and metric of two revisions (git revisions,
    branches, `dvc exp` names or `workspace`; default HEAD against the workspace), paired over the users
    both were measured on: the difference, its interval, a paired test and a verdict after Holm's correction.

    Reads the git-tracked metrics/users files only: works in a fresh clone with no DVC remote."""
    from movierec import compare as comparing
    from movierec.params import compare as compare_params

    s = compare_params.load(_raw_params(ctx), ctx.obj["params_file"])
    names = [m.strip() for m in models.split(",") if m.strip()] if models else None
    a, b, pairs = comparing.sides(list(revisions), names)
    wanted = [m.strip() for m in metrics.split(",") if m.strip()] if metrics else None
    rows = comparing.compare(pairs, s, test, wanted)
    if fail_metric and fail_metric not in {r["metric"] for r in rows}:
        raise MovierecError(f"--fail-if-worse {fail_metric}: no such metric here; compared: {', '.join(sorted({r['metric'] for r in rows}))}")
    click.echo(comparing.render(rows, a, b, fmt, s, test))
    worse = [r["model"] for r in rows if r["metric"] == fail_metric and r["verdict"] == "worse"]
    if worse:
        click.echo(f"{b} is significantly worse than {a} on {fail_metric} for {', '.join(worse)}", err=True)
        ctx.exit(1)


@cli.command()
@click.argument("revisions", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def summarize(revisions, as_json):
    """Mean ± std of every model's metrics over a set of runs: REVISIONS (commits, branches, `dvc exp`
    names), or by default every experiment based on HEAD. Run `dvc exp run --queue -S train.seed=1,2,3,4,5`
    and `dvc queue start` first, and this is the noise of training."""
    import json

    from movierec import compare as comparing

    revs = list(revisions) or comparing.experiments_of("HEAD")
    if len(revs) < 2:
        raise MovierecError("summarize needs at least two runs; pass revisions, or queue experiments based on HEAD (`dvc exp run --queue -S train.seed=1,2,3`)")
    summary = comparing.summarize(revs)
    if as_json:
        runs = [{"rev": rev, "commit": comparing.resolve(rev) if rev != comparing.WORKSPACE else None} for rev in revs]
        click.echo(json.dumps({"runs": runs, "models": summary}, indent=2))
        return
    click.echo(f"mean ± std over {len(revs)} runs")
    for model, metrics in sorted(summary.items()):
        for metric, v in sorted(metrics.items()):
            click.echo(f"{model:14s} {metric:24s} {v['mean']:.4f} ± {v['std']:.4f}  (n={v['n']})")


@cli.command()
@click.argument("out", type=click.Path(file_okay=False, path_type=Path))
@click.option("--preset", default=None, help="Sizes of a MovieLens release: ml-1m, ml-10m, ml-25m or ml-32m.")
@click.option("--users", type=click.IntRange(1), default=None, help="Number of users (overrides the preset).")
@click.option("--movies", type=click.IntRange(1), default=None, help="Number of movies in movies.csv (overrides the preset).")
@click.option("--ratings", type=click.IntRange(1), default=None, help="Number of ratings (overrides the preset).")
@click.option("--seed", type=click.IntRange(0), default=0, show_default=True)
@click.option("--factors", type=click.IntRange(1), default=10, show_default=True, help="Rank of the planted model.")
@click.option("--sigma", type=click.FloatRange(0, min_open=True), default=0.8, show_default=True, help="Noise of the planted ratings.")
@click.option("--tags/--no-tags", default=True, show_default=True, help="Also write tags.csv.")
def synth(out, preset, users, movies, ratings, seed, factors, sigma, tags):
    """Write synthetic MovieLens-format data into OUT, with the planted model (planted.npz/.json) for the oracle RMSE."""
    from movierec import synth as synth_core

    sizes = synth_core.resolve_sizes(preset, users, movies, ratings)
    summary = synth_core.generate(out, users=sizes[0], movies=sizes[1], ratings=sizes[2], seed=seed, factors=factors, sigma=sigma, tags=tags)
    click.echo(f"oracle RMSE on all ratings {summary['oracle_rmse_all_ratings']:.4f} (noise sigma {sigma}); point data.path at {out}")


@cli.command()
@click.argument("target")
@click.option("--trials", type=click.IntRange(1), default=None,
              help="Finished trials the study should hold (default: params tune.trials); a resumed study runs the missing ones.")
@click.option("--study", "study_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="SQLite file of the study (default: data/tuning/TARGET.db); an existing one resumes.")
@click.pass_context
def tune(ctx, target, trials, study_path):
    """Search TARGET's settings (a variant, or ease) over params tune.spaces.TARGET on the validation carve.

    The test split is never read. Prints a line per trial, then the `dvc exp run -S ...` line that
    trains and evaluates the best values through the pipeline; data/tuning/TARGET.json keeps them."""
    from movierec.tuning import tune as run_tune

    best = run_tune(_raw_params(ctx), ctx.obj["params_file"], target, trials, study_path)
    click.echo(f"Best of {best['trials']} trials ({best['pruned']} pruned): {best['metric']} {best['best_value']:.4f} (trial {best['best_trial']})")
    if best["current_value"] is not None:
        click.echo(f"params.yaml's own values (trial 1): {best['metric']} {best['current_value']:.4f}")
    if best["best_is_current"]:
        click.echo("params.yaml's own values did best: nothing to change")
    else:
        click.echo(f"Try it through the pipeline: {best['command']}")


@cli.command("check-drift")
@click.option("--tolerance", default=1e-4, show_default=True, help="Largest absolute change accepted.")
@click.option("--rev", default="HEAD", show_default=True, help="Revision holding the reference metrics.")
def check_drift(tolerance, rev):
    """Compare workspace results with REV's: metrics that moved beyond TOLERANCE (exit 1), the first
    stage whose outputs differ from REV's dvc.lock, and the environment differences that can explain it."""
    from movierec.drift import check

    report = check(rev, tolerance)
    lines = report.lines(tolerance)
    if report.drifted:
        raise MovierecError(" | ".join(lines))
    for line in lines:
        click.echo(line)
    click.echo(f"{report.n_metrics} metrics match {rev} within {tolerance}")


def main():
    cli(prog_name="movierec")


if __name__ == "__main__":
    sys.exit(main())
