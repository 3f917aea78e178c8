"""The folder a train stage writes, data/models/<variant>: one writer, one reader.

- `model.keras`: the fitted model, reloadable with `keras.saving.load_model` alone;
- with early stopping, `carve.npz` (`held_rows`: the training rows the carve model never saw) and,
  when the final model was refitted on every row, `carve.keras` (the model fitted on the carve only;
  without refit, `model.keras` is that model). The rank stage chooses ranking settings on them.
- with the variant's `time_terms`, `time_terms.npz`: those terms (`movierec.time_bias.TimeBias`),
  which the rank stage adds to the model's predicted ratings of the test pairs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from movierec.atomic import atomic_path
from movierec.errors import MovierecError

MODELS_DIR = Path("data/models")
TIME_TERMS = "time_terms.npz"


def folder(variant: str) -> Path:
    return MODELS_DIR / variant


def save(path: Path, model, carve_model=None, held_rows: np.ndarray | None = None, time_terms=None) -> None:
    """Write the folder atomically: a killed run leaves no complete-looking model."""
    from movierec.optim import to_stock_adam

    with atomic_path(path, directory=True) as tmp:
        to_stock_adam(model).save(tmp / "model.keras")
        if carve_model is not None:
            to_stock_adam(carve_model).save(tmp / "carve.keras")
        if held_rows is not None:
            np.savez(tmp / "carve.npz", held_rows=np.asarray(held_rows, dtype=np.int64))
        if time_terms is not None:
            np.savez(tmp / TIME_TERMS, **time_terms.arrays())


def load_model(path: Path, name: str = "model"):
    """The fitted model, for scoring: without its optimizer state (nothing here trains it further)."""
    import keras

    file = Path(path) / f"{name}.keras"
    if not file.is_file():
        raise MovierecError(f"{file}: not found; run `dvc repro` first (or `dvc pull` if a remote is set up)")
    return keras.saving.load_model(file, compile=False)


def load_carve(path: Path):
    """(the model fitted on the carve, the held-out training rows), or None without early stopping."""
    held = Path(path) / "carve.npz"
    if not held.is_file():
        return None
    with np.load(held, allow_pickle=False) as archive:
        rows = archive["held_rows"]
    return load_model(path, "carve" if (Path(path) / "carve.keras").is_file() else "model"), rows


def load_time_terms(path: Path):
    """The variant's time terms (`movierec.time_bias.TimeBias`), or None if it fits none."""
    from movierec.time_bias import TimeBias

    file = Path(path) / TIME_TERMS
    if not file.is_file():
        return None
    with np.load(file, allow_pickle=False) as archive:
        return TimeBias.from_arrays(archive)
