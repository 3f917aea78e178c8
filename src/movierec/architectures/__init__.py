"""One module per architecture; `variants.<name>.architecture` names it. Adding one is adding a module.

An architecture module defines:
- `Settings`: a frozen dataclass of the variant keys that shape its model (validated by `params.core`);
- `SHARED`: the top-level params block it reads besides `train` (`"train"` if none), and
  `shared(raw, source)`, that block validated (None if none);
- `DISTRIBUTABLE`: whether `train.distribute` may spread its fit over devices or workers;
- `PREDICTS_RATINGS`: True for a rating model (RMSE, predicted ratings in its lists), False for a ranker;
- `check(settings, source, where)`: validation that spans several of its keys;
- `uses_content(settings)`: whether its fit needs the aligned content matrix;
- `examples(settings, prepared)`: what it trains on (`movierec.examples`: rating pairs or user histories);
- `build(settings, shared, inputs)`: a fresh Keras model (`movierec.examples.ModelInputs`);
- `scorer(model, settings, prepared, prior_weight)`: a `scoring.BlockScorer` over every movie, the
  popularity prior applied as this architecture ranks with it, and, for a rating model,
  `predictor(model)` (predicted ratings of pairs);
- `movie_vectors(model, settings, prepared)`: (n_movies, d) float32, its learned movie representation;
- `serving(model, settings, prepared, prior_weight)`: the arrays `recommend` needs to score any user
  on demand (the predictions file's on-demand keys), and `on_demand(stored, model, prepared, user,
  settings, prior_weight)`: that user's scorer from the predictions file's arrays and, where
  `ON_DEMAND_NEEDS_MODEL`, the fitted Keras model (None otherwise: `recommend` does not load it).

Only `build`, `examples`, `scorer` and `predictor` touch Keras, and they import it themselves, so
validating params never loads TensorFlow.
"""

from __future__ import annotations

import importlib
import pkgutil


def available() -> list[str]:
    """Every architecture this package holds, by module name."""
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


def find(name: str):
    """The module of architecture `name` (one of `available()`)."""
    return importlib.import_module(f"{__name__}.{name}")
