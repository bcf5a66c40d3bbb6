"""The loop's statistics stay on the device between log lines: logged means equal the per-step
values, and a NaN is caught at the next sync with the window it came from, before anything
broken is saved."""

import math
import re

import torch

from gan_core.checkpoint import load_checkpoint
from gan_core.config import apply_overrides
from gan_core.io import read_jsonl
from gan_core.loop import STAT_KEYS, Trainer, train


def test_logged_means_are_the_means_of_the_steps(tiny_cfg, tmp_path):
    cfg = tiny_cfg("mlp", steps=4, sets=["train.log_every=64", "train.d_steps=2"])
    tr = Trainer(cfg, None, torch.device("cpu"), None)
    steps = torch.stack([tr.train_step() for _ in range(4)])
    assert steps.shape == (4, len(STAT_KEYS)) and tr.acc == {"n": 4, "n_g": 4, "d_updates": 4, "g_updates": 4}
    train(cfg, tmp_path, progress=False)
    (record,) = [r for r in read_jsonl(tmp_path / "metrics.jsonl") if r["kind"] == "train"]
    for key, mean in zip(STAT_KEYS, steps.mean(0).tolist(), strict=True):
        assert math.isclose(record[key], mean, rel_tol=1e-6), key
    assert record["d_updates"] == record["g_updates"] == 4


def test_a_nan_is_reported_with_its_window_and_never_saved(tiny_cfg, tmp_path):
    cfg = tiny_cfg("mlp", steps=40, sets=["optim.d.lr=1e30", "optim.g.lr=1e30", "optim.d.name=sgd",
                                          "optim.g.name=sgd", "train.log_every=160", "train.checkpoint_every=64"])
    result = train(cfg, tmp_path, progress=False)
    assert result.status == "diverged"
    match = re.fullmatch(r"non-finite (.+) in steps (\d+)-(\d+)", result.reason)
    assert match, result.reason
    first, last = int(match[2]), int(match[3])
    assert 1 <= first <= last == result.step < 40
    if (tmp_path / "checkpoint.pt").exists():  # saved before the NaN: every weight finite
        state = load_checkpoint(tmp_path)
        assert state["step"] < first
        assert all(torch.isfinite(v).all() for v in state["G"].values() if v.is_floating_point())


def test_with_the_balance_controller_a_nan_is_caught_at_its_step(tiny_cfg, tmp_path):
    cfg = tiny_cfg("cgan", steps=40, sets=["optim.d.lr=1e30", "optim.g.lr=1e30", "optim.d.name=sgd",
                                           "optim.g.name=sgd", "balance.enabled=true"])
    result = train(cfg, tmp_path, progress=False)
    assert result.status == "diverged" and result.reason.endswith(f"at step {result.step}")


def test_checkpointed_sums_resume_the_log_exactly(tiny_cfg, tmp_path):
    # a checkpoint between two log lines carries the running sums; the resumed log line matches
    cfg = apply_overrides(tiny_cfg("mlp", steps=6), ["train.log_every=96", "train.checkpoint_every=48"])
    train(cfg, tmp_path / "straight", progress=False)
    calls = {"n": 0}

    def stop() -> bool:
        calls["n"] += 1
        return calls["n"] > 4

    from gan_core.loop import Callbacks

    train(cfg, tmp_path / "resumed", progress=False, callbacks=Callbacks(should_stop=stop))
    train(cfg, tmp_path / "resumed", progress=False)
    a, b = ([r for r in read_jsonl(d / "metrics.jsonl") if r["kind"] == "train"]
            for d in (tmp_path / "straight", tmp_path / "resumed"))
    keys = [*STAT_KEYS, "d_updates", "g_updates", "step"]
    assert [[r[k] for k in keys] for r in a] == [[r[k] for k in keys] for r in b]
