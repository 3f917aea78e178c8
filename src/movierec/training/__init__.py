"""Fitting a model: the regime every architecture shares (`regime`), and the
multi-worker epoch loop (`multi_worker`). Only the train stage imports this package."""
