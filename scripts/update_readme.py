"""Fill the generated blocks of README.md and docs/*.md from committed metrics and DVC experiments (never by hand).

    python scripts/update_readme.py                        # every block (needs the experiments)
    python scripts/update_readme.py --only report compare  # just these

Blocks are delimited by `<!-- BEGIN name -->` / `<!-- END name -->`:
- report:   metrics/report.md, as `dvc repro` wrote it;
- notebook: the notebook's four runs: the workspace metrics (model.join as in params.yaml) and the
            newest `dvc exp run -S model.join=...` experiment with the other join;
- ablation: experiments that change only `variants.mf_content.*` (what each ingredient contributes);
- seeds:    experiments that change only `prepare.seed` (other splits), with mean ± std;
- seed_noise: each variant's mean ± std over training seeds, from benchmarks/results/seed_noise.json;
            the experiment tables mark (†) rows beyond both that noise and the per-user interval;
- dae_ablation: experiments that change only `variants.dae.*`, with EASE on the same split;
- dag:      `dvc dag --md`;
- diff:     `dvc metrics diff DIFF_FROM HEAD --md`, RMSE, MAE and NDCG@10 rows only;
- speed:    the throughput ratios, test RMSEs and full-pipeline median from benchmarks/results/;
- ulp:      benchmarks/results/ulp_sensitivity.txt, as printed;
- portable_cost: benchmarks/results/portable_cost.txt, as printed (also in benchmarks/README.md);
- tuning_cost: benchmarks/results/tuning_cost.txt, as printed (docs/tuning.md and benchmarks/README.md);
- seed_ensemble: benchmarks/results/seed_ensemble.txt, as printed (benchmarks/README.md);
- factor_ceiling: benchmarks/results/factor_ceiling.txt, as printed (benchmarks/README.md);
- other_generator: benchmarks/results/other_generator.txt, as printed (benchmarks/README.md);
- tuned:    the default recipe against the tuned one, per dataset: each `movierec compare HEAD EXP --format json`
            kept in benchmarks/results/tuned/<dataset>.<EXP>.json (how: benchmarks/README.md);
- distributed: the multi_worker experiment's RMSE and MAE rows and benchmarks/distributed.py's output;
- dae_choices: benchmarks/results/dae_choices.txt, as `python benchmarks/scale.py table` renders `scale.py dae`'s record;
- scale:    benchmarks/results/scale.txt, as `python benchmarks/scale.py table` wrote it (also in benchmarks/README.md);
- compare:  `movierec compare` on the committed results, for the pairs in COMPARE_EXAMPLES;
- popularity_prior: mf_content's validation NDCG@10 for each popularity_prior of params.yaml, from its
            rank stage's record, metrics/lists/mf_content.json (the chosen one in bold);
- coherence: `dvc metrics diff SIMILAR_FROM HEAD --md`, genre-coherence rows (before and after the
            decade words in the content text);
and in benchmarks/README.md, blocks train_speed, cli_speed, pipeline and scale: those files, as printed.
"""

from __future__ import annotations

import argparse
import functools
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DIFF_FROM = "4272786"  # the first commit with every evaluation stage (Keras Adam, embed.min_df=2)
SIMILAR_FROM = "1ef275f"  # the last commit whose content text held the release year
NOTEBOOK_VARIANTS = ("collab", "hybrid")
NOTEBOOK_REFERENCE = {  # DESIGN.md: the notebook's code as written, Keras 3 port, TF-IDF+SVD content
    ("collab", "concat"): 0.890, ("collab", "product"): 0.986, ("hybrid", "concat"): 0.884, ("hybrid", "product"): 0.981,
}


def notebook_table() -> str:
    base, rows = experiments("model.join", eval_keys(NOTEBOOK_VARIANTS, ("rmse", "mae")))
    by_join = {base["model.join"]: base}
    for row, change in rows:
        by_join.setdefault(change["model.join"], row)
    lines = ["| model | join | test RMSE | test MAE | notebook as written (RMSE) | source |", "|---|---|---|---|---|---|"]
    for variant in NOTEBOOK_VARIANTS:
        for join in ("concat", "product"):
            row = by_join.get(join)
            if row is None:
                lines.append(f"| {variant} | {join} | – | – | {NOTEBOOK_REFERENCE[(variant, join)]:.3f} | run `dvc exp run -S model.join={join}` |")
                continue
            rmse, mae = (row.get(f"metrics/eval/{variant}.json:{m}") for m in ("rmse", "mae"))
            source = "committed metrics" if row["rev"] == "workspace" else f"experiment `{row.get('Experiment') or row['rev'][:7]}`"
            lines.append(f"| {variant} | {join} | {rmse:.4f} | {mae:.4f} | {NOTEBOOK_REFERENCE[(variant, join)]:.3f} | {source} |")
    return "\n".join(lines) + "\n"


