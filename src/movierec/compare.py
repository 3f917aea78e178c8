"""`movierec compare` and `movierec summarize`: read committed results at any revision and judge them.

Revisions are git revisions, branches, `dvc exp` names (their refs under refs/exps, as `dvc exp
pull` brings them) or `workspace`. Only git-tracked files are read (metrics/users/*.csv for compare,
metrics/eval/*.json for summarize), through one `git cat-file --batch`, so both work in a fresh clone
with no DVC remote and never start DVC.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np

from movierec import per_user, significance
from movierec.errors import MovierecError
from movierec.params.compare import CompareParams

WORKSPACE = "workspace"


def _git(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(["git", *args], input=stdin, capture_output=True, check=False)
    except FileNotFoundError:
        raise MovierecError("git: not found; install git to compare revisions") from None


def resolve(rev: str) -> str:
    """The commit a revision, branch or `dvc exp` name points to (refs/exps/<baseline>/<name>; a name
    run on several baselines means the one run on HEAD)."""
    done = _git("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
    if done.returncode == 0:
        return done.stdout.decode().strip()
    refs = _git("for-each-ref", "--format=%(refname) %(objectname)", "refs/exps").stdout.decode().split("\n")
    named = [line.split() for line in refs if line and line.split()[0].rsplit("/", 1)[-1] == rev]
    found = [commit for _, commit in named]
    if len(found) > 1:  # the same name run on several commits: the one run on HEAD, as `dvc exp show` shows
        head = _git("rev-parse", "HEAD").stdout.decode().strip()
        found = [commit for ref, commit in named if "".join(ref.split("/")[2:4]) == head] or found
    if len(found) == 1:
        return found[0]
    if len(found) > 1:
        raise MovierecError(f"{rev}: {len(found)} experiments have this name; pass the commit instead (`dvc exp show --sha`)")
    raise MovierecError(f"{rev}: not a git revision, branch or `dvc exp` name here; `git log --oneline` and `dvc exp show` list them")


def read_tracked(rev: str, folder: str) -> dict[str, str]:
    """{file name: text} of the files directly in `folder` at `rev` (or on disk for `workspace`)."""
    if rev == WORKSPACE:
        return {p.name: p.read_text(encoding="utf-8") for p in sorted(Path(folder).glob("*")) if p.is_file()}
    commit = resolve(rev)
    names = _git("ls-tree", "--name-only", f"{commit}:{folder}").stdout.decode().split()
    if not names:
        return {}
    batch = _git("cat-file", "--batch", stdin="".join(f"{commit}:{folder}/{n}\n" for n in names).encode()).stdout
    out, at = {}, 0
    for name in names:
        header_end = batch.index(b"\n", at)
        size = int(batch[at:header_end].split()[2])
        out[name] = batch[header_end + 1 : header_end + 1 + size].decode("utf-8")
        at = header_end + 1 + size + 1
    return out


def per_user_tables(rev: str, models: list[str] | None = None) -> dict[str, dict]:
    """{model: per-user columns} at `rev`; one line if the revision predates the per-user files."""
    files = read_tracked(rev, str(per_user.USERS_DIR))
    if not files:
        where = "the workspace" if rev == WORKSPACE else f"{rev} ({resolve(rev)[:7]})"
        raise MovierecError(f"{where} has no {per_user.USERS_DIR}/*.csv: it predates per-user results (or was never evaluated); run `dvc repro` there, or compare later revisions")
    tables = {name.removesuffix(".csv"): per_user.from_csv(text, f"{rev}:{per_user.USERS_DIR}/{name}") for name, text in files.items()}
    if models:
        unknown = [m for m in models if m not in tables]
        if unknown:
            raise MovierecError(f"--models: {unknown[0]} has no per-user results at {rev}; it has {', '.join(sorted(tables))}")
        tables = {m: tables[m] for m in models}
    return tables


def sides(revisions: list[str], models: list[str] | None) -> tuple[str, str, list[tuple[str, dict, dict]]]:
    """(label A, label B, [(row label, A's table, B's table)]) for `movierec compare`'s arguments: no
    revision = HEAD against the workspace, one = it against the workspace, or, with exactly two
    `models`, those two models of that revision; two = each model both revisions have."""
    if len(revisions) > 2:
        raise MovierecError(f"compare takes at most two revisions, got {len(revisions)}: {' '.join(revisions)}")
    if len(revisions) == 1 and models and len(models) == 2:
        tables = per_user_tables(revisions[0], models)
        return models[0], models[1], [(f"{models[1]} - {models[0]}", tables[models[0]], tables[models[1]])]
    a, b = {0: ("HEAD", WORKSPACE), 1: (*revisions, WORKSPACE), 2: revisions}[len(revisions)]
    tables_a, tables_b = per_user_tables(a, models), per_user_tables(b, models)
    pairs = [(m, tables_a[m], tables_b[m]) for m in tables_a if m in tables_b]
    if not pairs:
        raise MovierecError(f"{a} and {b} have no model in common; `--models` picks them")
    return a, b, pairs


def metric_names(columns: dict) -> list[str]:
    return [*(("rmse", "mae") if "sse" in columns else ()), *per_user.ranking_columns(columns)]


def compare(pairs: list[tuple[str, dict, dict]], s: CompareParams, test: str = "permutation", metrics: list[str] | None = None) -> list[dict]:
    """One row per (label, A table, B table) and metric both hold (of `metrics`, default all): A, B,
    delta = B - A, its interval, the paired test's p, Holm's adjusted p across all rows, and the verdict for B."""
    held = {m for _, a, _ in pairs for m in metric_names(a)}
    unknown = [m for m in metrics or () if m not in held]
    if unknown:
        raise MovierecError(f"--metrics: {unknown[0]} is not a metric of these results; they have {', '.join(sorted(held))}")
    rows = []
    for label, a, b in pairs:
        for metric in [m for m in metric_names(a) if metrics is None or m in metrics]:
            d = significance.paired(a, b, metric, s, test, where=f"{label}: ")
            if d is not None:
                rows.append({"model": label, "metric": metric, **vars(d)})
    for row, adjusted in zip(rows, significance.holm([r["p"] for r in rows])):
        row["p_holm"] = float(adjusted)
        row["verdict"] = significance.verdict(row["metric"], row["delta"], adjusted, s)
    return rows


def render(rows: list[dict], a: str, b: str, fmt: str, s: CompareParams, test: str) -> str:
    """The rows as a markdown table, plain text or JSON."""
    if fmt == "json":
        return json.dumps({"a": a, "b": b, "confidence": s.confidence, "test": test, "rows": rows}, indent=2)
    head = ["model", "metric", "users", a, b, "Δ (B - A)", f"{s.confidence:.0%} CI of Δ", "p", "p (Holm)", "verdict"]
    body = [
        [r["model"], r["metric"], str(r["n_users"]), f"{r['a']:.4f}", f"{r['b']:.4f}", f"{r['delta']:+.4f}",
         f"[{r['low']:+.4f}, {r['high']:+.4f}]", f"{r['p']:.3g}", f"{r['p_holm']:.3g}", r["verdict"]]
        for r in rows
    ]
    if fmt == "markdown":
        return "\n".join("| " + " | ".join(line) + " |" for line in [head, ["---"] * len(head), *body])
    widths = [max(len(line[i]) for line in [head, *body]) for i in range(len(head))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip() for line in [head, *body])


def summarize(revs: list[str]) -> dict[str, dict[str, dict]]:
    """{model: {metric: {mean, std, n}}} of metrics/eval over a set of runs (std with ddof 1): the
    spread of a setting such as `train.seed` across experiments."""
    values: dict[str, dict[str, list[float]]] = {}
    for rev in revs:
        files = read_tracked(rev, "metrics/eval")
        if not files:
            raise MovierecError(f"{rev}: has no metrics/eval/*.json; run `dvc repro` there first")
        for name, text in files.items():
            for metric, value in json.loads(text).items():
                if isinstance(value, float):
                    values.setdefault(name.removesuffix(".json"), {}).setdefault(metric, []).append(value)
    return {
        model: {metric: {"mean": float(np.mean(v)), "std": float(np.std(v, ddof=1)) if len(v) > 1 else 0.0, "n": len(v)} for metric, v in metrics.items()}
        for model, metrics in values.items()
    }


def experiments_of(base: str = "HEAD") -> list[str]:
    """The commits of the `dvc exp` experiments based on `base`, in the order of their names."""
    commit = resolve(base)
    prefix = f"refs/exps/{commit[:2]}/{commit[2:]}/"
    refs = _git("for-each-ref", "--format=%(refname) %(objectname)", prefix).stdout.decode().split("\n")
    return [line.split()[1] for line in sorted(refs) if line]
