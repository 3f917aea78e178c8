"""Every stage's wall time, CPU time and peak resident memory on synthetic sets of 1M to 32M ratings.

    python benchmarks/scale.py run ml-1m ml-10m ml-25m     # one record per set in results/scale/
    python benchmarks/scale.py dae /tmp/scale-ml-10m-.../repo   # dae's override settings vs their alternatives
    python benchmarks/scale.py rerun /tmp/scale-ml-10m-.../repo baselines report --why "..."  # after a change to them
    python benchmarks/scale.py table                      # results/scale.txt (as printed), scale.png, dae_choices.txt

For each preset, `movierec synth` writes the set (seed 0) into --data-dir unless it is already there.
HEAD is cloned into a fresh temporary folder (empty DVC cache, no outputs), the large-data recipe
override (LARGE_DATA below, the same `-S` settings) and `data.path=<the set>` are written into its
params.yaml, and every stage runs as `dvc repro --single-item <stage>` in DAG order, each under a small
wrapper that reads `resource.getrusage(RUSAGE_CHILDREN)`: the largest peak RSS of any process of the
stage and the CPU time (user + sys) of them all, DVC's own hashing and caching included. Then the
oracle RMSE on the test split (the planted model's expected ratings, `synth.oracle_rmse`) is set
beside mf_content's test RMSE, and mf_content's NDCG@10 beside most-popular's.

The machine is shared: wall times are inflated by other work; CPU time is the fairer figure.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
RECORDS = RESULTS / "scale"
DAE_RECORD = RESULTS / "dae_choices.json"
# The large-data recipe (params.yaml profiles.large; docs/large-data.md spells it out), as `dvc exp run -S key=value` settings (keep the two in step).
LARGE_DATA = (
    "train.optimizer=lazy_adam",
    "train.batch_size=4096",
    "train.learning_rate=0.003",
    "train.epochs=5",
    "variants.mf_content.factors=16",
    "variants.mf_content.l2_factors=0.03",
    "variants.mf_content.train.batch_size=4096",
    "variants.mf_content.train.learning_rate=0.005",
    "variants.mf_content.train.epochs=20",
    "variants.mf_content.train.early_stopping_patience=2",
    "variants.dae.user_vector=false",
    "variants.dae.max_movies=10000",
    "variants.dae.train.epochs=2",
    "variants.dae.train.batch_size=512",
    "evaluate.max_users=5000",
)
# dae's settings in LARGE_DATA, each set against what it was chosen over (`scale.py dae`).
DAE_ALTERNATIVES = {
    "with per-user vectors": ("variants.dae.user_vector=true",),
    "batches of 256 users": ("variants.dae.train.batch_size=256",),
}
DAE_STAGES = ("train@dae", "evaluate@dae")
RUSAGE = (
    "import resource, subprocess, sys, time; t = time.perf_counter();"
    "rc = subprocess.call(sys.argv[1:], stdout=open('stage.log', 'ab'), stderr=subprocess.STDOUT);"
    "r = resource.getrusage(resource.RUSAGE_CHILDREN);"
    "print(r.ru_maxrss, r.ru_utime + r.ru_stime, time.perf_counter() - t); sys.exit(rc)"
)


def set_params(params_file: Path, settings: list[str]) -> None:
    """What `dvc exp run -S key=value` does to params.yaml: dotted key, YAML-parsed value (comments kept)."""
    from ruamel.yaml import YAML

    ry = YAML()
    ry.width = 4096  # keep long values (checksums) on their line
    doc = ry.load(params_file.read_text())
    for setting in settings:
        key, _, value = setting.partition("=")
        *parents, leaf = key.split(".")
        node = doc
        for part in parents:
            node = node[part]
        if leaf not in node:
            raise SystemExit(f"{setting}: {key} is not in params.yaml")
        node[leaf] = yaml.safe_load(value)
    with params_file.open("w") as f:
        ry.dump(doc, f)


def synthesise(preset: str, data_dir: Path) -> Path:
    folder = data_dir / preset
    if not (folder / "planted.json").is_file():
        subprocess.run(["movierec", "synth", str(folder), "--preset", preset, "--seed", "0"], check=True)
    return folder


def stage_order(repo: Path) -> list[str]:
    dry = subprocess.run(["dvc", "repro", "--dry", "--force"], cwd=repo, capture_output=True, text=True, check=True).stdout
    return re.findall(r"Running stage '([^']+)'", dry)


def oracle_and_model(repo: Path, folder: Path) -> dict:
    from movierec.prepare import load_prepared
    from movierec.synth import load_planted, oracle_rmse

    prepared = load_prepared(repo / "data" / "prepared")
    test = prepared.test
    oracle = oracle_rmse(load_planted(folder), prepared.user_ids[test.user], prepared.movie_ids[test.movie], test.rating)
    ev = {name: json.loads((repo / "metrics" / "eval" / f"{name}.json").read_text()) for name in ("mf_content", "most_popular")}
    return {
        "oracle_rmse": oracle,
        "mf_content_rmse": ev["mf_content"]["rmse"],
        "mf_content_ndcg": ev["mf_content"]["ndcg_at_10"],
        "most_popular_ndcg": ev["most_popular"]["ndcg_at_10"],
        "n_users_evaluated": ev["mf_content"].get("n_users_evaluated"),
    }


def measure(repo: Path, stage: str) -> dict:
    """One `dvc repro --single-item` of the clone's stage, with the clone's code (not an installed copy)."""
    env = {**os.environ, "PYTHONPATH": str(repo / "src")}
    done = subprocess.run([sys.executable, "-c", RUSAGE, "dvc", "repro", "--single-item", stage], cwd=repo, env=env, capture_output=True, text=True)
    peak_kb, cpu, wall = done.stdout.split()
    if done.returncode != 0:
        print((repo / "stage.log").read_text()[-3000:], file=sys.stderr)
    return {"wall_s": float(wall), "cpu_s": float(cpu), "peak_rss_mb": int(peak_kb) / 1024, "ok": done.returncode == 0}


def head(repo: Path = ROOT, rev: str = "HEAD") -> str:
    return subprocess.run(["git", "rev-parse", "--short", rev], cwd=repo, capture_output=True, text=True).stdout.strip()


def run(preset: str, data_dir: Path, keep: bool) -> dict:
    folder = synthesise(preset, data_dir)
    counts = json.loads((folder / "planted.json").read_text())
    tmp = Path(tempfile.mkdtemp(prefix=f"scale-{preset}-"))
    repo = tmp / "repo"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(repo)], check=True)
    set_params(repo / "params.yaml", [*LARGE_DATA, f"data.path={folder}"])
    record = {"preset": preset, "ratings": counts["ratings"], "users": counts["users"], "movies": counts["movies"],
              "override": list(LARGE_DATA), "commit": head(),
              "stages": {}}
    out = RECORDS / f"{preset}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    for stage in stage_order(repo):
        print(f"{preset}: {stage} ...", flush=True)
        record["stages"][stage] = measured = measure(repo, stage)
        out.write_text(json.dumps(record, indent=2) + "\n")  # partial records survive a crash
        print(f"{preset}: {stage} {measured['wall_s']:.0f} s wall, {measured['cpu_s']:.0f} s CPU, {measured['peak_rss_mb']:.0f} MB", flush=True)
        if not measured["ok"]:
            break
    else:
        record.update(oracle_and_model(repo, folder))
        out.write_text(json.dumps(record, indent=2) + "\n")
    if not keep:
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        print(f"{preset}: clone kept in {repo}")
    return record


def to_head(repo: Path) -> Path:
    """Bring a clone kept by `run --keep` to this checkout's HEAD (code, stages, params with the
    override); its outputs stay, so `dvc repro --single-item` reruns only what the change touches."""
    folder = Path(yaml.safe_load((repo / "params.yaml").read_text())["data"]["path"])
    subprocess.run(["git", "fetch", "-q", str(ROOT), "HEAD"], cwd=repo, check=True)
    subprocess.run(["git", "checkout", "FETCH_HEAD", "--", "src", "dvc.yaml", "params.yaml"], cwd=repo, check=True)
    set_params(repo / "params.yaml", [*LARGE_DATA, f"data.path={folder}"])
    return folder


def rerun(repo: Path, stages: list[str], why: str) -> dict:
    """Remeasure `stages` of a kept clone's set at HEAD, after a change that touched only them, into its
    record, and say so in the record's note (newest first): the rest of the record stays as it was run."""
    folder = to_head(repo)
    out = RECORDS / f"{folder.name}.json"
    record = json.loads(out.read_text())
    for stage in stages:
        record["stages"][stage] = measured = measure(repo, stage)
        print(f"{folder.name}: {stage} {measured['wall_s']:.0f} s wall, {measured['cpu_s']:.0f} s CPU, {measured['peak_rss_mb']:.0f} MB", flush=True)
        if not measured["ok"]:
            raise SystemExit(f"{stage} failed in {repo}; see its stage.log")
    record["note"] = "; ".join(filter(None, [f"{', '.join(stages)} rerun at commit {head(repo, 'FETCH_HEAD')} ({why})", record.get("note")]))
    out.write_text(json.dumps(record, indent=2) + "\n")
    return record


