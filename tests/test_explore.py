import json

import numpy as np
import pandas as pd
import pytest

from movierec import explore, portable_linalg
from movierec.content import build_content_vectors, movie_texts
from movierec.data import load_movies, load_tags
from movierec.errors import MovierecError
from synthetic import CLUSTERS


@pytest.fixture
def synthetic(movielens):
    """Synthetic movies with their content vectors (rows in movieId order, i.e. encoder order) and clusters."""
    movies = load_movies(movielens)
    vectors = build_content_vectors(movie_texts(movies, load_tags(movielens)), dim=6, min_df=1, seed=0)
    matrix = np.stack([vectors[str(i)] for i in movies["movieId"]])
    cluster = np.array([[c for c, _ in CLUSTERS].index(g) for g in movies["genres"]])
    return movies, matrix, cluster


def clustered(n_per=100, n_clusters=3, dim=8, noise=0.3, seed=0):
    """Hand-made vectors: cluster c sits around basis vector c; genres differ between clusters."""
    rng = np.random.default_rng(seed)
    cluster = np.repeat(np.arange(n_clusters), n_per)
    vectors = np.eye(dim)[cluster] + rng.normal(0, noise, (len(cluster), dim))
    genres = [f"G{c}|Shared{c}" for c in cluster]
    return vectors, genres, cluster


# ---------------------------------------------------------------- vectors


def test_rating_counts_counts_per_encoded_movie():
    np.testing.assert_array_equal(explore.rating_counts(np.array([0, 2, 2, 2]), 4), [1, 0, 3, 0])


# ---------------------------------------------------------------- nearest


def test_nearest_finds_same_cluster_movies_in_synthetic_content_space(synthetic):
    _, matrix, cluster = synthetic
    for i in range(len(matrix)):
        idx, sims = explore.nearest(matrix, i, k=5)
        assert i not in idx
        assert (cluster[idx] == cluster[i]).all(), f"movie {i}: neighbours {idx} cross clusters"
        assert (np.diff(sims) <= 1e-12).all()


def test_nearest_skips_zero_rows_and_breaks_ties_by_index():
    vectors = np.array([[1.0, 0], [2.0, 0], [0, 0], [3.0, 0], [0, 1.0], [1.0, 1.0]])
    idx, sims = explore.nearest(vectors, 0, k=10)
    assert idx.tolist() == [1, 3, 5, 4]  # 1 and 3 tie at 1.0: lower index first; row 2 (zeros) skipped
    np.testing.assert_allclose(sims, [1.0, 1.0, np.sqrt(0.5), 0.0])
    assert 2 in explore.nearest(vectors, 0, k=10, exclude_zero=False)[0]
    assert len(explore.nearest(vectors, 0, k=2)[0]) == 2
    with pytest.raises(MovierecError, match="no vector"):
        explore.nearest(vectors, 2, k=3)


# ---------------------------------------------------------------- titles

MOVIES = pd.DataFrame(
    [
        (1, "Toy Story (1995)", "Animation"),
        (3114, "Toy Story 2 (1999)", "Animation"),
        (2571, "Matrix, The (1999)", "Action"),
        (364, "Lion King, The (1994)", "Animation"),
        (2726, "Ocean's Eleven (1960)", "Comedy"),
        (4963, "Ocean's Eleven (2001)", "Crime"),
        (51662, "300 (2007)", "Action"),
        (4973, "Amelie (Fabuleux destin d'Amélie Poulain, Le) (2001)", "Comedy"),
        (29, "City of Lost Children, The (Cité des enfants perdus, La) (1995)", "Fantasy"),
        (34048, "War of the Worlds (2005)", "Action"),
        (64997, "War of the Worlds (2005)", "Action"),
        (1214, "Alien (1979)", "Horror"),
        (1200, "Aliens (1986)", "Action"),
        (2054, "Babe: Pig in the City (1998)", "Children"),
    ],
    columns=["movieId", "title", "genres"],
)


