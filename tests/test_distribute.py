"""Data-parallel training: TF_CONFIG handling, batch sharding, the local launcher, a worker dying, mirrored."""

import json
import os
import shutil
import signal
import subprocess
import time

import numpy as np
import pytest
import yaml

from conftest import run, write_params
from movierec import distribute
from movierec.errors import MovierecError

WORKERS = {"cluster": {"worker": ["127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"]}, "task": {"type": "worker", "index": 2}}


def _set_train(params, **values) -> None:
    """Set top-level `train` keys of a params file, as `dvc exp run -S train.<key>=...` does."""
    raw = yaml.safe_load(params.read_text())
    raw["train"].update(values)
    params.write_text(yaml.safe_dump(raw, sort_keys=False))


def test_tf_config_names_the_task_and_worker_zero_is_the_chief():
    assert distribute.current_task({}) is None
    task = distribute.current_task({"TF_CONFIG": json.dumps(WORKERS)})
    assert (task.kind, task.index, task.is_chief, task.rank, task.count) == ("worker", 2, False, 2, 3)
    first = {**WORKERS, "task": {"type": "worker", "index": 0}}
    assert distribute.current_task({"TF_CONFIG": json.dumps(first)}).is_chief


def test_a_chief_task_is_the_chief_and_comes_first():
    cluster = {"chief": ["h0:1"], "worker": ["h1:1", "h2:1"]}
    chief = distribute.current_task({"TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "chief", "index": 0}})})
    worker0 = distribute.current_task({"TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": 0}})})
    assert chief.is_chief and (chief.rank, chief.count) == (0, 3)
    assert not worker0.is_chief and worker0.rank == 1


@pytest.mark.parametrize("bad", ["not json", json.dumps({"cluster": {}}), json.dumps({**WORKERS, "task": {"type": "worker", "index": 3}})])
def test_bad_tf_config_is_a_one_line_error(bad):
    with pytest.raises(MovierecError, match="TF_CONFIG") as info:
        distribute.current_task({"TF_CONFIG": bad})
    assert "\n" not in str(info.value)


def test_only_multi_worker_reads_tf_config_to_decide_who_writes(monkeypatch):
    monkeypatch.setenv("TF_CONFIG", json.dumps(WORKERS))  # worker 2: not the chief
    assert not distribute.is_chief("multi_worker")
    assert distribute.is_chief("none") and distribute.is_chief("mirrored")
    assert not distribute.should_launch("multi_worker", 2)  # already a task of a cluster: run as it


def test_workers_slices_cover_each_global_batch_once_in_order(monkeypatch):
    from movierec.examples import rating_batches as batches
    from movierec.prepare import Split

    rows = Split(np.arange(23), np.arange(23) + 100, np.arange(23, dtype=np.float64))
    whole = [y.numpy().ravel() for _, y in batches(rows, 8, seed=3)]
    shares = []
    for index in range(3):
        monkeypatch.setenv("TF_CONFIG", json.dumps({**WORKERS, "task": {"type": "worker", "index": index}}))
        shares.append(list(distribute.this_workers_share(batches(rows, 8, seed=3))))
    for step, expected in enumerate(whole):
        parts = [shares[w][step] for w in range(3)]
        assert all(float(n) == len(expected) for _, _, n in parts)  # each worker knows the global batch size
        np.testing.assert_array_equal(np.concatenate([r.numpy().ravel() for _, r, _ in parts]), expected)
        for (user, movie), rating, _ in parts:
            np.testing.assert_array_equal(movie.numpy(), user.numpy() + 100)


