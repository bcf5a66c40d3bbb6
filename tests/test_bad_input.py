"""A corpus of bad inputs against the real command line: every user mistake ends in one line
that names the file or flag, exit code 2 (1 for an environment fault such as a full disk), no
traceback, and nothing written (the --out folder absent, every existing file unchanged).

Most cases run ``search.cli.main`` in-process and fail at validation; a few run the real
``python -m search.cli`` to prove the process's exit code. A failing case says which kind of
failure it is: TRACEBACK (an exception escaped), SILENT (exit 0: the mistake was accepted or
ignored), UNCLEAR (wrong exit code, more than one line, a message that does not name the cause,
or something written).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from search.cli import main

REPO = Path(__file__).resolve().parents[1]
TINY = ["--set", "model.width=0.0625", "--set", "model.g_depth=1", "--set", "model.d_depth=1",
        "--set", "train.batch_size=8", "--set", "train.log_every=16", "--set", "train.sample_every=0",
        "--no-eval", "--quiet", "--threads", "1"]
SPACE = """base: mnist-mlp
budget: {images: 512, eval_every: 256}
params:
  optim.d.lr: {float: [1.0e-4, 1.0e-2], log: true}
"""


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    """A real run of two steps (mnist-mlp at 1/16 width)."""
    out = tmp_path_factory.mktemp("bad-input") / "run"
    assert main(["train", "--preset", "mnist-mlp", "--out", str(out), "--steps", "2", *TINY]) == 0
    return out


def _experiment(root: Path) -> Path:
    """A search's folder as review reads it: gansearch.json, space.yaml, one finished trial."""
    exp = root / "exp"
    trial = exp / "trial_a"
    trial.mkdir(parents=True)
    (exp / "gansearch.json").write_text(json.dumps({"name": "exp", "metric": "score", "mode": "min",
                                                    "scheduler": "asha", "options": {"max_failures": 0}}))
    (exp / "space.yaml").write_text(SPACE)
    (trial / "params.json").write_text(json.dumps({"optim.d.lr": 1e-3, "train.seed": 1}))
    report = {"score": 5.0, "images_seen": 512, "training_iteration": 1, "trial_id": "a",
              "checkpoint_dir_name": None, "done": True}
    (trial / "result.json").write_text(json.dumps(report) + "\n")
    return exp


class Ctx:
    """What a case's setup may build in its own folder (also the working directory)."""

    def __init__(self, tmp: Path, tiny_run: Path) -> None:
        self.tmp = tmp
        self._run = tiny_run

    @property
    def run(self) -> Path:
        dest = self.tmp / "run"
        if not dest.exists():
            shutil.copytree(self._run, dest)
        return dest

    def edit_checkpoint(self, edit: Callable[[dict], object]) -> Path:
        ckpt = self.run / "checkpoint.pt"
        state = torch.load(ckpt, weights_only=True)
        edit(state)
        torch.save(state, ckpt)
        return self.run

    @property
    def exp(self) -> Path:
        return self.tmp / "exp" if (self.tmp / "exp").exists() else _experiment(self.tmp)

    def write(self, name: str, text: str) -> Path:
        p = self.tmp / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
        return p

    def write_bytes(self, name: str, data: bytes) -> Path:
        p = self.tmp / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        return p

    def mkdir(self, name: str) -> Path:
        (self.tmp / name).mkdir(parents=True)
        return self.tmp / name

    @property
    def checkpoint_bytes(self) -> bytes:
        return (self._run / "checkpoint.pt").read_bytes()

    @property
    def unwritable(self) -> Path:
        """A folder nobody may create anything in (root ignores modes: then /sys, read-only to all)."""
        if os.geteuid() == 0:
            return Path("/sys/gansearch-test")
        d = self.tmp / "ro"
        d.mkdir(exist_ok=True)
        d.chmod(0o555)
        return d / "run"


@dataclass
class Case:
    id: str
    argv: Callable[[Ctx], list[str]]
    expect: tuple[str, ...]  # substrings of the one error line
    code: int = 2
    subprocess: bool = False


def train_to(out: Callable[[Ctx], str]) -> Callable[[Ctx], list[str]]:
    return lambda c: ["train", "--preset", "mnist-mlp", "--out", out(c), "--steps", "1", *TINY]


def train(*extra: str) -> Callable[[Ctx], list[str]]:
    return lambda c: ["train", "--preset", "mnist-mlp", "--out", str(c.tmp / "out"), "--steps", "1", *TINY, *extra]


