import pytest
import yaml

from conftest import REPO
from movierec.params.core import ParamsError
from movierec.params.project import load_params, parse_params


def raw():
    return yaml.safe_load((REPO / "params.yaml").read_text())


def test_repo_params_are_valid():
    p = load_params(REPO / "params.yaml")
    assert p.model.join in ("concat", "product")
    assert set(p.variants) >= {"collab", "hybrid"}


@pytest.mark.parametrize(
    "section, key, value, message",
    [
        ("model", "join", "sum", "model.join: 'sum' is not accepted; use one of concat, product"),
        ("train", "epochs", -1, "train.epochs: -1 is out of range"),
        ("train", "epochs", 2.5, "train.epochs: expected an integer"),
        ("prepare", "test_size", 1.0, "prepare.test_size: 1.0 is out of range; accepted: (0, 1)"),
        ("prepare", "test_size", 0, "prepare.test_size: 0.0 is out of range"),
        ("train", "tensorboard", "yes", "train.tensorboard: expected true or false"),
        ("data", "duplicates", "drop", "data.duplicates: 'drop' is not accepted; use one of error, keep_last"),
        ("train", "distribute", "ring", "train.distribute: 'ring' is not accepted; use one of none, mirrored, multi_worker"),
        ("train", "workers", 0, "train.workers: 0 is out of range; accepted: [1, inf]"),
        ("evaluate", "max_users", -1, "evaluate.max_users: -1 is out of range; accepted: [0, inf]"),
        ("evaluate", "top_n", 0, "evaluate.top_n: 0 is out of range"),
        ("data", "dataset", "ml-2m", "data.dataset: 'ml-2m' is not accepted; use one of ml-latest-small, ml-100k, ml-1m"),
        ("embed", "source", "plots", "embed.source: 'plots' is not accepted; use one of text, genome"),
    ],
)
def test_bad_values_name_the_parameter_and_accepted_values(section, key, value, message):
    params = raw()
    params[section][key] = value
    with pytest.raises(ParamsError, match=None) as err:
        parse_params(params)
    assert message in str(err.value)


def test_unknown_key_gets_did_you_mean():
    params = raw()
    params["train"]["epoch"] = 3
    with pytest.raises(ParamsError) as err:
        parse_params(params)
    assert "unknown key train.epoch" in str(err.value)
    assert "did you mean 'epochs'?" in str(err.value)


def test_unknown_section_gets_did_you_mean():
    params = raw()
    params["modle"] = params.pop("model")
    with pytest.raises(ParamsError, match="unknown key modle.*did you mean 'model'"):
        parse_params(params)


def test_dropout_count_must_match_dense_layers(tmp_path):
    params = raw()
    params["variants"]["collab"]["dropout"] = [0.1]
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    with pytest.raises(ParamsError, match="variants.collab.dropout has 1 rates but needs 2"):
        load_params(path)


