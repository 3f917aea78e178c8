"""Every release format reads into the same frames; releases other than latest-small are md5-checked."""

import hashlib
import typing
import zipfile

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from conftest import write_params
from movierec import content, data, datasets
from movierec.cli import cli
from movierec.params.data import DataParams

# One logical dataset, written below in each release's own layout.
RATINGS = [(1, 10, 4.0, 978300760), (1, 20, 3.0, 978300761), (2, 10, 5.0, 978300762), (3, 30, 1.0, 978300763)]
MOVIES = [
    (10, "Amélie (2001)", ["Comedy", "Romance"]),
    (20, '"Great Performances" Cats (1998)', ["Musical"]),
    (30, "Heat, The (1995)", []),
]
TAGS = [(1, 10, "whimsical", 1), (2, 30, "slow burn", 2)]


def expected_frames(with_tags=True):
    ratings = pd.DataFrame(RATINGS, columns=["userId", "movieId", "rating", "timestamp"])
    movies = pd.DataFrame(
        [(m, t, "|".join(g) or datasets.NO_GENRES) for m, t, g in MOVIES], columns=["movieId", "title", "genres"]
    )
    tags = pd.DataFrame([(m, t) for _, m, t, _ in TAGS] if with_tags else [], columns=["movieId", "tag"])
    return ratings.astype({"rating": "float64"}), movies, tags.astype({"movieId": "int64"})


def write_csv_release(folder):
    """ml-latest-small / ml-20m / ml-25m / ml-32m / ml-latest: UTF-8 CSV with headers, quoted titles."""
    folder.mkdir(parents=True)
    (folder / "ratings.csv").write_text("userId,movieId,rating,timestamp\n" + "".join(f"{u},{m},{r:.1f},{t}\n" for u, m, r, t in RATINGS))
    pd.DataFrame([(m, t, "|".join(g) or datasets.NO_GENRES) for m, t, g in MOVIES], columns=["movieId", "title", "genres"]).to_csv(
        folder / "movies.csv", index=False
    )
    (folder / "tags.csv").write_text("userId,movieId,tag,timestamp\n" + "".join(f"{u},{m},{g},{t}\n" for u, m, g, t in TAGS))
    return folder


def write_dat_release(folder, with_tags):
    """ml-1m (no tags) / ml-10m (tags.dat): `::`-separated, no header, latin-1."""
    folder.mkdir(parents=True)
    (folder / "ratings.dat").write_bytes("".join(f"{u}::{m}::{r:g}::{t}\n" for u, m, r, t in RATINGS).encode("latin-1"))
    (folder / "movies.dat").write_bytes(
        "".join(f"{m}::{t}::{'|'.join(g) or datasets.NO_GENRES}\n" for m, t, g in MOVIES).encode("latin-1")
    )
    if with_tags:
        (folder / "tags.dat").write_bytes("".join(f"{u}::{m}::{g}::{t}\n" for u, m, g, t in TAGS).encode("latin-1"))
    return folder


def write_100k_release(folder):
    """ml-100k: tab-separated u.data, pipe-separated latin-1 u.item with 19 genre flags, no header."""
    folder.mkdir(parents=True)
    (folder / "u.data").write_text("".join(f"{u}\t{m}\t{int(r)}\t{t}\n" for u, m, r, t in RATINGS))
    lines = []
    for m, t, g in MOVIES:
        flags = ["1" if name in g else "0" for name in datasets.GENRES_100K]
        if not g:
            flags[0] = "1"  # "unknown"
        lines.append("|".join([str(m), t, "01-Jan-1995", "", f"http://us.imdb.com/M/title-exact?{m}", *flags]) + "\n")
    (folder / "u.item").write_bytes("".join(lines).encode("latin-1"))
    return folder


@pytest.mark.parametrize("release", ["ml-latest-small", "ml-100k", "ml-1m", "ml-10m"])
def test_each_release_format_reads_into_the_same_frames(tmp_path, release):
    fmt = datasets.RELEASES[release].format
    folder = tmp_path / datasets.RELEASES[release].folder
    if fmt == "csv":
        write_csv_release(folder)
    elif fmt == "dat":
        write_dat_release(folder, with_tags=release == "ml-10m")
    else:
        write_100k_release(folder)
    has_tags = release in ("ml-latest-small", "ml-10m")
    want_ratings, want_movies, want_tags = expected_frames(with_tags=has_tags)
    assert datasets.detect_format(folder) == fmt
    ratings = data.load_ratings(folder, min_rating=0.5, max_rating=5)
    pd.testing.assert_frame_equal(ratings, want_ratings)
    assert list(ratings.dtypes) == [np.dtype("int64"), np.dtype("int64"), np.dtype("float64"), np.dtype("int64")]
    movies = data.load_movies(folder)
    pd.testing.assert_frame_equal(movies, want_movies)
    assert movies.title[0] == "Amélie (2001)"  # latin-1 byte 0xe9 in the .dat and u.item files
    pd.testing.assert_frame_equal(data.load_tags(folder).reset_index(drop=True), want_tags, check_dtype=False)


