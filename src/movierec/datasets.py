"""Every MovieLens release by name, and one reader per file format, all giving the same frames.

The readers check syntax and types (file found, fields present and typed, line numbers in errors);
data.py adds the checks on meaning (rating range, duplicate pairs). A folder's format is recognised
from its ratings file, so `data.path` may point at a copy of any release, or at your own CSVs.
Numeric files (ratings, genome scores) take a fast typed parse first; only a file that fails it is
re-read as text, to report the first bad line.
"""

from __future__ import annotations

import codecs
import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from movierec.errors import MovierecError

BASE_URL = "https://files.grouplens.org/datasets/movielens"
_TEXT_CHUNK_ROWS = 1_000_000


class DataError(MovierecError):
    pass


@dataclass(frozen=True)
class Release:
    """One GroupLens release: `<name>.zip` holds the folder `folder` in file format `format`."""

    name: str
    folder: str
    format: str  # a key of FORMATS
    genome: bool = False


RELEASES = {
    r.name: r
    for r in (
        Release("ml-latest-small", "ml-latest-small", "csv"),
        Release("ml-100k", "ml-100k", "100k"),
        Release("ml-1m", "ml-1m", "dat"),
        Release("ml-10m", "ml-10M100K", "dat"),
        Release("ml-20m", "ml-20m", "csv", genome=True),
        Release("ml-25m", "ml-25m", "csv", genome=True),
        Release("ml-32m", "ml-32m", "csv"),
        Release("ml-latest", "ml-latest", "csv", genome=True),
    )
}


@dataclass(frozen=True)
class FileSpec:
    """How one file is laid out. `fields` None: a header line names the columns (CSV releases).
    `text_field`: the one free-text field, rejoined if it contains the separator (.dat titles, tags)."""

    name: str
    sep: str = ","
    fields: tuple[str, ...] | None = None
    text_field: int | None = None

    @property
    def has_header(self) -> bool:
        return self.fields is None


# ml-100k's u.item ends with 19 genre flags, in u.genre's order; "unknown" maps to no genre.
GENRES_100K = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama",
    "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western",
)
NO_GENRES = "(no genres listed)"

FORMATS = {
    "csv": {  # ml-latest-small, ml-20m, ml-25m, ml-32m, ml-latest, and your own data: UTF-8 with headers
        "ratings": FileSpec("ratings.csv"),
        "movies": FileSpec("movies.csv"),
        "tags": FileSpec("tags.csv"),
    },
    "dat": {  # ml-1m, ml-10m: `::`-separated, no header, latin-1
        "ratings": FileSpec("ratings.dat", "::", ("userId", "movieId", "rating", "timestamp")),
        "movies": FileSpec("movies.dat", "::", ("movieId", "title", "genres"), text_field=1),
        "tags": FileSpec("tags.dat", "::", ("userId", "movieId", "tag", "timestamp"), text_field=2),
    },
    "100k": {  # ml-100k: tab-separated u.data, pipe-separated u.item with genre flags, latin-1, no tags
        "ratings": FileSpec("u.data", "\t", ("userId", "movieId", "rating", "timestamp")),
        "movies": FileSpec(
            "u.item", "|", ("movieId", "title", "release_date", "video_release_date", "imdb_url", *GENRES_100K)
        ),
    },
}
GENOME = FileSpec("genome-scores.csv")

RATINGS_COLUMNS = {"userId": "int", "movieId": "int", "rating": "float", "timestamp": "int"}
MOVIES_COLUMNS = {"movieId": "int", "title": "str", "genres": "str"}
TAGS_COLUMNS = {"movieId": "int", "tag": "str"}
GENOME_COLUMNS = {"movieId": "int", "tagId": "int", "relevance": "float"}


def release(name: str) -> Release:
    if name not in RELEASES:
        raise DataError(f"params.yaml: data.dataset: {name!r} is not a MovieLens release; use one of {', '.join(RELEASES)}")
    return RELEASES[name]


def detect_format(folder: Path) -> str:
    """The format whose ratings file the folder holds (first of ratings.csv, ratings.dat, u.data); csv if none."""
    for fmt, files in FORMATS.items():
        if (Path(folder) / files["ratings"].name).is_file():
            return fmt
    return "csv"


@dataclass(frozen=True)
class Table:
    """A typed frame and where it came from, so later checks can name the file line of row i."""

    frame: pd.DataFrame
    path: Path
    first_line: int  # the file line of row 0: 2 after a header, else 1

    def line(self, row: int) -> int:
        return int(row) + self.first_line


# ---------------------------------------------------------------- readers, one internal schema


