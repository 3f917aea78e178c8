"""The `movierec` command: one thin command per pipeline stage. dvc.yaml calls these.

Each command validates params.yaml first, then does its I/O around a pure core function. Expected
mistakes raise MovierecError, printed as one line with a non-zero exit and no traceback.
Only `train` imports TensorFlow (seconds of start-up); the rest read the files it writes (`recommend`
loads a notebook model only for a user without a stored list: see serve.py).
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


def model_path(name: str) -> Path:
    """A variant's Keras model, or EASE's weights (the one baseline `recommend` serves)."""
    return MODELS_DIR / ("ease.npy" if name == "ease" else f"{name}.keras")


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
    from movierec.environment import pin_threads

    pin_threads()  # same bits on any number of cores: see environment.py
    ctx.obj = {"params_file": params_file}


def _params(ctx):
    from movierec.params import load_params

    return load_params(ctx.obj["params_file"])


@cli.command()
@click.pass_context
def download(ctx):
    """Fetch the MovieLens release `data.dataset` into data/raw (or from $MOVIEREC_DATA_MIRROR) and verify it."""
    from movierec import data, datasets

    p = _params(ctx).data
    if Path(p.path) != Path(data.DEFAULT_DATA_PATH):
        from movierec.atomic import atomic_path

        with atomic_path(RAW_DIR, directory=True) as tmp:
            (tmp / "NOT_DOWNLOADED.txt").write_text(f"data.path is {p.path}: the official archive is not needed.\n")
        click.echo(f"data.path points at {p.path}; skipping the official download")
        return
    folder = data.download(
        datasets.release(p.dataset), p.base_url, RAW_DIR,
        max_bytes=int(p.max_download_mb * 1024 * 1024), expected_sha256=p.sha256,
    )
    click.echo(f"MovieLens {p.dataset} verified in {folder}")


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
    """Build content vectors (TF-IDF + SVD over title, genres, tags, or the tag genome) into data/content/embeddings.npz."""
    from movierec import content, data

    p = _params(ctx)
    folder = Path(p.data.path)
    e = p.embed
    if e.source == "genome":
        vectors = content.genome_vectors(data.load_genome(folder), dim=e.dim, seed=e.seed)
    else:
        texts = content.movie_texts(data.load_movies(folder), data.load_tags(folder))
        vectors = content.build_content_vectors(texts, dim=e.dim, min_df=e.min_df, seed=e.seed)
    content.save_archive(vectors, Path("data/content/embeddings.npz"))
    click.echo(f"{len(vectors)} content vectors of length {e.dim} from the {e.source}")


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
        environment_path=METRICS_DIR / "environment" / f"{variant}.json",
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
    predictions = evaluate_stage.load_predictions(
        predictions_path(variant), "top_users", "top_movies", "n_params", optional=("test_predictions",)
    )
    metrics, sample, curve = evaluate_stage.evaluate_variant(predictions, load_prepared(PREPARED_DIR), p.evaluate, _rating_range(p))
    metrics["n_params"] = int(predictions["n_params"])
    _write_evaluation(variant, metrics, sample, curve)


@cli.command()
@click.pass_context
def baselines(ctx):
    """Fit and score the global-mean, user+item bias, most-popular and EASE baselines like the neural variants."""
    from movierec.baselines import evaluate_baselines, save_ease
    from movierec.prepare import load_prepared

    p = _params(ctx)
    evaluations, ease = evaluate_baselines(load_prepared(PREPARED_DIR), p.baselines, p.evaluate, _rating_range(p))
    for name, (metrics, sample, curve) in evaluations.items():
        _write_evaluation(name, metrics, sample, curve)
    save_ease(ease, predictions_path("ease"), model_path("ease"))


def _rating_range(p) -> tuple[float, float]:
    return (p.data.min_rating, p.data.max_rating)


def _read_evaluation(name: str) -> dict | None:
    import json

    path = METRICS_DIR / "eval" / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def _write_evaluation(name: str, metrics: dict, sample: dict | None, curve: dict | None = None) -> None:
    from movierec.atomic import write_json, write_text

    if sample is not None:
        rows = "".join(f"{a:g},{p:.4f}\n" for a, p in zip(sample["actual"], sample["predicted"]))
        write_text(METRICS_DIR / "predictions" / f"{name}.csv", "actual,predicted\n" + rows)
    if curve is not None:
        rows = "".join(f"{k},{p:.6f},{r:.6f},{n:.6f}\n" for k, p, r, n in zip(curve["k"], curve["precision"], curve["recall"], curve["ndcg"]))
        write_text(METRICS_DIR / "ranking" / f"{name}.csv", "k,precision,recall,ndcg\n" + rows)
    write_json(METRICS_DIR / "eval" / f"{name}.json", metrics)
    shown = {k: v for k, v in metrics.items() if isinstance(v, float)}
    click.echo(f"{name}: " + ", ".join(f"{k}={v:.4f}" for k, v in shown.items()))


@cli.command()
@click.pass_context
def report(ctx):
    """Write metrics/report.md (every model side by side), its plot data, and PNG figures of the
    training curves, RMSE by popularity and ranking at every k (they render on a repository page)."""
    import json

    from movierec import report as figures
    from movierec.atomic import write_text
    from movierec.baselines import BASELINES

    p = _params(ctx)
    results = {name: _read_evaluation(name) for name in [*p.variants, *BASELINES]}
    missing = [name for name, metrics in results.items() if metrics is None]
    if missing:
        raise MovierecError(f"{METRICS_DIR / 'eval' / missing[0]}.json: missing; run `dvc repro` to evaluate every model first")
    counts = json.loads((METRICS_DIR / "data.json").read_text())
    write_text(METRICS_DIR / "report.md", figures.render_report(results, counts, p.evaluate.k, p.evaluate.relevance_threshold))
    rows = figures.popularity_rows(results)
    columns = list(rows[0]) if rows else ["bucket"]
    csv = ",".join(columns) + "\n" + "".join(",".join("" if r[c] is None else str(r[c]) for c in columns) + "\n" for r in rows)
    write_text(METRICS_DIR / "plots" / "rmse_by_popularity.csv", csv)
    figures.plot_rmse_by_popularity(rows, METRICS_DIR / "plots" / "rmse_by_popularity.png")
    figures.plot_training_curves(figures.read_training_curves(METRICS_DIR / "train", p.variants), METRICS_DIR / "plots" / "training_curves.png")
    figures.plot_ranking_at_k(figures.read_ranking_curves(METRICS_DIR / "ranking", results), METRICS_DIR / "plots" / "ranking_at_k.png")
    click.echo(f"wrote {METRICS_DIR / 'report.md'} and its figures in {METRICS_DIR / 'plots'}")


def _catalog(ctx):
    """Params, prepared data, and movies.csv rows in movie-encoder order (row m describes movie m)."""
    from movierec import data
    from movierec.explore import movies_in_encoder_order
    from movierec.prepare import load_prepared

    p = _params(ctx)
    prepared = load_prepared(PREPARED_DIR)
    return p, prepared, movies_in_encoder_order(data.load_movies(Path(p.data.path)), prepared.movie_ids)


def _variant_or_best(p, variant: str | None, by: str, baselines: tuple[str, ...] = ()) -> str:
    """The requested variant or one of `baselines` (checked), or the best of them by `by` (ndcg or rmse) in metrics/eval."""
    from movierec.serve import best_variant, check_model_name

    variant = variant or best_variant({name: _read_evaluation(name) for name in [*p.variants, *baselines]}, by, p.evaluate.k)
    check_model_name(variant, p.variants, baselines)
    return variant


_BY = click.option(
    "--by", type=click.Choice(["ndcg", "rmse"]), default="ndcg", show_default=True,
    help="Which variant by default: the best test NDCG@k (its lists) or the best test RMSE (its ratings).",
)


def _movie_vectors(variant: str):
    from movierec.evaluate import load_predictions

    return load_predictions(predictions_path(variant), "movie_vectors")["movie_vectors"]


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
@click.option("--variant", default=None, help="A variant of params.yaml, or ease. Default: the best by --by.")
@_BY
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
def recommend(ctx, user_id, k, variant, by, as_json):
    """Top-k movies USER has not rated: by predicted rating (clipped to the scale) for rating models,
    by relevance score for rankers."""
    from movierec import serve

    p, prepared, movies = _catalog(ctx)
    variant = _variant_or_best(p, variant, by, serve.SERVED_BASELINES)
    ratings = serve.is_rating_model(_read_evaluation(variant))
    user = serve.encoded_user(prepared, user_id)
    picks, scores = serve.recommend(prepared, user, k, predictions_path(variant), model_path(variant), _rating_range(p) if ratings else None)
    what = "predicted_rating" if ratings else "relevance_score"
    rows = serve.movie_rows(movies, picks, scores, what)
    _print_rows(rows, as_json, f"Top {len(rows)} for user {user_id} by {variant} (movieId, {what.replace('_', ' ')}):")


@cli.command()
@click.argument("query")
@click.option("-k", "k", default=10, show_default=True, type=click.IntRange(1))
@click.option("--space", type=click.Choice(["learned", "content"]), default="learned", show_default=True,
              help="learned: the model's movie vectors; content: the aligned content vectors.")
@click.option("--variant", default=None, help="Model for the learned space. Default: the best by --by.")
@_BY
@click.option("--min-ratings", default=5, show_default=True, type=click.IntRange(0),
              help="Only show movies with at least this many training ratings (their vectors mean something).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
def similar(ctx, query, k, space, variant, by, min_ratings, as_json):
    """Movies nearest to QUERY (a title, any case, year optional, or a movieId) by cosine similarity."""
    from movierec import explore, serve

    p, prepared, movies = _catalog(ctx)
    variant = _variant_or_best(p, variant, by) if space == "learned" else None
    vectors = _movie_vectors(variant) if variant else _content_matrix()
    counts = explore.rating_counts(prepared.train.movie, len(prepared.movie_ids))
    index, picks, sims = serve.similar(vectors, movies, query, k, counts, min_ratings)
    rows = serve.movie_rows(movies, picks, sims, "similarity", counts)
    where = f"{space} space" + (f" of {variant}" if variant else "")
    _print_rows(rows, as_json, f"Nearest to {movies.title[index]} in the {where} (movieId, cosine, training ratings >= {min_ratings}):")


@cli.command()
@click.argument("variant")
@click.pass_context
def explore(ctx, variant):
    """The notebook's "Embeddings exploration": genre coherence, neighbours, a 2-D map, a projector export."""
    from movierec.explore import explore_spaces

    p, prepared, movies = _catalog(ctx)
    p.variant(variant)
    coherence = explore_spaces(
        _movie_vectors(variant), _content_matrix(), movies, prepared.train.movie, p.train.seed,
        coherence_path=METRICS_DIR / "explore" / f"{variant}.json",
        neighbours_path=METRICS_DIR / "neighbours" / f"{variant}.json",
        map_png=METRICS_DIR / "plots" / f"map_{variant}.png",
        projector_dir=Path("data/explore") / variant,
    )
    click.echo(", ".join(
        f"{name}: coherence {c['genre_coherence']:.3f} vs random {c['random_baseline']:.3f}" if c["genre_coherence"] is not None
        else f"{name}: coherence not computed ({c['reason']})"
        for name, c in coherence.items()
    ))


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
