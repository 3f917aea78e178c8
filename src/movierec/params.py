"""Read and validate params.yaml in one place, before any heavy work starts.

Every section is a frozen dataclass. Field types are checked from the annotations, ranges from
`bounds`, and unknown keys are reported with a did-you-mean suggestion, so a typo never silently
falls back to a default.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import yaml

from movierec.errors import MovierecError, did_you_mean

PARAMS_FILE = "params.yaml"


class ParamsError(MovierecError):
    pass


def _bounds(low=None, high=None, *, open_low=False, open_high=False, default=dataclasses.MISSING):
    return field(default=default, metadata={"bounds": (low, high, open_low, open_high)})


@dataclass(frozen=True)
class DataParams:
    dataset: Literal["ml-latest-small", "ml-100k", "ml-1m", "ml-10m", "ml-20m", "ml-25m", "ml-32m", "ml-latest"]
    path: str
    base_url: str
    sha256: dict[str, str]
    max_download_mb: float = _bounds(0, open_low=True)
    min_rating: float = _bounds()
    max_rating: float = _bounds()
    duplicates: Literal["error", "keep_last"] = "error"


@dataclass(frozen=True)
class PrepareParams:
    test_size: float = _bounds(0, 1, open_low=True, open_high=True)
    seed: int = _bounds(0)


@dataclass(frozen=True)
class EmbedParams:
    archive: str
    source: Literal["text", "genome"]
    dim: int = _bounds(1)
    min_df: int = _bounds(1)
    seed: int = _bounds(0)


@dataclass(frozen=True)
class ModelParams:
    join: Literal["concat", "product"]
    embedding_size: int = _bounds(1)
    l2: float = _bounds(0)


@dataclass(frozen=True)
class TrainParams:
    batch_size: int = _bounds(1)
    epochs: int = _bounds(1)
    learning_rate: float = _bounds(0, open_low=True)
    optimizer: Literal["adam", "fused_adam", "lazy_adam"]
    steps_per_execution: int = _bounds(1)
    early_stopping_patience: int = _bounds(0)
    validation_fraction: float = _bounds(0, 1, open_low=True, open_high=True)
    refit: bool
    seed: int = _bounds(0)
    threads: int = _bounds(1)
    tensorboard: bool = False
    distribute: Literal["none", "mirrored", "multi_worker"] = "none"
    workers: int = _bounds(1, default=1)


@dataclass(frozen=True)
class EvaluateParams:
    k: int = _bounds(1)
    relevance_threshold: float = _bounds()
    top_n: int = _bounds(1)
    max_users: int = _bounds(0)
    seed: int = _bounds(0)


BASELINES = ("global_mean", "bias", "most_popular", "ease")  # their files sit beside the variants' (metrics/eval/<name>.json)


@dataclass(frozen=True)
class BaselineParams:
    bias_reg_user: float = _bounds(0)
    bias_reg_item: float = _bounds(0)
    bias_iters: int = _bounds(1)
    ease_reg: float = _bounds(0, open_low=True)
    ease_positive_threshold: float = _bounds()
    ease_score_low_weight: float = _bounds(0, 1)
    ease_max_movies: int = _bounds(0)


@dataclass(frozen=True)
class NotebookVariant:
    """The notebook's architectures: collab (make_model) and hybrid (make_model_2)."""

    architecture: Literal["collab", "hybrid"]
    shared: Literal["model"]
    dense: list[int]
    dropout: list[float]
    popularity_prior: float | list[float] = _bounds(0)  # several: chosen on validation (`ranking_weight_grid`)
    train: TrainParams


@dataclass(frozen=True)
class MFVariant:
    """Biased matrix factorisation, optionally with a learned projection of the content vectors."""

    architecture: Literal["mf"]
    shared: Literal["train"]
    factors: int = _bounds(1)
    l2_factors: float = _bounds(0)
    l2_biases: float = _bounds(0)
    l2_content: float = _bounds(0)
    content: bool
    popularity_prior: float | list[float] = _bounds(0)
    train: TrainParams


@dataclass(frozen=True)
class DAEVariant:
    """A ranker over each user's whole history (Mult-DAE, Liang et al. 2018), with an optional per-user vector."""

    architecture: Literal["multdae"]
    shared: Literal["train"]
    hidden: int = _bounds(1)
    dropout: float = _bounds(0, 1, open_high=True)
    l2: float = _bounds(0)
    l2_user: float = _bounds(0)
    user_vector: bool
    positive_threshold: float = _bounds()
    low_weight: float = _bounds(0, 1)
    score_low_weight: float = _bounds(0, 1)
    popularity_prior: float = _bounds(0)
    max_movies: int = _bounds(0)
    train: TrainParams


