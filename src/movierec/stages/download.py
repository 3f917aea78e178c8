"""download: fetch the MovieLens release `data.dataset` into data/raw (or from $MOVIEREC_DATA_MIRROR) and verify it."""

from __future__ import annotations

from pathlib import Path

from movierec import data, datasets
from movierec.atomic import atomic_path
from movierec.params import core
from movierec.params import data as data_params
from movierec.paths import RAW_DIR
from movierec.stages import arguments, one_line_errors


def main(args) -> None:
    p = data_params.load(core.read(args.params), args.params)
    if Path(p.path) != Path(data.DEFAULT_DATA_PATH):
        with atomic_path(RAW_DIR, directory=True) as tmp:
            (tmp / "NOT_DOWNLOADED.txt").write_text(f"data.path is {p.path}: the official archive is not needed.\n")
        print(f"data.path points at {p.path}; skipping the official download")
        return
    folder = data.download(
        datasets.release(p.dataset), p.base_url, RAW_DIR,
        max_bytes=int(p.max_download_mb * 1024 * 1024), expected_sha256=p.sha256,
    )
    print(f"MovieLens {p.dataset} verified in {folder}")


if __name__ == "__main__":
    with one_line_errors():
        main(arguments(__doc__))
