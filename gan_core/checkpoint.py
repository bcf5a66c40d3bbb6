"""Checkpoints: plain dicts of state_dicts plus step, config and RNG state, written atomically.

``run_dir/checkpoint.pt`` holds everything needed to resume a run bit for bit (models,
optimisers, schedulers, balance controller, RNG streams, step) and to sample from it later.
With ``ema.decay`` > 0 it also holds ``G_ema``, the moving average of G's weights, and
``load_run`` returns that as ``Run.G`` (what every sample, score and picture uses), keeping the
trained weights as ``Run.G_raw``.

Example::

    run = load_run("runs/mnist")
    images = generate(run.G, 64, seed=0)          # gan_core.sampling: uint8 (64, 1, 28, 28)
"""

from __future__ import annotations

import copy
import pickle
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from gan_core import models, user_arch
from gan_core.config import Config, diff, from_dict
from gan_core.errors import ConfigError, GansearchError
from gan_core.io import atomic_torch_save, atomic_write_bytes

CHECKPOINT = "checkpoint.pt"
VERSION = 1


def checkpoint_path(run_dir_or_file: str | Path) -> Path:
    p = Path(run_dir_or_file)
    return p / CHECKPOINT if p.is_dir() else p


def save_checkpoint(state: dict[str, Any], path: str | Path) -> None:
    atomic_torch_save({"version": VERSION, **state}, Path(path))


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint; a missing or unreadable file is a one-line GansearchError.

    Loaded with ``weights_only=True``: a checkpoint is a pickle, and a full unpickler runs
    whatever code the file names, so a checkpoint from a shared bucket or a download could
    execute anything. Checkpoints hold only tensors and plain data (LambdaLR's state_dict drops
    its lambda; the optimisers rebuild it), so nothing gansearch writes is refused."""
    path = checkpoint_path(path)
    if not path.exists():
        raise GansearchError(f"{path}: no checkpoint here (is it a gansearch run directory?)")
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except OSError as exc:
        raise GansearchError(f"{path}: {exc.strerror or exc}") from None
    except pickle.UnpicklingError as exc:
        raise GansearchError(f"{path}: {_unpickling_reason(str(exc))}") from None
    except Exception as exc:  # foreign bytes make the unpickler raise anything (KeyError ...)
        detail = ": ".join(x for x in (type(exc).__name__, _first_line(str(exc))) if x)
        raise GansearchError(f"{path}: not a readable checkpoint (cut short or not a torch file; "
                             f"{detail})") from None
    if not isinstance(state, dict) or state.get("version") != VERSION:
        found = state.get("version") if isinstance(state, dict) else None
        raise GansearchError(f"{path}: not a gansearch checkpoint of this version (version {VERSION} expected, "
                             f"found {found}); train it again with this gansearch")
    missing = [k for k in REQUIRED if not isinstance(state.get(k), REQUIRED[k])]
    if missing:
        raise GansearchError(f"{path}: an incomplete or older-format checkpoint (no {', '.join(missing)}); "
                             "train it again with this gansearch")
    return state


# Keys that may change between a checkpoint and a resume: they never touch the weights (``name``:
# review's export renames a trial's config after its trial).
RESUMABLE_CHANGES = ("name", "train.images", "train.log_every", "train.sample_every",
                     "train.checkpoint_every", "train.weight_warn", "data.data_dir", "eval.")


def keys_blocking_resume(saved: Config, cfg: Config, *, also_mutable: Sequence[str] = ()) -> list[str]:
    """The one rule of what may change on resume: the keys in which ``cfg`` differs from the
    ``saved`` config of a checkpoint and that may not change there. The budget, logging and
    evaluation may always change; ``also_mutable`` adds key prefixes a caller allows besides
    (a PBT search passes the keys it perturbs in a running trial)."""
    allowed = RESUMABLE_CHANGES + tuple(also_mutable)
    return [k for k in diff(saved, cfg) if not k.startswith(allowed)]


def check_resumable(state: dict[str, Any], cfg: Config, path: Path) -> None:
    """Refuse to resume ``state`` (read from ``path``) under ``cfg`` if they differ in a key that
    shapes the weights; the budget, logging and evaluation may change."""
    changed = keys_blocking_resume(from_dict(state["config"]), cfg)
    if not changed and ":" in cfg.model.arch:
        user_arch.check_source(state.get("arch_source"), cfg.model.arch, path)
    if changed:
        raise GansearchError(f"{path}: refusing to resume with a different config; differing keys: "
                             + ", ".join(changed) + " (use a new --out directory)")


def start_run_from(folder: str | Path, run_dir: str | Path, cfg: Config) -> int | None:
    """Begin ``run_dir`` at another run's checkpoint ``folder`` (a search trial's checkpoint
    folder, or a run directory), so that training ``cfg`` there continues from it: the
    checkpoint and its log are copied. The run's RNG streams are in the checkpoint, so the
    continued run is bit for bit the run a fresh start of the same config would have been,
    minus the images already trained. Returns the images seen at that checkpoint, or None if
    ``run_dir`` already has a checkpoint of its own (then training simply resumes it)."""
    src, dst = Path(folder), Path(run_dir)
    if (dst / CHECKPOINT).exists():
        return None
    state = load_checkpoint(src)
    check_resumable(state, cfg, src / CHECKPOINT)
    dst.mkdir(parents=True, exist_ok=True)
    log = src / "metrics.jsonl"
    if log.exists():
        atomic_write_bytes(dst / "metrics.jsonl", log.read_bytes())
    atomic_write_bytes(dst / CHECKPOINT, (src / CHECKPOINT).read_bytes())  # last: it marks the run as begun
    return int(state["images_seen"])


# What every reader of a checkpoint needs, with its type (a resume needs more: the loop checks).
REQUIRED: dict[str, type | tuple[type, ...]] = {"config": dict, "shape": (list, tuple), "num_classes": int, "step": int, "images_seen": int,
            "G": dict, "D": dict}


def load_weights(module: torch.nn.Module, weights: Any, path: Path, what: str) -> None:
    """``module.load_state_dict`` with a one-line error naming the file when the weights do not
    fit the model its config builds (an edited config, a checkpoint of another architecture)."""
    try:
        module.load_state_dict(weights)
    except (RuntimeError, KeyError, TypeError, ValueError, AttributeError) as exc:
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        detail = lines[1] if len(lines) > 1 else (lines[0] if lines else type(exc).__name__)
        raise GansearchError(f"{path}: the {what} weights do not fit the model of its stored config "
                             f"({detail[:160]})") from None


def _first_line(text: str) -> str:
    """The first sentence of a message, on one line."""
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    return line.split(". ", 1)[0]


def _unpickling_reason(message: str) -> str:
    """One line for torch's many-line weights-only refusal, naming the object it would build."""
    found = re.search(r"GLOBAL ([\w.]+)", message)
    if found:
        return (f"refused: it holds a Python object ({found.group(1)}) besides tensors and plain "
                "data, and loading it could run code; only checkpoints written by gansearch load")
    lines = [ln.strip() for ln in message.splitlines() if ln.strip()]
    detail = lines[2] if lines and lines[0].startswith("Weights only load failed") and len(lines) > 2 \
        else _first_line(message)
    return f"not a readable checkpoint ({detail})"


