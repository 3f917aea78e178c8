"""params.yaml `variants`: each entry is one model to fit, rank, evaluate and explore (a dvc.yaml foreach item).

An entry names its `architecture` (a module of `movierec.architectures`, which defines the entry's
other keys), the top-level block that architecture shares (`shared`), how its lists rank
(`popularity_prior`, read by the rank stage only, never by a fit), optionally the time terms a rating
model adds to its predictions (`time_terms`), and optionally its own `train:` keys over the top-level
`train` block.
"""

from __future__ import annotations

from dataclasses import dataclass

from movierec import architectures
from movierec.errors import did_you_mean
from movierec.params import train as train_block
from movierec.params.core import BASELINES, BLENDED, PARAMS_FILE, ParamsError, build, section
from movierec.params.time_terms import TimeTerms
from movierec.params.train import TrainParams

COMMON_KEYS = ("architecture", "shared", "popularity_prior", "time_terms", "train")



@dataclass(frozen=True)
class Variant:
    name: str
    architecture: str
    settings: object  # the architecture module's `Settings`: the keys that shape its model
    train: TrainParams  # the top-level train block with the variant's own keys over it
    popularity_prior: list[float]  # several: the rank stage picks one on the validation carve
    time_terms: TimeTerms | None = None

    @property
    def module(self):
        return architectures.find(self.architecture)


def names(raw: dict, source: str = PARAMS_FILE) -> list[str]:
    entries = section(raw, "variants", source)
    if not isinstance(entries, dict) or not entries:
        raise ParamsError(f"{source}: variants: expected a non-empty mapping of variant names")
    return [str(name) for name in entries]


def load(raw: dict, name: str, source: str = PARAMS_FILE) -> Variant:
    """Variant `name`, fully validated: its architecture's settings, its train block, its priors."""
    known = names(raw, source)
    if name not in known:
        raise ParamsError(f"{source}: variants: no variant named {name!r}; defined: {', '.join(sorted(known))}{did_you_mean(name, known)}")
    where = f"variants.{name}"
    entry = raw["variants"][name]
    if not isinstance(entry, dict):
        raise ParamsError(f"{source}: {where}: expected a mapping of keys, got {type(entry).__name__}")
    if name in (*BASELINES, *BLENDED):
        raise ParamsError(f"{source}: {where}: the name of a baseline or of the blend stage's models, whose files it would overwrite; rename the variant")
    arch_name = section(entry, "architecture", f"{source}: {where}")
    available = architectures.available()
    if arch_name not in available:
        raise ParamsError(f"{source}: {where}.architecture: {arch_name!r} is not accepted; use one of {', '.join(available)}")
    module = architectures.find(arch_name)
    if entry.get("shared") != module.SHARED:
        raise ParamsError(f"{source}: {where}.shared: architecture {arch_name} shares the {module.SHARED!r} block; set shared: {module.SHARED}")
    settings = build(module.Settings, {k: v for k, v in entry.items() if k not in COMMON_KEYS}, source, f"{where}.")
    train = train_block.load(raw, name, source)
    grid = _priors(entry.get("popularity_prior", 0.0), source, f"{where}.popularity_prior")
    if len(grid) > 1 and train.early_stopping_patience == 0:
        raise ParamsError(
            f"{source}: {where}.popularity_prior: choosing among {len(grid)} values needs the validation carve "
            "of early stopping; set its train.early_stopping_patience above 0, or give one value"
        )
    if train.distribute != "none" and not module.DISTRIBUTABLE:
        raise ParamsError(f"{source}: {where}: train.distribute={train.distribute} is not supported for architecture {arch_name}; set it to none")
    if train.distribute == "multi_worker" and train.tensorboard:
        raise ParamsError(f"{source}: {where}: train.tensorboard is not supported with train.distribute=multi_worker; set one of them off")
    time_terms = None
    if entry.get("time_terms") is not None:
        if not module.PREDICTS_RATINGS:
            raise ParamsError(f"{source}: {where}.time_terms: architecture {arch_name} ranks, it predicts no ratings to correct; remove time_terms")
        time_terms = build(TimeTerms, entry["time_terms"], source, f"{where}.time_terms.")
    module.check(settings, source, where)
    return Variant(name, arch_name, settings, train, grid, time_terms)


def _priors(value, source: str, where: str) -> list[float]:
    """A number, or a non-empty list of them (the rank stage picks one on validation), each >= 0."""
    values = value if isinstance(value, list) else [value]
    if not values:
        raise ParamsError(f"{source}: {where}: give a number or a non-empty list of numbers")
    for i, v in enumerate(values):
        name = f"{where}[{i}]" if isinstance(value, list) else where
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ParamsError(f"{source}: {name}: expected a number, got {v!r}")
        if not 0 <= v < float("inf"):
            raise ParamsError(f"{source}: {name}: {float(v)!r} is out of range; accepted: [0, inf]")
    return [float(v) for v in values]
