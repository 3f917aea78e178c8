"""The README's commands are the ones the benchmarks measure."""

import re
import sys

from conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
import scale  # noqa: E402


def test_large_data_override_in_the_readme_is_the_one_the_scale_benchmark_runs():
    section = (REPO / "README.md").read_text().split("### Large data", 1)[1]
    command = section.split("```bash", 1)[1].split("```", 1)[0]
    settings = re.findall(r"-S (\S+)", command)
    assert settings, "no `dvc exp run -S ...` line under README's 'Large data'"
    documented = [s for s in settings if not s.startswith("data.")]  # the data is the user's choice
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

    shown = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", (REPO / "README.md").read_text())
    assert {"metrics/plots/ranking_at_k.png", "metrics/plots/training_curves.png", "metrics/plots/rmse_by_popularity.png"} <= set(shown)
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    drawn = {next(iter(out)) if isinstance(out, dict) else out for stage in stages.values() for out in stage.get("outs", [])}
    committed = set(subprocess.run(["git", "ls-files", *shown], cwd=REPO, capture_output=True, text=True, check=True).stdout.split())
    for path in shown:
        assert path in drawn, f"{path} is not an output of any stage in dvc.yaml"
        assert path in committed, f"{path} is not committed"


def _block(text: str, name: str) -> str:
    return text.split(f"<!-- BEGIN {name} -->", 1)[1].split(f"<!-- END {name} -->", 1)[0]


def test_the_experiments_script_runs_exactly_the_readme_tables_rows():
    """scripts/readme_experiments.sh regenerates the tables in a fresh clone: one run per row, no more."""
    readme = (REPO / "README.md").read_text()
    rows = set()
    for name, prefix in (("ablation", "variants.mf_content."), ("dae_ablation", "variants.dae.")):
        for line in _block(readme, name).splitlines():
            settings = re.findall(r"`([^`=]+=[^`]+)`", line.split("|")[1]) if line.startswith("| `") else []
            if settings:
                rows.add(frozenset(prefix + s.lower() for s in settings))
    for line in _block(readme, "seeds").strip().splitlines()[3:]:  # header, rule, the commit's own split
        seed = line.split("|")[1].strip()
        if seed.isdigit():
            rows.add(frozenset({f"prepare.seed={seed}"}))
    if "experiment `product-join`" in _block(readme, "notebook"):
        rows.add(frozenset({"model.join=product"}))
    script = (REPO / "scripts" / "readme_experiments.sh").read_text()
    runs = {frozenset(s.lower() for s in re.findall(r"-S (\S+)", line)) for line in script.splitlines() if line.startswith("dvc exp run")}
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
    pages = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    broken = []
    for page in pages:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            if not re.match(r"[a-z]+://", target) and not (page.parent / target).exists():
                broken.append(f"{page.relative_to(REPO)} -> {target}")
    assert not broken, broken