def sets(*items: str) -> Callable[[Ctx], list[str]]:
    return train(*[a for item in items for a in ("--set", item)])


def _pickle_payload(c: Ctx) -> list[str]:
    import pickle

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {c.tmp / 'pwned'}",))

    (c.tmp / "evil").mkdir()
    with open(c.tmp / "evil" / "checkpoint.pt", "wb") as f:
        pickle.dump({"version": 1, "x": Payload()}, f, protocol=2)
    return ["sample", str(c.tmp / "evil"), "--n", "2", "--out", str(c.tmp / "s.npz")]


def _set(path: str, value: object) -> Callable[[dict], None]:
    def edit(state: dict) -> None:
        node = state
        *parents, last = path.split(".")
        for p in parents:
            node = node[p]
        node[last] = value
    return edit


def _drop(key: str) -> Callable[[dict], None]:
    return lambda state: state.pop(key)


def _bad_weight(state: dict) -> None:
    name = next(iter(state["G"]))
    state["G"][name] = torch.zeros(3)


def _bad_csv(c: Ctx) -> list[str]:
    c.write("bad.csv", "label,p0,p1\n1,0,0\n2,x,3\n")
    return sets("data.name=csv:bad.csv")(c)


def _retrain_dir(c: Ctx) -> list[str]:
    (c.tmp / "cfgdir").mkdir()
    return ["retrain", str(c.tmp / "cfgdir"), "--out", str(c.tmp / "out")]


def _exp_with(name: str, text: str | None) -> Callable[[Ctx], list[str]]:
    def argv(c: Ctx) -> list[str]:
        exp = c.exp
        target = exp / name
        if text is None:
            target.unlink()
        else:
            target.write_text(text)
        return ["review", str(exp)]
    return argv