def test_dat_text_field_may_hold_the_separator(tmp_path):
    folder = write_dat_release(tmp_path / "ml-10M100K", with_tags=True)
    with open(folder / "tags.dat", "ab") as f:
        f.write(b"3::20::note::to self::5\n")
    assert data.load_tags(folder).tag.tolist()[-1] == "note::to self"


@pytest.mark.parametrize(
    "release, file, line, fragment",
    [
        ("ml-1m", "ratings.dat", "2::10::x::1", "line 3: rating 'x' is not a number"),
        ("ml-1m", "ratings.dat", "2::10::9::1", "line 3: rating 9.0 is outside"),
        ("ml-1m", "ratings.dat", "2::10", "line 3: 2 fields, expected 4"),
        ("ml-100k", "u.data", "2\tten\t5\t1", "line 3: movieId 'ten' is not an integer"),
    ],
)
def test_bad_rows_in_headerless_formats_name_the_file_line(tmp_path, release, file, line, fragment):
    folder = tmp_path / release
    write_100k_release(folder) if release == "ml-100k" else write_dat_release(folder, with_tags=False)
    rows = (folder / file).read_text(encoding="latin-1").splitlines()
    rows[2] = line
    (folder / file).write_text("\n".join(rows) + "\n", encoding="latin-1")
    with pytest.raises(datasets.DataError, match=fr"{file}: {fragment}"):
        data.load_ratings(folder, min_rating=0.5, max_rating=5)


def test_u_item_genre_flags_must_be_0_or_1(tmp_path):
    folder = write_100k_release(tmp_path / "ml-100k")
    text = (folder / "u.item").read_bytes().decode("latin-1").replace("|0|0|0\n", "|0|0|2\n", 1)
    (folder / "u.item").write_bytes(text.encode("latin-1"))
    with pytest.raises(datasets.DataError, match="u.item: line 1: genre flags must be 0 or 1"):
        data.load_movies(folder)


def test_params_accept_exactly_the_registered_releases():
    assert typing.get_args(typing.get_type_hints(DataParams)["dataset"]) == tuple(datasets.RELEASES)


# ---------------------------------------------------------------- download of other releases, md5


def release_zip(tmp_path, release, where):
    """`where/<release>.zip` in the release's layout, and the md5 file GroupLens publishes beside it."""
    r = datasets.RELEASES[release]
    folder = tmp_path / "src" / r.folder
    if r.format == "dat":
        write_dat_release(folder, with_tags=True)
    elif r.format == "100k":
        write_100k_release(folder)
    else:
        write_csv_release(folder)
    where.mkdir(exist_ok=True)
    zip_path = where / f"{release}.zip"
    with zipfile.ZipFile(zip_path, "w") as archive:
        for path in sorted(folder.iterdir()):
            archive.write(path, f"{r.folder}/{path.name}")
    digest = hashlib.md5(zip_path.read_bytes()).hexdigest()
    (where / f"{release}.zip.md5").write_text(f"MD5 ({release}.zip) = {digest}\n")
    return zip_path


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


