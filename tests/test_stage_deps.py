"""dvc.yaml must declare, for every stage, each project module its command imports (directly or
indirectly), so that a change to any of them reruns the stage. Computed from the code, so it cannot rot."""

import ast
import inspect
import textwrap
from pathlib import Path

import pytest
import yaml

from conftest import REPO

PACKAGE = REPO / "src" / "movierec"


def _imported_modules(tree: ast.AST) -> set[str]:
    """Project modules named by any import in `tree` (module-level or inside functions)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "movierec":
                found |= {alias.name for alias in node.names if (PACKAGE / f"{alias.name}.py").is_file()}
            elif node.module.startswith("movierec."):
                found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found |= {alias.name.split(".")[1] for alias in node.names if alias.name.startswith("movierec.")}
    return found


def _module_closure(start: set[str]) -> set[str]:
    seen, todo = set(), list(start)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        if name == "cli":  # its per-command imports are followed by command_closure
            continue
        todo += _imported_modules(ast.parse((PACKAGE / f"{name}.py").read_text()))
    return seen


def command_closure(command: str) -> set[str]:
    """Modules a `movierec COMMAND` run imports: cli.py's module-level imports, the command's own
    function and the cli.py helpers it calls (recursively), then everything those modules import."""
    from movierec import cli

    cli_tree = ast.parse((PACKAGE / "cli.py").read_text())
    helpers = {node.name: node for node in cli_tree.body if isinstance(node, ast.FunctionDef)}
    top_level = ast.Module(body=[n for n in cli_tree.body if isinstance(n, (ast.Import, ast.ImportFrom))], type_ignores=[])
    modules = _imported_modules(top_level)
    callback = cli.cli.commands[command].callback
    todo, done = [ast.parse(textwrap.dedent(inspect.getsource(inspect.unwrap(callback))))], set()
    while todo:
        tree = todo.pop()
        modules |= _imported_modules(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Name) and node.id in helpers and node.id not in done:
                done.add(node.id)
                todo.append(helpers[node.id])
    return _module_closure(modules) | {"cli"}


def dvc_stages():
    """(stage name, command word, declared deps) for every stage, foreach entries expanded by hand."""
    spec = yaml.safe_load((REPO / "dvc.yaml").read_text())
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    for name, stage in spec["stages"].items():
        body, keys = (stage["do"], list(params["variants"])) if "foreach" in stage else (stage, [None])
        for key in keys:
            deps = {str(d).replace("${key}", str(key)) for d in body.get("deps", [])}
            yield (name if key is None else f"{name}@{key}"), body["cmd"].split()[1], deps


@pytest.mark.parametrize("stage, command, deps", list(dvc_stages()), ids=lambda x: x if isinstance(x, str) else "")
def test_stage_declares_every_module_its_command_imports(stage, command, deps):
    needed = {f"src/movierec/{name}.py" for name in command_closure(command)}
    missing = sorted(needed - deps)
    assert not missing, f"dvc.yaml: stage {stage} imports {missing} but does not list them in deps"
    declared_code = {d for d in deps if d.startswith("src/")}
    extra = sorted(declared_code - needed)
    assert not extra, f"dvc.yaml: stage {stage} lists {extra} in deps but never imports them"


def test_closure_follows_indirect_imports():
    closure = command_closure("evaluate")
    assert {"cli", "errors", "params", "evaluate", "prepare"} <= closure
    assert "tensorflow" not in closure and "train" not in closure