@pytest.mark.parametrize(
    "query, movie_id",
    [
        ("toy story", 1),
        ("TOY STORY (1995)", 1),
        ("  Toy   Story 2 ", 3114),
        ("the matrix", 2571),
        ("Matrix", 2571),
        ("The Matrix (1999)", 2571),
        ("matrix, the (1999)", 2571),
        ("The Lion King", 364),
        ("ocean's eleven (2001)", 4963),
        ("300", 51662),  # not a movieId, so a title
        ("364", 364),  # a movieId
        ("fabuleux destin d'amelie poulain", 4973),  # alternative title, accents folded
        ("le fabuleux destin d'amélie poulain", 4973),
        ("the city of lost children", 29),
        ("alien", 1214),  # exact title beats "Aliens" containing it
        ("pig in the city", 2054),  # a unique partial match
    ],
)
def test_match_title_finds_the_movie(query, movie_id):
    assert explore.match_title(query, MOVIES) == movie_id


def test_match_title_refuses_to_guess_between_remakes():
    with pytest.raises(MovierecError) as err:
        explore.match_title("Ocean's Eleven", MOVIES)
    message = str(err.value)
    assert "Ocean's Eleven (1960)" in message and "Ocean's Eleven (2001)" in message
    assert "add the year" in message and "movieId" in message
    assert "\n" not in message


def test_match_title_same_title_and_year_needs_the_movie_id():
    with pytest.raises(MovierecError, match="34048.*64997"):
        explore.match_title("war of the worlds (2005)", MOVIES)


def test_match_title_unknown_lists_the_closest_titles():
    with pytest.raises(MovierecError) as err:
        explore.match_title("Toy Storey", MOVIES)
    message = str(err.value)
    assert message.startswith("no movie matches 'Toy Storey'")
    assert "Toy Story (1995)" in message and "\n" not in message
    with pytest.raises(MovierecError, match="no similar title"):
        explore.match_title("zzzzqqqq", MOVIES)


def test_match_title_on_synthetic_data(synthetic):
    movies, _, _ = synthetic
    assert explore.match_title("the film 3", movies) == movies["movieId"][3]
    assert explore.match_title("FILM 12 (1992)", movies) == movies["movieId"][12]
    assert explore.match_title("film 1", movies) == movies["movieId"][1]  # exact name beats "Film 10".."Film 19"
    with pytest.raises(MovierecError, match=r"11 movies match 'ilm 1'.* and 5 more; add the year"):
        explore.match_title("ilm 1", movies)


# ---------------------------------------------------------------- genre coherence


def test_genre_coherence_beats_random_on_clustered_vectors():
    vectors, genres, _ = clustered()
    result = explore.genre_coherence(vectors, genres, np.ones(len(genres), bool), k=10)
    assert set(result) == {"genre_coherence", "random_baseline"}
    assert result["genre_coherence"] > 0.95
    assert result["random_baseline"] == pytest.approx(99 / 299, abs=0.05)


def test_genre_coherence_matches_random_baseline_on_random_vectors():
    _, genres, _ = clustered(n_per=200)
    vectors = np.random.default_rng(5).normal(size=(len(genres), 8))
    result = explore.genre_coherence(vectors, genres, np.ones(len(genres), bool), k=10, seed=3)
    assert result["genre_coherence"] == pytest.approx(result["random_baseline"], abs=0.05)
    assert result["random_baseline"] == pytest.approx(1 / 3, abs=0.05)


def test_genre_coherence_only_looks_among_eligible_movies():
    vectors, genres, cluster = clustered(n_per=30, noise=0.01)
    decoys = np.eye(8)[[0, 1, 2] * 10]  # sit right on the clusters, but with another genre
    all_vectors = np.vstack([vectors, decoys, np.zeros((5, 8))])
    all_genres = genres + ["Decoy"] * 30 + ["G0"] * 5
    eligible = np.r_[np.ones(90, bool), np.zeros(30, bool), np.ones(5, bool)]  # zero rows: never neighbours
    assert explore.genre_coherence(all_vectors, all_genres, eligible, k=5)["genre_coherence"] == 1.0
    unmasked = explore.genre_coherence(all_vectors, all_genres, np.ones(125, bool), k=5)
    assert unmasked["genre_coherence"] < 0.9


