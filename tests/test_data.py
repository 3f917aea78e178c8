"""Bad data through the real CLI: one-line errors naming the file and the fix, and no output left behind."""

import zipfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import run, write_params
from movierec import data
from movierec.cli import cli
from synthetic import sha256s, zip_movielens


def invoke(*args):
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result


@pytest.fixture
def workdir(tmp_path, monkeypatch, movielens):
    """A project folder whose params point data.path at a custom (synthetic) folder."""
    monkeypatch.chdir(tmp_path)
    write_params(tmp_path / "params.yaml", {"data": {"path": str(movielens)}, "embed": {"dim": 8, "min_df": 1}})
    return tmp_path


def edit(path: Path, old: str, new: str, count: int = 1):
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, count))


def assert_one_line_error(result, *fragments):
    assert result.exit_code != 0
    errors = [line for line in result.output.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1 and result.output.strip().endswith(errors[0]), result.output
    for fragment in fragments:
        assert fragment in errors[0]
    assert "Traceback" not in result.output


def test_prepare_on_custom_data_writes_splits_and_counts(workdir):
    result = invoke("prepare")
    assert result.exit_code == 0, result.output
    assert (workdir / "data/prepared/train.npz").is_file()
    assert "n_users=60" in result.output


def _replace_line(path, line_no, new):
    lines = path.read_text().splitlines()
    lines[line_no - 1] = new
    path.write_text("\n".join(lines) + "\n")


CASES = {
    "missing file": (lambda f: (f / "ratings.csv").unlink(), ["ratings.csv", "file not found"]),
    "empty file": (lambda f: (f / "ratings.csv").write_text(""), ["ratings.csv", "is empty"]),
    "misnamed column": (
        lambda f: edit(f / "ratings.csv", "userId,movieId,rating", "userId,movieId,score"),
        ["missing column 'rating'", "found: userId, movieId, score"],
    ),
    "non-numeric rating": (lambda f: _replace_line(f / "ratings.csv", 3, "1,1,good,964982703"), ["line 3", "rating 'good' is not a number"]),
    "non-integer id": (lambda f: _replace_line(f / "ratings.csv", 4, "x1,1,4.0,964982703"), ["line 4", "userId 'x1' is not an integer"]),
    "empty field": (lambda f: _replace_line(f / "ratings.csv", 5, "1,,4.0,964982703"), ["line 5", "empty movieId"]),
    "NaN rating": (lambda f: _replace_line(f / "ratings.csv", 6, "1,8,nan,964982703"), ["line 6", "rating 'nan' is not a number"]),
    "rating out of range": (lambda f: _replace_line(f / "ratings.csv", 2, "1,1,7.5,964982703"), ["line 2", "outside [0.0, 5.0]"]),
    "duplicate pair": (
        lambda f: (f / "ratings.csv").write_text((f / "ratings.csv").read_text() + "1,{m},3.0,1\n".format(m=_first_movie(f))),
        ["rated movieId", "more than once", "data.duplicates: keep_last"],
    ),
    "not utf-8": (lambda f: (f / "ratings.csv").write_bytes("userId,movieId,rating\n1,1,4.0\n\xe9".encode("latin-1")), ["not UTF-8", "re-save it as UTF-8"]),
    "semicolons": (lambda f: (f / "ratings.csv").write_text((f / "ratings.csv").read_text().replace(",", ";")), ["semicolon-separated"]),
    "too few ratings": (lambda f: (f / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,1,4.0,1\n"), ["too few to split"]),
}


def _first_movie(folder):
    return (folder / "ratings.csv").read_text().splitlines()[1].split(",")[1]


@pytest.mark.parametrize("case", CASES)
def test_bad_ratings_give_one_line_error_and_no_output(workdir, movielens, case):
    corrupt, fragments = CASES[case]
    corrupt(movielens)
    result = invoke("prepare")
    assert_one_line_error(result, *fragments)
    assert not (workdir / "data/prepared").exists()
    assert not (workdir / "metrics/data.json").exists()


def test_duplicates_can_keep_last(workdir, movielens):
    first = (movielens / "ratings.csv").read_text().splitlines()[1].split(",")
    with open(movielens / "ratings.csv", "a") as f:
        f.write(f"{first[0]},{first[1]},0.5,1\n")
    write_params(workdir / "params.yaml", {"data": {"path": str(movielens), "duplicates": "keep_last"}})
    assert invoke("prepare").exit_code == 0
    from movierec.prepare import load_prepared

    prepared = load_prepared(workdir / "data/prepared")
    assert sum(prepared.counts()[k] for k in ("n_train", "n_test")) == len((movielens / "ratings.csv").read_text().splitlines()) - 2


def test_download_is_skipped_for_custom_data(workdir, monkeypatch):
    monkeypatch.delenv(data.MIRROR_ENV, raising=False)
    result = invoke("download")
    assert result.exit_code == 0 and "skipping the official download" in result.output
    assert [p.name for p in (workdir / "data/raw").iterdir()] == ["NOT_DOWNLOADED.txt"]


def test_movies_file_is_validated_too(workdir, movielens):
    edit(movielens / "movies.csv", "movieId,title,genres", "movieId,name,genres")
    assert_one_line_error(invoke("embed"), "movies.csv", "missing column 'title'")
    assert not (workdir / "data/content").exists()


@pytest.mark.parametrize("command", [["movierec", "prepare"], ["python", "-m", "movierec.stages.prepare"]])
def test_bad_params_fail_before_work_through_the_real_cli(workdir, command):
    """A stage validates the blocks it reads (prepare: data and prepare) before any work."""
    write_params(workdir / "params.yaml", {"prepare": {"test_size": 1.5}})
    result = run(command, workdir, check=False)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        "Error: params.yaml: prepare.test_size: 1.5 is out of range; accepted: (0, 1)"
    ]
    assert not (workdir / "data").exists()


# ---------------------------------------------------------------- content archives


@pytest.mark.parametrize(
    "vectors, fragment",
    [
        ({"1": np.zeros(5, np.float32)}, "shape (5,), expected (8,)"),
        ({"1": np.full(8, np.nan, np.float32)}, "NaN or inf"),
        ({"toy story": np.zeros(8, np.float32)}, "is not a movieId"),
    ],
)
def test_bad_content_archive_is_refused(workdir, vectors, fragment):
    assert invoke("prepare").exit_code == 0
    np.savez(workdir / "mine.npz", **vectors)
    write_params(workdir / "params.yaml", {"data": {"path": str(workdir / ".." / "ml")}, "embed": {"dim": 8, "archive": "mine.npz"}})
    assert_one_line_error(invoke("align"), "mine.npz", fragment)
    assert not (workdir / "data/features").exists()


def test_pickled_npz_is_refused(workdir):
    assert invoke("prepare").exit_code == 0
    np.savez(workdir / "evil.npz", **{"1": np.array([object()], dtype=object)})
    write_params(workdir / "params.yaml", {"data": {"path": str(workdir / ".." / "ml")}, "embed": {"dim": 8, "archive": "evil.npz"}})
    assert_one_line_error(invoke("align"), "evil.npz", "pickled objects, which are refused")
    assert not (workdir / "data/features").exists()


# ---------------------------------------------------------------- download


def _download_params(workdir, base_url, sha, dataset="ml-latest-small"):
    write_params(workdir / "params.yaml", {"data": {"dataset": dataset, "base_url": base_url, "sha256": sha}})


def test_download_from_local_server_with_good_checksum(workdir, http_server, movielens, monkeypatch):
    monkeypatch.delenv(data.MIRROR_ENV, raising=False)
    root, base = http_server
    zip_movielens(movielens, root / "ml-latest-small.zip")
    _download_params(workdir, base, sha256s(movielens))
    result = invoke("download")
    assert result.exit_code == 0, result.output
    got = workdir / "data/raw/movielens/ratings.csv"
    assert got.read_bytes() == (movielens / "ratings.csv").read_bytes()


def test_download_checksum_mismatch_leaves_nothing(workdir, http_server, movielens, monkeypatch):
    monkeypatch.delenv(data.MIRROR_ENV, raising=False)
    root, base = http_server
    zip_movielens(movielens, root / "ml-latest-small.zip")
    wrong = {**sha256s(movielens), "ratings.csv": "0" * 64}
    _download_params(workdir, base, wrong)
    assert_one_line_error(invoke("download"), "ratings.csv: SHA-256", "does not match")
    assert not (workdir / "data/raw").exists()
    assert list((workdir / "data").iterdir()) == []  # no temp folder either


def test_download_stops_at_size_cap(workdir, http_server, movielens, monkeypatch):
    monkeypatch.delenv(data.MIRROR_ENV, raising=False)
    root, base = http_server
    (root / "ml-latest-small.zip").write_bytes(b"x" * 300_000)
    write_params(workdir / "params.yaml", {"data": {"base_url": base, "max_download_mb": 0.1}})
    assert_one_line_error(invoke("download"), "exceeds data.max_download_mb")
    assert not (workdir / "data/raw").exists()


def test_offline_without_mirror_says_how_to_provide_the_file(workdir, monkeypatch):
    monkeypatch.delenv(data.MIRROR_ENV, raising=False)
    write_params(workdir / "params.yaml", {"data": {"base_url": "http://127.0.0.1:9"}})
    assert_one_line_error(invoke("download"), "could not download", data.MIRROR_ENV)


def test_plain_http_is_refused_off_loopback(workdir, monkeypatch):
    monkeypatch.delenv(data.MIRROR_ENV, raising=False)
    write_params(workdir / "params.yaml", {"data": {"base_url": "http://example.org"}})
    assert_one_line_error(invoke("download"), "data.base_url", "must use https")


def test_mirror_may_name_the_zip_itself(workdir, mirror, movielens, monkeypatch):
    monkeypatch.setenv(data.MIRROR_ENV, str(mirror / "ml-latest-small.zip"))
    _download_params(workdir, "https://unused.invalid", sha256s(movielens))
    assert invoke("download").exit_code == 0
    assert (workdir / "data/raw/movielens/movies.csv").is_file()


def test_mirror_without_zip_is_a_clear_error(workdir, tmp_path, monkeypatch):
    monkeypatch.setenv(data.MIRROR_ENV, str(tmp_path / "nowhere"))
    write_params(workdir / "params.yaml", {})
    assert_one_line_error(invoke("download"), data.MIRROR_ENV, "no ml-latest-small.zip there")


@pytest.mark.parametrize("entry", ["../evil.txt", "/tmp/evil.txt", "ml-latest-small/../../evil.txt"])
def test_path_traversal_zip_is_refused(workdir, tmp_path, movielens, monkeypatch, entry):
    mirror = tmp_path / "badmirror"
    mirror.mkdir()
    zip_path = zip_movielens(movielens, mirror / "ml-latest-small.zip")
    with zipfile.ZipFile(zip_path, "a") as archive:
        archive.writestr(entry, "pwned")
    monkeypatch.setenv(data.MIRROR_ENV, str(mirror))
    _download_params(workdir, "https://unused.invalid", sha256s(movielens))
    assert_one_line_error(invoke("download"), "refusing unsafe entry")
    assert not (workdir / "data/raw").exists()
    assert not (tmp_path / "evil.txt").exists() and not Path("/tmp/evil.txt").exists()
