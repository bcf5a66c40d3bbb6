"""The dry run of a space: seeded random draws of its define-by-run function (also PBT's
initial population), each validated into ``Config``, and G and D built on the meta device for
each distinct model of the draws, so a bad combination is refused before Ray starts.
"""

from __future__ import annotations

from typing import Any

from gan_core.config import Config
from gan_core.errors import ConfigError, GansearchError
from search.space.core import Space
from search.space.params import DRY_RUN_DRAWS, key_of


def random_draws(space: Space, n: int, seed: int) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """``n`` draws of the space's define-by-run function by Optuna's seeded RandomSampler, the
    space's points first, as (suggested values, fixed values). The one seeded ask/tell loop: the
    dry run validates these, and PBT (which Ray will not pair with a searcher) starts from them."""
    import optuna

    fn = space.define_by_run(seed)
    was = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    out = []
    try:
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
        for point in space.all_points():
            study.enqueue_trial(point)
        for _ in range(n):
            trial = study.ask()
            fixed = fn(trial)  # suggests first: trial.params is empty until it has run
            out.append((dict(trial.params), fixed))
            study.tell(trial, 0.0)
    finally:
        optuna.logging.set_verbosity(was)
    return out


def draw_configs(space: Space, draws: int) -> list[tuple[Config, dict[str, Any]]]:
    """The points and ``draws`` seeded random draws as (Config, drawn values); a draw that does
    not validate into Config (e.g. balance.lower above balance.upper, which no single key's
    check can see) is refused here, before Ray starts."""
    out = []
    for params, fixed in random_draws(space, len(space.all_points()) + draws, seed=0):
        try:
            out.append((space.config_for({**params, **fixed}), params))
        except ConfigError as exc:
            raise GansearchError(f"{space.path}: params: a drawn combination is invalid: {exc} "
                                 f"(drawn: {_shown(params)})") from None
    return out


def _shown(params: dict[str, Any]) -> str:
    return ", ".join(f"{key_of(k)}={v}" for k, v in params.items()) or "base values"


def check_models(space: Space, draws: int = DRY_RUN_DRAWS) -> None:
    """Build G and D on the meta device for each distinct (data, model) of the points and draws,
    and check the augmentation policy against the data (``color`` needs RGB)."""
    import torch

    from gan_core import models
    from gan_core.augment import check_policy
    from gan_core.data import load_dataset
    from gan_core.errors import DataError

    seen = set()
    for cfg, params in draw_configs(space, draws):
        key = (repr(cfg.data), repr(cfg.model), tuple(cfg.augment.policy))
        if key in seen:
            continue
        seen.add(key)
        try:
            data = load_dataset(cfg.data, "train")
        except DataError as exc:
            raise GansearchError(f"{space.path}: base {space.base}: {exc}") from None
        try:
            with torch.device("meta"):
                models.build(cfg.model, data.shape, data.num_classes)
            check_policy(cfg.augment.policy, data.shape, cfg.data.name)
        except GansearchError as exc:
            raise GansearchError(f"{space.path}: params: a drawn combination cannot be built: {exc} "
                                 f"(drawn: {_shown(params)})") from None
