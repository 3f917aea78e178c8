"""Get a MovieLens release (network or offline mirror), verify it, and load it with validation.

Integrity: ml-latest-small is checked by the SHA-256 of its extracted CSVs (`data.sha256`: content, not
the zip, because different zips of the same data differ byte for byte). Every other release is checked
against the `<name>.zip.md5` GroupLens publishes beside the zip, before anything is extracted.
Whatever the release, its folder lands in data/raw/movielens (the default `data.path`), so switching
`data.dataset` alone switches the data every stage reads.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import re
import shutil
import sys
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path, PurePosixPath

import pandas as pd

from movierec import datasets
from movierec.atomic import atomic_path
from movierec.datasets import DataError, Release

MIRROR_ENV = "MOVIEREC_DATA_MIRROR"
DOWNLOAD_FOLDER = "movielens"
DEFAULT_DATA_PATH = f"data/raw/{DOWNLOAD_FOLDER}"
SHA256_RELEASE = "ml-latest-small"  # the one release whose content checksums params.yaml holds
_CHUNK = 1 << 16
_MD5_MAX_BYTES = 4096


# ---------------------------------------------------------------- download


def download(
    release: Release, base_url: str, out_dir: Path, *, max_bytes: int, expected_sha256: dict[str, str]
) -> Path:
    """Fetch `release` (mirror first), verify it, extract it safely; return the data folder.

    Everything happens in a temporary folder that replaces `out_dir` only once every check passed.
    """
    out_dir = Path(out_dir)
    zip_name = f"{release.name}.zip"
    with_md5 = release.name != SHA256_RELEASE
    with atomic_path(out_dir, directory=True) as tmp:
        zip_path = tmp / zip_name
        md5_path = tmp / f"{zip_name}.md5"
        mirror = os.environ.get(MIRROR_ENV)
        if mirror:
            copy_from_mirror(Path(mirror), zip_path, with_md5=with_md5)
        else:
            url = f"{base_url.rstrip('/')}/{zip_name}"
            fetch_url(url, zip_path, max_bytes=max_bytes)
            if with_md5:
                fetch_url(f"{url}.md5", md5_path, max_bytes=_MD5_MAX_BYTES)
        if with_md5:
            verify_md5(zip_path, md5_path)
        extracted = tmp / "extracted"
        safe_extract(zip_path, extracted)
        zip_path.unlink()
        folder = extracted / release.folder
        ratings = datasets.FORMATS[release.format]["ratings"].name
        if not (folder / ratings).is_file():
            raise DataError(f"{zip_name}: {release.folder}/{ratings} is missing from the archive; is it the right file?")
        if not with_md5:
            verify_checksums(folder, expected_sha256)
        os.replace(folder, tmp / DOWNLOAD_FOLDER)
        shutil.rmtree(extracted)
        md5_path.unlink(missing_ok=True)
    return out_dir / DOWNLOAD_FOLDER


def copy_from_mirror(mirror: Path, dest: Path, *, with_md5: bool) -> None:
    """Copy `<name>.zip` (and, for md5-checked releases, the `<name>.zip.md5` beside it) from the mirror."""
    name = dest.name
    source = mirror / name if mirror.is_dir() else mirror
    if mirror.is_file() and mirror.name != name:
        raise DataError(f"{MIRROR_ENV}={mirror}: names another file than {name}, the zip of data.dataset; point it at {name} or its folder")
    if not source.is_file():
        raise DataError(f"{MIRROR_ENV}={mirror}: no {name} there; set it to a folder holding {name} or to the zip itself")
    md5_source = source.with_name(f"{name}.md5")
    if with_md5 and not md5_source.is_file():
        raise DataError(
            f"{MIRROR_ENV}: no {md5_source.name} beside {source}; copy it from {datasets.BASE_URL}/{md5_source.name} "
            "(GroupLens publishes it beside each zip: it is how this release is verified)"
        )
    print(f"Using the offline mirror {source}", file=sys.stderr)
    shutil.copyfile(source, dest)
    if with_md5:
        shutil.copyfile(md5_source, dest.with_name(md5_source.name))


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
        raise DataError(f"params.yaml: data.base_url: {url!r} must use https (plain http is allowed only on 127.0.0.1)")
    offline_hint = f"offline? download {dest.name} elsewhere, put it in a folder and set {MIRROR_ENV}=<that folder>"
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
            length=total or None, label=f"Downloading {dest.name}", file=sys.stderr
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


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    digest = hashlib.new(algorithm, usedforsecurity=False)
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def verify_md5(zip_path: Path, md5_path: Path) -> None:
    """Compare the zip's MD5 with the published one (any layout holding one 32-hex-digit digest)."""
    text = md5_path.read_bytes().decode("ascii", errors="replace")
    found = re.search(r"\b[0-9a-fA-F]{32}\b", text)
    if not found:
        raise DataError(f"{md5_path.name}: holds no MD5 digest; fetch it again from {datasets.BASE_URL}/{md5_path.name}")
    want = found.group(0).lower()
    got = file_digest(zip_path, "md5")
    if got != want:
        raise DataError(
            f"{zip_path.name}: MD5 {got[:12]}... does not match the published {md5_path.name} ({want[:12]}...); "
            "the zip is corrupt, incomplete or another file: delete it and download again"
        )


def verify_checksums(folder: Path, expected: dict[str, str]) -> None:
    for name, want in expected.items():
        path = folder / name
        if not path.is_file():
            raise DataError(f"{SHA256_RELEASE}.zip: {SHA256_RELEASE}/{name} is missing from the archive; is it the right file?")
        got = file_digest(path)
        if got != want:
            raise DataError(
                f"{SHA256_RELEASE}/{name}: SHA-256 {got[:12]}... does not match the official {want[:12]}...; "
                "the archive is corrupt or not MovieLens latest-small: delete it and download again"
            )


# ---------------------------------------------------------------- reading


def load_ratings(folder: Path, *, min_rating: float, max_rating: float, duplicates: str = "error") -> pd.DataFrame:
    """Ratings in file order (the split depends on it), checked for range and duplicate pairs. Any release's format."""
    table = datasets.read_ratings(Path(folder))
    ratings, path = table.frame, table.path
    outside = (ratings["rating"] < min_rating) | (ratings["rating"] > max_rating)
    if outside.any():
        i = outside.idxmax()
        raise DataError(
            f"{path}: line {table.line(i)}: rating {ratings['rating'][i]} is outside [{min_rating}, {max_rating}]; "
            "fix the row or set data.min_rating / data.max_rating in params.yaml"
        )
    dup = ratings.duplicated(["userId", "movieId"], keep="last")
    if dup.any():
        if duplicates == "error":
            i = dup.idxmax()
            raise DataError(
                f"{path}: line {table.line(i)}: userId {ratings['userId'][i]} rated movieId {ratings['movieId'][i]} more than once; "
                "remove the duplicates or set data.duplicates: keep_last in params.yaml"
            )
        ratings = ratings[~dup].reset_index(drop=True)
    return ratings


def load_movies(folder: Path) -> pd.DataFrame:
    return datasets.read_movies(Path(folder))


def load_tags(folder: Path) -> pd.DataFrame:
    """Tags are optional: without them the content vectors use titles and genres only."""
    return datasets.read_tags(Path(folder))


def load_genome(folder: Path) -> pd.DataFrame:
    """The tag genome (movieId, tagId, relevance); a clear error when the data has none."""
    return datasets.read_genome(Path(folder))
