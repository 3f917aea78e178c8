"""Embeddings exploration: nearest neighbours, title lookup, genre coherence, maps, and the explore stage.

Every function takes plain arrays in movie-encoder order (row m is `Prepared.movie_ids[m]`), so the
same code explores the learned space (a model's movie vectors, from its predictions file) and the content
space (the aligned content matrix, zeros where a movie has no vector). Similarity is cosine throughout: the
learned vectors' norms mostly track popularity, not taste. Portable: same bits on any CPU, see
portable_linalg.py (every product that reaches an output goes through it, and no selection depends on how
numpy's CPU-specific sort orders ties).
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from movierec import portable_linalg
from movierec.atomic import atomic_path
from movierec.errors import MovierecError

WELL_KNOWN = (
    "Toy Story (1995)",
    "Matrix, The (1999)",
    "Pulp Fiction (1994)",
    "Forrest Gump (1994)",
    "Lion King, The (1994)",
    "Star Wars: Episode IV - A New Hope (1977)",
    "Silence of the Lambs, The (1991)",
    "Titanic (1997)",
)

MIN_RATINGS = 20  # below this a movie's learned vector is mostly its initialisation and regulariser
COHERENCE_K = 10


# ---------------------------------------------------------------- vectors


def rating_counts(train_movie: np.ndarray, n_movies: int) -> np.ndarray:
    """Training ratings per encoded movie: the eligibility filter (`counts >= MIN_RATINGS`) for coherence and maps."""
    return np.bincount(np.asarray(train_movie, dtype=np.int64), minlength=n_movies)


def _unit_vectors(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows scaled to unit length, and which rows are non-zero (zero rows stay zero: no content vector)."""
    v = np.asarray(vectors, dtype=np.float64)
    return portable_linalg.normalize_rows(v), np.any(v != 0, axis=1)


def _top(scores: np.ndarray, candidates: np.ndarray, k: int) -> np.ndarray:
    """The k best candidates by score, ties broken by lower index so results never depend on sort internals."""
    order = np.lexsort((candidates, -scores[candidates]))
    return candidates[order[: max(k, 0)]]


def _smallest_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Boolean mask of each row's k smallest scores, ties going to the lower column.

    Not argpartition: numpy picks its selection kernel from the CPU (AVX2, AVX-512), and each orders
    tied values its own way. The k-th smallest value itself is the same whatever the kernel.
    """
    kth = np.partition(scores, k - 1, axis=1)[:, k - 1 : k]
    below, tied = scores < kth, scores == kth
    need = k - np.sum(below, axis=1, keepdims=True)
    return below | (tied & (np.cumsum(tied, axis=1) <= need))


def nearest(
    vectors: np.ndarray, index: int, k: int, exclude_zero: bool = True, candidates: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The k movies most cosine-similar to row `index` (never itself): (indices, similarities), best first.

    Zero rows (movies without a content vector) are skipped, since their cosine is meaningless, and so
    are rows outside the boolean `candidates`; fewer than k rows come back when fewer candidates exist.
    """
    unit, nonzero = _unit_vectors(vectors)
    if not nonzero[index]:
        raise MovierecError("this movie has no vector in this space (all zeros, e.g. no content); try the learned space")
    return _best_matches(portable_linalg.matmul(unit, unit[index][:, None])[:, 0], nonzero, index, k, exclude_zero, candidates)


def _best_matches(sims: np.ndarray, nonzero: np.ndarray, index: int, k: int, exclude_zero: bool = True, candidates: np.ndarray | None = None):
    """`nearest`'s choice among one query's cosine similarities `sims` to every row."""
    keep = nonzero.copy() if exclude_zero else np.ones(len(sims), dtype=bool)
    if candidates is not None:
        keep &= candidates
    keep[index] = False
    idx = _top(sims, np.flatnonzero(keep), k)
    return idx, sims[idx]


# ---------------------------------------------------------------- titles

