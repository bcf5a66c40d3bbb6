"""Hyperparameter importance of a search: Optuna's PED-ANOVA over the trials that trained the full
budget, or, without a usable study, each parameter's rank correlation with the score (a hint).
"""

from __future__ import annotations

import math
import sys
import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from search.experiment import OPTUNA_FILE, TrialStatus
from search.objective import finite
from search.review.reading import ReviewedExperiment, param_value

if TYPE_CHECKING:
    from optuna.trial import FrozenTrial

MIN_IMPORTANCE_TRIALS = 5


def importance(exp: ReviewedExperiment) -> tuple[list[tuple[str, float]], str]:
    """Rows (parameter, importance) and a one-line note on how they were obtained."""
    import optuna

    from search.study_db import open_study_storage

    _import_optuna_importance()
    with tempfile.TemporaryDirectory(prefix="gansearch-review-") as tmp:
        try:
            found = open_study_storage(exp, Path(tmp))
        except Exception as exc:  # noqa: BLE001 - a broken or locked database must not stop the review
            found = None
            why = f"the Optuna study could not be opened ({type(exc).__name__}: {str(exc).splitlines()[0]})"
        else:
            why = ("no Optuna study (PBT searches have none)" if exp.manifest.is_pbt
                   else f"no Optuna study in {exp.path}/{OPTUNA_FILE}")
        if found is not None:
            storage, name = found
            states = optuna.trial.TrialState
            # The completed trials only: reading every trial of a 5,000-trial study through
            # Optuna's ORM costs seconds (its count of pruned trials reads them all too).
            study_id = storage.get_study_id_from_name(name)
            complete = [t for t in storage.get_all_trials(study_id, deepcopy=False, states=(states.COMPLETE,))
                        if t.values and math.isfinite(t.values[0])]  # the score (a --cost search: values[1])
            # Only trials at the full budget: scores at 128k and 384k images do not compare.
            # The search tells Optuna a trial stopped early as PRUNED and records images_seen.
            done = [t for t in complete if _at_full_budget(t, exp.budget_images)]
            # The search tells Optuna a trial stopped early as PRUNED: the experiment's files say
            # which (a study other searches joined may hold more of theirs).
            early = len(complete) - len(done) + exp.count(TrialStatus.STOPPED)
            if len(done) >= MIN_IMPORTANCE_TRIALS:
                directions = storage.get_study_directions(study_id)
                target = optuna.create_study(directions=directions)
                target.add_trials(done)
                # The score is the first objective (a --cost search has two). PED-ANOVA takes a
                # target as lower-is-better: a maximised score goes in negated.
                sign = exp.objective.sign
                goal = None if len(directions) == 1 else (lambda t: sign * t.values[0])
                try:
                    with warnings.catch_warnings(record=True) as caught:
                        warnings.simplefilter("always")
                        imp = optuna.importance.get_param_importances(target, target=goal)
                except (RuntimeError, ValueError) as exc:
                    why = f"Optuna could not compute importances ({str(exc).splitlines()[0]})"
                else:
                    rows = [(_pretty_name(k), float(v)) for k, v in imp.items()]
                    unknown = not all("images_seen" in t.user_attrs for t in complete)
                    return rows, (f"Optuna PED-ANOVA importance over {len(done)} trials at the full budget"
                                  + (f" ({early} stopped early left out)" if early else "")
                                  + ("; the study records no budgets, so early-stopped trials may be among "
                                     "them" if unknown else "")
                                  + " (share of the score's variation; sums to 1)" + _caveats(caught))
            else:
                why = (f"too few Optuna trials at the full budget for importance ({len(done)}, need "
                       f"{MIN_IMPORTANCE_TRIALS}; {early} stopped early)")
    return _correlation_fallback(exp, why)


def _import_optuna_importance() -> None:
    """Import optuna.importance without scikit-learn when it is not loaded yet: the package imports
    its fANOVA evaluator, which imports scikit-learn (2-4 s, a third of a review's time), and
    PED-ANOVA does not use it. A None in sys.modules makes that import fail (Python's documented
    way), and Optuna's fANOVA then says scikit-learn is missing if this process asks for it."""
    if "optuna.importance" in sys.modules or "sklearn" in sys.modules:
        return
    sys.modules["sklearn"] = None  # type: ignore[assignment]
    try:
        import optuna.importance  # noqa: F401
    finally:
        del sys.modules["sklearn"]


def _caveats(caught: list[warnings.WarningMessage]) -> str:
    """Optuna's warnings about the importances it computed, as part of the note (a warning would
    print with Optuna's file path); its experimental-feature notice and the lower-is-better
    reminder (the target is given that way) are left out."""
    import optuna

    said = [str(w.message) for w in caught if not issubclass(w.category, optuna.exceptions.ExperimentalWarning)
            and "achieve low `target` values" not in str(w.message)]
    return "".join(f"; Optuna: {m[:1].lower()}{m[1:].rstrip('.')}" for m in dict.fromkeys(said))


def _at_full_budget(trial: FrozenTrial, budget: int | None) -> bool:
    """An Optuna trial trained the whole budget (unknown for studies that record no images)."""
    images, full = trial.user_attrs.get("images_seen"), trial.user_attrs.get("budget_images", budget)
    return images is None or full is None or images >= full


def _pretty_name(name: str) -> str:
    """``model.g_depth@model.arch=mlp`` -> ``model.g_depth (model.arch=mlp)``."""
    if "@" not in name:
        return name
    key, cond = name.split("@", 1)
    return f"{key} ({cond})"


def _correlation_fallback(exp: ReviewedExperiment, why: str) -> tuple[list[tuple[str, float]], str]:
    from scipy.stats import spearmanr

    full = [t for t in exp.trials if t.status is TrialStatus.COMPLETED and finite(t.score)]
    finished = [t for t in exp.trials if t.status.finished and finite(t.score)]
    done = full if len(full) >= 3 else finished
    which = (f"{len(done)} trials at the full budget" if done is full or len(done) == len(full) else
             f"{len(done)} finished trials, {len(done) - len(full)} of them stopped early (scored at fewer images)")
    rows = []
    if len(done) >= 3:
        for p in exp.searched:
            pairs = [(param_value(exp, t, p), t.score) for t in done]
            pairs = [(v, s) for v, s in pairs if finite(v)]
            if len(pairs) >= 3 and len({v for v, _ in pairs}) > 1:
                rho = spearmanr([v for v, _ in pairs], [s for _, s in pairs]).statistic
                if finite(rho):
                    rows.append((p.key, abs(float(rho))))
        rows.sort(key=lambda r: -r[1])
    if rows:
        return rows, (f"{why}; showing |Spearman rank correlation| of each numeric parameter with "
                      f"{exp.metric} over {which} instead (a hint, not an importance)")
    return [], f"{why}; not enough finished trials for a fallback either"


def format_importance(rows: list[tuple[str, float]], note: str) -> str:
    lines = ["hyperparameter importance: " + note]
    width = max((len(k) for k, _ in rows), default=0)
    for k, v in rows:
        lines.append(f"  {k.ljust(width)}  {v:5.3f}  {'#' * int(round(v * 30))}")
    return "\n".join(lines)
