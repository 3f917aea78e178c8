"""Fill the generated blocks of README.md from committed metrics and DVC experiments (never by hand).

    python scripts/update_readme.py

Blocks are delimited by `<!-- BEGIN name -->` / `<!-- END name -->`:
- report:   metrics/report.md, as `dvc repro` wrote it;
- notebook: the notebook's four runs: the workspace metrics (model.join as in params.yaml) and the
            newest `dvc exp run -S model.join=...` experiment with the other join;
- dag:      `dvc dag --md`.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_VARIANTS = ("collab", "hybrid")
NOTEBOOK_REFERENCE = {  # DESIGN.md: the notebook's code as written, Keras 3 port, TF-IDF+SVD content
    ("collab", "concat"): 0.890, ("collab", "product"): 0.986, ("hybrid", "concat"): 0.884, ("hybrid", "product"): 0.981,
}


def notebook_table() -> str:
    import dvc.api

    rows = dvc.api.exp_show(repo=str(ROOT))
    by_join = {}
    for row in rows:  # newest first; keep the workspace and the newest experiment per join
        join = row.get("model.join")
        if row.get("rev") == "workspace" or row.get("typ", "").startswith("branch_"):
            by_join.setdefault(join, row)
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


def fill(text: str, name: str, body: str) -> str:
    pattern = re.compile(rf"(<!-- BEGIN {name} -->\n).*?(<!-- END {name} -->)", re.S)
    if not pattern.search(text):
        raise SystemExit(f"README.md: no <!-- BEGIN {name} --> block")
    return pattern.sub(lambda m: m.group(1) + body + m.group(2), text)


def main() -> None:
    readme = ROOT / "README.md"
    text = readme.read_text()
    report = (ROOT / "metrics/report.md").read_text().split("\n", 2)[2]  # drop the title line
    text = fill(text, "report", report)
    text = fill(text, "notebook", notebook_table())
    dag = subprocess.run(["dvc", "dag", "--md"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    text = fill(text, "dag", dag)
    readme.write_text(text)


if __name__ == "__main__":
    main()
