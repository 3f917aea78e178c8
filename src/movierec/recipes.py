"""A variant's recipe, data/recipes/<variant>.json: everything that shapes its fit, resolved from
params.yaml by the recipe stage (one writer) and read by the train and rank stages (one reader)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from movierec import architectures
from movierec.atomic import write_json
from movierec.errors import MovierecError
from movierec.params.core import build, fit_fields
from movierec.params.time_terms import TimeTerms
from movierec.params.train import TrainParams


@dataclass(frozen=True)
class Recipe:
    architecture: object  # the module of movierec.architectures
    settings: object  # its Settings, without the `rank_only` fields (None)
    shared: object | None  # the top-level block it shares (collab: `model`), or None
    train: TrainParams
    rating_range: tuple[float, float]
    time_terms: TimeTerms | None  # fitted on its training residuals after the fit


def write(path: Path, variant, shared, rating_range: tuple[float, float]) -> None:
    """The recipe of `variant` (params.variants.Variant): what its fit reads, and nothing about ranking."""
    write_json(path, {
        "architecture": variant.architecture,
        "settings": fit_fields(variant.settings),
        "shared": asdict(shared) if shared is not None else None,
        "train": asdict(variant.train),
        "rating_range": list(rating_range),
        "time_terms": asdict(variant.time_terms) if variant.time_terms is not None else None,
    })


def read(path: Path) -> Recipe:
    if not Path(path).is_file():
        raise MovierecError(f"{path}: missing; run `dvc repro` (the recipe stage writes it from params.yaml)")
    r = json.loads(Path(path).read_text())
    module = architectures.find(r["architecture"])
    settings = build(module.Settings, r["settings"], str(path), "settings.", fit_only=True)
    shared = module.shared({module.SHARED: r["shared"]}, str(path)) if r["shared"] is not None else None
    terms = build(TimeTerms, r["time_terms"], str(path), "time_terms.") if r.get("time_terms") is not None else None
    return Recipe(module, settings, shared, build(TrainParams, r["train"], str(path), "train."), tuple(r["rating_range"]), terms)