CASES = [
    # --- file system: --out, --config, retrain, review --plots/--export, sample/explore --out
    Case("out-is-a-file", train_to(lambda c: str(c.write("out", "x"))), ("out", "not a directory")),
    Case("out-under-a-file", train_to(lambda c: str(c.write("f", "x") / "run")), ("f", "not a directory")),
    Case("out-unwritable", train_to(lambda c: str(c.unwritable)),
         ("gansearch-test",) if os.geteuid() == 0 else ("ro",)),
    Case("out-empty", train_to(lambda c: ""), ("--out",)),
    Case("config-is-a-dir", lambda c: ["train", "--config", str(c.tmp), "--out", str(c.tmp / "out")],
         ("is a directory",)),
    Case("config-missing", lambda c: ["train", "--config", "nope.yaml", "--out", str(c.tmp / "out")],
         ("nope.yaml", "no such")),
    Case("retrain-a-dir", _retrain_dir, ("cfgdir", "is a directory")),
    Case("retrain-missing", lambda c: ["retrain", "nope.yaml", "--out", str(c.tmp / "out")], ("nope.yaml",)),
    Case("review-plots-a-file", lambda c: ["review", str(c.exp), "--plots", str(c.write("plots", "x"))],
         ("plots", "not a directory")),
    Case("review-export-a-dir", lambda c: ["review", str(c.exp), "--export", str(c.mkdir("best.yaml"))],
         ("best.yaml", "is a directory")),
    Case("review-export-under-a-file",
         lambda c: ["review", str(c.exp), "--export", str(c.write("f", "x") / "best.yaml")], ("f", "not a directory")),
    Case("sample-out-under-a-file",
         lambda c: ["sample", str(c.run), "--n", "2", "--out", str(c.write("f", "x") / "s.npz")],
         ("f", "not a directory")),
    Case("sample-out-a-dir",
         lambda c: ["sample", str(c.run), "--n", "2", "--out", str(c.mkdir("d.npz"))], ("d.npz", "is a directory")),
    Case("explore-out-under-a-file",
         lambda c: ["explore", str(c.run), "samples", "--out", str(c.write("f", "x") / "a.png")],
         ("f", "not a directory")),
    Case("search-space-a-dir", lambda c: ["search", "--space", str(c.tmp), "--name", "x", "--storage",
                                          str(c.tmp / "runs")], ("is a directory",)),
    Case("search-space-missing", lambda c: ["search", "--space", "nope.yaml", "--name", "x", "--storage",
                                            str(c.tmp / "runs")], ("nope.yaml",)),
    # --- values: non-finite and out-of-range hyperparameters
    Case("lr-nan", sets("optim.d.lr=nan"), ("optim.d.lr", "finite")),
    Case("lr-inf", sets("optim.g.lr=.inf"), ("optim.g.lr", "finite")),
    Case("lr-minus-inf", sets("optim.d.lr=-.inf"), ("optim.d.lr",)),
    Case("lr-zero", sets("optim.d.lr=0"), ("optim.d.lr", "> 0")),
    Case("beta1-one", sets("optim.d.beta1=1"), ("optim.d.beta1", "[0, 1)")),
    Case("beta2-negative", sets("optim.g.beta2=-0.1"), ("optim.g.beta2", "[0, 1)")),
    Case("alpha-above-one", sets("optim.d.name=rmsprop", "optim.d.alpha=1.5"), ("optim.d.alpha",)),
    Case("momentum-negative", sets("optim.g.momentum=-1"), ("optim.g.momentum",)),
    Case("decay-negative", sets("optim.d.decay=-0.5"), ("optim.d.decay",)),
    Case("clip-value-zero", sets("optim.d.clip_value=0"), ("optim.d.clip_value",)),
    Case("clip-value-nan", sets("optim.g.clip_value=nan"), ("optim.g.clip_value",)),
    Case("bn-momentum-above-one", sets("model.bn_momentum=1.5"), ("model.bn_momentum",)),
    Case("leaky-slope-nan", sets("model.leaky_slope=nan"), ("model.leaky_slope",)),
    Case("gp-weight-negative", sets("loss.gp_weight=-1"), ("loss.gp_weight",)),
    Case("eval-every-negative", sets("eval.every=-5"), ("eval.every",)),
    Case("eval-objective-unknown", sets("eval.objective=fid"), ("eval.objective", "cfd")),
    Case("dropout-one", sets("model.dropout=1"), ("model.dropout", "[0, 1)")),
    Case("latent-dim-negative", sets("model.latent_dim=-3"), ("model.latent_dim",)),
    Case("depth-negative", sets("model.g_depth=-1"), ("model.g_depth",)),
    Case("width-negative", sets("model.width=-1"), ("model.width",)),
    Case("smoothing-two", sets("balance.smoothing=2"), ("balance.smoothing",)),
    Case("balance-band-empty", sets("balance.enabled=true", "balance.lower=0.9"), ("balance",)),
    Case("augment-p-two", sets("augment.p=2"), ("augment.p",)),
    Case("augment-unknown", sets("augment.policy=translation,blur"), ("augment.policy", "blur")),
    Case("ema-decay-one", sets("ema.decay=1"), ("ema.decay",)),
    Case("r1-every-zero", sets("loss.r1_every=0"), ("loss.r1_every",)),
    Case("log-every-negative", sets("train.log_every=-1"), ("train.log_every",)),
    Case("images-zero", sets("train.images=0"), ("train.images",)),
    Case("seed-too-large-set", sets(f"train.seed={2**70}"), ("train.seed",)),
    Case("seed-too-large-flag", train("--seed", str(2**70)), ("seed",)),
    Case("seed-negative", sets("train.seed=-1"), ("train.seed",)),
    Case("batch-size-unallocatable", sets("train.batch_size=1000000000000"), ("train.batch_size",)),
    Case("threads-zero", train("--threads", "0"), ("--threads",)),
    Case("threads-negative", train("--threads", "-1"), ("--threads",)),
    Case("threads-negative-subprocess", train("--threads", "-1"), ("--threads",), subprocess=True),
    Case("steps-zero", lambda c: ["train", "--preset", "mnist-mlp", "--out", str(c.tmp / "out"), "--steps", "0",
                                  *TINY], ("--steps",)),
    Case("images-negative", lambda c: ["train", "--preset", "mnist-mlp", "--out", str(c.tmp / "out"),
                                       "--images", "-5", *TINY], ("--images",)),
    # --- config text: unknown keys, wrong types, bad YAML, unknown names
    Case("unknown-key", sets("model.depth=3"), ("model.depth", "unknown key")),
    Case("unknown-section", sets("optimizer.lr=3"), ("optimizer", "unknown key")),
    Case("wrong-type", sets("optim.d.lr=fast"), ("optim.d.lr", "expected float")),
    Case("wrong-type-bool", sets("balance.enabled=maybe"), ("balance.enabled", "expected bool")),
    Case("set-without-equals", sets("optim.d.lr"), ("--set", "key.path=value")),
    Case("unknown-arch", sets("model.arch=resnet"), ("model.arch", "mlp")),
    Case("unknown-loss", sets("loss.name=wasserstein"), ("loss.name", "bce")),
    Case("unknown-choice", sets("model.init=xavier"), ("model.init", "original")),
    Case("unknown-preset", lambda c: ["train", "--preset", "nope", "--out", str(c.tmp / "out")],
         ("--preset", "mnist-mlp")),
    Case("unknown-dataset", sets("data.name=cifar"), ("data.name", "mnist")),
    Case("bad-yaml", lambda c: ["train", "--config", str(c.write("c.yaml", "model: [1, 2\n")), "--out",
                                str(c.tmp / "out")], ("c.yaml", "YAML")),
    Case("yaml-a-list", lambda c: ["train", "--config", str(c.write("c.yaml", "- 1\n- 2\n")), "--out",
                                   str(c.tmp / "out")], ("c.yaml", "mapping")),
    Case("yaml-unknown-key", lambda c: ["train", "--config", str(c.write("c.yaml", "model: {depht: 3}\n")),
                                        "--out", str(c.tmp / "out")], ("c.yaml", "model.depht")),
    Case("yaml-binary", lambda c: ["train", "--config", str(c.write_bytes("c.yaml", b"\xff\xfe\x00model")),
                                   "--out", str(c.tmp / "out")], ("c.yaml",)),
    # --- paths through YAML and flags: taken as written, never YAML-parsed
    Case("data-dir-2024", train("--data-dir", "2024"), ("2024", "no such")),
    Case("data-dir-null", train("--data-dir", "null"), ("null", "no such")),
    Case("data-dir-yaml-int", lambda c: ["train", "--config", str(c.write("c.yaml", "data: {data_dir: 2024}\n")),
                                         "--out", str(c.tmp / "out"), "--steps", "1", "--quiet", "--no-eval"],
         ("2024", "no such")),
    Case("csv-path-with-colon", sets("data.name=csv:my: file.csv"), ("my: file.csv",)),
    Case("csv-path-with-hash", sets("data.name=csv:a #b.csv"), ("a #b.csv",)),
    Case("csv-missing", sets("data.name=csv:nope.csv"), ("nope.csv",)),
    Case("csv-malformed", _bad_csv, ("bad.csv", "line")),
    Case("background-missing", lambda c: ["train", "--preset", "color-mnist-dcgan", "--out", str(c.tmp / "out"),
                                          "--steps", "1", "--quiet", "--no-eval",
                                          "--set", "data.background=nope.png"], ("nope.png",)),
    # --- files: checkpoints, experiments, .npz
    Case("ckpt-weights-do-not-fit", lambda c: ["sample", str(c.edit_checkpoint(_set("config.model.width", 0.125))),
                                                "--n", "2", "--out", str(c.tmp / "s.npz")],
         ("checkpoint.pt", "config")),
    Case("ckpt-old-format", lambda c: ["sample", str(c.edit_checkpoint(_drop("shape"))), "--n", "2",
                                        "--out", str(c.tmp / "s.npz")], ("checkpoint.pt",)),
    Case("ckpt-no-weights", lambda c: ["sample", str(c.edit_checkpoint(_drop("G"))), "--n", "2",
                                        "--out", str(c.tmp / "s.npz")], ("checkpoint.pt",)),
    Case("ckpt-version-0", lambda c: ["sample", str(c.edit_checkpoint(_set("version", 0))), "--n", "2",
                                       "--out", str(c.tmp / "s.npz")], ("checkpoint.pt", "version")),
    Case("ckpt-bad-config", lambda c: ["sample", str(c.edit_checkpoint(_set("config.model.arch", "resnet"))),
                                        "--n", "2", "--out", str(c.tmp / "s.npz")], ("checkpoint.pt", "model.arch")),
    Case("ckpt-truncated", lambda c: ["sample", str(c.write_bytes("run/checkpoint.pt", c.checkpoint_bytes[:500])
                                                     .parent), "--n", "2", "--out", "s.npz"], ("checkpoint.pt",)),
    Case("ckpt-pickle-payload", _pickle_payload, ("refused",)),
    Case("ckpt-resume-other-config", lambda c: ["train", "--preset", "mnist-mlp", "--out", str(c.run), "--steps",
                                                 "3", *TINY, "--set", "optim.d.lr=0.01"], ("optim.d.lr",)),
    Case("ckpt-resume-weights-do-not-fit",
         lambda c: ["train", "--preset", "mnist-mlp", "--out", str(c.edit_checkpoint(_bad_weight)), "--steps", "3",
                    *TINY], ("checkpoint.pt",)),
    Case("sample-missing-run", lambda c: ["sample", "nope", "--n", "2", "--out", "s.npz"], ("nope",)),
    Case("sample-n-zero", lambda c: ["sample", str(c.run), "--n", "0", "--out", "s.npz"], ("--n",)),
    Case("sample-not-npz", lambda c: ["sample", str(c.run), "--n", "2", "--out", "s.txt"], ("--out", ".npz")),
    Case("sample-label-unconditional", lambda c: ["sample", str(c.run), "--n", "2", "--label", "3", "--out",
                                                  "s.npz"], ("--label",)),
    Case("sample-seed-too-large", lambda c: ["sample", str(c.run), "--n", "2", "--seed", str(2**70), "--out",
                                             "s.npz"], ("--seed",)),
    Case("sample-n-unallocatable", lambda c: ["sample", str(c.run), "--n", str(10**13), "--out", "s.npz"],
         ("out of memory", "--n"), code=1),
    Case("explore-interpolate-unconditional", lambda c: ["explore", str(c.run), "interpolate", "1", "2", "--out",
                                                        "i.png"], ("interpolate",)),
    Case("explore-seed-too-large", lambda c: ["explore", str(c.run), "samples", "--seed", str(2**70), "--out",
                                              "a.png"], ("--seed",)),
    Case("score-device-foo", lambda c: ["score", str(c.run), "--device", "foo", "--n", "10"], ("--device", "foo")),
    Case("classifier-device-foo", lambda c: ["classifier", "train", "--dataset", "mnist", "--device", "foo"],
         ("--device", "foo")),
    Case("score-npz-no-dataset", lambda c: ["score", str(c.write("a.npz", "x"))], ("--dataset",)),
    Case("score-npz-garbage", lambda c: ["score", str(c.write("a.npz", "x")), "--dataset", "mnist"], ("a.npz",)),
    Case("score-unknown-dataset", lambda c: ["score", str(c.run), "--dataset", "cifar"], ("--dataset", "cifar")),
    Case("score-missing", lambda c: ["score", "nope"], ("nope",)),
    Case("classifier-unknown-dataset", lambda c: ["classifier", "info", "--dataset", "cifar"], ("--dataset",)),
    Case("review-missing", lambda c: ["review", "nope"], ("nope",)),
    Case("review-not-experiment", lambda c: ["review", str(c.tmp)], ("gansearch.json",)),
    Case("review-state-not-json", _exp_with("gansearch.json", "{oops"), ("gansearch.json",)),
    Case("review-state-a-list", _exp_with("gansearch.json", "[1, 2]"), ("gansearch.json",)),
    Case("review-state-bad-field", _exp_with("gansearch.json", json.dumps({"metric": 3, "mode": "sideways"})),
         ("gansearch.json", "mode")),
    Case("review-params-not-json", lambda c: _exp_with("trial_a/params.json", "{oops")(c), ("params.json",)),
    Case("review-params-a-list", lambda c: _exp_with("trial_a/params.json", "[1]")(c), ("params.json",)),
    Case("review-summary-not-json", _exp_with("summary.json", "{oops"), ("summary.json",)),
    Case("review-summary-a-list", _exp_with("summary.json", "[1]"), ("summary.json",)),
    Case("resume-space-bad-yaml", lambda c: ["resume", _exp_with("space.yaml", "params: [1, 2\n")(c)[1]],
         ("space.yaml",)),
    Case("review-top-zero", lambda c: ["review", str(c.exp), "--top", "0"], ("--top",)),
    Case("review-trial-without-export", lambda c: ["review", str(c.exp), "--trial", "a"], ("--trial",)),
    Case("review-unknown-trial", lambda c: ["review", str(c.exp), "--trial", "zz", "--export", "b.yaml"],
         ("--trial", "zz")),
    Case("review-export-not-yaml", lambda c: ["review", str(c.exp), "--export", "b.txt"], ("--export",)),
    Case("resume-no-space-file", lambda c: ["resume", str(_exp_with("space.yaml", None)(c)[1])],
         ("space.yaml",)),
    Case("resume-state-missing-keys", lambda c: ["resume", str(_exp_with("gansearch.json", "{}")(c)[1])],
         ("no Ray Tune experiment state",)),
    Case("resume-not-experiment", lambda c: ["resume", str(c.tmp)], ("gansearch.json",)),
    # --- search flags and space files (all refused before Ray starts)
    Case("search-trials-zero", lambda c: ["search", "--space", str(c.write("s.yaml", SPACE)), "--name", "x",
                                          "--storage", str(c.tmp / "runs"), "--trials", "0"], ("--trials",)),
    Case("search-space-unknown-key", lambda c: ["search", "--space", str(c.write("s.yaml", SPACE + "bogus: 1\n")),
                                                "--name", "x", "--storage", str(c.tmp / "runs")], ("bogus",)),
    Case("search-space-bad-yaml", lambda c: ["search", "--space", str(c.write("s.yaml", "params: [1\n")),
                                             "--name", "x", "--storage", str(c.tmp / "runs")], ("s.yaml",)),
    Case("search-seed-too-large", lambda c: ["search", "--space", str(c.write("s.yaml", SPACE)), "--name", "x",
                                             "--storage", str(c.tmp / "runs"), "--seed", str(2**70)], ("--seed",)),
    Case("search-name-empty", lambda c: ["search", "--space", str(c.write("s.yaml", SPACE)), "--name", "",
                                         "--storage", str(c.tmp / "runs")], ("--name",)),
    Case("search-storage-a-file", lambda c: ["search", "--space", str(c.write("s.yaml", SPACE)), "--name", "x",
                                             "--storage", str(c.write("runs", "x"))], ("runs", "not a directory")),
    Case("search-storage-empty", lambda c: ["search", "--space", str(c.write("s.yaml", SPACE)), "--name", "x",
                                            "--storage", ""], ("--storage",)),
    Case("search-max-failures", lambda c: ["search", "--space", str(c.write("s.yaml", SPACE)), "--name", "x",
                                           "--storage", str(c.tmp / "runs"), "--max-failures", "-5"],
         ("--max-failures",)),
    Case("search-space-value-out-of-range",
         lambda c: ["search", "--space", str(c.write("s.yaml", SPACE.replace("[1.0e-4, 1.0e-2], log: true",
                                                                                "[-1.0, 1.0]"))),
                    "--name", "x", "--storage", str(c.tmp / "runs")], ("s.yaml", "optim.d.lr")),
    Case("sample-out-empty", lambda c: ["sample", str(c.run), "--n", "2", "--out", ""], ("--out",)),
    Case("review-plots-empty", lambda c: ["review", str(c.exp), "--plots", ""], ("--plots",)),
    Case("retrain-out-a-file", lambda c: ["retrain", str(c.run / "config.yaml"), "--out",
                                          str(c.write("out", "x")), "--steps", "1"], ("out", "not a directory")),
    Case("batch-size-not-int", sets("train.batch_size=1.5"), ("train.batch_size", "expected int")),
    Case("arch-empty", sets("model.arch="), ("model.arch",)),
    Case("image-size-small", lambda c: ["classifier", "info", "--dataset", "color-mnist", "--image-size", "0"],
         ("--resolution", "4..1024")),
    Case("classifier-data-dir-missing", lambda c: ["classifier", "info", "--dataset", "mnist", "--data-dir",
                                                   "null"], ("--data-dir", "null")),
    Case("score-data-dir-missing", lambda c: ["score", str(c.run), "--data-dir", "2024"], ("--data-dir", "2024")),
    Case("explore-label-unconditional", lambda c: ["explore", str(c.run), "samples", "--label", "3", "--out",
                                                   "a.png"], ("--label",)),
    Case("explore-out-empty", lambda c: ["explore", str(c.run), "samples", "--out", ""], ("--out",)),
    Case("sample-label-negative", lambda c: ["sample", str(c.run), "--n", "2", "--label", "-1", "--out", "s.npz"],
         ("--label",)),
    # --- argparse-level mistakes (usage line, then one error line)
    Case("unknown-command", lambda c: ["trian"], ("invalid choice",)),
    Case("steps-not-int", lambda c: ["train", "--preset", "mnist-mlp", "--out", "o", "--steps", "many"],
         ("--steps",)),
    Case("device-not-choice", train("--device", "tpu"), ("--device",)),
]


