"""The training loop: real tiny trainings on CPU, resume equivalence, determinism, divergence."""

import json

import pytest
import torch

from gan_core.checkpoint import load_checkpoint, load_run
from gan_core.config import apply_overrides
from gan_core.errors import GansearchError
from gan_core.io import read_jsonl
from gan_core.loop import Callbacks, train


def weights(run_dir):
    state = load_checkpoint(run_dir)
    return {**{f"G.{k}": v for k, v in state["G"].items()}, **{f"D.{k}": v for k, v in state["D"].items()}}


def assert_same_weights(a, b):
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k


def test_run_writes_every_artifact(tiny_cfg, tmp_path):
    cfg = tiny_cfg("dcgan-upsample", steps=4)
    result = train(cfg, tmp_path, progress=False)
    assert result.status == "completed" and result.step == 4 and result.images_seen == 64
    for name in ("config.yaml", "checkpoint.pt", "metrics.jsonl", "learning.gif", "curves.png"):
        assert (tmp_path / name).exists(), name
    assert sorted(p.name for p in (tmp_path / "samples").iterdir()) == [
        "step-000000.png", "step-000002.png", "step-000004.png"]
    records = [r for r in read_jsonl(tmp_path / "metrics.jsonl") if r["kind"] == "train"]
    assert [r["images_seen"] for r in records] == [32, 64]
    for r in records:
        assert {"loss_d", "loss_g", "acc_real", "acc_fake", "images_per_s", "train_d", "train_g"} <= set(r)
        assert 0.0 <= r["acc_real"] <= 1.0


@pytest.mark.parametrize("arch", ["mlp", "dcgan-upsample", "dcgan-transpose", "cgan"])
def test_resume_is_bitwise_identical_to_a_straight_run(tiny_cfg, tmp_path, arch):
    sets = ["train.d_steps=2"] if arch == "mlp" else []
    cfg = tiny_cfg(arch, steps=6, sets=sets)
    straight = train(cfg, tmp_path / "straight", progress=False)
    calls = {"n": 0}

    def stop_after_3():
        calls["n"] += 1
        return calls["n"] > 3

    first = train(cfg, tmp_path / "resumed", progress=False, callbacks=Callbacks(should_stop=stop_after_3))
    assert first.status == "stopped" and first.step == 3
    second = train(cfg, tmp_path / "resumed", progress=False)
    assert straight.status == second.status == "completed" and second.step == 6
    assert_same_weights(tmp_path / "straight", tmp_path / "resumed")


def test_two_runs_with_the_same_seed_are_identical_and_another_seed_differs(tiny_cfg, tmp_path):
    cfg = tiny_cfg("mlp", steps=3)
    train(cfg, tmp_path / "a", progress=False)
    train(cfg, tmp_path / "b", progress=False)
    assert_same_weights(tmp_path / "a", tmp_path / "b")
    train(apply_overrides(cfg, ["train.seed=1"]), tmp_path / "c", progress=False)
    wa, wc = weights(tmp_path / "a"), weights(tmp_path / "c")
    assert any(not torch.equal(wa[k], wc[k]) for k in wa)


def test_resuming_with_a_different_config_is_refused_with_the_keys(tiny_cfg, tmp_path):
    cfg = tiny_cfg("mlp", steps=2)
    train(cfg, tmp_path, progress=False)
    changed = apply_overrides(cfg, ["optim.d.lr=0.1", "model.dropout=0.2"])
    with pytest.raises(GansearchError, match="differing keys: model.dropout, optim.d.lr"):
        train(changed, tmp_path, progress=False)
    # a longer budget is not a different experiment: it extends the run
    longer = apply_overrides(cfg, [f"train.images={16 * 4}"])
    assert train(longer, tmp_path, progress=False).step == 4


def test_nan_ends_the_run_as_diverged_without_a_traceback(tiny_cfg, tmp_path):
    cfg = tiny_cfg("mlp", steps=30, sets=["optim.d.lr=1e30", "optim.g.lr=1e30", "optim.d.name=sgd",
                                          "optim.g.name=sgd"])
    result = train(cfg, tmp_path, progress=False)
    assert result.status == "diverged" and "non-finite" in result.reason
    end = read_jsonl(tmp_path / "metrics.jsonl")[-1]
    assert end["kind"] == "end" and end["status"] == "diverged"


def test_balance_controller_pauses_inside_the_loop(tiny_cfg, tmp_path):
    # thresholds so tight that the controller must act within a few steps
    cfg = tiny_cfg("cgan", steps=30, sets=["balance.enabled=true", "balance.lower=5.0", "balance.upper=9.0",
                                           "balance.warmup=2", "balance.hysteresis=0.1"])
    train(cfg, tmp_path, progress=False)
    events = [r for r in read_jsonl(tmp_path / "metrics.jsonl") if r["kind"] == "balance"]
    assert events and events[0]["side"] == "d" and events[0]["action"] == "pause"
    last = [r for r in read_jsonl(tmp_path / "metrics.jsonl") if r["kind"] == "train"][-1]
    assert last["d_updates"] < last["g_updates"]


def test_callbacks_see_logs(tiny_cfg, tmp_path):
    logs = []
    train(tiny_cfg("mlp", steps=4), tmp_path, progress=False, callbacks=Callbacks(on_log=logs.append))
    assert [r["step"] for r in logs] == [2, 4]
    json.dumps(logs)


def test_load_run_rebuilds_the_generator(tiny_cfg, tmp_path):
    train(tiny_cfg("cgan", steps=2), tmp_path, progress=False)
    run = load_run(tmp_path)
    assert run.G.conditional and run.step == 2 and not run.G.training
