"""params.yaml `train`: how every variant trains, unless its own `train:` block overrides a key."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from movierec.params.core import PARAMS_FILE, ParamsError, build, bounds, section


@dataclass(frozen=True)
class TrainParams:
    batch_size: int = bounds(1)
    epochs: int = bounds(1)
    learning_rate: float = bounds(0, open_low=True)
    optimizer: Literal["adam", "fused_adam", "lazy_adam"]
    steps_per_execution: int = bounds(1)
    early_stopping_patience: int = bounds(0)
    validation_fraction: float = bounds(0, 1, open_low=True, open_high=True)
    refit: bool
    seed: int = bounds(0)
    threads: int = bounds(1)
    tensorboard: bool = False
    distribute: Literal["none", "mirrored", "multi_worker"] = "none"
    workers: int = bounds(1, default=1)


def load(raw: dict, variant: str | None = None, source: str = PARAMS_FILE) -> TrainParams:
    """The top-level `train` block, or, for `variant`, that block with the variant's own `train:` keys over it."""
    defaults = section(raw, "train", source)
    top = build(TrainParams, defaults, source, "train.")
    if variant is None:
        return top
    own = (section(raw, "variants", source).get(variant) or {}).get("train") or {}
    if not isinstance(own, dict):
        raise ParamsError(f"{source}: variants.{variant}.train: expected a mapping of keys, got {type(own).__name__}")
    return build(TrainParams, {**defaults, **own}, source, f"variants.{variant}.train.")