def read_ratings(folder: Path) -> Table:
    """userId (int64), movieId (int64), rating (float64), timestamp (int64, Unix seconds) in file order,
    from any release's ratings file. Every release has the timestamp; a ratings.csv of your own may
    leave it out, and then every rating gets timestamp 0 (the time-aware terms learn nothing)."""
    spec = FORMATS[detect_format(folder)]["ratings"]
    path = Path(folder) / spec.name
    timeless = spec.has_header and path.is_file() and "timestamp" not in _check_header(path, spec, {})
    columns = {k: v for k, v in RATINGS_COLUMNS.items() if not (timeless and k == "timestamp")}
    table = read_table(path, spec, columns)
    if timeless:
        table.frame["timestamp"] = np.zeros(len(table.frame), dtype=np.int64)
    return table


def read_movies(folder: Path) -> pd.DataFrame:
    """movieId (int64), title (str), genres (str, `|`-separated; "(no genres listed)" when none)."""
    fmt = detect_format(folder)
    spec = FORMATS[fmt]["movies"]
    if fmt != "100k":
        return read_table(Path(folder) / spec.name, spec, MOVIES_COLUMNS).frame
    flags = {g: "int" for g in GENRES_100K}
    table = read_table(Path(folder) / spec.name, spec, {"movieId": "int", "title": "str", **flags})
    bad = ~table.frame[list(GENRES_100K)].isin([0, 1]).all(axis=1)
    if bad.any():
        raise DataError(f"{table.path}: line {table.line(bad.idxmax())}: genre flags must be 0 or 1; fix the row")
    names = np.array(GENRES_100K[1:], dtype=object)
    on = table.frame[list(GENRES_100K[1:])].to_numpy(dtype=bool)
    genres = ["|".join(names[row]) or NO_GENRES for row in on]
    return pd.DataFrame({"movieId": table.frame["movieId"], "title": table.frame["title"], "genres": genres})


def read_tags(folder: Path) -> pd.DataFrame:
    """movieId (int64), tag (str); empty when the release has no tags file (ml-100k, ml-1m, or your own data)."""
    spec = FORMATS[detect_format(folder)].get("tags")
    if spec is None or not (Path(folder) / spec.name).exists():
        return pd.DataFrame({"movieId": pd.Series(dtype="int64"), "tag": pd.Series(dtype=str)})
    return read_table(Path(folder) / spec.name, spec, TAGS_COLUMNS).frame


def read_genome(folder: Path) -> pd.DataFrame:
    """genome-scores.csv: movieId (int64), tagId (int64), relevance (float64)."""
    path = Path(folder) / GENOME.name
    if not path.is_file():
        with_genome = ", ".join(r.name for r in RELEASES.values() if r.genome)
        raise DataError(
            f"{path}: file not found; embed.source: genome needs a release with the tag genome ({with_genome}): "
            "set data.dataset to one of them, or embed.source: text"
        )
    return read_table(path, GENOME, GENOME_COLUMNS).frame


# ---------------------------------------------------------------- parsing and type checks


def read_table(path: Path, spec: FileSpec, columns: dict[str, str]) -> Table:
    """Read one file laid out as `spec` and check `columns` (name -> "int", "float" or "str") present,
    non-empty and typed. Files of numbers only try a fast typed parse first."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found; check data.path in params.yaml")
    header = _check_header(path, spec, columns) if spec.has_header else list(spec.fields)
    first_line = 2 if spec.has_header else 1
    if all(kind != "str" for kind in columns.values()):
        frame = _fast_numeric(path, spec, header, columns)
        if frame is not None:
            return Table(frame, path, first_line)
    typed, row = [], 0
    for chunk in _text_chunks(path, spec):  # in chunks, so a bad row in a huge file costs no more than a chunk
        typed.append(_typed(chunk, columns, path, first_line + row))
        row += len(chunk)
    if not row:
        raise DataError(f"{path}: has a header but no rows")
    return Table(pd.concat(typed, ignore_index=True) if len(typed) > 1 else typed[0], path, first_line)


def _encoding(path: Path, spec: FileSpec) -> str:
    """UTF-8 if the whole file decodes as UTF-8; else latin-1 for the older releases, an error for CSVs."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset, blank = 0, True
    with open(path, "rb") as f:
        while True:
            block = f.read(1 << 20)
            blank = blank and not block.strip()
            pending = len(decoder.getstate()[0])  # bytes of an unfinished character carried from the last block
            try:
                decoder.decode(block, final=not block)
            except UnicodeDecodeError as exc:
                if not spec.has_header:
                    return "latin-1"
                at = offset - pending + exc.start
                raise DataError(f"{path}: not UTF-8 (byte 0x{exc.object[exc.start]:02x} at offset {at}); re-save it as UTF-8") from None
            if not block:
                break
            offset += len(block)
    if blank:
        raise DataError(f"{path}: file is empty; it needs {'a header line and ' if spec.has_header else ''}at least one row")
    return "utf-8"


