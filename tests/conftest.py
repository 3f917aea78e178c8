import functools
import http.server
import os
import shutil
import subprocess
import threading
import zipfile
from pathlib import Path

import pytest
import yaml

from movierec import data, prepare
from movierec.environment import pin_kernels
from synthetic import make_movielens, sha256s, zip_movielens

# TensorFlow in the tests' own processes runs as in every stage's: in Eigen's kernels, not oneDNN's,
# which on an AVX-512 or AMX CPU picks other kernels for other batch sizes (the traced and eager scorers
# then differed in the last bit). Set before anything imports TensorFlow.
pin_kernels()

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

# Small enough to train in seconds, same code paths as the real pipeline.
TINY_PARAMS = {
    "embed": {"dim": 8, "min_df": 1},
    "train": {"epochs": 2, "batch_size": 64},
    "variants": {"dae": {"hidden": 16, "train": {"epochs": 3, "batch_size": 16}}},
}


def pytest_collection_modifyitems(items):
    """The end-to-end and real-data tests first (a stable sort: files keep their order within each
    group). They take up to minutes each; pytest-xdist hands the two processes one test at a time
    (pyproject.toml), so started first they overlap with each other and with the quick ones instead of
    leaving one process to finish them alone at the end."""
    items.sort(key=lambda item: item.get_closest_marker("e2e") is None and item.get_closest_marker("slow") is None)


def deep_update(base: dict, override: dict) -> dict:
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            deep_update(base[key], value)
        else:
            base[key] = value
    return base


def write_params(path: Path, override: dict) -> dict:
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    deep_update(params, override)
    Path(path).write_text(yaml.safe_dump(params, sort_keys=False))
    return params


@pytest.fixture
def movielens(tmp_path) -> Path:
    return make_movielens(tmp_path / "ml")


def make_mirror(movielens: Path, folder: Path) -> Path:
    """`folder` holding `movielens` as the ml-latest-small.zip MOVIEREC_DATA_MIRROR expects."""
    folder.mkdir()
    zip_movielens(movielens, folder / "ml-latest-small.zip")
    return folder


@pytest.fixture
def mirror(tmp_path, movielens) -> Path:
    return make_mirror(movielens, tmp_path / "mirror")


def run(cmd, cwd, env=None, check=True):
    result = subprocess.run(cmd, cwd=cwd, env={**os.environ, **(env or {})}, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"{cmd} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


@pytest.fixture
def project(make_project):
    return make_project()


@pytest.fixture
def make_project(tmp_path, movielens, mirror):
    """make_project(only=None) -> (root, env): a git repo holding a copy of the project, with tiny params,
    the synthetic data as its mirror, and optionally only some of the variants (faster)."""

    def make(only: tuple[str, ...] | None = None):
        return _make_project(tmp_path, movielens, mirror, only)

    return make


def _make_project(tmp_path, movielens, mirror, only):
    root = tmp_path / "project"
    root.mkdir()
    for name in ("dvc.yaml", ".dvcignore", ".gitignore"):
        shutil.copy2(REPO / name, root / name)
    shutil.copytree(REPO / "src", root / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    (root / ".dvc").mkdir()
    shutil.copy2(REPO / ".dvc" / "config", root / ".dvc" / "config")
    shutil.copy2(REPO / ".dvc" / "plots_template.html", root / ".dvc" / "plots_template.html")  # config names it
    params = write_params(root / "params.yaml", deep_update({"data": {"sha256": sha256s(movielens)}}, TINY_PARAMS))
    if only:
        params["variants"] = {name: params["variants"][name] for name in only}
        (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        if params["blend"]["variant"] not in only:  # nothing to blend: the stage goes, as a user would remove it
            pipeline = yaml.safe_load((root / "dvc.yaml").read_text())
            del pipeline["stages"]["blend"]
            (root / "dvc.yaml").write_text(yaml.safe_dump(pipeline, sort_keys=False))
    env = {"MOVIEREC_DATA_MIRROR": str(mirror), **GIT_IDENTITY}
    run(["git", "init", "-q", "-b", "main"], root)
    git_commit(root, "init")
    return root, env


@pytest.fixture(scope="session")
def _reproduced_collab_project(tmp_path_factory):
    base = tmp_path_factory.mktemp("reproduced")
    movielens = make_movielens(base / "ml")
    root, env = _make_project(base, movielens, make_mirror(movielens, base / "mirror"), ("collab",))
    run(["dvc", "repro"], root, env)
    git_commit(root, "reproduced")
    return root, env


@pytest.fixture
def reproduced_collab_project(tmp_path, _reproduced_collab_project):
    """(root, env): a copy of a collab-only project (make_project(only=("collab",))) whose `dvc repro` has
    run and been committed, with its DVC cache: the tests that start from results pay for one repro, not one each."""
    source, env = _reproduced_collab_project
    root = tmp_path / "project"
    shutil.copytree(source, root, ignore=lambda folder, names: ["tmp"] if Path(folder) == source / ".dvc" else [])
    return root, env


GIT_IDENTITY = {  # dvc exp run commits; CI machines may have no git identity
    "GIT_AUTHOR_NAME": "movierec-tests",
    "GIT_AUTHOR_EMAIL": "tests@movierec.invalid",
    "GIT_COMMITTER_NAME": "movierec-tests",
    "GIT_COMMITTER_EMAIL": "tests@movierec.invalid",
}


def git_commit(root: Path, message: str) -> None:
    run(["git", "add", "-A"], root, GIT_IDENTITY)
    run(["git", "commit", "-qm", message], root, GIT_IDENTITY)


def require_shared_data() -> Path:
    """Real-data tests fail, not skip, in CI: a missing archive there is a broken setup."""
    zip_path = SHARED_DATA / "ml-latest-small.zip"
    if not zip_path.is_file():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{zip_path} is missing; CI needs the real MovieLens archive beside the repo")
        pytest.skip(f"{zip_path} not available")
    return SHARED_DATA


@pytest.fixture
def http_server(tmp_path):
    """Serve a folder on 127.0.0.1 on a free port."""
    root = tmp_path / "www"
    root.mkdir()
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(root))
    class Server(http.server.ThreadingHTTPServer):
        def handle_error(self, request, client_address):
            pass  # the client hanging up early (size cap) is expected

    server = Server(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture(scope="session")
def real_prepared(tmp_path_factory):
    """The notebook's split of the real latest-small archive (test_size 0.15, seed 2137)."""
    folder = tmp_path_factory.mktemp("ml")
    with zipfile.ZipFile(require_shared_data() / "ml-latest-small.zip") as archive:
        archive.extractall(folder)
    ratings = data.load_ratings(folder / "ml-latest-small", min_rating=0, max_rating=5)
    return prepare.prepare(ratings, test_size=0.15, seed=2137)


def baseline_params(**changes):
    """params.yaml's `baselines` block with `changes`: the settings a test does not care about stay the shipped ones."""
    import dataclasses

    from movierec.params import baselines, core

    return dataclasses.replace(baselines.load(core.read(REPO / "params.yaml")), **changes)
