"""The command line end to end: train a preset, resume it, sample from it, and bad input."""

import subprocess
import sys

import numpy as np
import pytest

from gan_core.io import read_jsonl
from search.cli import main

TINY = ["--set", "model.width=0.0625", "--set", "train.batch_size=8", "--set", "train.log_every=16",
        "--set", "train.sample_every=16", "--no-eval", "--quiet"]


def test_train_resume_and_sample(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--preset", "mnist-dcgan", "--out", str(out), "--steps", "2", *TINY]) == 0
    assert main(["train", "--preset", "mnist-dcgan", "--out", str(out), "--steps", "4", *TINY]) == 0
    steps = [r["step"] for r in read_jsonl(out / "metrics.jsonl") if r["kind"] == "train"]
    assert steps == [2, 4]  # the second command resumed at step 2 rather than starting again
    assert main(["sample", str(out), "--n", "10", "--out", str(tmp_path / "s.npz")]) == 0
    data = np.load(tmp_path / "s.npz")
    assert data["images"].dtype == np.uint8 and data["images"].shape == (10, 28, 28)
    assert "labels" not in data
    capsys.readouterr()


def test_conditional_sample_has_labels(tmp_path):
    out = tmp_path / "cgan"
    assert main(["train", "--preset", "mnist-cgan", "--out", str(out), "--steps", "2", *TINY]) == 0
    assert main(["sample", str(out), "--n", "12", "--out", str(tmp_path / "c.npz")]) == 0
    data = np.load(tmp_path / "c.npz")
    assert data["labels"].tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]
    assert main(["sample", str(out), "--n", "3", "--label", "7", "--out", str(tmp_path / "7.npz")]) == 0
    assert np.load(tmp_path / "7.npz")["labels"].tolist() == [7, 7, 7]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--preset", "nope", "--out", "x"], "--preset: 'nope' is not one of"),
        (["train", "--preset", "mnist-mlp", "--out", "x", "--set", "optim.d.lr=fast"],
         "optim.d.lr: expected float, got 'fast'"),
        (["train", "--preset", "mnist-mlp", "--out", "x", "--set", "model.arch=resnet"],
         "model.arch: 'resnet' is not one of mlp, dcgan-upsample, dcgan-transpose, cgan"),
        (["sample", "/nonexistent", "--n", "3", "--out", "a.npz"], "no checkpoint here"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, argv, message):
    proc = subprocess.run([sys.executable, "-m", "search.cli", *argv], cwd=tmp_path,
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert not (tmp_path / "x").exists()  # nothing half-written


def test_every_command_help_shows_an_example():
    from search.cli import COMMANDS, build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert set(sub.choices) <= set(COMMANDS) and {"train", "sample"} <= set(sub.choices)
    for name, p in sub.choices.items():
        assert "example:" in p.format_help(), name


def test_help_loads_no_model_or_search_library():
    """--help is user-facing latency: building the whole parser must not import torch, Ray or Optuna."""
    code = ("import sys, search.cli; search.cli.build_parser(); "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'ray', 'torch', 'optuna', 'numpy'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_help_shows_no_markup_and_each_default_once():
    from search.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert set(sub.choices) == {"train", "sample", "score", "classifier", "search", "resume", "review",
                                "retrain", "explore"}
    for name, p in sub.choices.items():
        text = " ".join(p.format_help().split())
        assert "``" not in text and "(default: None)" not in text and "(default: False)" not in text, name
        for action in p._actions:
            if action.help and "default" in action.help:  # the text says it: argparse must not again
                assert p._get_formatter()._expand_help(action) == action.help, (name, action.dest)
    score = " ".join(sub.choices["score"].format_help().split())
    assert score.startswith("usage: gansearch score") and "gansearch score: every classifier metric" in score
    assert "--seed SEED noise seed when generating from a run (default: 0)" in score


def test_ray_outside_the_supported_range_is_one_line(tmp_path):
    """search and resume check the installed Ray against search/raytune's range before Ray
    starts and before anything is written. The subprocess runs the real Ray with its version
    string set to one outside the range, as another Ray release would report it."""
    import shutil
    from pathlib import Path

    from gan_core.errors import GansearchError
    from search.raytune import SUPPORTED_RAY, check_ray_version

    assert SUPPORTED_RAY == ">=2.60,<2.61"
    assert check_ray_version("2.60.0") == "2.60.0" and check_ray_version("2.60.7") == "2.60.7"
    for found in ("2.59.1", "2.61.0", "3.0.0", "2.60.0rc1", "nonsense"):
        with pytest.raises(GansearchError, match=rf"^Ray {found} is installed, but gansearch supports Ray "
                                                 r">=2\.60,<2\.61 \(it relies on internals checked in Ray 2\.60\.0\)"):
            check_ray_version(found)
    import ray

    assert check_ray_version() == ray.__version__  # the installed one is supported

    repo = Path(__file__).resolve().parents[1]
    space = tmp_path / "tiny.yaml"
    from tests.tiny_space import tiny_space

    space.write_text(tiny_space())
    old = tmp_path / "old"
    shutil.copytree(repo / "tests" / "fixtures" / "search_2026_12", old)
    before = sorted(p.name for p in old.iterdir())
    code = ("import sys, ray; ray.__version__ = '2.59.1'\n"
            "from search.cli import main\nsys.exit(main(sys.argv[1:]))")
    for argv in (["search", "--space", str(space), "--name", "t", "--storage", str(tmp_path / "runs")],
                 ["resume", str(old)]):
        proc = subprocess.run([sys.executable, "-c", code, *argv], cwd=tmp_path, capture_output=True, text=True)
        assert proc.returncode == 2, proc.stderr[-2000:]
        assert proc.stderr == ("gansearch: error: Ray 2.59.1 is installed, but gansearch supports Ray >=2.60,<2.61 "
                               "(it relies on internals checked in Ray 2.60.0); install ray[tune]>=2.60,<2.61\n")
    assert not (tmp_path / "runs").exists() and sorted(p.name for p in old.iterdir()) == before
