"""Stops from outside: Ctrl-C/SIGTERM at random moments resume bitwise, a second trainer on the
same folder is refused, a killed write's temp files go, a torn log line is skipped. Real
processes and real signals, no mocks.

No test here races the machine's speed: a signal is sent only once the trainer has said it is
inside a step that a test hook holds open (PyTorch's global module forward hook, registered in
the forked trainer: nothing in gansearch knows about it), and the hook lets the step finish only
once the trainer has printed that it received the signal. The moments are random all the same:
the n-th forward of G or D, drawn from a seeded generator.

GANSEARCH_TEST_PACE shows it (run these tests with each): ``slow`` makes every forward of the
trainer busy-wait 10 ms (a much slower machine), ``fast`` trains 30 steps instead of 120 (on this
machine the old sleep-and-signal test then saw the run end before its signal).
"""

import json
import os
import random
import select
import signal
import sys
import threading
import time

import torch

from gan_core.checkpoint import load_checkpoint
from gan_core.io import append_jsonl, read_jsonl
from gan_core.loop import train
from search.cli import main

PACE = os.environ.get("GANSEARCH_TEST_PACE", "normal")
assert PACE in ("normal", "slow", "fast"), f"GANSEARCH_TEST_PACE={PACE!r}: normal, slow or fast"
STEPS = 30 if PACE == "fast" else 120
HANG = 600.0  # seconds: only ever reached by a trainer that hangs (a fail-safe, not a pace)
ARGS = ["train", "--preset", "mnist-mlp", "--steps", str(STEPS), "--set", "model.width=0.0625",
        "--set", "model.g_depth=2", "--set", "model.d_depth=2", "--set", "train.batch_size=16",
        "--set", "train.d_steps=2", "--set", "train.log_every=80", "--set", "train.sample_every=100000",
        "--set", "train.checkpoint_every=0", "--no-eval", "--quiet", "--threads", "1"]


def _hold_at(module: str, n: int, held_w: int, release_r: int):
    """The trainer's forward hook: at the n-th forward of ``module`` (Generator or Discriminator)
    say so on ``held_w``, then wait for a byte on ``release_r``. The wait wakes every 50 ms only
    so that Python runs a signal handler that the kernel delivered to another thread; when the
    byte comes does not depend on it."""
    seen = 0

    def hook(mod, args):
        nonlocal seen
        if PACE == "slow":
            end = time.perf_counter() + 0.01
            while time.perf_counter() < end:
                pass
        if type(mod).__name__ != module:
            return
        seen += 1
        if seen == n:
            os.write(held_w, b"h")
            while not select.select([release_r], [], [], 0.05)[0]:
                pass
            os.read(release_r, 1)

    return hook


class Trainer:
    """``gansearch train`` in a forked process: its own pid, its own signal handlers and exit
    code, without paying torch's import again (seconds on a busy machine). With ``hold=(module,
    n)`` it stops inside the step of that forward until :meth:`release`."""

    def __init__(self, out, steps=STEPS, hold=None, argv=None):
        """``gansearch train`` of ARGS into ``out``, or any command ``argv`` (logged next to ``out``)."""
        if argv is None:
            argv = [a if a != str(STEPS) else str(steps) for a in ARGS] + ["--out", str(out)]
        self.log = out.parent / f"{out.name}.{time.monotonic_ns()}.log"
        self.returncode = None
        held_r, held_w = os.pipe()
        release_r, release_w = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:  # the child: run the command, never return into pytest
            rc = 99
            try:
                fd = os.open(self.log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
                os.dup2(fd, 1)
                os.dup2(fd, 2)
                sys.stdout = sys.stderr = open(1, "w", closefd=False)  # noqa: SIM115
                if hold is not None or PACE == "slow":
                    module, n = hold or ("", 0)
                    torch.nn.modules.module.register_module_forward_pre_hook(
                        _hold_at(module, n, held_w, release_r))
                rc = main(argv)
            finally:
                sys.stdout.flush()
                os._exit(rc)
        os.close(held_w)
        os.close(release_r)
        self._held, self._release = held_r, release_w

    def wait_held(self):
        """Block until the trainer is inside the held step."""
        ready = select.select([self._held], [], [], HANG)[0]
        assert ready and os.read(self._held, 1) == b"h", f"trainer never reached its hold\n{self.output()}"

    def wait_for_output(self, text):
        """Block until the trainer printed ``text`` (e.g. that its signal handler ran)."""
        deadline = time.monotonic() + HANG
        while text not in self.output():
            assert self.poll() is None, self.output()
            assert time.monotonic() < deadline, f"no {text!r} in\n{self.output()}"
            time.sleep(0.02)

    def release(self):
        os.write(self._release, b"r")

    def close(self):
        for fd in (self._held, self._release):
            os.close(fd)

    def poll(self):
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self):
        deadline = time.monotonic() + HANG
        while self.poll() is None:
            assert time.monotonic() < deadline, "trainer did not end"
            time.sleep(0.02)
        self.close()
        return self.returncode

    def send_signal(self, sig):
        os.kill(self.pid, sig)

    def output(self):
        return self.log.read_text()

    def result(self):
        return json.loads(next(ln for ln in reversed(self.output().splitlines()) if ln.startswith("{")))


