"""embed: content vectors per movie (TF-IDF + SVD over title, genres and tags, or the tag genome) into data/content/embeddings.npz."""

from __future__ import annotations

from pathlib import Path

from movierec import content, data
from movierec.params import core
from movierec.params import data as data_params
from movierec.params import embed as embed_params
from movierec.paths import CONTENT_ARCHIVE
from movierec.stages import arguments, one_line_errors


def main(args) -> None:
    raw = core.read(args.params)
    folder, e = Path(data_params.load(raw, args.params).path), embed_params.load(raw, args.params)
    if e.source == "genome":
        vectors = content.genome_vectors(data.load_genome(folder), dim=e.dim, seed=e.seed)
    else:
        texts = content.movie_texts(data.load_movies(folder), data.load_tags(folder))
        vectors = content.build_content_vectors(texts, dim=e.dim, min_df=e.min_df, seed=e.seed)
    content.save_archive(vectors, CONTENT_ARCHIVE)
    print(f"{len(vectors)} content vectors of length {e.dim} from the {e.source}")


if __name__ == "__main__":
    with one_line_errors():
        main(arguments(__doc__))