def test_genre_coherence_is_seeded_and_needs_enough_movies():
    vectors, genres, _ = clustered(n_per=20)
    mask = np.ones(60, bool)
    assert explore.genre_coherence(vectors, genres, mask, seed=1) == explore.genre_coherence(vectors, genres, mask, seed=1)
    too_few = explore.genre_coherence(vectors, genres, np.arange(60) < 10, k=10)
    assert too_few["genre_coherence"] is None and too_few["random_baseline"] is None
    assert "only 10 eligible movies" in too_few["reason"] and "k=10" in too_few["reason"]


def test_genre_coherence_in_blocks_equals_one_pass(monkeypatch):
    vectors, genres, _ = clustered(n_per=70, noise=1.0)
    mask = np.ones(len(genres), bool)
    whole = explore.genre_coherence(vectors, genres, mask, k=10, seed=4)
    monkeypatch.setattr(explore, "COHERENCE_BLOCK", 1000)  # 4 rows at a time
    assert explore.genre_coherence(vectors, genres, mask, k=10, seed=4) == whole
    # and the one-pass definition: eligible x eligible similarities and one (n, n) draw of noise
    unit = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    hot = explore.genre_matrix(genres)[0].astype(np.float32)
    overlap = (hot @ hot.T) > 0
    sims = portable_linalg.matmul(unit, unit.T)
    np.fill_diagonal(sims, -np.inf)
    noise = np.random.default_rng(4).random(sims.shape, dtype=np.float32)
    np.fill_diagonal(noise, np.inf)
    share = lambda picks: float(np.take_along_axis(overlap, picks, axis=1).mean())  # noqa: E731
    assert whole["genre_coherence"] == share(np.argpartition(-sims, 9, axis=1)[:, :10])
    assert whole["random_baseline"] == share(np.argpartition(noise, 9, axis=1)[:, :10])


def test_genre_coherence_on_many_movies_measures_a_seeded_sample_against_all(monkeypatch):
    vectors, genres, _ = clustered(n_per=70, noise=1.0)
    mask = np.ones(len(genres), bool)
    monkeypatch.setattr(explore, "COHERENCE_MAX_MOVIES", 50)
    monkeypatch.setattr(explore, "COHERENCE_BLOCK", 1000)  # and in blocks
    sampled = explore.genre_coherence(vectors, genres, mask, k=10, seed=4)
    assert sampled["movies_measured"] == 50 and sampled["eligible_movies"] == 210
    assert explore.genre_coherence(vectors, genres, mask, k=10, seed=4) == sampled  # seeded
    # the definition: the sampled movies' learned neighbours among all 210
    rows = np.sort(np.random.default_rng(4).choice(210, 50, replace=False))
    unit = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    hot = explore.genre_matrix(genres)[0].astype(np.float32)
    sims = portable_linalg.matmul(unit[rows], unit.T)
    sims[np.arange(50), rows] = -np.inf
    picks = np.argpartition(-sims, 9, axis=1)[:, :10]
    assert sampled["genre_coherence"] == float(np.take_along_axis((hot[rows] @ hot.T) > 0, picks, axis=1).mean())


def test_genre_coherence_never_counts_a_movie_as_its_own_neighbour():
    # with k = n - 1 every other movie is a neighbour, learned or random: both shares are exact
    genres = ["A"] * 5 + ["B"] * 6
    vectors = np.random.default_rng(0).normal(size=(11, 4))
    result = explore.genre_coherence(vectors, genres, np.ones(11, bool), k=10)
    expected = (5 * 4 / 10 + 6 * 5 / 10) / 11
    assert result == pytest.approx({"genre_coherence": expected, "random_baseline": expected})


