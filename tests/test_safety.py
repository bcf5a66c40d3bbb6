"""Safety: a checkpoint cannot run code, and no secret lands in a file or on the terminal."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import torch

from gan_core.checkpoint import load_checkpoint, load_run
from gan_core.loop import train

REPO = Path(__file__).resolve().parents[1]


class Payload:
    """Unpickled by a full unpickler, this creates ``marker``: the stand-in for any code."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_checkpoint_carrying_code_is_refused_and_never_runs(tiny_cfg, tmp_path):
    run = tmp_path / "run"
    train(tiny_cfg("mlp", steps=2), run, progress=False)
    state = load_checkpoint(run)  # what gansearch writes loads with weights_only=True
    marker = tmp_path / "payload-ran"
    torch.save({**state, "extra": Payload(marker)}, run / "checkpoint.pt")
    # The file is a real payload: a full unpickler runs it.
    probe = tmp_path / "probe.pt"
    torch.save({"x": Payload(tmp_path / "probe-ran")}, probe)
    torch.load(probe, weights_only=False)
    assert (tmp_path / "probe-ran").exists()

    proc = subprocess.run([sys.executable, "-m", "search.cli", "sample", str(run), "--n", "4",
                           "--out", str(tmp_path / "s.npz")], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "refused" in proc.stderr and "(io.open)" in proc.stderr and "could run code" in proc.stderr
    assert not marker.exists()
    assert not (tmp_path / "s.npz").exists()


def test_checkpoints_with_every_state_load_as_plain_data(tiny_cfg, tmp_path):
    """EMA, balance controller, decaying RMSprop and SGD schedulers, evaluation results: all of it
    loads with weights_only=True (LambdaLR's state_dict leaves its lambda out)."""
    cfg = tiny_cfg("cgan", steps=4, sets=[
        "ema.decay=0.9", "balance.enabled=true", "balance.warmup=1", "optim.d.name=rmsprop",
        "optim.d.decay=0.01", "optim.g.name=sgd", "loss.r1_gamma=1.0"])
    train(cfg, tmp_path, progress=False)
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert state["sched_d"]["lr_lambdas"] == [None] and state["G_ema"] is not None
    run = load_run(tmp_path)
    assert run.G is not run.G_raw and run.step == 4