def test_multi_worker_without_tf_config_says_how_to_run_it(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(MovierecError, match="TF_CONFIG is not set"):
        distribute.make_strategy.__wrapped__("multi_worker")


# --- real processes on 127.0.0.1, tiny synthetic data ------------------------------------------------

FAST_MF = {"variants": {"mf_content": {"train": {"epochs": 6, "early_stopping_patience": 2, "batch_size": 128}}}}


@pytest.fixture
def prepared_project(tmp_path, movielens):
    """A folder with params and the prepared data and content features: ready for `movierec train`."""
    from synthetic import sha256s

    from conftest import TINY_PARAMS, deep_update

    root = tmp_path / "project"
    root.mkdir()
    override = deep_update({"data": {"path": str(movielens), "sha256": sha256s(movielens)}}, TINY_PARAMS)
    write_params(root / "params.yaml", deep_update(override, FAST_MF))
    for stage in ("prepare", "embed", "align"):
        run(["movierec", stage], root)
    return root


def _outputs(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and "data/prepared" not in str(p))


def _test_rmse(root, variant):
    run(["movierec", "rank", variant], root)
    run(["movierec", "evaluate", variant], root)
    return json.loads((root / "metrics" / "eval" / f"{variant}.json").read_text())["rmse"]


@pytest.mark.e2e
def test_two_local_workers_match_one_and_only_the_chief_writes(prepared_project, tmp_path):
    single = tmp_path / "single"
    shutil.copytree(prepared_project, single)
    run(["movierec", "train", "mf_content"], single)

    before = _outputs(prepared_project)
    launched = run(["movierec", "train", "mf_content", "--workers", "2"], prepared_project)
    assert "[worker 0] Epoch 1/" in launched.stdout
    assert "Refitting" in launched.stdout  # early stopping and refit ran in the custom loop
    written = sorted(set(_outputs(prepared_project)) - set(before))
    assert written == sorted(set(_outputs(single)) - set(before))  # the same files, no worker copies or temp files
    assert "data/models/mf_content/model.keras" in written and "metrics/train/mf_content/metrics.json" in written
    assert "data/models/mf_content/carve.keras" in written  # the model the rank stage chooses its prior with

    one, two = (json.loads((r / "metrics/timing/mf_content.json").read_text()) for r in (single, prepared_project))
    assert (one["epochs_run"], one["best_epoch"]) == (two["epochs_run"], two["best_epoch"])
    curves = [(r / "metrics/train/mf_content/plots/metrics/eval/rmse.tsv").read_text().split() for r in (single, prepared_project)]
    np.testing.assert_allclose(np.array(curves[0][2:], float), np.array(curves[1][2:], float), atol=1e-5)
    assert abs(_test_rmse(single, "mf_content") - _test_rmse(prepared_project, "mf_content")) < 1e-4

    import keras  # the chief's file reloads with no custom objects and holds one worker's weights and optimiser state

    one, two = (keras.saving.load_model(r / "data/models/mf_content/model.keras") for r in (single, prepared_project))
    assert int(two.optimizer.iterations) == int(one.optimizer.iterations) > 0
    for a, b in zip(one.get_weights(), two.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-5)


@pytest.mark.e2e
def test_a_non_chief_worker_writes_nothing_into_its_folder(prepared_project, tmp_path):
    """On a cluster every host runs the train stage in its own checkout with its own TF_CONFIG (no
    launcher): the chief's folder gets the outputs, the other's stays as it was."""
    params = prepared_project / "params.yaml"
    _set_train(params, distribute="multi_worker")
    run(["movierec", "recipe", "collab"], prepared_project)
    other = tmp_path / "other_host"
    shutil.copytree(prepared_project, other)
    before = _outputs(other)
    procs = [
        subprocess.Popen(["python", "-m", "movierec.stages.train", "collab"], cwd=cwd, env={**os.environ, "TF_CONFIG": config},
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for cwd, config in zip((prepared_project, other), distribute.local_tf_configs(2))
    ]
    logs = [proc.communicate(timeout=120)[0] for proc in procs]
    assert [p.returncode for p in procs] == [0, 0], logs
    assert (prepared_project / "data/models/collab/model.keras").is_file()
    assert (prepared_project / "metrics/train/collab/plots/metrics/eval/loss.tsv").is_file()
    assert _outputs(other) == before


@pytest.mark.e2e
def test_a_worker_killed_mid_run_fails_the_run_with_one_line_and_no_outputs(prepared_project):
    params = prepared_project / "params.yaml"  # as `dvc exp run -S train.distribute=multi_worker -S train.workers=2` sets them
    _set_train(params, epochs=200, distribute="multi_worker", workers=2)
    run(["movierec", "recipe", "collab"], prepared_project)
    proc = subprocess.Popen(  # the command dvc.yaml runs
        ["python", "-m", "movierec.stages.train", "collab"], cwd=prepared_project,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    for line in proc.stdout:
        if line.startswith("[worker 0] Epoch 2/"):
            os.kill(_worker_pid(proc.pid, index=1), signal.SIGKILL)
            break
    out, err = proc.communicate(timeout=60)
    assert proc.returncode != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: worker 1 of 2 was killed by signal 9"), err
    assert not (prepared_project / "data/models").exists()
    assert not (prepared_project / "metrics/timing").exists()
    assert not [p for p in (prepared_project / "metrics").rglob("*") if "train" in p.parts and (p.is_file() or p.name.endswith(".tmp"))], "curves or their temp folder left"


def _worker_pid(launcher: int, index: int) -> int:
    """The launcher's child whose TF_CONFIG names worker `index` (Linux /proc)."""
    deadline = time.time() + 30
    while time.time() < deadline:
        for child in open(f"/proc/{launcher}/task/{launcher}/children").read().split():
            env = open(f"/proc/{child}/environ", "rb").read().split(b"\0")
            config = [e[len(b"TF_CONFIG="):] for e in env if e.startswith(b"TF_CONFIG=")]
            if config and json.loads(config[0])["task"]["index"] == index:
                return int(child)
        time.sleep(0.2)
    raise AssertionError(f"no worker {index} under process {launcher}")


def test_mirrored_on_the_cpu_matches_the_default(movielens, tmp_path):
    import dataclasses

    from movierec import data, prepare
    from movierec.architectures import mf
    from movierec.params.project import load_params
    from movierec.scoring import keras_predictor
    from movierec.training import regime

    write_params(tmp_path / "params.yaml", {})
    variant = load_params(tmp_path / "params.yaml").variant("mf_content")
    split = prepare.prepare(data.load_ratings(movielens, min_rating=0, max_rating=5), test_size=0.15, seed=1)
    rmse = {}
    for kind in ("none", "mirrored"):
        t = dataclasses.replace(variant.train, distribute=kind, epochs=3, early_stopping_patience=0, batch_size=64)
        settings = dataclasses.replace(variant.settings, content=False)
        model = regime.fit(mf, settings, None, t, split, None, (0.0, 5.0), tmp_path / f"live_{kind}").model
        predicted = keras_predictor(model)(split.test.user, split.test.movie)
        rmse[kind] = float(np.sqrt(np.mean((predicted - split.test.rating) ** 2)))
        assert (tmp_path / f"live_{kind}" / "metrics.json").is_file()
    assert rmse["none"] < 2.0 and abs(rmse["none"] - rmse["mirrored"]) < 5e-3, rmse


@pytest.mark.e2e
def test_on_a_cluster_a_dead_peer_stops_the_chief_with_one_line_and_no_outputs(prepared_project):
    """No launcher watches the workers on a real cluster: the chief itself must notice and stop."""
    params = prepared_project / "params.yaml"
    _set_train(params, distribute="multi_worker", epochs=200)
    run(["movierec", "recipe", "collab"], prepared_project)
    chief, peer = (
        subprocess.Popen(["python", "-m", "movierec.stages.train", "collab"], cwd=prepared_project, env={**os.environ, "TF_CONFIG": config},
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for config in distribute.local_tf_configs(2)
    )
    for line in chief.stdout:
        if line.startswith("Epoch 2/"):
            peer.kill()
            break
    out, err = chief.communicate(timeout=120)
    peer.communicate()
    assert chief.returncode != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: multi_worker training stopped: another worker failed"), err
    assert not (prepared_project / "data/models").exists() and not (prepared_project / "metrics/timing").exists()
    assert not [p for p in (prepared_project / "metrics").rglob("*") if "train" in p.parts and (p.is_file() or p.name.endswith(".tmp"))]


@pytest.mark.e2e
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_stopping_the_launcher_stops_its_workers_and_leaves_no_outputs(prepared_project, sig):
    """What `dvc repro` being interrupted, or killed, does to a launched run: no orphan worker
    keeps training and writes a model afterwards."""
    params = prepared_project / "params.yaml"
    _set_train(params, epochs=200)
    proc = subprocess.Popen(["movierec", "train", "collab", "--workers", "2"], cwd=prepared_project,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in proc.stdout:
        if line.startswith("[worker 0] Epoch 2/"):
            workers = [_worker_pid(proc.pid, index=i) for i in (0, 1)]
            proc.send_signal(sig)
            break
    proc.communicate(timeout=60)
    assert proc.returncode != 0
    deadline = time.time() + 30
    while any(os.path.exists(f"/proc/{pid}") and "Z" not in _state(pid) for pid in workers) and time.time() < deadline:
        time.sleep(0.2)
    assert not [pid for pid in workers if os.path.exists(f"/proc/{pid}") and "Z" not in _state(pid)]
    assert not (prepared_project / "data/models").exists() and not (prepared_project / "metrics/timing").exists()


def _state(pid: int) -> str:
    try:
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "Z"
