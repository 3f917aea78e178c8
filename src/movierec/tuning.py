"""Search a variant's settings, or a baseline's (EASE, time_bias), on the validation carve with Optuna: `movierec tune TARGET`.

A trial sets the sampled values in the params (as `dvc exp run -S` would), validates them as the
pipeline does, fits on the carve's training rows and scores the training rows held out from them:
RMSE for a rating model and time_bias, NDCG@k for a ranker and for EASE. The test split is never read. The study
is kept in a SQLite file, so an interrupted or extended search resumes from its stored trials; the
TPE sampler and every fit are seeded, so the same seed gives the same trials. The result is params
values to try with `dvc exp run -S ...`: every published figure still comes from the pipeline.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import io
import json
import math
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np

from movierec.errors import MovierecError
from movierec.params import core, variants
from movierec.params import baselines as baselines_params
from movierec.params import data as data_params
from movierec.params import evaluate as evaluate_params
from movierec.params.evaluate import EvaluateParams
from movierec.params.tune import BASELINE_TARGETS, EASE, TIME_BIAS, Dimension, TuneParams
from movierec.prepare import Prepared

TUNING_DIR = Path("data/tuning")
SIGNIFICANT_DIGITS = 3  # sampled floats are rounded to this: values a person can read and commit


@dataclasses.dataclass(frozen=True)
class Objective:
    metric: str  # "rmse" or "ndcg_at_<k>"
    direction: str  # "minimize" or "maximize"
    score: Callable  # (params with the trial's values, optuna trial or None) -> the metric on the carve


def with_values(raw: dict, values: dict) -> dict:
    """A copy of the params with each dotted path of `values` set, as `dvc exp run -S path=value`."""
    out = copy.deepcopy(raw)
    for path, value in values.items():
        *parents, leaf = path.split(".")
        node = out
        for key in parents:
            node = node[key]
        node[leaf] = value
    return out


def sample(trial, dimensions: list[Dimension]) -> dict:
    """The trial's values, floats rounded to SIGNIFICANT_DIGITS."""
    values = {}
    for d in dimensions:
        if d.choices is not None:
            values[d.path] = trial.suggest_categorical(d.path, list(d.choices))
        elif d.whole:
            values[d.path] = trial.suggest_int(d.path, d.low, d.high, log=d.log)
        else:
            x = trial.suggest_float(d.path, d.low, d.high, log=d.log)
            values[d.path] = float(f"{x:.{SIGNIFICANT_DIGITS}g}")
    return values


def objective(raw: dict, target: str, carve: Prepared, content: np.ndarray | None, source: str) -> Objective:
    """How a trial of `target` is fitted on `carve.train` and scored on `carve.test` (training rows)."""
    e = evaluate_params.load(raw, source)
    ndcg = f"ndcg_at_{e.k}"
    if target == EASE:
        return Objective(ndcg, "maximize", lambda params, trial: _ease_ndcg(params, carve, e, source))
    if target == TIME_BIAS:
        return Objective("rmse", "minimize", lambda params, trial: _time_bias_rmse(params, carve, source))
    module = variants.load(raw, target, source).module
    metric, direction = ("rmse", "minimize") if module.PREDICTS_RATINGS else (ndcg, "maximize")
    return Objective(metric, direction, lambda params, trial: _fit_variant(params, target, carve, content, trial, source, e))


def _fit_variant(params: dict, name: str, carve: Prepared, content, trial, source: str, e: EvaluateParams) -> float:
    """The variant fitted as `params` say, on one process, scored on the carve's held-out rows: RMSE
    for a rating model, NDCG@k for a ranker."""
    import keras

    from movierec.evaluate import rating_metrics
    from movierec.lists import validation_ndcg
    from movierec.scoring import clip_ratings
    from movierec.training import regime

    v = variants.load(params, name, source)
    module, rating_range = v.module, data_params.load(params, source).rating_range
    t = dataclasses.replace(v.train, refit=False, tensorboard=False, distribute="none", workers=1)
    callbacks = (_pruning_callback(trial, module.examples(v.settings, carve).monitor),) if trial is not None and module.PREDICTS_RATINGS else ()
    keras.backend.clear_session()
    with tempfile.TemporaryDirectory(prefix="movierec-tune-") as curves:
        fit = regime.fit(
            module, v.settings, module.shared(params, source), t, carve, content if module.uses_content(v.settings) else None,
            rating_range, live_dir=Path(curves) / "curves", callbacks=callbacks, time_terms=v.time_terms,
        )
    if callbacks and callbacks[0].pruned:
        import optuna

        raise optuna.TrialPruned()
    if module.PREDICTS_RATINGS:
        predicted = np.asarray(module.predictor(fit.model)(carve.test.user, carve.test.movie), dtype=np.float64)
        if fit.time_terms is not None:
            predicted = predicted + fit.time_terms.predict_rows(carve.test)
        predicted = clip_ratings(predicted.astype(np.float32), rating_range)
        return rating_metrics(carve.test.rating, predicted)["rmse"]
    scorer = module.scorer(fit.model, v.settings, carve, 0.0)
    return max(validation_ndcg(scorer, carve, v.popularity_prior, e))  # with the prior the rank stage would keep


