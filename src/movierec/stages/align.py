"""align: stack the content vectors in movie-encoder order (zeros where missing) and report coverage."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from movierec.align import align, load_archive
from movierec.atomic import atomic_path, write_json
from movierec.params import core
from movierec.params import embed as embed_params
from movierec.paths import CONTENT_MATRIX, METRICS_DIR, PREPARED_DIR
from movierec.prepare import load_prepared
from movierec.stages import arguments, one_line_errors


def main(args) -> None:
    e = embed_params.load(core.read(args.params), args.params)
    prepared = load_prepared(PREPARED_DIR)
    matrix, coverage = align(load_archive(Path(e.archive), e.dim), prepared.movie_ids, e.dim)
    with atomic_path(CONTENT_MATRIX) as tmp:
        np.save(tmp, matrix)
    write_json(METRICS_DIR / "align.json", coverage)
    print(f"{coverage['with_vector']}/{coverage['movies']} movies have a content vector")


if __name__ == "__main__":
    with one_line_errors():
        main(arguments(__doc__))
