"""Optuna's samplers a search may use (``search --sampler NAME``), by name, and how each is made.

Names only at import (``--help`` imports this module); Optuna is imported when a sampler is made.

=========  =========================================  ===========================================
name       Optuna's sampler                           fits
=========  =========================================  ===========================================
tpe        TPESampler (the default; Optuna's          any space, one objective or two (--cost);
           defaults, constant liar on), the first     its ask is linear in the trials it models:
           ``n_startup`` trials random; it models     ~50 ms of CPU at 1,000, so past TPE_HISTORY
           the latest TPE_HISTORY trials              it stays there (README, "At scale")
           (search/tpe_window.py)
cmaes      CmaEsSampler                               numeric ranges, one objective (a choice
                                                      is sampled at random); large budgets
gp         GPSampler (a Gaussian process)             small budgets (tens to a few hundred
                                                      trials): its ask is cubic in the trials
random     RandomSampler                              a baseline, any size, any objective count
nsga2      NSGAIISampler (a genetic algorithm)        two objectives (--cost), large budgets
=========  =========================================  ===========================================
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gan_core.errors import GansearchError

if TYPE_CHECKING:
    import optuna

SAMPLERS = ("tpe", "cmaes", "gp", "random", "nsga2")
DEFAULT_SAMPLER = "tpe"
SINGLE_OBJECTIVE_ONLY = ("cmaes",)
# TPE models the latest this many trials of its study (search/tpe_window.py): its ask stops
# growing there. Chosen by measurement (bench/bench_optuna.py; README, "At scale").
TPE_HISTORY = 1000


def check_sampler(name: str, *, cost: str | None, scheduler: str) -> str:
    """``name`` if a search with ``cost`` (a second objective) and ``scheduler`` can use it, else
    a one-line GansearchError naming what fits."""
    if name not in SAMPLERS:
        raise GansearchError(f"--sampler: {name!r} is not one of {', '.join(SAMPLERS)}")
    if scheduler == "pbt" and name != DEFAULT_SAMPLER:
        raise GansearchError("--sampler: a PBT search draws its population at random and has no Optuna "
                             "sampler; use --scheduler asha or fifo")
    if cost and name in SINGLE_OBJECTIVE_ONLY:
        raise GansearchError(f"--sampler {name}: searches one objective only; with --cost use one of "
                             f"{', '.join(s for s in SAMPLERS if s not in SINGLE_OBJECTIVE_ONLY)}")
    return name


def make_sampler(name: str, *, seed: int, n_startup: int,
                 tpe_history: int | None = TPE_HISTORY) -> optuna.samplers.BaseSampler:
    """The Optuna sampler ``name``, seeded; ``n_startup`` random trials first where it has them.
    TPE models the latest ``tpe_history`` trials (None: all of them, Optuna's own TPESampler)."""
    import optuna

    samplers = optuna.samplers
    if name == "tpe":
        if tpe_history is None:
            return samplers.TPESampler(seed=seed, n_startup_trials=n_startup)
        from search.tpe_window import WindowedTPESampler

        return WindowedTPESampler(history=tpe_history, seed=seed, n_startup_trials=n_startup)
    if name == "cmaes":
        return samplers.CmaEsSampler(seed=seed, n_startup_trials=n_startup, warn_independent_sampling=False)
    if name == "gp":
        return samplers.GPSampler(seed=seed, n_startup_trials=n_startup, warn_independent_sampling=False)
    if name == "random":
        return samplers.RandomSampler(seed=seed)
    if name == "nsga2":
        return samplers.NSGAIISampler(seed=seed)
    raise GansearchError(f"--sampler: {name!r} is not one of {', '.join(SAMPLERS)}")
