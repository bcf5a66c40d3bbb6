"""retrain: an exported config trains for its budget with everything train writes, reproducibly."""

from __future__ import annotations

import json

import torch

from gan_core.checkpoint import load_checkpoint
from gan_core.config import save_config
from gan_core.io import read_jsonl
from search.cli import main

RUN_FILES = ("config.yaml", "checkpoint.pt", "metrics.jsonl", "learning.gif", "curves.png")


def _weights(run_dir) -> dict[str, torch.Tensor]:
    state = load_checkpoint(run_dir)
    return {f"{side}.{k}": v for side in ("G", "D") for k, v in state[side].items()}


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _last_json(capsys) -> dict:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_retrain_is_reproducible_and_resumable(tiny_cfg, tmp_path, capsys):
    cfg = tiny_cfg("dcgan-upsample", steps=3)
    save_config(cfg, tmp_path / "best.yaml")
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    assert main(["retrain", str(tmp_path / "best.yaml"), "--out", str(a), "--quiet"]) == 0
    line = _last_json(capsys)
    assert line["status"] == "completed" and line["step"] == 3 and line["images_seen"] == 48  # train.images
    for name in RUN_FILES:
        assert (a / name).exists(), name
    assert list((a / "samples").glob("step-*.png"))
    assert main(["retrain", str(tmp_path / "best.yaml"), "--out", str(b), "--quiet"]) == 0
    assert _same(_weights(a), _weights(b))  # same config and seed: the same weights on the CPU
    assert main(["retrain", str(tmp_path / "best.yaml"), "--out", str(c), "--seed", "1", "--quiet"]) == 0
    assert not _same(_weights(a), _weights(c))
    # A longer budget on the same directory resumes at step 3 instead of starting again.
    assert main(["retrain", str(tmp_path / "best.yaml"), "--out", str(a), "--steps", "5", "--quiet"]) == 0
    assert _last_json(capsys)["step"] == 5
    assert [r["step"] for r in read_jsonl(a / "metrics.jsonl") if r["kind"] == "end"] == [3, 5]


def test_retrain_reports_final_metrics(tiny_cfg, tmp_path, capsys):
    cfg = tiny_cfg("mlp", steps=2, sets=["eval.enabled=true", "eval.n=64"])
    save_config(cfg, tmp_path / "cfg.yaml")
    assert main(["retrain", str(tmp_path / "cfg.yaml"), "--out", str(tmp_path / "r"), "--images", "48",
                 "--quiet"]) == 0
    line = _last_json(capsys)
    assert line["images_seen"] == 48 and isinstance(line["score"], float)
    assert any(k.startswith("cfd") for k in line)


def test_retrain_bad_file_is_one_line(tmp_path, capsys):
    assert main(["retrain", str(tmp_path / "missing.yaml"), "--out", str(tmp_path / "x")]) == 2
    assert "missing.yaml: no such config file" in capsys.readouterr().err
    (tmp_path / "bad.yaml").write_text("optim: {d: {lr: fast}}\n")
    assert main(["retrain", str(tmp_path / "bad.yaml"), "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "optim.d.lr: expected float, got 'fast'" in err and err.count("\n") == 1
    assert not (tmp_path / "x").exists()


def _exported(cfg, tmp_path, checkpoint) -> str:
    """A config file as `review --export` writes it: the trial's best point in comments on top."""
    import dataclasses

    from search.experiment import BestPoint

    point = BestPoint("exp", "t1", "score", "min", 1.0, 32, 1.0, 32, str(checkpoint) if checkpoint else None)
    path = tmp_path / "exported.yaml"
    save_config(dataclasses.replace(cfg, name=f"{cfg.name}-t1"), path)  # export names it after its trial
    path.write_text(point.comment() + path.read_text())
    return str(path)


def test_retrain_continue_starts_at_the_trials_checkpoint_bit_for_bit(tiny_cfg, tmp_path, capsys):
    cfg = tiny_cfg("mlp", steps=6, sets=["ema.decay=0.9", "loss.name=hinge", "loss.r1_gamma=0.1",
                                         "loss.r1_every=2"])
    trial = tmp_path / "trial"  # what a trial's checkpoint folder holds: checkpoint, log, config
    save_config(cfg, tmp_path / "trial.yaml")  # the trial's own name; the export renames it
    assert main(["retrain", str(tmp_path / "trial.yaml"), "--out", str(trial), "--steps", "2", "--quiet"]) == 0
    exported = _exported(cfg, tmp_path, trial)
    trial_bytes = (trial / "checkpoint.pt").read_bytes()
    fresh, cont = tmp_path / "fresh", tmp_path / "cont"
    assert main(["retrain", exported, "--out", str(fresh), "--quiet"]) == 0
    assert main(["retrain", exported, "--out", str(cont), "--continue", "--quiet"]) == 0
    line = _last_json(capsys)
    assert line["step"] == 6 and line["continued_from"] == {"checkpoint": str(trial), "images": 32}
    assert _same(_weights(fresh), _weights(cont))  # the trial's 2 steps, then 4 more: a fresh run's 6
    steps = [r["step"] for r in read_jsonl(cont / "metrics.jsonl") if r["kind"] == "end"]
    assert steps == [2, 6]  # the trial's log comes along, then the continued run's
    assert (trial / "checkpoint.pt").read_bytes() == trial_bytes  # the trial is untouched


def test_retrain_continue_refusals_are_one_line_and_write_nothing(tiny_cfg, tmp_path, capsys):
    cfg = tiny_cfg("mlp", steps=2)
    plain = tmp_path / "plain.yaml"
    save_config(cfg, plain)
    assert main(["retrain", str(plain), "--out", str(tmp_path / "a"), "--continue"]) == 2
    assert "--continue needs a config exported by `gansearch review --export`" in capsys.readouterr().err
    assert main(["retrain", _exported(cfg, tmp_path, tmp_path / "gone"), "--out", str(tmp_path / "b"),
                 "--continue"]) == 2
    assert "is not a folder on this machine" in capsys.readouterr().err
    trial = tmp_path / "trial"
    assert main(["retrain", str(plain), "--out", str(trial), "--quiet"]) == 0
    capsys.readouterr()
    other = tiny_cfg("mlp", steps=2, sets=["model.latent_dim=8"])  # a key that shapes the weights
    assert main(["retrain", _exported(other, tmp_path, trial), "--out", str(tmp_path / "c"), "--continue"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "differing keys: model.latent_dim" in err
    assert "retrain without --continue" in err and "new --out" not in err  # --out was new already
    # A budget the trial's checkpoint (32 images) has passed: it cannot continue to it.
    assert main(["retrain", _exported(cfg, tmp_path, trial), "--out", str(tmp_path / "d"), "--continue",
                 "--images", "16"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "the budget, 16 images, is less than the 32" in err
    for name in "abcd":
        assert not (tmp_path / name).exists(), name
