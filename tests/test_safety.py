"""Safety: a checkpoint cannot run code, and no secret lands in a file or on the terminal."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from sqlalchemy.dialects import registry
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite

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


# ----------------------------------------------------------------------------- no secrets in files

PASSWORD = "pw-5ecret-7731"


class PasswordSQLite(SQLiteDialect_pysqlite):
    """SQLite behind a URL with a user and a password (ignored), as a shared database's URL has
    them: a real search can then run against a URL that carries a password."""

    supports_statement_cache = True

    def create_connect_args(self, url):
        return super().create_connect_args(url._replace(username=None, password=None))


registry.register("sqlite.pwtest", __name__, "PasswordSQLite")


def test_redact_hides_only_the_password():
    from search.study_db import is_redacted, redact

    assert redact("postgresql://gs:s3cret@db.internal:5432/studies") == "postgresql://gs:***@db.internal:5432/studies"
    assert redact("mysql+pymysql://u:p%40ss@h/db?charset=utf8mb4") == "mysql+pymysql://u:***@h/db?charset=utf8mb4"
    assert redact("postgresql://gs:p@ss/w@host/db") == "postgresql://gs:***@host/db"
    for plain in ("sqlite:////tmp/x.db", "postgresql://gs@host/db", "postgresql://host/db"):
        assert redact(plain) == plain and not is_redacted(plain)
    assert is_redacted("postgresql://gs:***@host/db")


def test_a_password_on_the_command_line_is_refused_without_showing_it(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "search.cli", "search", "--space", "spaces/quick.yaml",
                           "--name", "x", "--storage", str(tmp_path), "--optuna-storage",
                           f"postgresql://gs:{PASSWORD}@db/studies"], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert "GANSEARCH_OPTUNA_STORAGE" in proc.stderr and "postgresql://gs:***@db/studies" in proc.stderr
    assert PASSWORD not in proc.stdout + proc.stderr
    assert not any(tmp_path.iterdir())


@pytest.fixture(scope="module")
def local_ray():
    import ray

    from tests.test_tune import worker_env

    ray.shutdown()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": worker_env()})
    yield
    ray.shutdown()


@pytest.mark.usefixtures("local_ray")
def test_the_study_password_never_reaches_a_file_or_the_output(tmp_path, monkeypatch, capfd):
    """A real search with GANSEARCH_OPTUNA_STORAGE holding a password: no file of the experiment
    folder (gansearch.json, Ray's pickles of the searcher and tuner, results, checkpoints) and no
    line of output holds it; resume needs the variable again and refuses in one line without it."""
    from search.cli import main
    from search.study_db import ENV
    from tests.test_tune import TINY

    space = tmp_path / "tiny.yaml"
    space.write_text(TINY.format(images=1024, every=512, extra="search: {scheduler: fifo}\n",
                                 g_lrs="[0.0002, 0.002]"))
    url = f"sqlite+pwtest://gs:{PASSWORD}@/{tmp_path / 'shared-study.db'}"
    redacted = f"sqlite+pwtest://gs:***@/{tmp_path / 'shared-study.db'}"
    monkeypatch.setenv(ENV, url)
    assert main(["search", "--space", str(space), "--name", "secret", "--storage", str(tmp_path / "runs"),
                 "--trials", "2", "--quiet"]) == 0
    exp = tmp_path / "runs" / "secret"
    state = json.loads((exp / "gansearch.json").read_text())
    assert state["optuna_storage"] == redacted and state["options"]["optuna_storage"] == redacted
    files = [p for p in exp.rglob("*") if p.is_file()]
    assert len(files) > 20 and not (exp / "optuna.db").exists()
    assert [p for p in files if PASSWORD.encode() in p.read_bytes()] == []
    # Ray did pickle the study's storage into the folder, with the password hidden.
    assert [p for p in files if p.suffix == ".pkl" and b"gs:***@" in p.read_bytes()]

    monkeypatch.delenv(ENV)
    assert main(["resume", str(exp)]) == 2
    monkeypatch.setenv(ENV, url)
    assert main(["resume", str(exp)]) == 0  # the searcher unpickled with the real URL
    out, err = capfd.readouterr()
    assert PASSWORD not in out + err
    assert f"gansearch: error: {ENV}: not set; this experiment's Optuna study is in {redacted}" in err
    assert [p for p in exp.rglob("*") if p.is_file() and PASSWORD.encode() in p.read_bytes()] == []