def test_genre_coherence_breaks_ties_by_index_whatever_the_cpus_sort():
    # four copies of each of two directions at cosine 0.8: with k=5, movies 0-3 take their 3 twins and 2 of the 4
    # tied movies 4-7, the lower-indexed 4 and 5 (genre A), not whichever argpartition's CPU-specific kernel puts first
    vectors = np.repeat([[1.0, 0.0], [0.8, 0.6]], 4, axis=0)
    genres = ["A", "A", "A", "A", "A", "A", "B", "B"]
    result = explore.genre_coherence(vectors, genres, np.ones(8, bool), k=5)
    assert result["genre_coherence"] == (4 * 5 + 3 + 3 + 1 + 1) / 40  # 6 and 7 instead of 4 and 5 would give 20 / 40
    scores = np.random.default_rng(0).integers(0, 4, (30, 40)).astype(np.float32)
    for k in (1, 7, 40):
        expected = np.zeros_like(scores, dtype=bool)
        np.put_along_axis(expected, np.argsort(scores, axis=1, kind="stable")[:, :k], True, axis=1)
        np.testing.assert_array_equal(explore._smallest_k(scores, k), expected)


def test_no_genres_listed_shares_with_nobody():
    hot, names = explore.genre_matrix(["A|B", "(no genres listed)", "B"])
    assert names == ["A", "B"]
    assert hot.tolist() == [[True, True], [False, False], [False, True]]


# ---------------------------------------------------------------- maps, exports, tables


def test_primary_genre_is_the_rarest_one():
    genres = ["Adventure|Animation|Children", "Adventure|Drama", "Adventure|Animation", "Drama|IMAX", "(no genres listed)"]
    assert explore.primary_genres(genres) == ["Children", "Drama", "Animation", "Drama", "(no genres listed)"]


def test_embedding_map_writes_a_two_panel_png(synthetic, tmp_path):
    movies, matrix, _ = synthetic
    out = tmp_path / "maps" / "content.png"
    labels = movies["title"][:3].tolist()
    rows = explore.embedding_map(
        matrix, movies["title"], explore.primary_genres(movies["genres"]), labels, out, max_points=20
    )
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(rows) == 20 and {0, 1, 2} <= set(rows.tolist())  # capped, labelled movies kept
    import matplotlib.image

    height, width = matplotlib.image.imread(out).shape[:2]
    assert width > 1.5 * height  # two side-by-side panels


def test_embedding_map_of_too_few_movies_draws_a_note_instead_of_failing(synthetic, tmp_path):
    movies, matrix, _ = synthetic
    out = tmp_path / "map.png"
    rows = explore.embedding_map(matrix[:2], movies["title"][:2], ["Drama", "Drama"], [], out)
    assert len(rows) == 2 and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("method", ["pca", "tsne"])
def test_embed_2d_keeps_clusters_apart(method):
    vectors, _, cluster = clustered(n_per=15, noise=0.05)
    xy = explore.embed_2d(vectors, method)
    assert xy.shape == (45, 2)
    centres = np.stack([xy[cluster == c].mean(0) for c in range(3)])
    spread = max(np.linalg.norm(xy[cluster == c] - centres[c], axis=1).mean() for c in range(3))
    gaps = [np.linalg.norm(centres[a] - centres[b]) for a, b in ((0, 1), (0, 2), (1, 2))]
    assert min(gaps) > 2 * spread


def _other_orders():
    """Products summing in another order than numpy's BLAS call: reversed, and the depth in two halves."""
    def halves(a, b):
        h = a.shape[1] // 2
        return a[:, h:] @ b[h:, :] + a[:, :h] @ b[:h, :]

    return [lambda a, b: np.ascontiguousarray(a[:, ::-1]) @ np.ascontiguousarray(b[::-1, :]), halves]