_YEAR = re.compile(r"^(.*?)\s*\((\d{4})(?:\s*[-\u2013]\s*\d{0,4})?\)$")
_ALT = re.compile(r"^(.+?)\s*\((.+)\)$")  # "City of Lost Children, The (Cité des enfants perdus, La)"
_ARTICLE = re.compile(r"^(.*), (the|a|an|l'|la|le|les|il|el|los|las|die|der|das|den|det)$")


def _norm(text: str) -> str:
    """Lower-case, accents folded, whitespace collapsed: so "amelie" finds "Amélie"."""
    text = unicodedata.normalize("NFKD", str(text))
    text = "".join(c for c in text if not unicodedata.combining(c))
    return " ".join(text.casefold().split())


def _name_variants(name: str) -> set[str]:
    """A title without its year as people type it: as stored, article in front, article dropped."""
    out = {name}
    match = _ARTICLE.match(name)
    if match:
        base, article = match.groups()
        out |= {base, f"{article}{base}" if article.endswith("'") else f"{article} {base}"}
    return out


def title_keys(title: str) -> tuple[set[str], set[str]]:
    """(keys with the year, keys without it) that a query may name, all normalised.

    MovieLens moves articles to the end ("Matrix, The (1999)") and adds alternative titles in
    parentheses, so "the matrix", "matrix (1999)" and "the city of lost children" all become keys.
    """
    full = _norm(title)
    match = _YEAR.match(full)
    name, year = match.groups() if match else (full, None)
    names = _name_variants(name)
    alt = _ALT.match(name)
    if alt:
        for part in alt.groups():
            names |= _name_variants(part.removeprefix("a.k.a. "))
    with_year = {full} | ({f"{n} ({year})" for n in names} if year else set())
    return with_year, names


def _listing(movies: pd.DataFrame, ids: Sequence[int], limit: int = 6) -> str:
    titles = movies.drop_duplicates("movieId").set_index("movieId")["title"]
    shown = [f"{titles[i]} [movieId {i}]" for i in list(ids)[:limit]]
    more = f" and {len(ids) - limit} more" if len(ids) > limit else ""
    return "; ".join(shown) + more


def match_title(query: str, movies_df: pd.DataFrame) -> int:
    """The movieId a user means by `query`: a movieId in digits, or a title in any case, with or without year.

    Tiers, first non-empty wins: movieId, full title with year, title without year, substring of a title.
    So "Toy Story" finds "Toy Story (1995)", not "Toy Story 2". Digits that are a movieId are taken as
    the id; a title made of digits ("300 (2007)") needs its year. Ambiguity is an error, never a guess.
    """
    raw = str(query).strip()
    ids = movies_df["movieId"].to_numpy()
    if raw.isdigit() and int(raw) in set(ids.tolist()):
        return int(raw)
    q = _norm(raw)
    if not q:
        raise MovierecError("empty movie title; give a title such as \"Toy Story (1995)\" or a movieId")
    keys = [title_keys(t) for t in movies_df["title"]]
    tiers = (
        [i for i, (with_year, _) in zip(ids, keys) if q in with_year],
        [i for i, (_, names) in zip(ids, keys) if q in names],
        [i for i, (with_year, names) in zip(ids, keys) if any(q in key for key in with_year | names)],
    )
    for found in tiers:
        found = list(dict.fromkeys(int(i) for i in found))
        if len(found) == 1:
            return found[0]
        if found:
            raise MovierecError(
                f"{len(found)} movies match {raw!r}: {_listing(movies_df, found)}; "
                "add the year, e.g. \"Title (1995)\", or pass the movieId"
            )
    by_key: dict[str, int] = {}
    for movie_id, (with_year, names) in zip(ids, keys):
        for key in sorted(with_year | names):
            by_key.setdefault(key, int(movie_id))
    close = difflib.get_close_matches(q, list(by_key), n=12, cutoff=0.5)
    closest = list(dict.fromkeys(by_key[key] for key in close))[:5]
    hint = f"closest: {_listing(movies_df, closest, limit=5)}" if closest else "no similar title"
    raise MovierecError(f"no movie matches {raw!r} ({hint}); check the spelling, add the year, or pass the movieId")


# ---------------------------------------------------------------- genre coherence