def _ease_ndcg(params: dict, carve: Prepared, e: EvaluateParams, source: str) -> float:
    from movierec.baselines import fit_ease
    from movierec.lists import validation_ndcg

    b = baselines_params.load(params, source)
    ease = fit_ease(
        carve.train, len(carve.user_ids), len(carve.movie_ids), reg=b.ease_reg, max_movies=b.ease_max_movies,
        positive_threshold=b.ease_positive_threshold, score_low_weight=b.ease_score_low_weight,
    )
    return validation_ndcg(ease.score_users, carve, [0.0], e)[0]


def _time_bias_rmse(params: dict, carve: Prepared, source: str) -> float:
    from movierec.baselines import fit_time_bias_as
    from movierec.evaluate import rating_metrics
    from movierec.scoring import clip_ratings

    model = fit_time_bias_as(baselines_params.load(params, source), carve.train, len(carve.user_ids), len(carve.movie_ids))
    predicted = clip_ratings(model.predict_rows(carve.test), data_params.load(params, source).rating_range)
    return rating_metrics(carve.test.rating, predicted)["rmse"]


def _pruning_callback(trial, monitor: str):
    """A Keras callback that reports the held-out metric early stopping watches after each epoch, and
    stops a trial Optuna's pruner judges hopeless (that metric is on the fit's own validation rows)."""
    import keras

    class Pruning(keras.callbacks.Callback):
        pruned = False

        def on_epoch_end(self, epoch, logs=None):
            if monitor not in (logs or {}):
                return  # without early stopping there is no held-out RMSE per epoch: nothing to prune on
            trial.report(float(logs[monitor]), epoch)
            if trial.should_prune():
                self.pruned = True
                self.model.stop_training = True

    return Pruning()


def settings_line(raw: dict, values: dict) -> str:
    """The `dvc exp run` line that runs the pipeline with `values`; under a profile other than the
    notebook's, the values go into that profile, which would otherwise override them."""
    profile = core.profile_name(raw)
    prefix = "" if profile == core.DEFAULT_PROFILE else f"profiles.{profile}."
    return "dvc exp run " + " ".join(f"-S {prefix}{path}={json.dumps(value)}" for path, value in values.items())