# ----------------------------------------------------------------------------- running a case


def _tree(root: Path) -> dict[str, str]:
    """Every path under ``root`` with a digest of its bytes (a file rewritten unchanged is no change)."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(root.rglob("*"))}


def _changes(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """Paths added, removed or changed; a run folder's existing lock file holds the last
    trainer's pid, so a refused trainer that took the lock for a moment changed no data."""
    return sorted(k for k in set(before) | set(after)
                  if before.get(k) != after.get(k) and not (k in before and Path(k).name == ".lock"))


def _message_lines(err: str) -> list[str]:
    """stderr without argparse's usage block (``usage: ...`` and its indented continuation)."""
    lines, in_usage = [], False
    for line in err.splitlines():
        if line.startswith("usage:"):
            in_usage = True
            continue
        if in_usage and line.startswith(" "):
            continue
        in_usage = False
        if line.strip():
            lines.append(line)
    return lines


def _invoke(argv: list[str], cwd: Path, sub: bool, capsys) -> tuple[int, str, BaseException | None]:
    if sub:
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
        proc = subprocess.run([sys.executable, "-m", "search.cli", *argv], cwd=cwd, capture_output=True,
                              text=True, env=env, timeout=300)
        return proc.returncode, proc.stderr, None
    capsys.readouterr()
    raised = None
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except Exception as exc:  # what the real CLI would print as a traceback
        code, raised = 1, exc
    finally:
        torch.set_num_threads(1)
    return code, capsys.readouterr().err, raised


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, tiny_run: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    ctx = Ctx(tmp_path, tiny_run)
    argv = case.argv(ctx)
    monkeypatch.chdir(tmp_path)
    before = _tree(tmp_path)
    code, err, raised = _invoke(argv, tmp_path, case.subprocess, capsys)
    if raised is not None or "Traceback" in err:
        what = f"{type(raised).__name__}: {raised}" if raised is not None else err.strip().splitlines()[-1]
        pytest.fail(f"TRACEBACK: {what}"[:400])
    lines = _message_lines(err)
    if code == 0:
        pytest.fail(f"SILENT: exit 0 for {argv}")
    problems = []
    if code != case.code:
        problems.append(f"exit {code}, not {case.code}")
    if len(lines) != 1:
        problems.append(f"{len(lines)} lines: {lines[:3]}")
    elif not lines[0].startswith("gansearch: "):
        problems.append(f"not a gansearch error line: {lines[0]!r}")
    missing = [s for s in case.expect if not any(s.lower() in line.lower() for line in lines)]
    if missing:
        problems.append(f"message lacks {missing}: {lines}")
    written = _changes(before, _tree(tmp_path))
    if written:
        problems.append(f"wrote {written[:5]}")
    if problems:
        pytest.fail("UNCLEAR: " + "; ".join(problems)[:600])
    assert not (tmp_path / "pwned").exists()


