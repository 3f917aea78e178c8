"""prepare: encode users and movies and split the ratings exactly as the notebook did."""

from __future__ import annotations

from pathlib import Path

from movierec import data
from movierec.atomic import write_json
from movierec.params import core
from movierec.params import data as data_params
from movierec.params import prepare as prepare_params
from movierec.paths import METRICS_DIR, PREPARED_DIR
from movierec.prepare import prepare, save_prepared
from movierec.stages import arguments, one_line_errors


def main(args) -> None:
    raw = core.read(args.params)
    d, p = data_params.load(raw, args.params), prepare_params.load(raw, args.params)
    ratings = data.load_ratings(Path(d.path), min_rating=d.min_rating, max_rating=d.max_rating, duplicates=d.duplicates)
    prepared = prepare(ratings, test_size=p.test_size, seed=p.seed)
    save_prepared(prepared, PREPARED_DIR)
    write_json(METRICS_DIR / "data.json", prepared.counts())
    print(", ".join(f"{k}={v}" for k, v in prepared.counts().items()))


if __name__ == "__main__":
    with one_line_errors():
        main(arguments(__doc__))
