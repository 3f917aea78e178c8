"""Where the stages read and write, relative to the project root (dvc.yaml names the same paths)."""

from pathlib import Path

RAW_DIR = Path("data/raw")
PREPARED_DIR = Path("data/prepared")
CONTENT_ARCHIVE = Path("data/content/embeddings.npz")
CONTENT_MATRIX = Path("data/features/content.npy")
RECIPES_DIR = Path("data/recipes")
EXPLORE_DIR = Path("data/explore")
METRICS_DIR = Path("metrics")


def recipe(variant: str) -> Path:
    return RECIPES_DIR / f"{variant}.json"
