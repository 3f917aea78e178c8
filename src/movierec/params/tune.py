"""params.yaml `tune`: what `movierec tune TARGET` searches, and how. No stage reads it: editing a range reruns nothing.

A target is a variant, `ease` or `time_bias`. Its space maps params paths, written as `dvc exp run -S` takes them
(`variants.mf_content.factors`), to a range `{low, high}` (whole numbers when both ends are; `log: true`
samples on a log scale) or to `{choices: [...]}`.
"""

from __future__ import annotations

from dataclasses import dataclass

from movierec.errors import did_you_mean
from movierec.params.core import PARAMS_FILE, ParamsError, block, bounds, section

EASE = "ease"
TIME_BIAS = "time_bias"
BASELINE_TARGETS = (EASE, TIME_BIAS)  # the baselines with settings worth searching; the others say why not:
UNSEARCHED = {
    "global_mean": "has no settings",
    "bias": "has a closed form",
    "bayes_mf": "estimates its own penalties and noise from the data",
    "most_popular": "has no settings",
}


@dataclass(frozen=True)
class Dimension:
    path: str  # a params path, as `dvc exp run -S` takes it
    current: object  # its value in the params: the search's trial 1, when inside the range
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: tuple | None = None

    def contains(self, value) -> bool:
        if self.choices is not None:
            return value in self.choices
        return isinstance(value, (int, float)) and not isinstance(value, bool) and self.low <= value <= self.high

    @property
    def whole(self) -> bool:
        return isinstance(self.low, int) and isinstance(self.high, int)


@dataclass(frozen=True)
class TuneParams:
    trials: int = bounds(1)
    seed: int = bounds(0)
    validation_fraction: float = bounds(0, 1, open_low=True, open_high=True)
    spaces: dict[str, dict[str, dict]]


def load(raw: dict, source: str = PARAMS_FILE) -> TuneParams:
    return block(raw, "tune", TuneParams, source)


def space(raw: dict, t: TuneParams, target: str, source: str = PARAMS_FILE) -> list[Dimension]:
    """The target's search space, each path checked to exist in the params."""
    targets = [*section(raw, "variants", source), *BASELINE_TARGETS]
    if target not in targets:
        extra = f" ({target} {UNSEARCHED[target]}: nothing to search)" if target in UNSEARCHED else ""
        raise ParamsError(f"{source}: tune: {target!r} cannot be tuned{extra}; use one of {', '.join(targets)}{did_you_mean(target, targets)}")
    if target not in t.spaces:
        raise ParamsError(f"{source}: tune.spaces: no space for {target}; add tune.spaces.{target} with the ranges to search")
    return [_dimension(raw, path, spec, source, f"tune.spaces.{target}.{path}") for path, spec in t.spaces[target].items()]


def _dimension(raw: dict, path: str, spec, source: str, where: str) -> Dimension:
    node = raw
    for i, key in enumerate(path.split(".")):
        if not isinstance(node, dict) or key not in node:
            known = list(node) if isinstance(node, dict) else []
            raise ParamsError(f"{source}: {where}: {'.'.join(path.split('.')[: i + 1])} is not in the params{did_you_mean(key, known)}; give the path as `dvc exp run -S` takes it")
        node = node[key]
    if not isinstance(spec, dict):
        raise ParamsError(f"{source}: {where}: expected {{low, high}} or {{choices: [...]}}, got {spec!r}")
    if "choices" in spec:
        choices = spec["choices"]
        if set(spec) != {"choices"} or not isinstance(choices, list) or not choices:
            raise ParamsError(f"{source}: {where}: choices: give a non-empty list, and no other key")
        return Dimension(path, node, choices=tuple(choices))
    unknown = set(spec) - {"low", "high", "log"}
    if unknown or "low" not in spec or "high" not in spec:
        raise ParamsError(f"{source}: {where}: expected the keys low, high and optionally log (or choices), got {', '.join(map(str, spec))}")
    low, high, log = spec["low"], spec["high"], spec.get("log", False)
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high))
    if not numbers or not low < high or not isinstance(log, bool) or (log and low <= 0):
        raise ParamsError(f"{source}: {where}: need numbers low < high (both > 0 with log: true), got low={low!r}, high={high!r}, log={log!r}")
    return Dimension(path, node, low, high, log)