def dae_choices(repo: Path) -> dict:
    """train@dae and evaluate@dae in a clone kept by `run --keep`, at this checkout's HEAD, under the
    override and under each of DAE_ALTERNATIVES: what dropping the per-user vectors and batching 512
    users save, and what they cost in NDCG@10 (on the same sampled test users as the references, the
    baselines, which are rerun first so that they too are measured at HEAD)."""
    folder = to_head(repo)
    if not measure(repo, "baselines")["ok"]:
        raise SystemExit(f"baselines failed in {repo}; see its stage.log")
    evaluated = repo / "metrics" / "eval"
    record = {"preset": folder.name, "commit": head(repo, "FETCH_HEAD"), "runs": {},
              "most_popular_ndcg": json.loads((evaluated / "most_popular.json").read_text())["ndcg_at_10"],
              "ease_ndcg": json.loads((evaluated / "ease.json").read_text()).get("ndcg_at_10")}
    for name, settings in {"the override": (), **DAE_ALTERNATIVES}.items():
        set_params(repo / "params.yaml", [*LARGE_DATA, *settings, f"data.path={folder}"])
        stages = {stage: measure(repo, stage) for stage in DAE_STAGES}
        ndcg = json.loads((evaluated / "dae.json").read_text())["ndcg_at_10"]
        record["runs"][name] = {"settings": list(settings), "stages": stages, "ndcg_at_10": ndcg}
        print(f"dae, {name}: {stages}, NDCG@10 {ndcg:.4f}", flush=True)
    set_params(repo / "params.yaml", [*LARGE_DATA, f"data.path={folder}"])
    return record