def test_maps_similarities_and_coherence_do_not_depend_on_the_summation_order(monkeypatch):
    vectors, genres, _ = clustered(n_per=20, dim=16, noise=1.0)
    mask = np.ones(len(genres), bool)

    def outputs():
        return (
            explore.embed_2d(vectors, "pca").tobytes(),
            explore.embed_2d(vectors, "tsne").tobytes(),
            explore.genre_coherence(vectors, genres, mask, k=5),
            explore.nearest(vectors, 0, k=20)[1].tobytes(),
        )

    reference = outputs()
    for other in _other_orders():
        calls = []
        monkeypatch.setattr(portable_linalg, "slice_product", lambda a, b: calls.append(1) or other(a, b))
        assert outputs() == reference
        assert calls  # the products did go through the swapped-in order
    # ...which the plain float products these replace do not survive: the check can fail
    centred = vectors - vectors.mean(axis=0)
    unit = (vectors / np.sqrt(np.sum(vectors * vectors, axis=1, keepdims=True))).astype(np.float32)
    for a, b in ((centred.T, centred), (unit, unit.T), (vectors, vectors[0][:, None])):
        assert any(not np.array_equal(a @ b, other(a, b)) for other in _other_orders())


def test_pca_map_calls_no_lapack_blas_or_sklearn(monkeypatch):
    import scipy.linalg
    import sklearn.decomposition

    def refuse(*args, **kwargs):
        raise AssertionError("not portable")

    for module, name in [(np.linalg, "svd"), (np.linalg, "eigh"), (np.linalg, "eig"), (np.linalg, "norm"),
                         (scipy.linalg, "svd"), (scipy.linalg, "eigh"), (np, "dot"), (sklearn.decomposition, "PCA")]:
        monkeypatch.setattr(module, name, refuse)
    vectors, _, _ = clustered(n_per=15, noise=0.05)
    assert explore.embed_2d(vectors, "pca").shape == (45, 2)


def test_tsne_map_uses_the_portable_init_and_neighbours(monkeypatch):
    import sklearn.manifold._t_sne as t_sne
    import sklearn.neighbors._base as neighbours

    def refuse(*args, **kwargs):
        raise AssertionError("sklearn's own PCA or distances: not portable")

    monkeypatch.setattr(t_sne, "PCA", refuse)
    monkeypatch.setattr(t_sne, "pairwise_distances", refuse)
    monkeypatch.setattr(neighbours, "pairwise_distances_chunked", refuse)
    vectors, _, _ = clustered(n_per=15, noise=0.05)
    assert explore.embed_2d(vectors, "tsne").shape == (45, 2)


@pytest.mark.parametrize("width", [12, 200])
def test_pca_coordinates_are_sklearns_up_to_sign(width):
    """Randomized, as sklearn's own PCA on inputs this size: where the two axes stand out, the coordinates
    are the exact ones within 1e-5 of their scale (float32 power iterations; 2e-6 here when the input is
    wider than the sketch, 7e-8 when it is not)."""
    from sklearn.decomposition import PCA

    rng = np.random.default_rng(3)
    spread = np.concatenate([[4.0, 2.5], np.linspace(1.0, 0.5, width - 2)])  # two clear axes, then a flat tail
    x = rng.normal(size=(2000, width)) * spread + 5  # off-centre
    ours = explore.embed_2d(x, "pca")
    theirs = PCA(n_components=2, svd_solver="full").fit_transform(x)
    signs = np.sign(np.sum(ours * theirs, axis=0))
    np.testing.assert_allclose(ours, theirs * signs, atol=1e-5 * np.abs(theirs).max())
    largest = np.argmax(np.abs(ours), axis=0)
    assert (ours[largest, [0, 1]] > 0).all()  # the sign rule


def test_cosine_knn_graph_lists_itself_first_then_ties_by_index():
    vectors = np.array([[1.0, 0.0], [0.0, 1.0], [2.0, 0.0], [1.0, 0.0], [1.0, 1.0]])  # 0, 2 and 3 coincide
    graph = explore._cosine_knn_graph(vectors, 3)
    assert graph.indices.reshape(5, 4).tolist()[0] == [0, 2, 3, 4]
    assert graph.indices.reshape(5, 4).tolist()[3] == [3, 0, 2, 4]
    np.testing.assert_allclose(graph.data.reshape(5, 4)[0], [0.0, 0.0, 0.0, 1 - np.sqrt(0.5)], atol=1e-15)


def test_embed_2d_refuses_tiny_inputs_and_unknown_methods():
    with pytest.raises(MovierecError, match="at least 3"):
        explore.embed_2d(np.ones((2, 4)), "pca")
    with pytest.raises(MovierecError, match="umap"):
        explore.embed_2d(np.eye(4), "umap")


