"""Every block of params.yaml at once, for people-facing commands, scripts and tests. No stage imports
this: a stage reads the blocks it declares in dvc.yaml, so editing another block's validation reruns
nothing of it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from movierec.architectures import collab
from movierec.errors import did_you_mean
from movierec.params import baselines, blend, compare, core, data, embed, evaluate, prepare, train, tune, variants

BLOCKS = ("profile", "profiles", "data", "prepare", "embed", "model", "train", "evaluate", "compare", "tune", "baselines", "blend", "variants")


@dataclass(frozen=True)
class Params:
    profile: str
    data: data.DataParams
    prepare: prepare.PrepareParams
    embed: embed.EmbedParams
    model: collab.ModelParams
    train: train.TrainParams
    evaluate: evaluate.EvaluateParams
    compare: compare.CompareParams
    baselines: baselines.BaselineParams
    blend: blend.BlendParams
    variants: dict[str, variants.Variant]
    tune: tune.TuneParams

    def shared(self, variant: variants.Variant):
        """The top-level block `variant`'s architecture shares (`model` for collab), or None."""
        return self.model if variant.module.SHARED == "model" else None

    def variant(self, name: str) -> variants.Variant:
        if name not in self.variants:
            raise core.ParamsError(
                f"params.yaml: variants: no variant named {name!r}; "
                f"defined: {', '.join(sorted(self.variants))}{did_you_mean(name, self.variants)}"
            )
        return self.variants[name]


def parse_params(raw: dict, source: str = core.PARAMS_FILE) -> Params:
    """Validate every block of a params mapping; the first bad field raises ParamsError naming it."""
    if not isinstance(raw, dict):
        raise core.ParamsError(f"{source}: top level: expected a mapping of keys, got {type(raw).__name__}")
    for key in raw:
        if key not in BLOCKS:
            raise core.ParamsError(f"{source}: unknown key {key}{did_you_mean(str(key), BLOCKS)}; accepted keys: {', '.join(BLOCKS)}")
    raw = core.with_profile(raw, source)
    return Params(
        profile=core.profile_name(raw),
        data=data.load(raw, source),
        prepare=prepare.load(raw, source),
        embed=embed.load(raw, source),
        model=collab.shared(raw, source),
        train=train.load(raw, source=source),
        evaluate=evaluate.load(raw, source),
        compare=compare.load(raw, source),
        baselines=baselines.load(raw, source),
        blend=_blend(raw, source),
        variants={name: variants.load(raw, name, source) for name in variants.names(raw, source)},
        tune=_tune(raw, source),
    )


def _blend(raw: dict, source: str) -> blend.BlendParams:
    """`blend`, its variant checked to be one that predicts ratings and stops early (where its weights are learned)."""
    b = blend.load(raw, source)
    names = variants.names(raw, source)
    if b.variant not in names:
        raise core.ParamsError(
            f"{source}: blend.variant: {b.variant!r} is not a variant{did_you_mean(b.variant, names)}; name one of "
            f"{', '.join(names)} that predicts ratings and stops early, or remove the blend stage from dvc.yaml"
        )
    v = variants.load(raw, b.variant, source)
    if not v.module.PREDICTS_RATINGS or v.train.early_stopping_patience == 0:
        raise core.ParamsError(
            f"{source}: blend.variant: {b.variant!r} must predict ratings and stop early (train.early_stopping_patience > 0), "
            "since the blend's weights are learned on its validation carve; name such a variant, e.g. mf_content"
        )
    return b


def _tune(raw: dict, source: str) -> tune.TuneParams:
    t = tune.load(raw, source)
    for target in t.spaces:
        tune.space(raw, t, target, source)  # every path names a key of the params
    return t


def load_params(path: str | Path = core.PARAMS_FILE) -> Params:
    return parse_params(core.read(path), str(path))