def _check_header(path: Path, spec: FileSpec, columns: dict[str, str]) -> list[str]:
    with open(path, "rb") as f:
        first = f.readline(1 << 20)
    if not first.strip():
        if not path.read_bytes().strip():
            raise DataError(f"{path}: file is empty; it needs a header line and at least one row")
    header = first.decode(_encoding(path, spec) if not first.isascii() else "ascii").lstrip("\ufeff").rstrip("\r\n")
    found = [c.strip() for c in header.split(spec.sep)]
    missing = [c for c in columns if c not in found]
    if missing:
        for sep, name in ((";", "semicolon"), ("\t", "tab"), ("|", "pipe")):
            if len(found) == 1 and sep in header:
                raise DataError(f"{path}: looks {name}-separated; MovieLens files are comma-separated: convert it to CSV")
        raise DataError(
            f"{path}: missing column {missing[0]!r} (found: {', '.join(found)}); "
            f"rename or add it: the file needs {', '.join(columns)}"
        )
    return found


def _fast_numeric(path: Path, spec: FileSpec, header: list[str], columns: dict[str, str]) -> pd.DataFrame | None:
    """Parse straight to int64/float64 with the C parser; None if anything is off (the text path then explains)."""
    positions = [header.index(name) for name in columns]
    dtypes = {i: "int64" if columns[header[i]] == "int" else "float64" for i in positions}
    source: Path | io.BytesIO = path
    sep = spec.sep
    if len(sep) > 1:  # `::`: the C parser takes one-character separators only
        source, sep = io.BytesIO(path.read_bytes().replace(sep.encode(), b"\t")), "\t"
    try:
        frame = pd.read_csv(
            source, sep=sep, header=None, skiprows=1 if spec.has_header else 0, usecols=positions, dtype=dtypes,
            encoding="utf-8", float_precision="round_trip", quoting=csv.QUOTE_MINIMAL if spec.has_header else csv.QUOTE_NONE,
        )
    except (ValueError, OverflowError, UnicodeDecodeError, pd.errors.ParserError):
        return None
    if frame.empty or len(frame.columns) != len(positions):
        return None
    frame = frame[positions]
    frame.columns = list(columns)
    for name, kind in columns.items():
        if kind == "float" and not np.isfinite(frame[name].to_numpy()).all():
            return None
    return frame


def _text_chunks(path: Path, spec: FileSpec):
    """Every field as a string, header names stripped, in frames of _TEXT_CHUNK_ROWS rows: the slow path
    that can name a bad line."""
    encoding = _encoding(path, spec)
    if spec.has_header:
        try:
            for chunk in pd.read_csv(
                path, dtype=str, keep_default_na=False, na_filter=False, chunksize=_TEXT_CHUNK_ROWS, encoding=encoding
            ):
                chunk.columns = [c.lstrip("\ufeff").strip() for c in chunk.columns]
                yield chunk.reset_index(drop=True)
        except pd.errors.ParserError as exc:
            raise DataError(f"{path}: cannot parse as CSV ({str(exc).strip().splitlines()[-1]}); fix the quoting or the field count") from None
        return
    n = len(spec.fields)
    rows = []
    with open(path, "rb") as f:
        for i, raw in enumerate(f):  # split on "\n" only: latin-1 text may hold other line-break characters
            parts = raw.decode(encoding).rstrip("\r\n").split(spec.sep)
            extra = len(parts) - n
            if extra > 0 and spec.text_field is not None:
                t = spec.text_field
                parts = parts[:t] + [spec.sep.join(parts[t : t + extra + 1])] + parts[t + extra + 1 :]
            if len(parts) != n:
                raise DataError(
                    f"{path}: line {i + 1}: {len(parts)} fields, expected {n} separated by {spec.sep!r} "
                    f"({', '.join(spec.fields[:6])}{', ...' if n > 6 else ''}); fix the row"
                )
            rows.append(parts)
            if len(rows) == _TEXT_CHUNK_ROWS:
                yield pd.DataFrame(rows, columns=list(spec.fields), dtype=str)
                rows = []
    if rows:
        yield pd.DataFrame(rows, columns=list(spec.fields), dtype=str)


def _typed(frame: pd.DataFrame, columns: dict[str, str], path: Path, first_line: int) -> pd.DataFrame:
    out = {}
    for name, kind in columns.items():
        col = frame[name]
        blank = col.str.strip() == ""
        if blank.any():
            raise DataError(f"{path}: line {blank.idxmax() + first_line}: empty {name}; fill it in or remove the row")
        if kind == "str":
            out[name] = col
            continue
        values = pd.to_numeric(col, errors="coerce")
        numbers = values.to_numpy(dtype=float)
        bad = ~np.isfinite(numbers)
        if kind == "int":
            bad |= np.isfinite(numbers) & (numbers != np.round(numbers))
        if bad.any():
            i = int(bad.argmax())
            want = "an integer" if kind == "int" else "a number"
            raise DataError(f"{path}: line {i + first_line}: {name} {col[i]!r} is not {want}; fix or remove the row")
        out[name] = values.astype("int64" if kind == "int" else "float64")
    return pd.DataFrame(out)