def dae_table(record: dict) -> str:
    lines = [f"dae's part of the large-data override against what it was chosen over, on the {record['preset']} set of",
             f"`scale.py run` (its kept clone, at commit {record['commit']}): train@dae and evaluate@dae only, measured as `run` measures.",
             "",
             f"{'dae':22s} | {'train@dae':>24s} | {'evaluate@dae':>24s} | NDCG@10",
             f"{'':22s}" + " | {:>24s}".format("wall s / CPU s / peak MB") * 2 + " |"]
    lines.append("-" * len(lines[-1]))
    for name, run in record["runs"].items():
        train, evaluate = (run["stages"][stage] for stage in DAE_STAGES)
        failed = "" if train["ok"] and evaluate["ok"] else "  FAILED"
        lines.append(f"{name:22s} | {measured(train):>24s} | {measured(evaluate):>24s} | {run['ndcg_at_10']:.4f}{failed}")
    ease = "skipped" if record["ease_ndcg"] is None else f"{record['ease_ndcg']:.4f}"
    lines += ["", f"On the same sampled test users: most-popular {record['most_popular_ndcg']:.4f}, EASE {ease}. The generator picks which",
              "movies a user rates by popularity alone, not by taste, so most-popular is close to the best possible list here."]
    for name, settings in DAE_ALTERNATIVES.items():
        lines.append(f"{name}: " + " ".join(f"-S {s}" for s in settings))
    return "\n".join(lines) + "\n"