def invoke(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def one_line_error(result, *fragments):
    assert result.exit_code != 0
    errors = [line for line in result.output.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1 and "Traceback" not in result.output, result.output
    for fragment in fragments:
        assert fragment in errors[0], errors[0]


def test_non_default_release_downloads_from_local_server_with_md5(workdir, tmp_path, http_server, monkeypatch):
    monkeypatch.delenv(data.MIRROR_ENV, raising=False)
    root, base = http_server
    release_zip(tmp_path, "ml-10m", root)
    write_params(workdir / "params.yaml", {"data": {"dataset": "ml-10m", "base_url": base, "min_rating": 0.5}})
    result = invoke("download")
    assert result.exit_code == 0, result.output
    folder = workdir / data.DEFAULT_DATA_PATH
    assert sorted(p.name for p in (workdir / "data/raw").iterdir()) == ["movielens"]  # ml-10M100K renamed, no zip left
    assert sorted(p.name for p in folder.iterdir()) == ["movies.dat", "ratings.dat", "tags.dat"]
    result = invoke("prepare")
    assert result.exit_code == 0, result.output
    assert "n_users=3, n_movies=3, n_ratings=4" in result.output


def test_download_refuses_a_zip_whose_published_md5_differs(workdir, tmp_path, http_server, monkeypatch):
    monkeypatch.delenv(data.MIRROR_ENV, raising=False)
    root, base = http_server
    release_zip(tmp_path, "ml-1m", root)
    (root / "ml-1m.zip.md5").write_text("0" * 32 + "  ml-1m.zip\n")
    write_params(workdir / "params.yaml", {"data": {"dataset": "ml-1m", "base_url": base}})
    one_line_error(invoke("download"), "ml-1m.zip: MD5", "does not match the published ml-1m.zip.md5")
    assert not (workdir / "data/raw").exists()


@pytest.mark.parametrize("good", [True, False])
def test_mirror_md5_good_and_bad(workdir, tmp_path, monkeypatch, good):
    mirror = tmp_path / "mirror"
    zip_path = release_zip(tmp_path, "ml-100k", mirror)
    if not good:
        with zipfile.ZipFile(zip_path, "a") as archive:
            archive.writestr("ml-100k/extra.txt", "changed after the md5 was published")
    monkeypatch.setenv(data.MIRROR_ENV, str(mirror))
    write_params(workdir / "params.yaml", {"data": {"dataset": "ml-100k"}})
    result = invoke("download")
    if good:
        assert result.exit_code == 0, result.output
        assert (workdir / data.DEFAULT_DATA_PATH / "u.item").is_file()
        assert len(data.load_movies(workdir / data.DEFAULT_DATA_PATH)) == len(MOVIES)
    else:
        one_line_error(result, "ml-100k.zip: MD5", "does not match")
        assert not (workdir / "data/raw").exists()


def test_mirror_without_md5_is_a_clear_error(workdir, tmp_path, monkeypatch):
    mirror = tmp_path / "mirror"
    release_zip(tmp_path, "ml-25m", mirror)
    (mirror / "ml-25m.zip.md5").unlink()
    monkeypatch.setenv(data.MIRROR_ENV, str(mirror / "ml-25m.zip"))  # naming the zip itself: the md5 sits beside it
    write_params(workdir / "params.yaml", {"data": {"dataset": "ml-25m"}})
    one_line_error(invoke("download"), data.MIRROR_ENV, "no ml-25m.zip.md5 beside", "ml-25m.zip.md5")
    assert not (workdir / "data/raw").exists()


def test_mirror_naming_another_release_zip_is_a_clear_error(workdir, tmp_path, monkeypatch):
    zip_path = release_zip(tmp_path, "ml-1m", tmp_path / "mirror")
    monkeypatch.setenv(data.MIRROR_ENV, str(zip_path))
    write_params(workdir / "params.yaml", {"data": {"dataset": "ml-10m"}})
    one_line_error(invoke("download"), data.MIRROR_ENV, "names another file than ml-10m.zip")
    assert not (workdir / "data/raw").exists()


# ---------------------------------------------------------------- tag genome


def write_genome(folder, n_movies=12, n_tags=20, seed=0):
    """genome-scores.csv as in ml-20m/ml-25m: every (movie, tag) relevance, movies in two planted groups."""
    rng = np.random.default_rng(seed)
    group = np.arange(n_movies) % 2
    rows = []
    for m in range(n_movies):
        for t in range(n_tags):
            base = 0.9 if (t < n_tags // 2) == (group[m] == 0) else 0.1
            rows.append(f"{m * 10 + 10},{t + 1},{np.clip(base + rng.normal(0, 0.05), 0, 1):.5f}")
    (folder / "genome-scores.csv").write_text("movieId,tagId,relevance\n" + "\n".join(rows) + "\n")
    return group


def test_genome_vectors_are_deterministic_keyed_by_movie_and_follow_the_genome(tmp_path):
    folder = write_csv_release(tmp_path / "ml-25m")
    group = write_genome(folder)
    scores = data.load_genome(folder)
    a = content.genome_vectors(scores, dim=4, seed=0)
    b = content.genome_vectors(scores, dim=4, seed=0)
    assert sorted(a, key=int) == [str(m * 10 + 10) for m in range(12)]
    assert all(np.array_equal(a[k], b[k]) and a[k].dtype == np.float32 and a[k].shape == (4,) for k in a)
    vectors = np.stack([a[str(m * 10 + 10)] for m in range(12)])
    sims = vectors @ vectors.T
    same = group[:, None] == group[None, :]
    assert sims[same].min() > sims[~same].max()


def test_embed_from_genome_through_the_cli_and_align_counts_movies_without_one(tmp_path, monkeypatch):
    folder = write_csv_release(tmp_path / "ml-25m")
    write_genome(folder, n_movies=2, n_tags=6)  # movies 10 and 20 have a genome row, 30 has none
    monkeypatch.chdir(tmp_path)
    write_params(tmp_path / "params.yaml", {"data": {"path": str(folder), "min_rating": 0.5}, "embed": {"source": "genome", "dim": 1}})
    for command in ("prepare", "embed", "align"):
        result = invoke(command)
        assert result.exit_code == 0, result.output
    archive = np.load(tmp_path / "data/content/embeddings.npz")
    assert sorted(archive.files) == ["10", "20"]
    assert "2/3 movies have a content vector" in result.output


def test_genome_source_without_genome_file_is_a_clear_error(tmp_path, monkeypatch):
    folder = write_csv_release(tmp_path / "ml-32m")
    monkeypatch.chdir(tmp_path)
    write_params(tmp_path / "params.yaml", {"data": {"path": str(folder)}, "embed": {"source": "genome"}})
    one_line_error(invoke("embed"), "genome-scores.csv: file not found", "embed.source: genome", "ml-25m")
    assert not (tmp_path / "data/content").exists()
