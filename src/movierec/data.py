"""Get the MovieLens archive (network or offline mirror) and read MovieLens-format CSVs with validation.

Only the official archive is checksummed; the check is on the extracted CSVs, not on the zip,
because different zips of the same data differ byte for byte.
"""

from __future__ import annotations

import hashlib
import io
import ipaddress
import os
import shutil
import sys
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd

from movierec.atomic import atomic_path
from movierec.errors import MovierecError

ARCHIVE_NAME = "ml-latest-small.zip"
ARCHIVE_FOLDER = "ml-latest-small"
MIRROR_ENV = "MOVIEREC_DATA_MIRROR"
DEFAULT_DATA_PATH = f"data/raw/{ARCHIVE_FOLDER}"
_CHUNK = 1 << 16


class DataError(MovierecError):
    pass


# ---------------------------------------------------------------- download


def download(url: str, out_dir: Path, *, max_bytes: int, expected_sha256: dict[str, str]) -> Path:
    """Fetch the archive (mirror first), extract it safely and verify its content; return the data folder.

    Everything happens in a temporary folder that replaces `out_dir` only once the checksums match.
    """
    out_dir = Path(out_dir)
    with atomic_path(out_dir, directory=True) as tmp:
        zip_path = tmp / ARCHIVE_NAME
        mirror = os.environ.get(MIRROR_ENV)
        if mirror:
            copy_from_mirror(Path(mirror), zip_path)
        else:
            fetch_url(url, zip_path, max_bytes=max_bytes)
        safe_extract(zip_path, tmp)
        zip_path.unlink()
        verify_checksums(tmp / ARCHIVE_FOLDER, expected_sha256)
    return out_dir / ARCHIVE_FOLDER


def copy_from_mirror(mirror: Path, dest: Path) -> None:
    source = mirror / ARCHIVE_NAME if mirror.is_dir() else mirror
    if not source.is_file():
        raise DataError(
            f"{MIRROR_ENV}={mirror}: no {ARCHIVE_NAME} there; set it to a folder holding {ARCHIVE_NAME} or to the zip itself"
        )
    print(f"Using the offline mirror {source}", file=sys.stderr)
    shutil.copyfile(source, dest)


def _is_loopback(host: str | None) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


