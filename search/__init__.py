"""gansearch: find good GANs by distributed hyperparameter search (Ray Tune + Optuna)."""

__version__ = "0.1.0"