def open_study(path: Path, target: str, objective: Objective, dimensions: list[Dimension], seed: int):
    """The study in SQLite file `path`, created or resumed; one line if it searched another space."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    path.parent.mkdir(parents=True, exist_ok=True)
    space = {d.path: [d.low, d.high, d.log] if d.choices is None else list(d.choices) for d in dimensions}
    study = optuna.create_study(
        study_name=target, storage=f"sqlite:///{path}", load_if_exists=True, direction=objective.direction,
        sampler=optuna.samplers.TPESampler(seed=seed), pruner=optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=2),
    )
    stored = study.user_attrs.get("space")
    if stored is None:
        study.set_user_attr("space", space)
        study.set_user_attr("metric", objective.metric)
        if all(d.contains(d.current) for d in dimensions):  # trial 1: params.yaml's own values, the baseline to beat
            study.enqueue_trial({d.path: d.current for d in dimensions}, user_attrs={"current": True})
    elif stored != space or study.user_attrs.get("metric") != objective.metric:
        raise MovierecError(f"{path}: this study searched another space or metric; delete the file to start over, or pass --study NEW.db")
    return study


def search(study, objective: Objective, raw: dict, dimensions: list[Dimension], trials: int, echo=None) -> None:
    """Run the study until it holds `trials` finished trials, with a line per trial: its value, the
    best so far and the time left."""
    import optuna

    echo = echo or (lambda line: print(line, flush=True))
    stored = sum(1 for t in study.trials if t.state.is_finished())
    todo = trials - stored
    if stored:
        echo(f"Resuming {study.study_name}: {stored} trials stored, {max(todo, 0)} to run")
    started = time.perf_counter()

    def run(trial):
        values = sample(trial, dimensions)
        trial.set_user_attr("values", values)
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            return objective.score(with_values(raw, values), trial)  # without the fits' epoch and progress lines: one line per trial

    def progress(study, trial):
        ran = sum(1 for t in study.trials if t.state.is_finished()) - stored
        elapsed = time.perf_counter() - started
        value = "pruned" if trial.state == optuna.trial.TrialState.PRUNED else f"{objective.metric} {trial.value:.4f}"
        completed = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
        best = f"best {study.best_value:.4f} (trial {study.best_trial.number + 1})" if completed else "no complete trial yet"
        echo(f"trial {trial.number + 1}/{trials}: {value} · {best} · {_duration(elapsed)} elapsed, about {_duration(elapsed / ran * (todo - ran))} left")

    if todo > 0:
        study.optimize(run, n_trials=todo, callbacks=[progress])


def result(study, raw: dict, target: str, objective: Objective) -> dict:
    """The best trial as a record: its values, its carve metric and the line that runs them."""
    import optuna

    completed = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not completed:
        raise MovierecError(f"tune {target}: no trial completed; see the lines above")
    best = study.best_trial
    values = best.user_attrs["values"]
    current = [t for t in completed if t.user_attrs.get("current")]
    return {
        "current_value": current[0].value if current else None,  # params.yaml's values, when inside the space
        "best_is_current": bool(best.user_attrs.get("current")),
        "target": target,
        "metric": f"validation_{objective.metric}",
        "best_value": best.value,
        "best_trial": best.number + 1,
        "trials": sum(1 for t in study.trials if t.state.is_finished()),  # not a killed run's unfinished ones
        "pruned": sum(1 for t in study.trials if t.state == optuna.trial.TrialState.PRUNED),
        "values": values,
        "command": settings_line(raw, values),
    }


def tune(raw: dict, source: str, target: str, trials: int | None = None, study_path: Path | None = None, echo=None) -> dict:
    """`movierec tune TARGET`: search its space on the validation carve of the prepared data (from
    `dvc repro`), keep the study in `study_path` and the best trial in data/tuning/TARGET.json."""
    from movierec.atomic import write_json
    from movierec.params import tune as tune_params
    from movierec.paths import CONTENT_MATRIX, PREPARED_DIR
    from movierec.prepare import load_prepared
    from movierec.quiet import import_tensorflow
    from movierec.training.regime import carve_rows

    t: TuneParams = tune_params.load(raw, source)
    dimensions = tune_params.space(raw, t, target, source)
    check_ends(raw, target, dimensions, source)
    prepared = load_prepared(PREPARED_DIR)
    content = None
    if target not in BASELINE_TARGETS:
        v = variants.load(raw, target, source)
        if v.module.uses_content(v.settings):
            if not CONTENT_MATRIX.is_file():
                raise MovierecError(f"{CONTENT_MATRIX}: missing; run `dvc repro align` first")
            content = np.load(CONTENT_MATRIX, allow_pickle=False)
        import_tensorflow(threads=v.train.threads)  # the fit's own thread count: the same bits as its stage
    _, held = carve_rows(len(prepared.train), t.validation_fraction, t.seed)
    carve = prepared.carve(held)
    goal = objective(raw, target, carve, content, source)
    path = study_path or TUNING_DIR / f"{target}.db"
    study = open_study(path, target, goal, dimensions, t.seed)
    search(study, goal, raw, dimensions, trials or t.trials, echo)
    best = {**result(study, raw, target, goal), "study": str(path)}
    write_json(TUNING_DIR / f"{target}.json", best)
    return best


def check_ends(raw: dict, target: str, dimensions: list[Dimension], source: str) -> None:
    """Each range's ends and each choice pass the pipeline's own validation: a bad range fails now,
    not at its first unlucky trial."""
    for d in dimensions:
        for value in d.choices if d.choices is not None else (d.low, d.high):
            try:
                params = with_values(raw, {d.path: value})
                variants.load(params, target, source) if target not in BASELINE_TARGETS else baselines_params.load(params, source)
            except MovierecError as exc:
                raise MovierecError(f"{source}: tune.spaces.{target}.{d.path}: {value!r} is not accepted ({exc}); narrow the range") from None


def _duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"