def genre_matrix(genres_list: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """Multi-hot (n_movies, n_genres) from MovieLens "A|B" strings; "(no genres listed)" shares with nobody."""
    sets = [{g for g in str(s).split("|") if g and g != "(no genres listed)"} for s in genres_list]
    names = sorted(set().union(*sets)) if sets else []
    col = {g: j for j, g in enumerate(names)}
    hot = np.zeros((len(sets), len(names)), dtype=bool)
    for i, s in enumerate(sets):
        hot[i, [col[g] for g in s]] = True
    return hot, names


COHERENCE_BLOCK = 1 << 22  # similarities per block of rows: memory stays O(block), not O(eligible^2)
COHERENCE_MAX_MOVIES = 5000  # above this many eligible movies, a seeded sample of them is measured: time O(eligible)


def genre_coherence(
    vectors: np.ndarray, genres_list: Sequence[str], eligible_mask: np.ndarray, k: int = 10, seed: int = 0
) -> dict[str, float | None | str]:
    """Mean share of each eligible movie's k cosine-nearest eligible neighbours sharing a genre with it
    (ties: the lower index).

    The random baseline is the same share over k random eligible neighbours (seeded): coherence only
    means something above it, since a few genres (Drama, Comedy) cover most movies. Zero vectors are
    not eligible (no content vector, so no neighbours to speak of). Computed a block of rows at a time
    (the same numbers as one eligible x eligible pass). Above COHERENCE_MAX_MOVIES eligible movies, the
    mean is over a seeded sample of that many, each still against every eligible movie, so large
    catalogues cost eligible x sample, not eligible²; `movies_measured` then says how many. With k or
    fewer eligible movies (tiny data) both values are None and `reason` says why: the stage goes on.
    """
    unit, nonzero = _unit_vectors(vectors)
    eligible = np.flatnonzero(np.asarray(eligible_mask, dtype=bool) & nonzero)
    n = len(eligible)
    if n <= k:
        reason = f"only {n} eligible movies (a vector and {MIN_RATINGS}+ training ratings); need more than k={k}"
        return {"genre_coherence": None, "random_baseline": None, "reason": reason}
    genres = list(genres_list)  # positions, not a Series' labels
    hot = genre_matrix([genres[i] for i in eligible])[0].astype(np.float32)
    v = unit[eligible].astype(np.float32)
    rng = np.random.default_rng(seed)
    queries = np.arange(n) if n <= COHERENCE_MAX_MOVIES else np.sort(rng.choice(n, COHERENCE_MAX_MOVIES, replace=False))
    shared_learned = shared_chance = 0
    step = max(1, COHERENCE_BLOCK // n)
    for start in range(0, len(queries), step):
        rows = queries[start : start + step]
        overlap = (hot[rows] @ hot.T) > 0  # sums of a few 0/1 products: exact in any order, so BLAS is fine
        sims = portable_linalg.matmul(v[rows], v.T)  # float32, as sgemm would give, but the same bits on any CPU
        sims[np.arange(len(rows)), rows] = -np.inf
        learned = _smallest_k(-sims, k)
        noise = rng.random((len(rows), n), dtype=np.float32)  # the same stream as one (n, n) draw
        noise[np.arange(len(rows)), rows] = np.inf
        chance = _smallest_k(noise, k)
        shared_learned += int(np.sum(overlap & learned))
        shared_chance += int(np.sum(overlap & chance))
    m = len(queries)
    measured = {"genre_coherence": shared_learned / (m * k), "random_baseline": shared_chance / (m * k)}
    return measured if m == n else {**measured, "movies_measured": m, "eligible_movies": n}


# ---------------------------------------------------------------- maps and exports


def primary_genres(genres_list: Sequence[str]) -> list[str]:
    """Each movie's rarest genre in `genres_list`, its colour on the map.

    MovieLens lists genres alphabetically, so the first one is mostly Action or Adventure; the rarest
    (Animation rather than Adventure for Toy Story) says more. IMAX is a format, not a genre.
    """
    hot, names = genre_matrix([str(s).replace("IMAX", "") for s in genres_list])
    if not names:
        return ["(no genres listed)"] * len(hot)
    rarity = np.where(hot, hot.sum(axis=0), np.iinfo(np.int64).max)
    best = rarity.argmin(axis=1)  # ties go to the alphabetically first genre
    return [names[j] if hot[i, j] else "(no genres listed)" for i, j in enumerate(best)]


def _pca_2d(x: np.ndarray, seed: int) -> np.ndarray:
    """Rows of x on its two principal axes, without LAPACK: the centred rows' top two singular directions.

    Portable (see portable_linalg.py) where scikit-learn's PCA is not, and randomized as scikit-learn's
    own PCA is on inputs this size (`portable_linalg.truncated_svd`, seeded): the exact axes where the
    top two stand out, close to them otherwise, and a picture either way; a full eigen-decomposition of
    the dae's 400-wide Gram matrix took 12 s. Signs as a rule, not as the solver falls: each axis's
    largest-|.| coordinate is positive.
    """
    centred = x - np.mean(x, axis=0)
    xy = np.zeros((len(x), 2))
    top = portable_linalg.truncated_svd(centred, 2, seed, n_iter=7)  # sklearn PCA's power iterations for two axes
    xy[:, : top.shape[1]] = top
    return xy


def _cosine_knn_graph(x: np.ndarray, n_neighbors: int):
    """Each row's cosine distance to itself (0, first) and to its n_neighbors nearest rows (ties: the lower
    index), as the sparse precomputed graph sklearn's TSNE takes: portable, where sklearn's own search
    computes the distances with BLAS and orders ties with a CPU-specific sort."""
    import scipy.sparse

    unit, _ = _unit_vectors(x)
    distance = 1.0 - portable_linalg.matmul(unit, unit.T)
    np.clip(distance, 0.0, 2.0, out=distance)  # as sklearn's cosine_distances
    np.fill_diagonal(distance, -1.0)  # itself first, even before a duplicate at distance 0
    order = np.argsort(distance, axis=1, kind="stable")[:, : n_neighbors + 1]  # stable: one answer on any CPU
    nearest = np.take_along_axis(distance, order, axis=1)
    nearest[:, 0] = 0.0
    n, width = order.shape
    return scipy.sparse.csr_array((nearest.ravel(), order.ravel(), np.arange(0, n * width + 1, width)), shape=(n, n))


def embed_2d(vectors: np.ndarray, method: str, seed: int = 0) -> np.ndarray:
    """2-D coordinates by PCA or t-SNE (cosine, PCA init, seeded); perplexity shrinks for tiny inputs.

    Portable: same bits on any CPU, see portable_linalg.py; t-SNE also needs one OpenMP thread, which
    the commands pin (its Barnes-Hut normaliser is a sum over points split among threads). t-SNE took
    ~1.5 s for 1100 movies on one thread.
    """
    x = np.asarray(vectors, dtype=np.float64)
    if len(x) < 3:
        raise MovierecError(f"only {len(x)} movies to map; a 2-D map needs at least 3")
    if method == "pca":
        return _pca_2d(x, seed)
    if method == "tsne":
        from sklearn.manifold import TSNE

        perplexity = float(min(30.0, max(1.0, (len(x) - 1) / 3)))
        # sklearn's init="pca" (refused with a precomputed metric), portable: float32, first axis at std 1e-4
        init = _pca_2d(x, seed).astype(np.float32)
        init = init / np.std(init[:, 0]) * 1e-4
        # The neighbours sklearn's Barnes-Hut t-SNE would search (its rule: 3 * perplexity + 1), found here;
        # the rest is Cython without BLAS (and libm's exp/log, as math.*) and numpy elementwise. What still calls
        # BLAS is the stopping check `scipy.linalg.norm(gradient) <= 1e-7` every 50 iterations: it could only
        # differ across CPUs for a gradient norm within a rounding error of 1e-7 (a frozen map), never in practice.
        graph = _cosine_knn_graph(x, min(len(x) - 1, int(3.0 * perplexity + 1)))
        # 500 iterations (sklearn's default is 1000) settle ~2000 points well enough for a picture, in half the time;
        # random_state is unused with an array init, kept for any later random init
        tsne = TSNE(
            n_components=2, perplexity=perplexity, init=init, metric="precomputed", max_iter=500, random_state=seed
        )
        return tsne.fit_transform(graph)
    raise MovierecError(f"unknown map method {method!r}; use pca or tsne")


def map_subset(n: int, keep: Sequence[int], max_points: int, seed: int = 0) -> np.ndarray:
    """At most `max_points` sorted row indices out of n, always including `keep` (the labelled movies)."""
    keep = np.unique(np.asarray(keep, dtype=np.int64))
    if n <= max_points:
        return np.arange(n)
    rest = np.setdiff1d(np.arange(n), keep)
    extra = np.random.default_rng(seed).choice(rest, size=max(max_points - len(keep), 0), replace=False)
    return np.sort(np.concatenate([keep, extra]))


def embedding_map(
    vectors: np.ndarray,
    titles: Sequence[str],
    primary_genres: Sequence[str],
    labelled_titles: Sequence[str],
    out_png: Path,
    methods: Sequence[str] = ("pca", "tsne"),
    max_points: int = 2000,
    seed: int = 0,
) -> np.ndarray:
    """One PNG with a panel per method, points coloured by primary genre and well-known movies labelled.

    Pass only the movies worth mapping (e.g. >= MIN_RATINGS ratings): t-SNE is quadratic-ish, so the
    rows are also capped at `max_points` (labelled movies always kept). Returns the rows drawn.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    unit, nonzero = _unit_vectors(vectors)  # unit rows: both panels show cosine structure, not popularity-driven norms
    titles = np.asarray(titles, dtype=object)
    labelled = np.flatnonzero(np.isin(titles, list(labelled_titles)) & nonzero)
    rows = map_subset(len(titles), labelled, max_points, seed)
    rows = rows[nonzero[rows]]
    if len(rows) < 3:  # tiny data: a picture that says so, so the stage (and its declared plot) still succeeds
        fig, ax = plt.subplots(figsize=(8, 2))
        ax.axis("off")
        ax.text(0.5, 0.5, f"only {len(rows)} movies to map; a 2-D map needs at least 3", ha="center", va="center")
        with atomic_path(out_png) as tmp:
            fig.savefig(tmp, dpi=110)
        plt.close(fig)
        return rows
    x, genres, names = unit[rows], np.asarray(primary_genres, dtype=object)[rows], titles[rows]
    top = pd.Series(genres).value_counts().index[:9].tolist()  # tab10: 9 genres + grey for the rest
    colour = {g: plt.cm.tab10(j) for j, g in enumerate(top)}
    fig, axes = plt.subplots(1, len(methods), figsize=(8 * len(methods), 7), squeeze=False)
    for ax, method in zip(axes[0], methods):
        xy = embed_2d(x, method, seed)
        other = ~np.isin(genres, top)
        ax.scatter(xy[other, 0], xy[other, 1], s=6, c="lightgrey", label="other")
        for g in top:
            on = genres == g
            ax.scatter(xy[on, 0], xy[on, 1], s=6, color=colour[g], label=g)
        for i in np.flatnonzero(np.isin(names, list(labelled_titles))):
            ax.annotate(names[i], xy[i], fontsize=8, xytext=(3, 3), textcoords="offset points")
        ax.set_title(f"{method.upper() if method == 'pca' else 't-SNE'} ({len(rows)} movies)")
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0][0].legend(markerscale=3, fontsize=8, loc="best")
    fig.tight_layout()
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
    return rows


def _tsv_field(value) -> str:
    return " ".join(str(value).split())  # a tab or newline inside a title would shift the columns


def projector_export(vectors: np.ndarray, metadata_df: pd.DataFrame, out_dir: Path) -> None:
    """vectors.tsv and metadata.tsv for the TensorBoard Embedding Projector (projector.tensorflow.org: Load).

    metadata.tsv has a header row (title, genres, n_ratings) because it has several columns; its rows
    line up with vectors.tsv, which has none.
    """
    vectors = np.asarray(vectors, dtype=np.float32)
    if len(vectors) != len(metadata_df):
        raise MovierecError(f"{len(vectors)} vectors but {len(metadata_df)} metadata rows; they must line up")
    out_dir = Path(out_dir)
    columns = ["title", "genres", "n_ratings"]
    rows = metadata_df[columns].itertuples(index=False)
    lines = ["\t".join(columns)] + ["\t".join(_tsv_field(v) for v in row) for row in rows]
    with atomic_path(out_dir / "vectors.tsv") as tmp:
        np.savetxt(tmp, vectors, fmt="%.6g", delimiter="\t")
    with atomic_path(out_dir / "metadata.tsv") as tmp:
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")


def neighbours_table(
    vectors: np.ndarray, movies_df: pd.DataFrame, queries: Sequence[str] = WELL_KNOWN, k: int = 10
) -> dict[str, list[str]]:
    """{title: k nearest titles} for fixed well-known movies, to eyeball a space; absent or vectorless ones skipped.

    `movies_df` rows are in encoder order (row m describes vector m).
    """
    titles = movies_df["title"].to_numpy()
    unit, nonzero = _unit_vectors(vectors)
    found = {}  # query title -> its row, for the queries the data has with a vector
    for query in queries:
        rows = np.flatnonzero(titles == query)
        if len(rows) and nonzero[rows[0]]:
            found[query] = int(rows[0])
    if not found:
        return {}
    sims = portable_linalg.matmul(unit, unit[list(found.values())].T)  # one pass for every query: each column as `nearest` computes it
    return {query: [str(titles[i]) for i in _best_matches(sims[:, column], nonzero, row, k)[0]] for column, (query, row) in enumerate(found.items())}


# ---------------------------------------------------------------- the stage


def movies_in_encoder_order(movies_df: pd.DataFrame, movie_ids: np.ndarray) -> pd.DataFrame:
    """movies.csv rows in movie-encoder order (row m describes movie m); "?" for a rated movie movies.csv lacks."""
    movies = movies_df.drop_duplicates("movieId").set_index("movieId")
    return movies.reindex(movie_ids).fillna({"title": "?", "genres": ""}).reset_index()


def well_known_titles(titles: Sequence[str], counts: np.ndarray, n: int = len(WELL_KNOWN)) -> list[str]:
    """The built-in well-known titles the data has; without any, its n most-rated movies (ties: lower index)."""
    present = [t for t in WELL_KNOWN if t in set(titles)]
    if present:
        return present
    titles = list(titles)
    return [titles[i] for i in _top(np.asarray(counts, dtype=np.float64), np.flatnonzero(np.asarray(counts) > 0), n)]


def explore_spaces(
    learned: np.ndarray, content: np.ndarray, movies: pd.DataFrame, train_movie: np.ndarray, seed: int,
    coherence_path: Path, neighbours_path: Path, map_png: Path, projector_dir: Path,
) -> dict[str, dict]:
    """The explore stage: genre coherence and a neighbours table per space (learned, content), a 2-D map
    and a projector export of the learned one. Works on any data that trains: a measure that tiny data
    cannot support is written as None with a reason. Returns the coherence per space."""
    from movierec.atomic import write_json

    counts = rating_counts(train_movie, len(movies))
    eligible = counts >= MIN_RATINGS
    genres, titles = movies["genres"].tolist(), movies["title"].to_numpy()
    spaces = {"learned": learned, "content": content}
    coherence = {name: genre_coherence(vectors, genres, eligible, k=COHERENCE_K, seed=seed) for name, vectors in spaces.items()}
    write_json(coherence_path, coherence)
    labelled = well_known_titles(titles, counts)
    write_json(neighbours_path, {name: neighbours_table(vectors, movies, labelled, k=10) for name, vectors in spaces.items()})
    mapped = eligible if eligible.sum() >= 3 else counts > 0  # tiny data: every rated movie
    embedding_map(learned[mapped], titles[mapped], np.asarray(primary_genres(genres))[mapped], labelled, map_png, seed=seed)
    projector_export(learned, movies.assign(n_ratings=counts), projector_dir)
    return coherence
