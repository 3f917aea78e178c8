"""dvc.yaml must declare, for every stage, exactly the project modules its entry imports (directly or
indirectly): a change to any of them reruns the stage, a change to anything else does not. Computed
from the code, so it cannot rot. A variant's architecture module is found by name at run time, so its
stages list it through `${item.architecture}`, and its imports count too."""

import ast
from pathlib import Path

import pytest
import yaml

from conftest import REPO

SRC = REPO / "src"


def module_file(name: str) -> Path | None:
    """The file of project module `name` (dotted, e.g. movierec.stages.train), or None if not a project module."""
    path = SRC.joinpath(*name.split("."))
    if (path / "__init__.py").is_file():
        return path / "__init__.py"
    return path.with_suffix(".py") if path.with_suffix(".py").is_file() else None


def imported_modules(name: str) -> set[str]:
    """Project modules named by any import in module `name` (module-level or inside functions)."""
    tree = ast.parse(module_file(name).read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and node.module.split(".")[0] == "movierec":
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names if module_file(f"{node.module}.{alias.name}")}
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.split(".")[0] == "movierec"}
    return {m for m in found if module_file(m)}


def closure(*start: str) -> set[str]:
    """Every project module importing `start` runs, packages' __init__ included."""
    seen, todo = set(), list(start)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        parts = name.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]  # importing a.b.c runs a and a.b first
        todo += imported_modules(name)
    return seen


def as_paths(modules: set[str]) -> set[str]:
    return {str(module_file(m).relative_to(REPO)) for m in modules}


def dvc_stages():
    """(stage name, entry module, architecture module or None, declared code deps) for every stage, foreach entries expanded."""
    spec = yaml.safe_load((REPO / "dvc.yaml").read_text())
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    for name, stage in spec["stages"].items():
        body, items = (stage["do"], params["variants"]) if "foreach" in stage else (stage, {None: {}})
        for key, item in items.items():
            deps = {str(d).replace("${key}", str(key)).replace("${item.architecture}", str(item.get("architecture"))) for d in body.get("deps", [])}
            cmd = body["cmd"].split()
            assert cmd[:2] == ["python", "-m"], f"{name}: cmd should run a stage entry with python -m"
            architecture = f"movierec.architectures.{item['architecture']}" if "${item.architecture}" in body["cmd"] + " ".join(map(str, body.get("deps", []))) else None
            yield (name if key is None else f"{name}@{key}"), cmd[2], architecture, {d for d in deps if d.startswith("src/")}


STAGES = list(dvc_stages())


@pytest.mark.parametrize("stage, entry, architecture, deps", STAGES, ids=[s[0] for s in STAGES])
def test_stage_declares_exactly_the_modules_its_entry_imports(stage, entry, architecture, deps):
    needed = as_paths(closure(entry, *([architecture] if architecture else [])))
    assert not sorted(needed - deps), f"dvc.yaml: stage {stage} imports {sorted(needed - deps)} but does not list them in deps"
    assert not sorted(deps - needed), f"dvc.yaml: stage {stage} lists {sorted(deps - needed)} in deps but never imports them"


def test_no_stage_depends_on_the_cli_or_on_every_params_block():
    for stage, entry, architecture, deps in STAGES:
        assert "src/movierec/cli.py" not in deps, stage
        assert "src/movierec/params/project.py" not in deps, stage


def test_closure_follows_indirect_imports():
    modules = closure("movierec.stages.evaluate")
    assert {"movierec.errors", "movierec.params.evaluate", "movierec.evaluate", "movierec.prepare", "movierec.params"} <= modules
    assert not any(m.startswith(("movierec.training", "movierec.architectures")) for m in modules)
    assert "movierec.cli" not in modules and "movierec.params.variants" not in modules