def measured(stage: dict) -> str:
    return f"{stage['wall_s']:.0f} / {stage['cpu_s']:.0f} / {stage['peak_rss_mb']:.0f}"


def short(stage: str) -> str:
    return stage.replace("mf_content", "mf")


def table() -> str:
    records = sorted((json.loads(p.read_text()) for p in RECORDS.glob("*.json")), key=lambda r: r["ratings"])
    if not records:
        raise SystemExit(f"no records in {RECORDS}; run `python benchmarks/scale.py run ml-1m` first")
    stages = list(dict.fromkeys(s for r in records for s in r["stages"]))
    lines = [f"{len(records)} synthetic sets (movierec synth --seed 0), each from an empty cache, with the large-data override:",
             "  " + " ".join(f"-S {s}" for s in records[-1]["override"]), ""]
    head = f"{'stage':22s}" + "".join(f" | {r['preset'] + ' (' + format(r['ratings'] / 1e6, '.0f') + 'M)':>24s}" for r in records)
    lines += [head, f"{'':22s}" + " | {:>24s}".format("wall s / CPU s / peak MB") * len(records), "-" * len(head)]
    for stage in stages:
        cells = []
        for r in records:
            s = r["stages"].get(stage)
            cells.append("–" if s is None else measured(s) + ("" if s["ok"] else " FAILED"))
        lines.append(f"{short(stage):22s}" + "".join(f" | {c:>24s}" for c in cells))
    total = [sum(s["wall_s"] for s in r["stages"].values()) for r in records]
    cpu = [sum(s["cpu_s"] for s in r["stages"].values()) for r in records]
    peak = [max(s["peak_rss_mb"] for s in r["stages"].values()) for r in records]
    lines.append("-" * len(head))
    lines.append(f"{'whole pipeline':22s}" + "".join(f" | {f'{w:.0f} / {c:.0f} / {p:.0f}':>24s}" for w, c, p in zip(total, cpu, peak)))
    lines.append("")
    lines.append("commits: " + ", ".join(f"{r['preset']} {r['commit']}" for r in records))
    lines += growth(records)
    for r in records:
        if r.get("note"):  # a deviation from a plain `scale.py run`: `scale.py rerun`, or recorded by hand
            lines.append(f"{r['preset']}: note: {r['note']}")
        if "oracle_rmse" not in r:
            lines.append(f"{r['preset']}: incomplete (stages after {list(r['stages'])[-1]} not run)")
            continue
        gap = r["mf_content_rmse"] - r["oracle_rmse"]
        lines.append(
            f"{r['preset']}: mf_content test RMSE {r['mf_content_rmse']:.4f}, oracle {r['oracle_rmse']:.4f} (gap {gap:+.4f}, goal <= 0.05: "
            f"{'met' if gap <= 0.05 else 'NOT met'}); NDCG@10 {r['mf_content_ndcg']:.4f} vs most-popular {r['most_popular_ndcg']:.4f} "
            f"({'above' if r['mf_content_ndcg'] > r['most_popular_ndcg'] else 'NOT above'}; {r['n_users_evaluated']} users ranked)"
        )
    return "\n".join(lines) + "\n"