PARAM_PREFIXES = ("data.", "prepare.", "embed.", "model.", "train.", "evaluate.", "baselines.", "variants.")


def plain(value):
    """DVC reports integers as floats (2137.0); show them as written in params.yaml."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def changed_params(row: dict, base: dict) -> dict:
    """Params an experiment set differently from `base`; a param its commit did not have yet
    (None, e.g. a variant added later) is not a change."""
    return {k: plain(row[k]) for k in row if k.startswith(PARAM_PREFIXES) and row[k] not in (None, "None") and row[k] != base.get(k)}


@functools.cache
def experiment_rows() -> tuple[dict, ...]:
    """`dvc exp show` rows of every commit of HEAD's history that has experiments, newest commit first,
    however far back it is (read once for all the tables)."""
    import dvc.api
    from dvc.repo import Repo

    with Repo(str(ROOT)) as repo:
        based = set(repo.experiments.ls(all_commits=True))
    history = subprocess.run(["git", "rev-list", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    return tuple(dvc.api.exp_show(repo=str(ROOT), revs=[rev for rev in history if rev in based]))


def experiments(prefix: str, shown: list[str]) -> tuple[dict, list[tuple[dict, dict]]]:
    """The workspace row and the newest experiment per distinct change, for changes all under `prefix`.

    A change is what the experiment set differently from its own commit. Experiments of any commit of
    HEAD's history count, but only where that commit's metrics in `shown` (the table's columns) equal
    the workspace's: then its experiments measure today's recipe, however old the commit."""
    rows = experiment_rows()
    workspace = next(r for r in rows if r.get("rev") == "workspace")
    seen, found, baseline = set(), [], None
    for row in rows:
        if row.get("typ") == "baseline":
            baseline = row if row.get("rev") != "workspace" and same_metrics(row, workspace, shown) else None
            continue
        if baseline is None or not row.get("typ", "").startswith("branch_"):
            continue
        change = changed_params(row, baseline)
        key = tuple(sorted(change.items(), key=str))
        if change and all(k.startswith(prefix) for k in change) and key not in seen:
            seen.add(key)
            found.append((row, change))
    return workspace, found


def same_metrics(row: dict, workspace: dict, shown: list[str]) -> bool:
    values = [(row.get(k), workspace.get(k)) for k in shown]
    return all(a is not None and b is not None and abs(a - b) <= 1e-4 for a, b in values)


def eval_keys(models, names) -> list[str]:
    return [f"metrics/eval/{model}.json:{name}" for model in models for name in names]


def metric(row: dict, model: str, name: str) -> str:
    value = row.get(f"metrics/eval/{model}.json:{name}")
    return "–" if value is None else f"{value:.4f}"


MARK = " †"
MARK_LEGEND = (
    "† beyond noise: the difference from the full recipe exceeds both twice the training-seed noise (the std over "
    "5 training seeds, `benchmarks/results/seed_noise.json`) and the 95% per-user interval (`movierec compare`); "
    "a row without † is within noise.\n"
)


@functools.cache
def seed_noise() -> dict:
    """{model: {metric: {mean, std, n}}} over the training seeds, as `movierec summarize --json` recorded it."""
    import json

    path = RESULTS / "seed_noise.json"
    return json.loads(path.read_text())["models"] if path.is_file() else {}


@functools.cache
def _tables(rev: str) -> dict:
    from movierec.compare import per_user_tables
    from movierec.errors import MovierecError

    try:
        return per_user_tables(rev)
    except MovierecError:
        return {}  # an experiment older than the per-user files: no verdict


def beyond_noise(row: dict, base: dict, model: str, name: str, paired: bool = True) -> bool:
    """Whether `row` differs from `base` (the full recipe) in `model`'s `name` beyond both the training-seed
    noise (2 std) and the per-user interval: of the difference, paired over users, on the same split; on
    another split (`paired=False`), the row's own interval must exclude the recipe's value."""
    from movierec import significance
    from movierec.params.project import load_params

    key = f"metrics/eval/{model}.json:{name}"
    noise = seed_noise().get(model, {}).get(name)
    if row.get(key) is None or base.get(key) is None or noise is None or abs(row[key] - base[key]) <= 2 * noise["std"]:
        return False
    mine, full = _tables(row["rev"]).get(model), _tables("workspace").get(model)
    if mine is None or full is None:
        return False
    s = load_params(ROOT / "params.yaml").compare
    if paired:
        d = significance.paired(full, mine, name, s)
        return d is not None and (d.low > 0 or d.high < 0)
    from movierec.per_user import parts

    users, weight, value, root = parts(mine, name)
    low, high = significance.interval(weight, value, root, s)
    return not low <= base[key] <= high


def seed_noise_table() -> str:
    """Each trained model's figures as mean ± std over the training seeds: how far the same recipe moves."""
    noise = seed_noise()
    columns = (("rmse", "RMSE"), ("mae", "MAE"), ("ndcg_at_10", "NDCG@10"))
    lines = ["| model | " + " | ".join(h for _, h in columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for model in NOISE_MODELS:
        cells = [f"{noise[model][m]['mean']:.4f} ± {noise[model][m]['std']:.4f}" if m in noise.get(model, {}) else "–" for m, _ in columns]
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    runs = max((v["n"] for metrics in noise.values() for v in metrics.values()), default=0)
    return "\n".join(lines) + f"\n\nmean ± std over {runs} runs of the committed recipe with `train.seed` 42, 1, 2, 3, 4.\n"


NOISE_MODELS = ("collab", "hybrid", "mf_content", "blend", "dae")  # item_knn has no training seed


def ablation_table() -> str:
    base, rows = experiments("variants.mf_content.", eval_keys(["mf_content"], ("rmse", "mae", "ndcg_at_10")))
    lines = ["| mf_content run | test RMSE | MAE | NDCG@10 | ΔRMSE vs full recipe |", "|---|---|---|---|---|"]
    full = base.get("metrics/eval/mf_content.json:rmse")
    lines.append(f"| full recipe (params.yaml) | {metric(base, 'mf_content', 'rmse')} | {metric(base, 'mf_content', 'mae')} | {metric(base, 'mf_content', 'ndcg_at_10')} | – |")
    for row, change in sorted(rows, key=lambda rc: str(rc[1])):
        label = ", ".join(f"`{k.removeprefix('variants.mf_content.')}={v}`" for k, v in change.items())
        delta = row.get("metrics/eval/mf_content.json:rmse")
        delta = "–" if delta is None else f"{delta - full:+.4f}" + (MARK if beyond_noise(row, base, "mf_content", "rmse") else "")
        lines.append(f"| {label} | {metric(row, 'mf_content', 'rmse')} | {metric(row, 'mf_content', 'mae')} | {metric(row, 'mf_content', 'ndcg_at_10')} | {delta} |")
    return "\n".join(lines) + "\n\n" + MARK_LEGEND


def dae_ablation_table() -> str:
    """What each ingredient of the dae ranker contributes: experiments changing only variants.dae.*."""
    names = ("ndcg_at_10", "precision_at_10", "recall_at_10", "hit_rate_at_10")
    base, rows = experiments("variants.dae.", eval_keys(["dae"], names))  # the EASE row is the workspace's
    lines = ["| dae run | NDCG@10 | P@10 | R@10 | HR@10 | ΔNDCG@10 vs full recipe |", "|---|---|---|---|---|---|"]
    full = base.get("metrics/eval/dae.json:ndcg_at_10")
    lines.append("| full recipe (params.yaml) | " + " | ".join(metric(base, "dae", n) for n in names) + " | – |")
    for row, change in sorted(rows, key=lambda rc: str(rc[1])):
        label = ", ".join(f"`{k.removeprefix('variants.dae.')}={v}`" for k, v in change.items())
        value = row.get("metrics/eval/dae.json:ndcg_at_10")
        delta = "–" if value is None or full is None else f"{value - full:+.4f}" + (MARK if beyond_noise(row, base, "dae", "ndcg_at_10") else "")
        lines.append(f"| {label} | " + " | ".join(metric(row, "dae", n) for n in names) + f" | {delta} |")
    lines.append("| EASE (baselines, same split) | " + " | ".join(metric(base, "ease", n) for n in names) + " | – |")
    return "\n".join(lines) + "\n\n" + MARK_LEGEND


SEED_COLUMNS = (  # (model, metric, header): rating accuracy, then ranking against EASE
    ("mf_content", "rmse", "mf_content RMSE"),
    ("blend", "rmse", "blend RMSE"),
    ("bias", "rmse", "bias baseline RMSE"),
    ("global_mean", "rmse", "global mean RMSE"),
    ("dae", "ndcg_at_10", "dae NDCG@10"),
    ("ease", "ndcg_at_10", "EASE NDCG@10"),
    ("most_popular", "ndcg_at_10", "most-popular NDCG@10"),
)


def seeds_table() -> str:
    import numpy as np

    base, rows = experiments("prepare.seed", [f"metrics/eval/{model}.json:{name}" for model, name, _ in SEED_COLUMNS])
    runs = [(plain(base["prepare.seed"]), base)] + sorted(((plain(row["prepare.seed"]), row) for row, _ in rows), key=lambda sr: sr[0])
    columns = [c for c in SEED_COLUMNS if f"metrics/eval/{c[0]}.json:{c[1]}" in base]
    lines = ["| split seed | " + " | ".join(h for _, _, h in columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for seed, row in runs:
        marked = [metric(row, model, name) + (MARK if row is not base and beyond_noise(row, base, model, name, paired=False) else "") for model, name, _ in columns]
        lines.append(f"| {seed} | " + " | ".join(marked) + " |")
    stats = []
    for model, name, _ in columns:
        values = [row.get(f"metrics/eval/{model}.json:{name}") for _, row in runs]
        values = [v for v in values if v is not None]
        stats.append(f"{np.mean(values):.4f} ± {np.std(values, ddof=1) if len(values) > 1 else 0:.4f} ({len(values)})" if values else "–")
    lines.append("| mean ± std (runs) | " + " | ".join(stats) + " |")
    legend = (
        "† beyond noise: the value is further than twice the training-seed noise from the notebook split's, and "
        "outside its own 95% per-user interval (another split's test users: nothing to pair).\n"
    )
    return "\n".join(lines) + "\n\n" + legend


RESULTS = ROOT / "benchmarks" / "results"


def benchmark_output(name: str) -> str:
    path = RESULTS / f"{name}.txt"
    if not path.is_file():
        raise SystemExit(f"{path}: missing; run the benchmark as benchmarks/README.md shows")
    return path.read_text().strip() + "\n"


def verbatim(name: str) -> str:
    """A results file as a code block."""
    return "```\n" + benchmark_output(name) + "```\n"


def speed_summary() -> str:
    """The lines of the last benchmark runs a reader of the README needs, verbatim."""
    train = [line for line in benchmark_output("train_speed").splitlines() if "ratio" in line or "test RMSE" in line]
    latest = benchmark_output("pipeline").split("\n\n", 1)[0]  # the file holds its sittings newest first
    pipeline = [line for line in latest.splitlines() if line.startswith("run ") or "median" in line]
    return "```\n" + "\n".join(train + pipeline) + "\n```\n"


def distributed_summary() -> str:
    """The full-length `multi_worker` experiment's RMSE and MAE against one process, and the benchmark's
    samples/s, both as their commands printed them."""
    experiment = benchmark_output("distributed_exp").splitlines()
    rows = [line for line in experiment if line.startswith(("$", "| Path", "|---")) or re.search(r"\| (rmse|mae) ", line)]
    return "```\n" + "\n".join(rows) + "\n```\n\n```\n$ python benchmarks/distributed.py\n" + benchmark_output("distributed") + "```\n"


def popularity_prior_table(variant: str = "mf_content") -> str:
    """The validation NDCG@10 of each popularity_prior the rank stage tried, as it recorded them."""
    import json

    from movierec.params.project import load_params

    grid = load_params(ROOT / "params.yaml").variant(variant).popularity_prior
    summary = json.loads((ROOT / "metrics" / "lists" / f"{variant}.json").read_text())
    ndcg = summary["popularity_prior_validation_ndcg_at_10"]
    cells = [f"**{w:g}**" if w == summary["popularity_prior"] else f"{w:g}" for w in grid]
    values = [f"**{v:.4f}**" if w == summary["popularity_prior"] else f"{v:.4f}" for w, v in zip(grid, ndcg)]
    rows = ["| popularity_prior | " + " | ".join(cells) + " |", "|---" * (len(grid) + 1) + "|", "| validation NDCG@10 | " + " | ".join(values) + " |"]
    return "\n".join(rows) + "\n"


def metrics_diff(rev: str, names: str, note: str | None = None) -> str:
    """`dvc metrics diff REV HEAD --md`, only the rows whose metric name matches `names`."""
    diff = subprocess.run(["dvc", "metrics", "diff", rev, "HEAD", "--md"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    lines = diff.splitlines()
    keep = lines[:2] + sorted(line for line in lines[2:] if re.search(rf"\| [\w.]*{names} ", line))
    return f"```\n$ dvc metrics diff {rev} HEAD --md   # {note or names} rows\n" + "\n".join(keep) + "\n```\n"


COMPARE_EXAMPLES = (("collab,mf_content", "rmse"), ("mf_content,blend", "rmse"), ("collab,hybrid", "rmse"), ("bias,time_bias", "rmse"), ("ease,dae", "ndcg_at_10"))


def compare_examples() -> str:
    """`movierec compare` between models of the committed results, as it prints."""
    out = []
    for models, metric in COMPARE_EXAMPLES:
        argv = ["movierec", "compare", "workspace", "--models", models, "--metrics", metric]
        printed = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=True).stdout
        out.append("$ " + " ".join(argv).replace("workspace", "HEAD") + "\n" + printed)
    return "```\n" + "".join(out) + "```\n"


HEADLINE_METRICS = ("rmse", "ndcg_at_10")  # the README's tuned table; the files hold more


def tuned_table() -> str:
    """A row per headline metric of each benchmarks/results/tuned/<dataset>.<experiment>.json, as
    `movierec compare HEAD <experiment> --format json` wrote it."""
    import json

    lines = ["| data | model | metric | default | tuned | Δ (95% CI) | verdict |", "|---|---|---|---|---|---|---|"]
    for path in sorted((RESULTS / "tuned").glob("*.json")):
        dataset = path.name.split(".", 1)[0]
        for r in [r for r in json.loads(path.read_text())["rows"] if r["metric"] in HEADLINE_METRICS]:
            interval = f"{r['delta']:+.4f} [{r['low']:+.4f}, {r['high']:+.4f}]"
            lines.append(f"| {dataset} | {r['model']} | {r['metric']} | {r['a']:.4f} | {r['b']:.4f} | {interval} | {r['verdict']} |")
    return "\n".join(lines) + "\n"


def fill(text: str, name: str, body: str) -> str:
    pattern = re.compile(rf"(<!-- BEGIN {name} -->\n).*?(<!-- END {name} -->)", re.S)
    if not pattern.search(text):
        raise SystemExit(f"no <!-- BEGIN {name} --> block to fill")
    return pattern.sub(lambda m: m.group(1) + body + m.group(2), text)


def generators() -> dict:
    """Block name: the function that writes it."""
    return {
        "report": lambda: (ROOT / "metrics/report.md").read_text().split("\n", 2)[2],  # without the title line
        "notebook": notebook_table,
        "ablation": ablation_table,
        "seeds": seeds_table,
        "seed_noise": seed_noise_table,
        "dae_ablation": dae_ablation_table,
        "dag": lambda: subprocess.run(["dvc", "dag", "--md"], cwd=ROOT, capture_output=True, text=True, check=True).stdout,
        "diff": lambda: metrics_diff(DIFF_FROM, r"(rmse|mae|ndcg_at_10)", "RMSE, MAE, NDCG@10"),
        "speed": speed_summary,
        "coherence": lambda: metrics_diff(SIMILAR_FROM, r"genre_coherence"),
        "distributed": distributed_summary,
        "dae_choices": lambda: verbatim("dae_choices"),
        "scale": lambda: verbatim("scale"),
        "popularity_prior": popularity_prior_table,
        "compare": compare_examples,
        "tuned": tuned_table,
        "ulp": lambda: verbatim("ulp_sensitivity"),
        **{name: (lambda name=name: verbatim(name)) for name in ("train_speed", "cli_speed", "pipeline", "portable_cost", "tuning_cost", "seed_ensemble", "factor_ceiling", "other_generator")},
    }


PAGES = ("README.md", "docs/*.md", "benchmarks/README.md")  # where generated blocks live


def main() -> None:
    parser = argparse.ArgumentParser(description="Fill the generated blocks of README.md and docs/*.md.")
    parser.add_argument("--only", nargs="+", metavar="BLOCK", help="fill only these blocks (say, those that read no experiments)")
    only = parser.parse_args().only
    made = generators()
    unknown = set(only or ()) - set(made)
    if unknown:
        raise SystemExit(f"--only: no block named {', '.join(sorted(unknown))}; the blocks: {', '.join(made)}")
    for page in [p for pattern in PAGES for p in sorted(ROOT.glob(pattern))]:
        text = page.read_text()
        for name in re.findall(r"<!-- BEGIN (\w+) -->", text):
            if name not in made:
                raise SystemExit(f"{page.relative_to(ROOT)}: no generator for block {name}")
            if only is None or name in only:
                text = fill(text, name, made[name]())
        page.write_text(text)

if __name__ == "__main__":
    main()