VariantParams = NotebookVariant | MFVariant | DAEVariant


def ranking_weight_grid(v: VariantParams) -> list[float]:
    """A variant's popularity_prior values as a list: one is used as is; among several, train picks the
    best NDCG@k on its validation carve. A history ranker takes one number only (folded into its model)."""
    return list(v.popularity_prior) if isinstance(v.popularity_prior, list) else [v.popularity_prior]


@dataclass(frozen=True)
class Params:
    data: DataParams
    prepare: PrepareParams
    embed: EmbedParams
    model: ModelParams
    train: TrainParams
    evaluate: EvaluateParams
    baselines: BaselineParams
    variants: dict[str, VariantParams]

    def variant(self, name: str) -> VariantParams:
        if name not in self.variants:
            raise ParamsError(
                f"params.yaml: variants: no variant named {name!r}; "
                f"defined: {', '.join(sorted(self.variants))}{did_you_mean(name, self.variants)}"
            )
        return self.variants[name]

    def with_distribution(self, name: str, distribute: str, workers: int) -> "Params":
        """These params with variant `name` trained as `distribute` on `workers` (`train --workers`)."""
        v = self.variant(name)
        train = dataclasses.replace(v.train, distribute=distribute, workers=workers)
        _check_distribution(name, dataclasses.replace(v, train=train), "train --workers")
        return dataclasses.replace(self, variants={**self.variants, name: dataclasses.replace(v, train=train)})


def load_params(path: str | Path = PARAMS_FILE) -> Params:
    """Load and fully validate params.yaml; raise ParamsError naming the first bad field."""
    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"{path}: file not found; run from the project root or pass --params")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        first_line = str(exc).strip().splitlines()[0]
        raise ParamsError(f"{path}: not valid YAML ({first_line}); fix the syntax") from None
    params = parse_params(raw, source=str(path))
    _check_consistency(params, str(path))
    return params


def parse_params(raw: object, source: str = PARAMS_FILE) -> Params:
    """Validate a params mapping. A variant's `train:` block overrides any of the top-level `train` keys."""
    if isinstance(raw, dict) and isinstance(raw.get("variants"), dict) and isinstance(raw.get("train"), dict):
        raw = {
            **raw,
            "variants": {
                name: {**v, "train": {**raw["train"], **(v.get("train") or {})}} if isinstance(v, dict) else v
                for name, v in raw["variants"].items()
            },
        }
    return _build(Params, raw, source, "")


def _check_consistency(p: Params, source: str) -> None:
    if p.data.min_rating >= p.data.max_rating:
        raise ParamsError(
            f"{source}: data.min_rating ({p.data.min_rating}) must be below data.max_rating ({p.data.max_rating})"
        )
    if p.evaluate.k > p.evaluate.top_n:
        raise ParamsError(
            f"{source}: evaluate.k ({p.evaluate.k}) must not exceed evaluate.top_n ({p.evaluate.top_n}), "
            "the length of the lists train stores; raise evaluate.top_n"
        )
    for name, v in p.variants.items():
        if name in BASELINES:
            raise ParamsError(f"{source}: variants.{name}: the name of a baseline, whose files it would overwrite; rename the variant")
        _check_distribution(name, v, source)
        grid = ranking_weight_grid(v)
        if not grid:
            raise ParamsError(f"{source}: variants.{name}.popularity_prior: give a number or a non-empty list of numbers")
        if len(grid) > 1 and v.train.early_stopping_patience == 0:
            raise ParamsError(
                f"{source}: variants.{name}.popularity_prior: choosing among {len(grid)} values needs the validation carve "
                "of early stopping; set its train.early_stopping_patience above 0, or give one value"
            )
        if v.train.distribute == "multi_worker" and v.train.tensorboard:
            raise ParamsError(
                f"{source}: variants.{name}: train.tensorboard is not supported with train.distribute=multi_worker; "
                "set one of them off"
            )
        if not isinstance(v, NotebookVariant):
            continue
        expected = len(v.dense) + 1
        if len(v.dropout) != expected:
            raise ParamsError(
                f"{source}: variants.{name}.dropout has {len(v.dropout)} rates but needs {expected} "
                f"(one after the join and one after each of the {len(v.dense)} dense layers)"
            )
        for rate in v.dropout:
            if not 0 <= rate < 1:
                raise ParamsError(f"{source}: variants.{name}.dropout: {rate} is outside [0, 1)")
        if any(size < 1 for size in v.dense):
            raise ParamsError(f"{source}: variants.{name}.dense: layer sizes must be positive integers")


