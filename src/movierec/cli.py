"""The `movierec` command: one thin command per pipeline stage. dvc.yaml calls these.

Each command validates params.yaml first, then does its I/O around a pure core function. Expected
mistakes raise MovierecError, printed as one line with a non-zero exit and no traceback.
Only `train` imports TensorFlow (seconds of start-up); the rest read the files it writes.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from movierec.errors import MovierecError

RAW_DIR = Path("data/raw")
PREPARED_DIR = Path("data/prepared")
CONTENT_MATRIX = Path("data/features/content.npy")
MODELS_DIR = Path("data/models")
PREDICTIONS_DIR = Path("data/predictions")
METRICS_DIR = Path("metrics")
BASELINES = ("global_mean", "bias", "most_popular")


def model_path(name: str) -> Path:
    return MODELS_DIR / f"{name}.keras"


def predictions_path(name: str) -> Path:
    return PREDICTIONS_DIR / f"{name}.npz"


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
    ctx.obj = {"params_file": params_file}


def _params(ctx):
    from movierec.params import load_params

    return load_params(ctx.obj["params_file"])


@cli.command()
@click.pass_context
def download(ctx):
    """Fetch MovieLens latest-small into data/raw (or from $MOVIEREC_DATA_MIRROR) and verify it."""
    from movierec import data

    p = _params(ctx).data
    if Path(p.path) != Path(data.DEFAULT_DATA_PATH):
        from movierec.atomic import atomic_path

        with atomic_path(RAW_DIR, directory=True) as tmp:
            (tmp / "NOT_DOWNLOADED.txt").write_text(f"data.path is {p.path}: the official archive is not needed.\n")
        click.echo(f"data.path points at {p.path}; skipping the official download")
        return
    folder = data.download(p.url, RAW_DIR, max_bytes=int(p.max_download_mb * 1024 * 1024), expected_sha256=p.sha256)
    click.echo(f"MovieLens verified in {folder}")


@cli.command()
@click.pass_context
def prepare(ctx):
    """Encode users and movies and split the ratings exactly as the notebook did."""
    from movierec import data
    from movierec.atomic import write_json
    from movierec.prepare import prepare as prepare_core
    from movierec.prepare import save_prepared

    p = _params(ctx)
    ratings = data.load_ratings(
        Path(p.data.path), min_rating=p.data.min_rating, max_rating=p.data.max_rating, duplicates=p.data.duplicates
    )
    prepared = prepare_core(ratings, test_size=p.prepare.test_size, seed=p.prepare.seed)
    save_prepared(prepared, PREPARED_DIR)
    write_json(METRICS_DIR / "data.json", prepared.counts())
    click.echo(", ".join(f"{k}={v}" for k, v in prepared.counts().items()))


@cli.command()
@click.pass_context
def embed(ctx):
    """Build content vectors (TF-IDF + SVD over title, genres, tags) into data/content/embeddings.npz."""
    from movierec import content, data

    p = _params(ctx)
    folder = Path(p.data.path)
    texts = content.movie_texts(data.load_movies(folder), data.load_tags(folder))
    vectors = content.build_content_vectors(texts, dim=p.embed.dim, min_df=p.embed.min_df, seed=p.embed.seed)
    content.save_archive(vectors, Path("data/content/embeddings.npz"))
    click.echo(f"{len(vectors)} content vectors of length {p.embed.dim}")


@cli.command()
@click.pass_context
def align(ctx):
    """Stack the content vectors in movie-encoder order (zeros where missing) and report coverage."""
    import numpy as np

    from movierec.align import align as align_core
    from movierec.align import load_archive
    from movierec.atomic import atomic_path, write_json
    from movierec.prepare import load_prepared

    p = _params(ctx)
    prepared = load_prepared(PREPARED_DIR)
    matrix, coverage = align_core(load_archive(Path(p.embed.archive), p.embed.dim), prepared.movie_ids, p.embed.dim)
    with atomic_path(CONTENT_MATRIX) as tmp:
        np.save(tmp, matrix)
    write_json(METRICS_DIR / "align.json", coverage)
    click.echo(f"{coverage['with_vector']}/{coverage['movies']} movies have a content vector")


@cli.command()
@click.argument("variant")
@click.option("--workers", type=click.IntRange(1), default=None,
              help="Train on N local worker processes (multi_worker); default: params train.workers.")
@click.pass_context
def train(ctx, variant, workers):
    """Train one variant from params.yaml's `variants`: data/models/VARIANT.keras and data/predictions/VARIANT.npz.

    With train.distribute=multi_worker and no TF_CONFIG, it launches train.workers local workers."""
    from movierec import distribute
    from movierec import train as train_stage
    from movierec.prepare import load_prepared

    p = _params(ctx)
    t = p.variant(variant).train
    if workers is not None:
        single = "none" if t.distribute == "multi_worker" else t.distribute
        p = p.with_distribution(variant, "multi_worker" if workers > 1 else single, workers)
        t = p.variant(variant).train
    if distribute.should_launch(t.distribute, t.workers):
        argv = [sys.executable, "-m", "movierec.cli", "--params", ctx.obj["params_file"], "train", variant]
        if workers is not None:
            argv += ["--workers", str(workers)]
        distribute.launch(argv, t.workers)
        return
    train_stage.run(
        p,
        variant,
        load_prepared(PREPARED_DIR),
        content_path=CONTENT_MATRIX,
        model_path=model_path(variant),
        predictions_path=predictions_path(variant),
        live_dir=METRICS_DIR / "train" / variant,
        timing_path=METRICS_DIR / "timing" / f"{variant}.json",
    )


@cli.command()
@click.argument("variant")
@click.pass_context
def evaluate(ctx, variant):
    """Score one trained variant on the test split: ratings, ranking and error breakdowns."""
    from movierec import evaluate as evaluate_stage
    from movierec.prepare import load_prepared

    p = _params(ctx)
    p.variant(variant)
    predictions = evaluate_stage.load_predictions(predictions_path(variant), "ratings", "n_params")
    prepared = load_prepared(PREPARED_DIR)
    metrics, sample = evaluate_stage.evaluate_predictor(
        evaluate_stage.matrix_predictor(predictions["ratings"]), prepared, k=p.evaluate.k, relevance_threshold=p.evaluate.relevance_threshold
    )
    metrics["n_params"] = int(predictions["n_params"])
    _write_evaluation(variant, metrics, sample)


@cli.command()
@click.pass_context
def baselines(ctx):
    """Fit and score the global-mean, user+item bias and most-popular baselines like the neural variants."""
    from movierec import baselines as fit
    from movierec import evaluate as evaluate_stage
    from movierec.prepare import load_prepared

    p = _params(ctx)
    prepared = load_prepared(PREPARED_DIR)
    n_users, n_movies = sizes = (len(prepared.user_ids), len(prepared.movie_ids))
    b = p.baselines
    bias = fit.fit_biases(prepared.train, *sizes, reg_user=b.bias_reg_user, reg_item=b.bias_reg_item, n_iters=b.bias_iters)
    # name: (model, is a rating predictor, is a ranking, parameter count)
    models = {
        "global_mean": (fit.fit_global_mean(prepared.train, *sizes), True, False, 1),
        "bias": (bias, True, True, 1 + n_users + n_movies),
        "most_popular": (fit.fit_most_popular(prepared.train, *sizes), False, True, n_movies),
    }
    for name, (model, ratings, ranking, n_params) in models.items():
        metrics, sample = evaluate_stage.evaluate_predictor(
            model.predict, prepared, k=p.evaluate.k, relevance_threshold=p.evaluate.relevance_threshold,
            ratings=ratings, ranking=ranking,
        )
        _write_evaluation(name, {**metrics, "n_params": n_params}, sample)


def _read_evaluation(name: str) -> dict | None:
    import json

    path = METRICS_DIR / "eval" / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def _write_evaluation(name: str, metrics: dict, sample: dict | None) -> None:
    from movierec.atomic import write_json, write_text

    if sample is not None:
        rows = "".join(f"{a:g},{p:.4f}\n" for a, p in zip(sample["actual"], sample["predicted"]))
        write_text(METRICS_DIR / "predictions" / f"{name}.csv", "actual,predicted\n" + rows)
    write_json(METRICS_DIR / "eval" / f"{name}.json", metrics)
    shown = {k: v for k, v in metrics.items() if isinstance(v, float)}
    click.echo(f"{name}: " + ", ".join(f"{k}={v:.4f}" for k, v in shown.items()))


@cli.command()
@click.pass_context
def report(ctx):
    """Write metrics/report.md (every model side by side) and the RMSE-by-popularity plot data."""
    import json

    from movierec.atomic import write_text
    from movierec.report import popularity_rows, render_report

    p = _params(ctx)
    results = {name: _read_evaluation(name) for name in [*p.variants, *BASELINES]}
    missing = [name for name, metrics in results.items() if metrics is None]
    if missing:
        raise MovierecError(f"{METRICS_DIR / 'eval' / missing[0]}.json: missing; run `dvc repro` to evaluate every model first")
    counts = json.loads((METRICS_DIR / "data.json").read_text())
    write_text(METRICS_DIR / "report.md", render_report(results, counts, p.evaluate.k, p.evaluate.relevance_threshold))
    rows = popularity_rows(results)
    columns = list(rows[0]) if rows else ["bucket"]
    csv = ",".join(columns) + "\n" + "".join(",".join("" if r[c] is None else str(r[c]) for c in columns) + "\n" for r in rows)
    write_text(METRICS_DIR / "plots" / "rmse_by_popularity.csv", csv)
    click.echo(f"wrote {METRICS_DIR / 'report.md'}")


def _best_variant(p) -> str:
    """The variant with the lowest test RMSE in metrics/eval (the committed results)."""
    evaluated = {name: _read_evaluation(name) for name in p.variants}
    scores = {name: m.get("rmse", float("inf")) for name, m in evaluated.items() if m is not None}
    if not scores:
        raise MovierecError("no evaluated model in metrics/eval; run `dvc repro` first")
    return min(scores, key=scores.get)


def _catalog(ctx):
    """Params, prepared data, and movies.csv rows in movie-encoder order (row m describes movie m)."""
    from movierec import data
    from movierec.prepare import load_prepared

    p = _params(ctx)
    prepared = load_prepared(PREPARED_DIR)
    movies = data.load_movies(Path(p.data.path)).drop_duplicates("movieId").set_index("movieId")
    return p, prepared, movies.reindex(prepared.movie_ids).fillna({"title": "?", "genres": ""}).reset_index()


def _chosen_predictions(p, variant: str | None, key: str):
    """The requested variant (checked), or the best by test RMSE, and one array of its predictions file."""
    from movierec.evaluate import load_predictions

    variant = variant or _best_variant(p)
    p.variant(variant)
    return variant, load_predictions(predictions_path(variant), key)[key]


def _content_matrix():
    import numpy as np

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
@click.option("--variant", default=None, help="Default: the variant with the best test RMSE in metrics/eval.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
def recommend(ctx, user_id, k, variant, as_json):
    """Top-k movies USER has not rated, by the trained model's predicted rating."""
    import numpy as np

    from movierec.explore import recommend_for_user

    p, prepared, movies = _catalog(ctx)
    variant, ratings = _chosen_predictions(p, variant, "ratings")
    row = np.searchsorted(prepared.user_ids, user_id)
    if row >= len(prepared.user_ids) or prepared.user_ids[row] != user_id:
        raise MovierecError(f"--user {user_id}: unknown userId; known ids run from {prepared.user_ids[0]} to {prepared.user_ids[-1]}")
    scores = ratings[row]
    rated = np.zeros(len(prepared.movie_ids), dtype=bool)
    for split in (prepared.train, prepared.test):
        rated[split.movie[split.user == row]] = True
    picks, predicted = recommend_for_user(scores, rated, k)
    rows = [
        {"movieId": int(movies.movieId[i]), "title": movies.title[i], "genres": movies.genres[i], "predicted_rating": float(s)}
        for i, s in zip(picks, predicted)
    ]
    _print_rows(rows, as_json, f"Top {len(rows)} for user {user_id} by {variant} (movieId, predicted rating):")