def stop_inside_a_held_step(proc, sig):
    """``sig`` while the trainer is held inside a step; the step then finishes and it stops."""
    proc.wait_held()
    proc.send_signal(sig)
    proc.wait_for_output(f"gansearch: {signal.Signals(sig).name} received")  # the handler ran
    proc.release()


def weights(run_dir):
    state = load_checkpoint(run_dir)
    return {**{f"G.{k}": v for k, v in state["G"].items()}, **{f"D.{k}": v for k, v in state["D"].items()},
            **{f"opt_d.{i}.{k}": v for i, st in state["opt_d"]["state"].items() for k, v in st.items()}}


def test_interrupts_at_random_moments_then_resume_is_bitwise_identical(tmp_path):
    straight = tmp_path / "straight"  # in-process: the same command, never interrupted
    assert main([*ARGS, "--out", str(straight)]) == 0  # (and the forks inherit matplotlib)
    out = tmp_path / "interrupted"
    rng = random.Random(10)
    stopped_at = []
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGINT):
        # G runs 3 forwards a step here (2 D updates, 1 G update), D 5: each stop lands within
        # the first STEPS / 6 steps of its run, so all three end before STEPS.
        hold = (rng.choice(["Generator", "Discriminator"]), rng.randint(2, STEPS // 2))
        proc = Trainer(out, hold=hold)
        stop_inside_a_held_step(proc, sig)
        assert proc.wait() == 130, proc.output()
        result = proc.result()
        assert (result["status"], result["reason"]) == ("stopped", "interrupted")
        assert "Traceback" not in proc.output()
        assert load_checkpoint(out)["step"] == result["step"] < STEPS
        stopped_at.append(result["step"])
    assert stopped_at == sorted(stopped_at) and len(set(stopped_at)) == 3
    # Two Ctrl-Cs inside one step: the second aborts at once without saving (the last
    # checkpoint stays) and the resume below stays exact.
    proc = Trainer(out, hold=("Discriminator", 7))
    proc.wait_held()
    for _ in range(2):
        proc.send_signal(signal.SIGINT)
        proc.wait_for_output("gansearch: SIGINT received")  # the first; the second raises in the hold
    assert proc.wait() == 130, proc.output()
    assert "gansearch: interrupted" in proc.output() and "Traceback" not in proc.output()
    assert load_checkpoint(out)["step"] == stopped_at[-1]
    proc = Trainer(out)
    assert proc.wait() == 0, proc.output()
    assert proc.result()["status"] == "completed"
    wa, wb = weights(straight), weights(out)
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k
    steps = [r["step"] for r in read_jsonl(out / "metrics.jsonl") if r["kind"] == "train"]
    assert steps == list(range(5, STEPS + 1, 5))  # each step logged once, none lost


def test_a_second_trainer_on_the_same_out_is_refused_and_writes_nothing(tmp_path):
    out = tmp_path / "run"
    first = Trainer(out, hold=("Generator", 20))  # held inside a step past its first log line
    try:
        first.wait_held()
        config_mtime = (out / "config.yaml").stat().st_mtime_ns
        second = Trainer(out)
        assert second.wait() == 2
        assert second.output() == f"gansearch: error: {out}: in use by another trainer (pid {first.pid}); " \
                                  "wait for it to end or choose another --out\n"
        assert (out / "config.yaml").stat().st_mtime_ns == config_mtime
    finally:
        first.send_signal(signal.SIGTERM)
        first.wait_for_output("gansearch: SIGTERM received")
        first.release()
        first.wait()
    assert first.returncode == 130
    steps = [r["step"] for r in read_jsonl(out / "metrics.jsonl") if r["kind"] == "train"]
    assert steps == list(range(5, steps[-1] + 1, 5))  # one writer: no interleaved lines


def test_stale_tmp_files_are_removed_at_the_next_start(tiny_cfg, tmp_path):
    (tmp_path / "samples").mkdir()
    stale = [tmp_path / ".checkpoint.pt.k2j1x0.tmp", tmp_path / "samples" / ".step-000002.png.a1b2.tmp"]
    for p in stale:
        p.write_bytes(b"half a file")
    keep = tmp_path / "notes.tmp"  # not one of ours: left alone
    keep.write_text("mine")
    assert train(tiny_cfg("mlp", steps=2), tmp_path, progress=False).status == "completed"
    assert not any(p.exists() for p in stale) and keep.read_text() == "mine"
    assert not list(tmp_path.glob(".*.tmp"))


def test_torn_log_lines_are_skipped_and_the_rest_kept(tmp_path):
    log = tmp_path / "metrics.jsonl"
    append_jsonl(log, {"step": 1})
    with open(log, "a") as f:
        f.write('{"step": 2, "loss')  # a crash mid-append, then a restart appended after it
    append_jsonl(log, {"step": 3})
    append_jsonl(log, {"step": 4})
    with open(log, "a") as f:
        f.write('{"step": 5, "lo')  # the torn last line
    # the middle tear glued line 3 onto it: that line is lost, line 4 is kept
    assert [r["step"] for r in read_jsonl(log)] == [1, 4]


def test_resume_after_a_torn_last_line_drops_only_that_line(tiny_cfg, tmp_path):
    cfg = tiny_cfg("mlp", steps=4)
    train(tiny_cfg("mlp", steps=2), tmp_path, progress=False)
    with open(tmp_path / "metrics.jsonl", "a") as f:
        f.write('{"kind": "train", "step": 3, "lo')
    assert train(cfg, tmp_path, progress=False).step == 4
    records = read_jsonl(tmp_path / "metrics.jsonl")
    assert [r["step"] for r in records if r["kind"] == "train"] == [2, 4]


def test_signal_handlers_are_restored_and_not_installed_off_the_main_thread(tiny_cfg, tmp_path):
    def mine(signum, frame):
        raise AssertionError("not expected")

    previous = signal.signal(signal.SIGTERM, mine)
    sigint = signal.getsignal(signal.SIGINT)  # Python's, or what an earlier in-process Tune run left
    try:
        assert train(tiny_cfg("mlp", steps=2), tmp_path / "a", progress=False).status == "completed"
        assert signal.getsignal(signal.SIGTERM) is mine
        assert signal.getsignal(signal.SIGINT) is sigint
        results = []
        worker = threading.Thread(target=lambda: results.append(
            train(tiny_cfg("mlp", steps=2), tmp_path / "b", progress=False)))
        worker.start()
        worker.join()
        assert results and results[0].status == "completed"  # signal.signal would raise off main
        assert signal.getsignal(signal.SIGTERM) is mine
    finally:
        signal.signal(signal.SIGTERM, previous)


CONFIRM_SPACE = """
base: mnist-mlp
budget: {images: 8192, eval_every: 4096, grace_images: 4096}
params:
  optim.d.lr: {float: [1.0e-4, 1.0e-2], log: true}
  model.width: 0.0625
  model.g_depth: 2
  model.d_depth: 2
  train.batch_size: 64
  train.log_every: 64
  train.sample_every: 100000
  train.checkpoint_every: 0
  eval.n: 64
"""


def test_ctrl_c_during_review_confirm_stops_it_and_nothing_is_counted(tmp_path):
    """A confirmation run stopped by Ctrl-C was averaged in as if it were a result (7,584 of
    65,536 images), and confirmed_config.yaml written. Now the confirmation stops, writes nothing,
    and the same command again resumes the run and counts it whole."""
    exp = tmp_path / "exp"
    trial = exp / "trial_a"
    trial.mkdir(parents=True)
    (exp / "gansearch.json").write_text(json.dumps({"name": "exp", "metric": "score", "mode": "min",
                                                    "scheduler": "fifo", "options": {"name": "exp"}}))
    (exp / "space.yaml").write_text(CONFIRM_SPACE)
    from search.space import parse_space, random_draws

    params, fixed = random_draws(parse_space(CONFIRM_SPACE, "space.yaml", dry_run=0), 1, 7)[0]
    point = {**params, **fixed}
    (trial / "params.json").write_text(json.dumps(point))  # as Ray writes it: sampled and fixed values
    (trial / "result.json").write_text(json.dumps({"trial_id": "a", "images_seen": 8192, "score": 5.0}) + "\n")
    argv = ["review", str(exp), "--confirm", "1", "--seeds", "2"]
    # Held inside the first run's 10th forward of G (a training step: its first grid took one),
    # signalled there, released once the run said it heard.
    proc = Trainer(tmp_path / "confirm", hold=("Generator", 10), argv=argv)
    proc.wait_held()
    proc.send_signal(signal.SIGINT)
    proc.wait_for_output("SIGINT received")
    proc.release()
    assert proc.wait() == 130, proc.output()
    assert "confirm: interrupted after" in proc.output() and "Traceback" not in proc.output()
    assert not (exp / "confirm.json").exists() and not (exp / "confirmed_config.yaml").exists()
    (first,) = (exp / "confirm" / "a").glob("seed_*")
    stopped_at = load_checkpoint(first)["images_seen"]
    assert 0 < stopped_at < 8192  # signalled inside one of its first steps of 128
    again = Trainer(tmp_path / "confirm", argv=argv)
    assert again.wait() == 0, again.output()
    report = json.loads((exp / "confirm.json").read_text())
    (row,) = report["configs"]
    assert row["images"] == [8192, 8192] and all(s is not None for s in row["scores"])
    steps = [r["step"] for r in read_jsonl(first / "metrics.jsonl") if r["kind"] == "train"]
    assert steps == list(range(1, 8192 // 64 + 1))  # resumed where it stopped, each step once