def test_invalid_yaml_is_one_line(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("train: [unclosed\n")
    with pytest.raises(ParamsError) as err:
        load_params(path)
    assert "not valid YAML" in str(err.value) and "\n" not in str(err.value)


def test_multi_worker_with_tensorboard_is_refused_before_training(tmp_path):
    params = raw()
    params["train"].update(distribute="multi_worker", tensorboard=True)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    with pytest.raises(ParamsError, match="train.tensorboard is not supported with train.distribute=multi_worker"):
        load_params(tmp_path / "params.yaml")


def test_ranking_k_cannot_exceed_the_stored_list_length(tmp_path):
    params = raw()
    params["evaluate"].update(k=60, top_n=50)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    with pytest.raises(ParamsError, match=r"evaluate.k \(60\) must not exceed evaluate.top_n \(50\)"):
        load_params(tmp_path / "params.yaml")


@pytest.mark.parametrize("value, grid", [(0.5, [0.5]), (2, [2.0]), ([0, 1.5, 3], [0.0, 1.5, 3.0])])
def test_popularity_prior_is_one_number_or_a_list_to_choose_from(value, grid):
    params = raw()
    params["variants"]["mf_content"]["popularity_prior"] = value
    assert parse_params(params).variants["mf_content"].popularity_prior == grid


@pytest.mark.parametrize("key, value, message", [
    ("rank", 0, r"baselines\.bayes_mf\.rank: 0 is"),
    ("rounds", 2.5, r"baselines\.bayes_mf\.rounds"),
    ("ranks", 4, r"unknown key baselines\.bayes_mf\.ranks \(did you mean 'rank'\?\)"),
])
def test_a_bad_bayes_mf_setting_names_it(key, value, message, tmp_path):
    params = raw()
    params["baselines"]["bayes_mf"][key] = value
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    with pytest.raises(ParamsError, match=message):
        load_params(tmp_path / "params.yaml")


@pytest.mark.parametrize("value, message", [
    ([0, -1], r"variants\.mf_content\.popularity_prior\[1\]: -1\.0 is"),
    ([], r"variants\.mf_content\.popularity_prior: give a number or a non-empty list"),
    ("high", r"variants\.mf_content\.popularity_prior: expected a number, got 'high'"),
])
def test_bad_popularity_prior_names_the_parameter(value, message, tmp_path):
    params = raw()
    params["variants"]["mf_content"]["popularity_prior"] = value
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    with pytest.raises(ParamsError, match=message):
        load_params(tmp_path / "params.yaml")


def test_choosing_a_popularity_prior_needs_the_validation_carve(tmp_path):
    params = raw()
    params["variants"]["collab"]["popularity_prior"] = [0, 1]  # collab trains without early stopping
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    with pytest.raises(ParamsError, match=r"variants\.collab\.popularity_prior: choosing among 2 values needs the validation carve"):
        load_params(tmp_path / "params.yaml")


@pytest.mark.parametrize("name", ["ease", "blend"])
def test_a_variant_cannot_take_a_baselines_or_the_blends_name(tmp_path, name):
    params = raw()
    params["variants"][name] = params["variants"].pop("dae")  # its metrics and predictions would overwrite that model's
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    with pytest.raises(ParamsError, match=rf"variants\.{name}: the name of a baseline or of the blend stage's models, whose files it would overwrite"):
        load_params(tmp_path / "params.yaml")


@pytest.mark.parametrize("variant", ["collab", "dae", "nope"])
def test_the_blend_names_a_rating_variant_that_stops_early(tmp_path, variant):
    params = raw()
    params["blend"]["variant"] = variant  # collab stops after its epochs (no carve), dae ranks
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    expected = r"blend\.variant: 'nope' is not a variant; name one of .*mf_content.* that predicts ratings and stops early" if variant == "nope" else rf"blend\.variant: '{variant}' must predict ratings and stop early"
    with pytest.raises(ParamsError, match=expected):
        load_params(tmp_path / "params.yaml")


def test_a_variants_own_train_key_is_named_where_it_is_written():
    params = raw()
    params["variants"]["dae"]["train"]["epochs"] = -1
    with pytest.raises(ParamsError, match=r"variants\.dae\.train\.epochs: -1 is out of range"):
        parse_params(params)


def test_an_unknown_architecture_lists_the_modules_there_are():
    params = raw()
    params["variants"]["collab"]["architecture"] = "cnn"
    with pytest.raises(ParamsError, match=r"variants\.collab\.architecture: 'cnn' is not accepted; use one of collab, mf, multdae"):
        parse_params(params)


def test_a_stage_validates_only_the_blocks_it_reads():
    """The evaluate stage reads `evaluate` and `data`: a bad `model` is the train stages' business."""
    from movierec.params import data, evaluate

    params = raw()
    params["model"]["join"] = "sum"
    assert evaluate.load(params).k == params["evaluate"]["k"] and data.load(params).dataset == params["data"]["dataset"]
    with pytest.raises(ParamsError, match="model.join: 'sum' is not accepted"):
        parse_params(params)


def _recipe(tmp_path, monkeypatch, params: dict, variant: str) -> dict:
    import argparse
    import json

    from movierec.stages import recipe

    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    recipe.main(argparse.Namespace(params="params.yaml", variant=variant))
    return json.loads((tmp_path / "data/recipes" / f"{variant}.json").read_text())


def test_a_recipe_holds_what_the_fit_reads_and_nothing_about_ranking(tmp_path, monkeypatch):
    params = raw()
    dae = _recipe(tmp_path, monkeypatch, params, "dae")
    assert dae["architecture"] == "multdae" and dae["shared"] is None
    assert dae["train"]["batch_size"] == params["variants"]["dae"]["train"]["batch_size"]  # its own key
    assert dae["train"]["seed"] == params["train"]["seed"]  # inherited
    assert "score_low_weight" not in dae["settings"] and "popularity_prior" not in json_keys(dae)  # how it ranks, not how it fits
    collab = _recipe(tmp_path, monkeypatch, params, "collab")
    assert collab["shared"] == params["model"] and collab["rating_range"] == [0.0, 5.0]

    params["variants"]["dae"]["score_low_weight"] = 0.5
    params["variants"]["dae"]["popularity_prior"] = 0.3
    params["train"]["batch_size"] = 7  # dae sets its own
    assert _recipe(tmp_path, monkeypatch, params, "dae") == dae
    params["train"]["seed"] = 1
    assert _recipe(tmp_path, monkeypatch, params, "dae")["train"]["seed"] == 1


def json_keys(tree) -> set[str]:
    if isinstance(tree, dict):
        return set(tree) | {k for v in tree.values() for k in json_keys(v)}
    return set()


# ------------------------------------------------------------------ profiles: one switch for a whole recipe


def _with_settings(raw: dict, settings) -> dict:
    """`raw` with `-S key=value` settings applied, as `dvc exp run -S` writes them."""
    import copy

    out = copy.deepcopy(raw)
    for setting in settings:
        key, value = setting.split("=", 1)
        *path, last = key.split(".")
        block = out
        for part in path:
            block = block.setdefault(part, {})
        block[last] = yaml.safe_load(value)
    return out


def test_profile_large_is_the_fifteen_setting_large_data_line():
    import dataclasses
    import sys

    sys.path.insert(0, str(REPO / "benchmarks"))
    import scale

    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    by_hand = parse_params(_with_settings(raw, scale.LARGE_DATA))
    switched = parse_params(_with_settings(raw, ["profile=large"]))
    assert len(scale.LARGE_DATA) == 15 and switched == dataclasses.replace(by_hand, profile="large")
    assert parse_params(raw).train != switched.train  # the default stays the notebook's recipe
    assert parse_params(raw) == dataclasses.replace(by_hand, **{f.name: getattr(parse_params(raw), f.name) for f in dataclasses.fields(by_hand)})


def test_one_value_of_a_profile_is_still_overridable_and_an_unknown_profile_is_one_line():
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    tuned = parse_params(_with_settings(raw, ["profile=large", "profiles.large.train.epochs=3"]))
    assert tuned.train.epochs == 3 and tuned.train.batch_size == 4096
    with pytest.raises(ParamsError, match=r"^params.yaml: profile: 'lrage' is not a profile \(did you mean 'large'\?\); use one of notebook, large$"):
        parse_params(_with_settings(raw, ["profile=lrage"]))


def test_a_stage_reading_a_value_a_profile_sets_depends_on_the_switch():
    """Else `-S profile=large` would leave that stage cached with the notebook's values."""

    def dotted(tree: dict, prefix: str = "") -> list[str]:
        return [p for k, v in tree.items() for p in (dotted(v, f"{prefix}{k}.") if isinstance(v, dict) else [f"{prefix}{k}"])]

    def covers(outer: str, inner: str) -> bool:  # `${key}` stands for any variant
        a, b = outer.split("."), inner.split(".")
        return len(a) <= len(b) and all(x == y or x == "${key}" for x, y in zip(a, b))

    spec = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    profiles = yaml.safe_load((REPO / "params.yaml").read_text())["profiles"]
    checked = 0
    for name, stage in spec.items():
        params = [str(p) for p in (stage.get("do", stage).get("params") or [])]
        if name == "report":  # it reads `variants` for their names only, which no profile sets
            params = [p for p in params if p != "variants"]
        for profile, tree in profiles.items():
            for value in dotted(tree):
                if any(covers(p, value) for p in params):
                    checked += 1
                    assert "profile" in params, (name, value)
                    assert any(covers(p, f"profiles.{profile}.{value}") for p in params), f"dvc.yaml: {name} reads {value} but not profiles.{profile}.{value}"
    assert checked > 20