@dataclass
class Run:
    """A trained run. ``G`` is the generator to sample from: the EMA generator when the run
    averaged G's weights (``ema.decay`` > 0), else G itself; ``G_raw`` is always G itself."""

    cfg: Config
    G: models.Generator
    D: models.Discriminator
    step: int
    images_seen: int
    run_dir: Path
    status: str
    G_raw: models.Generator | None = None


def load_run(run_dir_or_ckpt: str | Path, device: str | torch.device = "cpu") -> Run:
    """Rebuild the models of a run from its checkpoint, in eval mode, on ``device``."""
    path = checkpoint_path(run_dir_or_ckpt)
    state = load_checkpoint(path, device)
    try:
        cfg = from_dict(state["config"])
    except ConfigError as exc:
        raise GansearchError(f"{path}: stored config is invalid ({exc})") from None
    try:
        G, D = models.build(cfg.model, tuple(state["shape"]), state["num_classes"])
    except user_arch.ArchError as exc:
        raise GansearchError(f"{path}: {exc}") from None
    except (ValueError, RuntimeError, GansearchError) as exc:
        raise GansearchError(f"{path}: its stored config builds no model for shape {tuple(state['shape'])} "
                             f"({str(exc).splitlines()[0]})") from None
    if ":" in cfg.model.arch:
        user_arch.check_source(state.get("arch_source"), cfg.model.arch, path)
    load_weights(G, state["G"], path, "G")
    load_weights(D, state["D"], path, "D")
    G.to(device).eval()
    D.to(device).eval()
    G_sample = G
    if cfg.ema.decay > 0 and state.get("G_ema") is not None:
        G_sample = copy.deepcopy(G)
        load_weights(G_sample, state["G_ema"], path, "G_ema")
    return Run(cfg, G_sample, D, state["step"], state["images_seen"], path.parent,
               state.get("status", ""), G_raw=G)

