"""Read params.yaml and validate a block against its dataclass: the machinery every block module shares.

Field types are checked from the annotations, ranges from `bounds`, and unknown keys are reported
with a did-you-mean suggestion, so a typo never silently falls back to a default. Each error is one
line naming the file and the field.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Literal

import yaml

from movierec.errors import MovierecError, did_you_mean

PARAMS_FILE = "params.yaml"
BASELINES = ("global_mean", "bias", "time_bias", "bayes_mf", "most_popular", "ease")  # their files sit beside the variants' (metrics/eval/<name>.json)
BLENDED = ("blend", "item_knn")  # the blend stage's models, likewise


class ParamsError(MovierecError):
    pass


def bounds(low=None, high=None, *, open_low=False, open_high=False, default=dataclasses.MISSING, rank_only=False):
    """A field checked against [low, high] (or open ends). `rank_only`: how a fitted model ranks, not how
    it fits, so it stays out of the fit's recipe (changing it reruns the rank stage, not the fit)."""
    return dataclasses.field(default=default, metadata={"bounds": (low, high, open_low, open_high), "rank_only": rank_only})


def fit_fields(settings) -> dict:
    """A settings dataclass as a mapping, without its `rank_only` fields: what a fit may depend on."""
    return {f.name: getattr(settings, f.name) for f in dataclasses.fields(settings) if not f.metadata.get("rank_only")}


def read(path: str | Path = PARAMS_FILE) -> dict:
    """The params file as a mapping; one line naming the file if it is missing or not YAML."""
    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"{path}: file not found; run from the project root or pass --params")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        first_line = str(exc).strip().splitlines()[0]
        raise ParamsError(f"{path}: not valid YAML ({first_line}); fix the syntax") from None
    if not isinstance(raw, dict):
        raise ParamsError(f"{path}: top level: expected a mapping of keys, got {type(raw).__name__}")
    return with_profile(raw, str(path))


DEFAULT_PROFILE = "notebook"  # the values written in the blocks themselves


def profile_name(raw: dict) -> str:
    """Which recipe the params choose (`profile`), the notebook's by default."""
    return str(raw.get("profile", DEFAULT_PROFILE))


def with_profile(raw: dict, source: str = PARAMS_FILE) -> dict:
    """The params with the values of the chosen `profile` (a key of `profiles`) in place of the blocks' own.

    One switch for a whole recipe (`-S profile=large`), each of whose values stays in params.yaml, in
    the experiment's recorded params, and overridable one by one (`-S profiles.large.train.epochs=3`).
    The default, `notebook`, changes nothing."""
    name = profile_name(raw)
    profiles = raw.get("profiles") or {}
    if not isinstance(profiles, dict):
        raise ParamsError(f"{source}: profiles: expected a mapping of profile names to params, got {type(profiles).__name__}")
    if name == DEFAULT_PROFILE:
        return raw
    if name not in profiles:
        choices = [DEFAULT_PROFILE, *profiles]
        raise ParamsError(f"{source}: profile: {name!r} is not a profile{did_you_mean(str(name), choices)}; use one of {', '.join(choices)}")
    return _overlaid(raw, profiles[name], source, f"profiles.{name}")


def _overlaid(base: dict, override, source: str, where: str) -> dict:
    if not isinstance(override, dict):
        raise ParamsError(f"{source}: {where}: expected a mapping of the keys it sets, got {type(override).__name__}")
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            out[key] = _overlaid(base[key], value, source, f"{where}.{key}")
        else:
            out[key] = value
    return out


def section(raw: dict, key: str, source: str = PARAMS_FILE):
    """`raw[key]`, or one line saying the block is missing (with the closest key present)."""
    if key not in raw:
        raise ParamsError(f"{source}: missing key {key}{did_you_mean(key, raw)}; add it (params.yaml in the repository has every key, with a comment)")
    return raw[key]


def block(raw: dict, key: str, cls, source: str = PARAMS_FILE):
    """The validated block `key` of the params mapping `raw`, as `cls`."""
    return build(cls, section(raw, key, source), source, f"{key}.")


def build(cls, raw, source: str, where: str, fit_only: bool = False):
    """`raw` validated as dataclass `cls`. With `fit_only`, its `rank_only` fields are not read (None)."""
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
        if fit_only and f.metadata.get("rank_only"):
            values[name] = None
            continue
        if name not in raw:
            if f.default is not dataclasses.MISSING:
                continue
            raise ParamsError(f"{source}: missing key {where}{name}; add it (params.yaml in the repository has every key, with a comment)")
        values[name] = _convert(raw[name], hints[name], f, source, f"{where}{name}")
    return cls(**values)


def _convert(value, hint, f, source: str, name: str):
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        return build(hint, value, source, name + ".")
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