@cli.command()
@click.argument("query")
@click.option("-k", "k", default=10, show_default=True, type=click.IntRange(1))
@click.option("--space", type=click.Choice(["learned", "content"]), default="learned", show_default=True,
              help="learned: the model's movie vectors; content: the aligned content vectors.")
@click.option("--variant", default=None, help="Model for the learned space. Default: the best by test RMSE.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
def similar(ctx, query, k, space, variant, as_json):
    """Movies nearest to QUERY (a title, any case, year optional, or a movieId) by cosine similarity."""
    import numpy as np

    from movierec import explore

    p, prepared, movies = _catalog(ctx)
    index = int(np.searchsorted(prepared.movie_ids, explore.match_title(query, movies)))
    if space == "learned":
        variant, vectors = _chosen_predictions(p, variant, "movie_vectors")
    else:
        variant, vectors = None, _content_matrix()
    picks, sims = explore.nearest(vectors, index, k)
    counts = explore.rating_counts(prepared.train.movie, len(prepared.movie_ids))
    rows = [
        {"movieId": int(movies.movieId[i]), "title": movies.title[i], "genres": movies.genres[i], "similarity": float(s), "n_ratings": int(counts[i])}
        for i, s in zip(picks, sims)
    ]
    where = f"{space} space" + (f" of {variant}" if variant else "")
    _print_rows(rows, as_json, f"Nearest to {movies.title[index]} in the {where} (movieId, cosine, training ratings):")


@cli.command()
@click.argument("variant")
@click.pass_context
def explore(ctx, variant):
    """The notebook's "Embeddings exploration": genre coherence, neighbours, a 2-D map, a projector export."""
    import numpy as np

    from movierec import explore as ex
    from movierec.atomic import write_json

    p, prepared, movies = _catalog(ctx)
    variant, learned = _chosen_predictions(p, variant, "movie_vectors")
    spaces = {"learned": learned, "content": _content_matrix()}
    counts = ex.rating_counts(prepared.train.movie, len(prepared.movie_ids))
    eligible = counts >= ex.MIN_RATINGS
    genres = movies["genres"].tolist()
    coherence = {name: ex.genre_coherence(vectors, genres, eligible, k=10, seed=p.train.seed) for name, vectors in spaces.items()}
    write_json(METRICS_DIR / "explore" / f"{variant}.json", coherence)
    write_json(METRICS_DIR / "neighbours" / f"{variant}.json", {
        name: ex.neighbours_table(vectors, movies, ex.WELL_KNOWN, k=10) for name, vectors in spaces.items()
    })
    ex.embedding_map(
        learned[eligible], movies["title"].to_numpy()[eligible], np.asarray(ex.primary_genres(genres))[eligible],
        ex.WELL_KNOWN, METRICS_DIR / "plots" / f"map_{variant}.png", seed=p.train.seed,
    )
    ex.projector_export(learned, movies.assign(n_ratings=counts), Path("data/explore") / variant)
    click.echo(", ".join(f"{name}: coherence {c['genre_coherence']:.3f} vs random {c['random_baseline']:.3f}" for name, c in coherence.items()))


@cli.command("check-drift")
@click.option("--tolerance", default=1e-4, show_default=True, help="Largest absolute change accepted.")
@click.option("--rev", default="HEAD", show_default=True, help="Revision holding the reference metrics.")
def check_drift(tolerance, rev):
    """Compare workspace metrics with REV's via `dvc metrics diff`; exit 1 if any moved more than TOLERANCE."""
    import json
    import subprocess

    result = subprocess.run(["dvc", "metrics", "diff", rev, "--all", "--json"], capture_output=True, text=True)
    if result.returncode != 0:
        raise MovierecError(f"dvc metrics diff {rev} failed: {result.stderr.strip().splitlines()[-1:]}")
    diff = json.loads(result.stdout or "{}")
    drifted = [
        f"{path}:{name} {change.get('old')} -> {change.get('new')}"
        for path, metrics in diff.items()
        for name, change in metrics.items()
        if not _within(change.get("old"), change.get("new"), tolerance)
    ]
    if not diff:
        raise MovierecError(f"no metrics found to compare with {rev}; run `dvc repro` first")
    if drifted:
        raise MovierecError(f"{len(drifted)} metric(s) drifted beyond {tolerance}: " + "; ".join(drifted))
    n = sum(len(m) for m in diff.values())
    click.echo(f"{n} metrics match {rev} within {tolerance}")


def _within(old, new, tolerance: float) -> bool:
    if isinstance(old, (int, float)) and isinstance(new, (int, float)):
        return abs(new - old) <= tolerance
    return old == new


def main():
    cli(prog_name="movierec")


if __name__ == "__main__":
    sys.exit(main())
