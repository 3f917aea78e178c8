"""report: metrics/report.md (every model side by side), its plot data, and PNG figures of the training
curves, RMSE by popularity and ranking at every k (they render on a repository page)."""

from __future__ import annotations

import json

from movierec import per_user, significance
from movierec import report as figures
from movierec.atomic import write_text
from movierec.errors import MovierecError
from movierec.evaluate import read_evaluation
from movierec.params import blend as blend_params
from movierec.params import compare as compare_params
from movierec.params import core
from movierec.params import evaluate as evaluate_params
from movierec.paths import METRICS_DIR
from movierec.stages import arguments, one_line_errors


def main(args) -> None:
    raw = core.read(args.params)
    e = evaluate_params.load(raw, args.params)
    variant_names = [str(name) for name in core.section(raw, "variants", args.params)]  # only their names: no variant setting is read
    blended = list(core.BLENDED) if blend_params.load(raw, args.params).variant in variant_names else []  # else no blend stage runs
    results = {name: read_evaluation(name) for name in [*variant_names, *blended, *core.BASELINES]}
    missing = [name for name, metrics in results.items() if metrics is None]
    if missing:
        raise MovierecError(f"{METRICS_DIR / 'eval' / missing[0]}.json: missing; run `dvc repro` to evaluate every model first")
    counts = json.loads((METRICS_DIR / "data.json").read_text())
    s = compare_params.load(raw, args.params)
    tables = {name: per_user.read(name) for name in results}
    keys = [key.format(k=e.k) for key, _, better in figures.COLUMNS if better is not None]
    judged = {key: column for key in keys if (column := significance.judge_column(tables, key, s)) is not None}
    write_text(METRICS_DIR / "report.md", figures.render_report(results, counts, e.k, e.relevance_threshold, judged, s.confidence, core.profile_name(raw)))
    rows = figures.popularity_rows(results)
    columns = list(rows[0]) if rows else ["bucket"]
    csv = ",".join(columns) + "\n" + "".join(",".join("" if r[c] is None else str(r[c]) for c in columns) + "\n" for r in rows)
    write_text(METRICS_DIR / "plots" / "rmse_by_popularity.csv", csv)
    figures.plot_rmse_by_popularity(rows, METRICS_DIR / "plots" / "rmse_by_popularity.png")
    figures.plot_training_curves(figures.read_training_curves(METRICS_DIR / "train", variant_names), METRICS_DIR / "plots" / "training_curves.png")
    figures.plot_ranking_at_k(figures.read_ranking_curves(METRICS_DIR / "ranking", results), METRICS_DIR / "plots" / "ranking_at_k.png")
    print(f"wrote {METRICS_DIR / 'report.md'} and its figures in {METRICS_DIR / 'plots'}")


if __name__ == "__main__":
    with one_line_errors():
        main(arguments(__doc__))