def test_the_fixtures_are_good_input(tiny_run: Path, tmp_path: Path, capsys) -> None:
    """The corpus' files are valid as built: each case fails for its own mistake only."""
    assert main(["sample", str(tiny_run), "--n", "2", "--out", str(tmp_path / "s.npz")]) == 0
    assert main(["review", str(_experiment(tmp_path))]) == 0
    capsys.readouterr()


def test_disk_full_keeps_the_old_checkpoint(tiny_run: Path, tmp_path: Path) -> None:
    """A write that the file system refuses (a file-size limit stands in for a full disk) ends in
    one line naming the file, exit 1, and the previous checkpoint is still there, intact."""
    import resource
    import signal

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    old = (run / "checkpoint.pt").read_bytes()
    limit = len(old) // 2

    def small_files() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # then a write past the limit fails with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    argv = ["train", "--preset", "mnist-mlp", "--out", str(run), "--steps", "3", *TINY]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-m", "search.cli", *argv], cwd=tmp_path, capture_output=True,
                          text=True, env=env, timeout=300, preexec_fn=small_files)
    assert "Traceback" not in proc.stderr, proc.stderr[-800:]
    assert proc.returncode == 1, proc.stderr
    lines = _message_lines(proc.stderr)
    assert len(lines) == 1 and lines[0].startswith("gansearch: ") and "checkpoint.pt" in lines[0], lines
    assert (run / "checkpoint.pt").read_bytes() == old
    assert not list(run.glob(".*.tmp"))