def fetch_url(url: str, dest: Path, *, max_bytes: int) -> None:
    """Stream `url` to `dest` with a progress bar; https with certificate checks (plain http only on loopback)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "https" and not (parts.scheme == "http" and _is_loopback(parts.hostname)):
        raise DataError(f"params.yaml: data.url: {url!r} must use https (plain http is allowed only on 127.0.0.1)")
    offline_hint = (
        f"offline? download {ARCHIVE_NAME} elsewhere, put it in a folder and set {MIRROR_ENV}=<that folder>"
    )
    try:
        response = urllib.request.urlopen(url, timeout=30)  # the default SSL context verifies certificates
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DataError(f"could not download {url} ({reason}); {offline_hint}") from None
    with response:
        total = int(response.headers.get("Content-Length") or 0)
        if total > max_bytes:
            raise DataError(f"{url}: {total} bytes exceeds data.max_download_mb; raise it in params.yaml if this is expected")
        import click

        done = 0
        with open(dest, "wb") as out, click.progressbar(
            length=total or None, label=f"Downloading {ARCHIVE_NAME}", file=sys.stderr
        ) as bar:
            while chunk := response.read(_CHUNK):
                done += len(chunk)
                if done > max_bytes:
                    raise DataError(
                        f"{url}: download exceeds data.max_download_mb ({max_bytes} bytes); stopped. "
                        "Raise it in params.yaml if this is expected"
                    )
                out.write(chunk)
                bar.update(len(chunk))


def safe_extract(zip_path: Path, dest: Path) -> None:
    """Extract only inside `dest`: entries with absolute paths or `..` are refused before anything is written."""
    try:
        archive = zipfile.ZipFile(zip_path)
    except zipfile.BadZipFile:
        raise DataError(f"{zip_path.name}: not a valid zip file; delete it and download again") from None
    with archive:
        for name in archive.namelist():
            pure = PurePosixPath(name.replace("\\", "/"))
            if pure.is_absolute() or ".." in pure.parts or (pure.parts and ":" in pure.parts[0]):
                raise DataError(f"{zip_path.name}: refusing unsafe entry {name!r} (it points outside the target folder)")
        archive.extractall(dest)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def verify_checksums(folder: Path, expected: dict[str, str]) -> None:
    for name, want in expected.items():
        path = folder / name
        if not path.is_file():
            raise DataError(f"{ARCHIVE_NAME}: {ARCHIVE_FOLDER}/{name} is missing from the archive; is it the right file?")
        got = sha256_file(path)
        if got != want:
            raise DataError(
                f"{ARCHIVE_FOLDER}/{name}: SHA-256 {got[:12]}... does not match the official {want[:12]}...; "
                "the archive is corrupt or not MovieLens latest-small: delete it and download again"
            )


# ---------------------------------------------------------------- reading


def read_csv(path: Path, columns: dict[str, str]) -> pd.DataFrame:
    """Read a MovieLens CSV and check it: UTF-8, comma-separated, the `columns` present, typed and non-empty.

    `columns` maps a column name to "int", "float" or "str". Row numbers in errors are file line numbers.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found; check data.path in params.yaml")
    raw = path.read_bytes()
    if not raw.strip():
        raise DataError(f"{path}: file is empty; it needs a header line and at least one row")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start}); re-save it as UTF-8") from None
    header = text.lstrip("\ufeff").splitlines()[0]
    found = [c.strip() for c in header.split(",")]
    missing = [c for c in columns if c not in found]
    if missing:
        for sep, name in ((";", "semicolon"), ("\t", "tab"), ("|", "pipe")):
            if len(found) == 1 and sep in header:
                raise DataError(f"{path}: looks {name}-separated; MovieLens files are comma-separated: convert it to CSV")
        raise DataError(
            f"{path}: missing column {missing[0]!r} (found: {', '.join(found)}); "
            f"rename or add it: the file needs {', '.join(columns)}"
        )
    try:
        frame = pd.read_csv(io.StringIO(text.lstrip("\ufeff")), dtype=str, keep_default_na=False, na_filter=False)
    except pd.errors.ParserError as exc:
        raise DataError(f"{path}: cannot parse as CSV ({str(exc).strip().splitlines()[-1]}); fix the quoting or the field count") from None
    frame.columns = [c.strip() for c in frame.columns]
    if frame.empty:
        raise DataError(f"{path}: has a header but no rows")
    out = {}
    for name, kind in columns.items():
        col = frame[name]
        blank = col.str.strip() == ""
        if blank.any():
            raise DataError(f"{path}: line {_line(blank.idxmax())}: empty {name}; fill it in or remove the row")
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
            raise DataError(f"{path}: line {_line(i)}: {name} {col[i]!r} is not {want}; fix or remove the row")
        out[name] = values.astype("int64" if kind == "int" else "float64")
    return pd.DataFrame(out)


def _line(index: int) -> int:
    return int(index) + 2  # the header is line 1


RATINGS_COLUMNS = {"userId": "int", "movieId": "int", "rating": "float"}
MOVIES_COLUMNS = {"movieId": "int", "title": "str", "genres": "str"}
TAGS_COLUMNS = {"movieId": "int", "tag": "str"}


def load_ratings(folder: Path, *, min_rating: float, max_rating: float, duplicates: str = "error") -> pd.DataFrame:
    """ratings.csv in file order (the split depends on it), checked for range and duplicate pairs."""
    path = Path(folder) / "ratings.csv"
    ratings = read_csv(path, RATINGS_COLUMNS)
    outside = (ratings["rating"] < min_rating) | (ratings["rating"] > max_rating)
    if outside.any():
        i = outside.idxmax()
        raise DataError(
            f"{path}: line {_line(i)}: rating {ratings['rating'][i]} is outside [{min_rating}, {max_rating}]; "
            "fix the row or set data.min_rating / data.max_rating in params.yaml"
        )
    dup = ratings.duplicated(["userId", "movieId"], keep="last")
    if dup.any():
        if duplicates == "error":
            i = dup.idxmax()
            raise DataError(
                f"{path}: line {_line(i)}: userId {ratings['userId'][i]} rated movieId {ratings['movieId'][i]} more than once; "
                "remove the duplicates or set data.duplicates: keep_last in params.yaml"
            )
        ratings = ratings[~dup].reset_index(drop=True)
    return ratings


def load_movies(folder: Path) -> pd.DataFrame:
    return read_csv(Path(folder) / "movies.csv", MOVIES_COLUMNS)


def load_tags(folder: Path) -> pd.DataFrame:
    """tags.csv is optional: without it the content vectors use titles and genres only."""
    path = Path(folder) / "tags.csv"
    if not path.exists():
        return pd.DataFrame({"movieId": pd.Series(dtype="int64"), "tag": pd.Series(dtype=str)})
    return read_csv(path, TAGS_COLUMNS)