def growth(records: list[dict]) -> list[str]:
    """How much each stage's CPU time and peak memory grew from the smallest set to the largest, set
    beside how much the ratings grew: about linear growth keeps every ratio near the ratings' own."""
    small, large = records[0], records[-1]
    both = [s for s in large["stages"] if s in small["stages"]]
    if len(records) < 2 or not both:
        return []
    lines = [f"growth {small['preset']} -> {large['preset']}: ratings x{large['ratings'] / small['ratings']:.1f}"]
    for key, what in (("cpu_s", "CPU time"), ("peak_rss_mb", "peak memory")):
        ratio = {s: large["stages"][s][key] / max(small["stages"][s][key], 1e-9) for s in both}
        top = sorted(ratio, key=ratio.get, reverse=True)[:3]
        lines.append(f"  {what}: largest x{ratio[top[0]]:.1f} ({short(top[0])}), then " + ", ".join(f"x{ratio[s]:.1f} ({short(s)})" for s in top[1:]))
    return lines


def plot() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = sorted((json.loads(p.read_text()) for p in RECORDS.glob("*.json")), key=lambda r: r["ratings"])
    stages = list(dict.fromkeys(s for r in records for s in r["stages"]))
    fig, axes = plt.subplots(1, 3, figsize=(16, 5.5))
    for stage in stages:
        xs = [r["ratings"] for r in records if stage in r["stages"]]
        for ax, key in zip(axes, ("cpu_s", "wall_s", "peak_rss_mb")):
            ax.plot(xs, [r["stages"][stage][key] for r in records if stage in r["stages"]], marker="o", label=short(stage))
    x = [r["ratings"] for r in records]
    for ax, title in zip(axes, ("CPU time (user + sys), s", "wall time, s (shared machine)", "peak resident memory, MB")):
        ax.set(xscale="log", yscale="log", xlabel="ratings", title=title)
        if len(x) > 1:  # a slope-1 guide: linear growth
            ax.plot(x, [ax.get_ylim()[0] * 2 * v / x[0] for v in x], "k:", label="∝ ratings")
        ax.grid(True, which="both", alpha=0.3)
    axes[2].axhline(8192, color="red", lw=1)
    axes[2].legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(RESULTS / "scale.png", dpi=90)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="run the pipeline on these presets")
    r.add_argument("presets", nargs="+", choices=("ml-1m", "ml-10m", "ml-25m", "ml-32m"))
    r.add_argument("--data-dir", type=Path, default=Path(tempfile.gettempdir()) / "movierec-scale")
    r.add_argument("--keep", action="store_true", help="keep the temporary clone (to inspect its outputs)")
    sub.add_parser("table", help="print the table of every record, write results/scale.txt, scale.png and dae_choices.txt")
    d = sub.add_parser("dae", help="dae's override settings against their alternatives, in a kept clone")
    d.add_argument("clone", type=Path, help="the repo folder that `run --keep` printed")
    rr = sub.add_parser("rerun", help="remeasure some stages of a kept clone's set at HEAD, into its record")
    rr.add_argument("clone", type=Path, help="the repo folder that `run --keep` printed")
    rr.add_argument("stages", nargs="+", help="in DAG order, e.g. baselines report")
    rr.add_argument("--why", required=True, help="the change that made them rerun, for the record's note")
    args = ap.parse_args()
    if args.command == "run":
        for preset in args.presets:
            start = time.perf_counter()
            run(preset, args.data_dir, args.keep)
            print(f"{preset}: {time.perf_counter() - start:.0f} s in all", flush=True)
    elif args.command == "rerun":
        rerun(args.clone, args.stages, args.why)
    elif args.command == "dae":
        record = dae_choices(args.clone)
        DAE_RECORD.write_text(json.dumps(record, indent=2) + "\n")
        print(dae_table(record), end="")
    else:
        text = table()
        print(text, end="")
        (RESULTS / "scale.txt").write_text(text)
        plot()
        if DAE_RECORD.is_file():
            (RESULTS / "dae_choices.txt").write_text(dae_table(json.loads(DAE_RECORD.read_text())))


if __name__ == "__main__":
    main()
