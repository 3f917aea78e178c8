"""The README's commands are the ones the benchmarks measure."""

import re
import sys

from conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
import scale  # noqa: E402


def _section(text: str, heading: str) -> str:
    return text.split(f"\n{heading}\n", 1)[1].split("\n## ", 1)[0]


def test_large_data_is_one_switch_in_the_readme_and_the_same_fifteen_settings_in_its_page():
    """The README's few lines use `-S profile=large`; docs/large-data.md spells out the values it sets,
    which are the ones the scale benchmark runs (test_params checks the profile sets exactly those)."""
    section = _section((REPO / "README.md").read_text(), "## Large data")
    assert len(section.strip().splitlines()) <= 15 and "dvc exp run -S profile=large -S data.dataset=ml-25m" in section
    page = (REPO / "docs" / "large-data.md").read_text()
    command = next(c for c in re.findall(r"```bash\n(.*?)```", page, re.S) if "train.optimizer" in c)
    documented = [s for s in re.findall(r"-S (\S+)", command) if not s.startswith("data.")]  # the data is the user's choice
    assert sorted(documented) == sorted(scale.LARGE_DATA)


def test_each_dae_alternative_changes_a_dae_setting_of_the_override():
    override = dict(s.split("=", 1) for s in scale.LARGE_DATA)
    for name, settings in scale.DAE_ALTERNATIVES.items():
        for setting in settings:
            key, value = setting.split("=", 1)
            assert key.startswith("variants.dae."), (name, setting)
            assert key in override and override[key] != value, f"{name}: {setting} is what the override already sets"


def test_every_figure_the_readme_shows_is_drawn_by_a_stage_and_committed():
    """A figure in the README must come from `dvc repro`, not be drawn or kept by hand."""
    import subprocess

    import yaml

    shown = [
        str((page.parent / target).resolve().relative_to(REPO))
        for page in PAGES for target in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", page.read_text())
    ]
    assert {"metrics/plots/ranking_at_k.png", "metrics/plots/training_curves.png", "metrics/plots/rmse_by_popularity.png"} <= set(shown)
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    drawn = {next(iter(out)) if isinstance(out, dict) else out for stage in stages.values() for out in stage.get("outs", [])}
    committed = set(subprocess.run(["git", "ls-files", *shown], cwd=REPO, capture_output=True, text=True, check=True).stdout.split())
    for path in shown:
        assert path in drawn, f"{path} is not an output of any stage in dvc.yaml"
        assert path in committed, f"{path} is not committed"


PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def _block(text: str, name: str) -> str:
    return text.split(f"<!-- BEGIN {name} -->", 1)[1].split(f"<!-- END {name} -->", 1)[0]


def _pages() -> str:
    """README and docs/ as one text: a generated block lives on one of them."""
    return "\n".join(page.read_text() for page in PAGES)


def test_the_experiments_script_runs_exactly_the_readme_tables_rows():
    """scripts/readme_experiments.sh regenerates the tables in a fresh clone: one run per row, no more."""
    readme = _pages()
    rows = set()
    for name, prefix in (("ablation", "variants.mf_content."), ("dae_ablation", "variants.dae.")):
        for line in _block(readme, name).splitlines():
            settings = re.findall(r"`([^`=]+=[^`]+)`", line.split("|")[1]) if line.startswith("| `") else []
            if settings:
                rows.add(frozenset(prefix + s.lower() for s in settings))
    for line in _block(readme, "seeds").strip().splitlines()[3:]:  # header, rule, the commit's own split
        seed = line.split("|")[1].strip() if line.startswith("|") else ""  # not the legend under the table
        if seed.isdigit():
            rows.add(frozenset({f"prepare.seed={seed}"}))
    if "experiment `product-join`" in _block(readme, "notebook"):
        rows.add(frozenset({"model.join=product"}))
    script = (REPO / "scripts" / "readme_experiments.sh").read_text()
    runs = {frozenset(s.lower() for s in re.findall(r"-S (\S+)", line)) for line in script.splitlines() if line.startswith("dvc exp run")}
    assert 'dvc exp run --temp -n "train-seed-$seed" -S "train.seed=$seed"' in script and "benchmarks/results/seed_noise.json" in script
    assert len(rows) == 14, sorted(map(sorted, rows))  # 1 join + 5 mf_content + 5 dae + 3 seeds
    assert runs == rows


