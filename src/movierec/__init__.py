"""movierec: a reproducible DVC pipeline of neural movie recommenders on MovieLens."""

__version__ = "0.1.0"