def test_projector_export_writes_aligned_tsv_files(tmp_path):
    vectors = np.arange(12, dtype=np.float32).reshape(4, 3) / 7
    meta = pd.DataFrame(
        {
            "movieId": [1, 2, 3, 4],
            "title": ["A (1990)", "B\tC (1991)", "D (1992)", "E (1993)"],
            "genres": ["x|y", "y", "z", "x"],
            "n_ratings": [5, 0, 7, 20],
        }
    )
    explore.projector_export(vectors, meta, tmp_path / "projector")
    loaded = np.loadtxt(tmp_path / "projector" / "vectors.tsv", delimiter="\t")
    assert loaded.shape == (4, 3)
    np.testing.assert_allclose(loaded, vectors, rtol=1e-5)
    lines = (tmp_path / "projector" / "metadata.tsv").read_text(encoding="utf-8").splitlines()
    assert lines[0] == "title\tgenres\tn_ratings"
    assert len(lines) == 5 and all(line.count("\t") == 2 for line in lines)
    assert lines[2] == "B C (1991)\ty\t0"
    with pytest.raises(MovierecError, match="line up"):
        explore.projector_export(vectors, meta[:3], tmp_path / "bad")


def test_neighbours_table_lists_same_cluster_titles_and_skips_absent_queries(synthetic):
    movies, matrix, cluster = synthetic
    queries = ["Film 0, The (1980)", "Film 4, The (1984)", "Not In The Data (2000)"]
    matrix = matrix.copy()
    matrix[4] = 0  # no content vector: skipped, not an error
    table = explore.neighbours_table(matrix, movies, queries, k=4)
    assert list(table) == ["Film 0, The (1980)"]
    titles = movies["title"].tolist()
    assert len(table["Film 0, The (1980)"]) == 4
    assert all(cluster[titles.index(t)] == cluster[0] for t in table["Film 0, The (1980)"])


def test_well_known_titles_are_found_by_their_common_names():
    movies = pd.DataFrame({"movieId": range(len(explore.WELL_KNOWN)), "title": explore.WELL_KNOWN})
    common = {
        "the matrix": 1,
        "The Lion King (1994)": 4,
        "the silence of the lambs": 6,
        "star wars: episode iv - a new hope": 5,
        "titanic": 7,
        "pulp fiction (1994)": 2,
    }
    assert {query: explore.match_title(query, movies) for query in common} == common


def test_well_known_movies_fall_back_to_the_most_rated_when_the_titles_are_absent():
    titles = ["A (2001)", "B (2002)", "C (2003)", "D (2004)"]
    assert explore.well_known_titles(titles, np.array([3, 9, 0, 3]), n=3) == ["B (2002)", "A (2001)", "D (2004)"]
    with_one = titles + ["Toy Story (1995)"]
    assert explore.well_known_titles(with_one, np.array([3, 9, 0, 3, 1])) == ["Toy Story (1995)"]


def test_explore_on_tiny_data_writes_missing_metrics_with_a_reason_and_maps_every_rated_movie(synthetic, tmp_path):
    movies, matrix, _ = synthetic
    train_movie = np.repeat(np.arange(len(movies)), 2)  # 2 ratings each: no movie has MIN_RATINGS
    out = {name: tmp_path / name for name in ("coherence.json", "neighbours.json", "map.png", "projector")}
    coherence = explore.explore_spaces(
        matrix, matrix, movies, train_movie, 0, out["coherence.json"], out["neighbours.json"], out["map.png"], out["projector"]
    )
    assert coherence["learned"]["genre_coherence"] is None and "only 0 eligible" in coherence["learned"]["reason"]
    assert json.loads(out["coherence.json"].read_text()) == coherence
    table = json.loads(out["neighbours.json"].read_text())
    assert len(table["learned"]) == len(explore.WELL_KNOWN)  # the 8 most-rated stand in for the absent titles
    assert out["map.png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out["projector"] / "vectors.tsv").is_file()