def test_the_readme_names_the_model_recommend_serves_by_default():
    """The README says which model `recommend` serves on the notebook's split; the committed metrics decide it."""
    import json

    from movierec import serve
    from movierec.params.project import load_params

    p = load_params(REPO / "params.yaml")
    names = [*p.variants, *serve.SERVED_BASELINES]
    evaluations = {name: json.loads((REPO / "metrics" / "eval" / f"{name}.json").read_text()) for name in names}
    best = serve.best_variant(evaluations, "ndcg", p.evaluate.k)
    readme = " ".join((REPO / "README.md").read_text().split())
    assert f"on the notebook's split it serves {'EASE' if best == 'ease' else f'`{best}`'}" in readme, best


def test_every_relative_link_in_the_readme_and_docs_resolves():
    broken = []
    for page in PAGES:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            if not re.match(r"[a-z]+://", target) and not (page.parent / target).exists():
                broken.append(f"{page.relative_to(REPO)} -> {target}")
    assert not broken, broken


def test_a_newcomer_finds_install_run_test_results_and_a_recommendation_early_in_a_short_readme():
    lines = (REPO / "README.md").read_text().splitlines()
    assert len(lines) <= 250, len(lines)
    first = "\n".join(lines[:120])
    for needle in ("pip install -r requirements.lock", "dvc repro", "pytest", "| model | RMSE |", "movierec recommend --user 1"):
        assert needle in first, needle


def test_every_quickstart_command_runs_in_the_end_to_end_test():
    quickstart = _section((REPO / "README.md").read_text(), "## Quickstart")
    commands = [line.split("#")[0].split() for block in re.findall(r"```bash\n(.*?)```", quickstart, re.S) for line in block.splitlines()]
    commands = [c[:2] for c in commands if c and c[0] in ("dvc", "movierec")]
    e2e = (REPO / "tests" / "test_e2e.py").read_text()
    assert len(commands) >= 3
    for program, sub in commands:
        assert f'run(["{program}", "{sub}"' in e2e, f"{program} {sub}: in the Quickstart but never run by tests/test_e2e.py"


def test_user_docs_name_no_issue_numbers():
    for page in PAGES:
        assert not re.search(r"\bissues? \d+|\bissue #?\d+", page.read_text(), re.I), page.name


def test_commit_hashes_appear_only_in_generated_lines():
    """A hash in prose goes stale and means nothing to a newcomer; generated blocks say where they were measured."""
    for page in PAGES:
        prose = re.sub(r"<!-- BEGIN (\w+) -->.*?<!-- END \1 -->", "", page.read_text(), flags=re.S)
        hashes = [h for h in re.findall(r"(?<![\w/#.-])[0-9a-f]{7,40}(?![\w-])", prose) if re.search(r"\d", h) and re.search(r"[a-f]", h)]
        assert not hashes, f"{page.name}: {hashes}"


def test_the_readme_tuned_table_is_the_committed_comparisons():
    """Its figures come from benchmarks/results/tuned/, each file as `movierec compare --format json` wrote it."""
    import importlib.util
    import json

    spec = importlib.util.spec_from_file_location("update_readme", REPO / "scripts" / "update_readme.py")
    update_readme = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(update_readme)
    files = sorted((REPO / "benchmarks" / "results" / "tuned").glob("*.json"))
    assert files
    for path in files:
        record = json.loads(path.read_text())
        assert record["a"] == "HEAD" and record["rows"], path.name  # default (HEAD) against the tuned experiment
        assert all(r["low"] <= r["delta"] <= r["high"] for r in record["rows"]), path.name
    assert _block((REPO / "README.md").read_text(), "tuned") == "\n" + update_readme.tuned_table()