def _check_distribution(name: str, v: VariantParams, source: str) -> None:
    """The history ranker trains in one process only: its batches are users, not rating rows."""
    if isinstance(v, DAEVariant) and v.train.distribute != "none":
        raise ParamsError(
            f"{source}: variants.{name}: train.distribute={v.train.distribute} is not supported for architecture "
            "multdae; set it to none"
        )


def _build(cls, raw, source: str, where: str):
    label = where.rstrip(".") or "top level"
    if not isinstance(raw, dict):
        raise ParamsError(f"{source}: {label}: expected a mapping of keys, got {type(raw).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in raw:
        if key not in fields:
            raise ParamsError(
                f"{source}: unknown key {where}{key}{did_you_mean(str(key), fields)}; "
                f"accepted keys: {', '.join(fields)}"
            )
    hints = typing.get_type_hints(cls)
    values = {}
    for name, f in fields.items():
        if name not in raw:
            if f.default is not dataclasses.MISSING:
                continue
            raise ParamsError(f"{source}: missing key {where}{name}; add it (see the README's params section)")
        values[name] = _convert(raw[name], hints[name], f, source, f"{where}{name}")
    return cls(**values)


def _convert(value, hint, f, source: str, name: str):
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, source, name + ".")
    if origin is dict:
        if not isinstance(value, dict) or not value:
            raise ParamsError(f"{source}: {name}: expected a non-empty mapping")
        return {str(k): _convert(v, args[1], f, source, f"{name}.{k}") for k, v in value.items()}
    if origin is list:
        if not isinstance(value, list):
            raise ParamsError(f"{source}: {name}: expected a list, got {value!r}")
        return [_convert(v, args[0], f, source, f"{name}[{i}]") for i, v in enumerate(value)]
    if origin is Literal:
        if value not in args:
            raise ParamsError(
                f"{source}: {name}: {value!r} is not accepted; use one of {', '.join(map(str, args))}"
            )
        return value
    if origin in (typing.Union, types.UnionType) and all(dataclasses.is_dataclass(a) for a in args):
        return _build(_choose_by_architecture(args, value, source, name), value, source, name + ".")
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        if len(options) > 1:  # a number or a list of them: a list goes to the list type
            options = [a for a in options if (typing.get_origin(a) is list) == isinstance(value, list)]
        (hint,) = options
        return _convert(value, hint, f, source, name)
    if hint is bool:
        if not isinstance(value, bool):
            raise ParamsError(f"{source}: {name}: expected true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ParamsError(f"{source}: {name}: expected an integer, got {value!r}")
    elif hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ParamsError(f"{source}: {name}: expected a number, got {value!r}")
        value = float(value)
        if value != value or value in (float("inf"), float("-inf")):
            raise ParamsError(f"{source}: {name}: expected a finite number, got {value!r}")
    elif hint is str:
        if not isinstance(value, str) or not value:
            raise ParamsError(f"{source}: {name}: expected a non-empty string, got {value!r}")
        return value
    _check_bounds(value, f, source, name)
    return value


def _choose_by_architecture(classes, value, source: str, name: str):
    """Pick the dataclass whose `architecture` Literal accepts value["architecture"]."""
    choices = {arch: cls for cls in classes for arch in typing.get_args(typing.get_type_hints(cls)["architecture"])}
    arch = value.get("architecture") if isinstance(value, dict) else None
    if arch not in choices:
        raise ParamsError(
            f"{source}: {name}.architecture: {arch!r} is not accepted; use one of {', '.join(choices)}"
        )
    return choices[arch]


def _check_bounds(value, f, source: str, name: str) -> None:
    low, high, open_low, open_high = f.metadata.get("bounds", (None, None, False, False))
    too_low = low is not None and (value <= low if open_low else value < low)
    too_high = high is not None and (value >= high if open_high else value > high)
    if too_low or too_high:
        left = "(" if open_low else "["
        right = ")" if open_high else "]"
        lo = "-inf" if low is None else low
        hi = "inf" if high is None else high
        raise ParamsError(f"{source}: {name}: {value!r} is out of range; accepted: {left}{lo}, {hi}{right}")
