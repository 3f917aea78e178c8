"""`movierec check-drift`: did this workspace reproduce a revision's results, and if not, where and why?

Three answers, from cheap to telling:
- the metrics that moved beyond a tolerance (`dvc metrics diff REV`);
- the first stage, in pipeline order, whose outputs differ from REV's `dvc.lock`: everything
  downstream of it differs because of it, so that is where to look;
- the differences between the environment recorded at REV (`metrics/environment/`, written by
  `train`) and this one: library versions, BLAS build and threads, CPU.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from movierec.environment import PROMISED_INSTRUCTION_SETS, differences
from movierec.errors import MovierecError

ENVIRONMENT_DIR = Path("metrics/environment")
# Outputs whose bytes change from run to run with the same results: wall times, the machine's
# description, and the fitted-model folders of data/models (their Keras zips hold the save time and
# Python object ids; the weights inside, and so the curves and the rank stage's predictions made from
# them, are bitwise reproducible).
UNSTABLE_OUTPUTS = ("metrics/timing/", "metrics/environment/", ".keras", "data/models/")


@dataclass
class DriftReport:
    rev: str
    n_metrics: int
    drifted: list[str] = field(default_factory=list)
    first_stage: str | None = None
    stage_outputs: list[str] = field(default_factory=list)
    environment: list[str] = field(default_factory=list)

    def lines(self, tolerance: float) -> list[str]:
        out = []
        if self.drifted:
            out.append(f"{len(self.drifted)} metric(s) drifted beyond {tolerance}: " + "; ".join(self.drifted))
        if self.first_stage:
            out.append(f"first stage whose outputs differ from {self.rev}'s dvc.lock: {self.first_stage} ({', '.join(self.stage_outputs)})")
        elif self.drifted:
            out.append(f"every stage output matches {self.rev}'s dvc.lock: the committed metrics were not written by that dvc.lock's run")
        if self.environment:
            out.append(f"environment differences from {self.rev}: " + "; ".join(self.environment))
        return out


def _git_show(rev: str, path: str) -> str | None:
    result = subprocess.run(["git", "show", f"{rev}:{path}"], capture_output=True, text=True)
    return result.stdout if result.returncode == 0 else None


def _stable(path: str) -> bool:
    return not any(part in path for part in UNSTABLE_OUTPUTS)


def _within(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def stage_order(lock: dict) -> list[str]:
    """Stages of a dvc.lock in pipeline order: a stage comes after every stage whose outputs it reads
    (ties keep the file's order)."""
    stages = lock.get("stages", {})
    outs = {name: [o["path"] for o in s.get("outs", [])] for name, s in stages.items()}

    def upstream(name: str) -> set[str]:
        deps = [d["path"] for d in stages[name].get("deps", [])]
        return {
            other for other, paths in outs.items()
            if other != name and any(_within(d, p) or _within(p, d) for d in deps for p in paths)  # a folder holds its files
        }

    before = {name: upstream(name) for name in stages}
    order: list[str] = []
    while len(order) < len(stages):
        ready = [n for n in stages if n not in order and before[n] <= set(order)]
        if not ready:  # a cycle cannot happen in a valid lock; keep the rest in file order
            ready = [n for n in stages if n not in order]
        order.append(ready[0])
    return order


def output_hashes(lock: dict) -> dict[str, dict[str, str | None]]:
    return {
        name: {o["path"]: o.get("md5") for o in s.get("outs", []) if _stable(o["path"])}
        for name, s in lock.get("stages", {}).items()
    }


def first_differing_stage(reference: dict, current: dict, modified: dict[str, list[str]]) -> tuple[str | None, list[str]]:
    """The first stage (in `reference`'s pipeline order) whose stable outputs differ between the two
    locks, or which `modified` (stage -> paths, from `dvc status`) says changed in the workspace."""
    ref, cur = output_hashes(reference), output_hashes(current)
    for name in stage_order(reference):
        changed = [path for path, md5 in ref[name].items() if cur.get(name, {}).get(path) != md5]
        changed += [path for path in modified.get(name, []) if _stable(path) and path not in changed]
        if changed:
            return name, changed
    return None, []


def workspace_modified() -> dict[str, list[str]]:
    """Stage -> outputs that differ in the workspace from the workspace's dvc.lock (`dvc status`)."""
    result = subprocess.run(["dvc", "status", "--json"], capture_output=True, text=True)
    if result.returncode != 0:
        return {}
    modified = {}
    for stage, entries in json.loads(result.stdout or "{}").items():
        for entry in entries if isinstance(entries, list) else []:
            if isinstance(entry, dict) and "changed outs" in entry:
                modified[stage.split(":")[-1]] = sorted(entry["changed outs"])
    return modified


def environment_differences(rev: str) -> list[str]:
    """Differences between REV's recorded environment and the workspace's (first variant recorded in both),
    and what a CPU family difference means for the promise."""
    for current_path in sorted(ENVIRONMENT_DIR.glob("*.json")):
        recorded = _git_show(rev, current_path.as_posix())
        if recorded is not None:
            old, new = json.loads(recorded), json.loads(current_path.read_text())
            return differences(old, new) + cpu_family_verdict(old, new)
    return []


def cpu_family_verdict(recorded: dict, current: dict) -> list[str]:
    """Same bits are promised between x86-64 CPUs with AVX2 (AVX-512 or not, Intel or AMD, any cache
    sizes); elsewhere, only results within the training-seed noise (docs/reproducibility.md)."""
    sets = recorded.get("instruction_set"), current.get("instruction_set")
    if None in sets or sets[0] == sets[1]:
        return []
    change = f"CPU family {sets[0]} -> {sets[1]}"
    if all(s in PROMISED_INSTRUCTION_SETS for s in sets):
        return [f"{change}: the same bits are promised across these; an output that differs is a bug, please report it"]
    return [f"{change}: the same bits are not promised here, only results within the training-seed noise (docs/comparing.md)"]


def check(rev: str, tolerance: float) -> DriftReport:
    result = subprocess.run(["dvc", "metrics", "diff", rev, "--all", "--json"], capture_output=True, text=True)
    if result.returncode != 0:
        raise MovierecError(f"dvc metrics diff {rev} failed: {result.stderr.strip().splitlines()[-1:]}")
    diff = json.loads(result.stdout or "{}")
    if not diff:
        raise MovierecError(f"no metrics found to compare with {rev}; run `dvc repro` first")
    report = DriftReport(rev=rev, n_metrics=sum(len(m) for m in diff.values()))
    report.drifted = [
        f"{path}:{name} {change.get('old')} -> {change.get('new')}"
        for path, metrics in diff.items()
        for name, change in metrics.items()
        if not within(change.get("old"), change.get("new"), tolerance)
    ]
    reference_lock = _git_show(rev, "dvc.lock")
    if reference_lock is not None and Path("dvc.lock").is_file():
        report.first_stage, report.stage_outputs = first_differing_stage(
            yaml.safe_load(reference_lock), yaml.safe_load(Path("dvc.lock").read_text()), workspace_modified()
        )
    report.environment = environment_differences(rev)
    return report


def within(old, new, tolerance: float) -> bool:
    if isinstance(old, (int, float)) and isinstance(new, (int, float)):
        return abs(new - old) <= tolerance
    return old == new
