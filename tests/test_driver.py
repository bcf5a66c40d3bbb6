"""search/raytune/driver.py: one search driver per experiment, and SIGTERM as Ctrl-C. Real locks, real
signals and the real command; the whole path (a search stopped and resumed) runs in
tests/test_faults.py."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from gan_core.errors import GansearchError
from search.cli import main

REPO = Path(__file__).resolve().parents[1]

HOLD = """
import sys, time
from search.raytune.driver import experiment_lock
with experiment_lock(sys.argv[1]):
    print("held", flush=True)
    sys.stdin.read()  # until the test closes our stdin
"""


def _experiment(tmp_path: Path) -> Path:
    exp = tmp_path / "runs" / "x"
    exp.mkdir(parents=True)
    (exp / "gansearch.json").write_text(json.dumps({"name": "x", "metric": "score", "mode": "min", "scheduler": "fifo",
                                                    "options": {"name": "x", "cpus_per_trial": 1, "gpus_per_trial": 0}}))
    (exp / "space.yaml").write_text("base: mnist-mlp\nbudget: {images: 512, eval_every: 256}\nparams:\n"
                                    "  optim.d.lr: {float: [1.0e-4, 1.0e-2], log: true}\n")
    return exp


def test_a_second_driver_of_one_experiment_is_refused_in_one_line_naming_the_first(tmp_path, capsys):
    """A second `resume` while the first ran died in Optuna tracebacks and left a state every
    later resume crashed on."""
    exp = _experiment(tmp_path)
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(exp)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        assert holder.stdout.readline() == "held\n"
        before = {p.name: p.stat().st_mtime_ns for p in exp.iterdir()}
        assert main(["resume", str(exp)]) == 2
        err = capsys.readouterr().err
        assert err == (f"gansearch: error: {exp}: in use by another search driver (pid {holder.pid} on "
                       f"{socket.gethostname()}); one driver at a time; wait for it to end (`gansearch resume "
                       f"{exp}` continues a search that was stopped)\n")
        assert {p.name: p.stat().st_mtime_ns for p in exp.iterdir()} == before  # nothing touched
    finally:
        holder.stdin.close()
        holder.wait(timeout=60)


def test_the_lock_of_an_object_store_experiment_is_in_this_machines_cache(tmp_path, monkeypatch):
    from search.raytune.driver import experiment_lock

    monkeypatch.setenv("GANSEARCH_CACHE", str(tmp_path / "cache"))
    with experiment_lock("s3://bucket/gansearch/x") as lock:
        assert lock.folder.parent == tmp_path / "cache" / "locks"
        with pytest.raises(GansearchError, match=r"s3://bucket/gansearch/x: in use by another search driver \(pid "):
            experiment_lock("s3://bucket/gansearch/x").acquire()
    experiment_lock("s3://bucket/gansearch/x").acquire()  # released with its holder


def test_sigterm_is_ctrl_c_inside_the_block_and_the_old_handler_comes_back(capsys):
    from search.raytune.driver import sigterm_as_ctrl_c

    def mine(signum, frame):
        raise AssertionError("not expected inside the block")

    previous = signal.signal(signal.SIGTERM, mine)
    try:
        python_int = signal.signal(signal.SIGINT, signal.default_int_handler)  # a Ray started earlier set its own
        try:
            with pytest.raises(KeyboardInterrupt), sigterm_as_ctrl_c():  # Python's SIGINT handler: KeyboardInterrupt
                os.kill(os.getpid(), signal.SIGTERM)  # Python runs the handler before the next line
        finally:
            signal.signal(signal.SIGINT, python_int)
        assert "SIGTERM received; stopping the search as Ctrl-C does" in capsys.readouterr().err
        heard = []
        with sigterm_as_ctrl_c():
            signal.signal(signal.SIGINT, lambda s, f: heard.append(s))  # Ray Tune's, while its loop runs
            os.kill(os.getpid(), signal.SIGTERM)
        assert heard == [signal.SIGINT]
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the one before the block
        assert signal.getsignal(signal.SIGTERM) is mine
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_a_stop_python_could_not_raise_still_reaches_tunes_loop(monkeypatch, capsys):
    """A SIGTERM (or Ctrl-C) before Tune's loop took SIGINT over raises KeyboardInterrupt where
    the driver is; inside a finalizer Python could only print it (a traceback in the log) and the
    search ran to its end (make faults, CI). It is remembered, reported by nobody, and handed to
    Tune's handler at the loop's first step, once; a finalizer's real error is still reported."""
    import sys
    import weakref

    from search.raytune.driver import StopWhenAsked, sigterm_as_ctrl_c

    class Thing:
        pass

    def finalize(action) -> None:
        thing = Thing()
        ref = weakref.ref(thing, lambda _: action())
        del thing  # the callback runs here: what it raises, no one can catch
        assert ref() is None

    reported: list[type] = []
    monkeypatch.setattr(sys, "unraisablehook", lambda report: reported.append(report.exc_type))
    before = sys.unraisablehook
    heard: list[int] = []
    python_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with sigterm_as_ctrl_c():
            finalize(lambda: signal.raise_signal(signal.SIGTERM))  # the handler runs inside raise_signal
            assert "SIGTERM received" in capsys.readouterr().err and reported == []
            finalize(lambda: 1 / 0)
            assert reported == [ZeroDivisionError]
            signal.signal(signal.SIGINT, lambda s, f: heard.append(s))  # Tune's, as its loop starts
            StopWhenAsked().on_step_begin(0, [])
            StopWhenAsked().on_step_begin(1, [])
        assert heard == [signal.SIGINT]
        assert sys.unraisablehook is before
    finally:
        signal.signal(signal.SIGINT, python_int)


def test_a_trial_worker_ended_inside_a_finalizer_prints_no_traceback_but_other_errors_still_show(
        monkeypatch, capsys):
    """Ray ends a trial's worker with SIGTERM, whose handler raises SystemExit where the worker is;
    inside a weakref callback Python printed it ("Exception ignored in ... SystemExit: 1"), a
    traceback in the driver's log of a stopped PBT search (make faults). Any other exception a
    finalizer raises is still reported."""
    import sys
    import weakref

    from search.raytune.progress import unraisable_but_exit

    monkeypatch.setattr(sys, "unraisablehook", unraisable_but_exit)

    class Thing:
        pass

    def finalize(error: BaseException) -> None:
        thing = Thing()
        ref = weakref.ref(thing, lambda _: (_ for _ in ()).throw(error))
        del thing  # the callback runs here, raising where no one can catch it
        assert ref() is None

    finalize(SystemExit(1))
    assert capsys.readouterr().err == ""
    finalize(ValueError("a real bug"))
    err = capsys.readouterr().err
    assert "Exception ignored" in err and "ValueError: a real bug" in err
