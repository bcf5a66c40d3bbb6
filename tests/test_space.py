"""The space language: parsing, compiling to Optuna define-by-run, and refusing bad spaces."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest

from gan_core.config import load_preset
from gan_core.errors import GansearchError
from search.space import (
    ChoiceParam,
    FixedParam,
    FloatParam,
    IntParam,
    key_of,
    load_space,
    parse_space,
    trial_seed,
)

REPO = Path(__file__).resolve().parents[1]
SPACES = sorted((REPO / "spaces").glob("*.yaml"))

GOOD = """
base: mnist-mlp
budget: {images: 64000, eval_every: 16000, grace_images: 32000}
objective: {metric: score, mode: min}
params:
  optim.d.lr: {float: [1.0e-5, 1.0e-2], log: true}
  optim.g.beta1: {float: [0.0, 0.9], step: 0.1}
  train.batch_size: {choice: [32, 64, 128]}
  train.d_steps: {int: [1, 3]}
  eval.n: 500
  model.arch:
    choice: [mlp, dcgan-upsample]
    when:
      mlp: {model.g_depth: {int: [1, 4]}, model.width: {float: [0.25, 1.0]}}
      dcgan-upsample: {model.width: {float: [0.125, 0.5]}, model.output: sigmoid}
points:
  - {model.arch: dcgan-upsample, model.width: 0.25}
search: {trials: 5, scheduler: asha}
"""


def write(tmp_path: Path, text: str, name: str = "space.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def refused(tmp_path: Path, text: str) -> str:
    path = write(tmp_path, text)
    with pytest.raises(GansearchError) as info:
        load_space(path)
    msg = str(info.value)
    assert "\n" not in msg  # one line
    assert msg.startswith(f"{path}: ")  # names the file
    return msg


def space_with(params: str, head: str = "base: mnist-mlp\nbudget: {images: 64000, eval_every: 16000}\n") -> str:
    return head + "params:\n" + params


# ----------------------------------------------------------------------------- parsing


def test_parses_ranges_choices_fixed_and_branches(tmp_path):
    space = load_space(write(tmp_path, GOOD))
    kinds = {p.key: type(p) for p in space.params}
    assert kinds == {
        "optim.d.lr": FloatParam, "optim.g.beta1": FloatParam, "train.batch_size": ChoiceParam,
        "train.d_steps": IntParam, "eval.n": FixedParam, "model.arch": ChoiceParam,
    }
    arch = space.params[-1]
    assert isinstance(arch, ChoiceParam)
    assert [p.name for p in arch.branch("mlp")] == ["model.g_depth@model.arch=mlp", "model.width@model.arch=mlp"]
    assert space.budget.images == 64000 and space.budget.grace_images == 32000
    assert space.search.trials == 5
    assert "when mlp" in space.describe()


def test_base_point_holds_the_preset_values(tmp_path):
    space = load_space(write(tmp_path, GOOD))
    base = load_preset("mnist-mlp")
    point = space.base_point()
    assert point["optim.d.lr"] == base.optim.d.lr
    assert point["model.arch"] == "mlp"
    assert point["model.g_depth@model.arch=mlp"] == base.model.g_depth
    assert point["model.width@model.arch=mlp"] == base.model.width
    assert "optim.g.beta1" in point and point["optim.g.beta1"] == base.optim.g.beta1
    # The base preset's config comes back unchanged except for the budget and fixed values.
    cfg = space.config_for({**point, **space.define_by_run(0)(optuna.trial.FixedTrial(point, number=0))})
    assert cfg.optim.d.lr == base.optim.d.lr and cfg.model.arch == "mlp"
    assert cfg.train.images == 64000 and cfg.eval.every == 16000 and cfg.eval.n == 500
    assert space.all_points()[1] == {
        "optim.d.lr": base.optim.d.lr, "optim.g.beta1": base.optim.g.beta1,
        "train.batch_size": base.train.batch_size, "train.d_steps": base.train.d_steps,
        "model.arch": "dcgan-upsample", "model.width@model.arch=dcgan-upsample": 0.25,
    }


def test_define_by_run_only_suggests_and_conditions_work(tmp_path):
    space = load_space(write(tmp_path, GOOD))
    fn = space.define_by_run(seed=7)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    seen_arch = set()
    for _ in range(30):
        trial = study.ask()
        fixed = fn(trial)
        arch = trial.params["model.arch"]
        seen_arch.add(arch)
        conditional = {key_of(k) for k in trial.params if "@" in k}
        assert conditional == ({"model.g_depth", "model.width"} if arch == "mlp" else {"model.width"})
        assert fixed["eval.n"] == 500
        assert fixed["train.seed"] == trial_seed(7, trial.number)
        if arch == "dcgan-upsample":
            assert fixed["model.output"] == "sigmoid"
        cfg = space.config_for({**trial.params, **fixed})  # every value lands in the typed tree
        assert cfg.model.arch == arch
        assert 0.0 <= cfg.optim.g.beta1 <= 0.9 and round(cfg.optim.g.beta1 * 10, 6).is_integer()
        study.tell(trial, 1.0)
    assert seen_arch == {"mlp", "dcgan-upsample"}


def test_trial_seeds_are_repeatable_and_distinct():
    assert trial_seed(0, 3) == trial_seed(0, 3)
    assert len({trial_seed(0, n) for n in range(100)}) == 100
    assert trial_seed(0, 3) != trial_seed(1, 3)
    assert all(0 <= trial_seed(s, n) < 2**31 for s in range(3) for n in range(10))


def test_config_for_refuses_unknown_values(tmp_path):
    space = load_space(write(tmp_path, GOOD))
    with pytest.raises(GansearchError, match="optim.d.lrr"):
        space.config_for({"optim.d.lrr": 1e-3})
    with pytest.raises(GansearchError, match="train.batch_size"):
        space.config_for({"train.batch_size": "big"})


def test_base_may_be_a_config_file(tmp_path):
    from gan_core.config import save_config

    save_config(load_preset("mnist-dcgan"), tmp_path / "mine.yaml")
    space = load_space(write(tmp_path, space_with("  optim.d.lr: {float: [1.0e-4, 1.0e-3], log: true}\n",
                                                  "base: mine.yaml\nbudget: {images: 1000, eval_every: 500}\n")))
    assert space.base_config.model.arch == "dcgan-upsample"


def test_pbt_mutable_params(tmp_path):
    space = load_space(write(tmp_path, GOOD))
    assert [p.key for p in space.pbt_mutable()] == ["optim.d.lr", "optim.g.beta1", "train.d_steps"]


def test_cli_refuses_a_bad_space_before_ray(tmp_path):
    """`gansearch search` with a bad space: exit 2, one line on stderr, Ray never imported,
    nothing written. A good space loads without importing Ray too."""
    bad = write(tmp_path, space_with("  model.arch: {choice: [mlp, resnet]}\n"), "bad.yaml")
    code = (
        "import sys; from search.space import load_space; from search.cli import main\n"
        "load_space('spaces/quick.yaml', build_models=True)\n"
        "assert 'ray' not in sys.modules\n"
        f"rc = main(['search', '--space', {str(bad)!r}, '--name', 'x', '--storage', {str(tmp_path / 'runs')!r}])\n"
        "print(rc, 'ray' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["2", "False"]
    err = [line for line in out.stderr.splitlines() if line.startswith("gansearch: error:")]
    assert len(err) == 1 and str(bad) in err[0] and "'resnet'" in err[0] and "dcgan-upsample" in err[0]
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("path", SPACES, ids=[p.name for p in SPACES])
def test_shipped_spaces_load_and_build(path, tmp_path, monkeypatch):
    if path.name.startswith("fashion") and not os.environ.get("GANSEARCH_DATA"):
        # Fashion-MNIST does not ship: files of its format and shape serve to build the models
        from tests.idx_files import write_idx_set

        write_idx_set(tmp_path, "FashionMNIST", {"train": 64, "test": 32})
        monkeypatch.setenv("GANSEARCH_DATA", str(tmp_path))
    space = load_space(path, build_models=True, dry_run=16)
    assert space.base_point(), "the base preset should be a point of its own space"
    assert space.budget.eval_every <= space.budget.grace_images <= space.budget.images


def test_shipped_spaces_cover_every_preset_plus_architectures_and_quick():
    import yaml

    from gan_core.config import preset_names

    names = {p.stem for p in SPACES}
    assert {"architectures", "quick"} <= names
    bases = {yaml.safe_load(p.read_text()).get("base") for p in SPACES}
    assert set(preset_names()) <= bases, "every preset is the base of a shipped space"


# ----------------------------------------------------------------------------- refusals


def test_unknown_key_names_key_and_valid_siblings(tmp_path):
    msg = refused(tmp_path, space_with("  optim.d.lrr: {float: [1.0e-4, 1.0e-3]}\n"))
    assert "params > optim.d.lrr" in msg and "'optim.d.lrr'" in msg
    assert "valid: name, lr, beta1, beta2" in msg


def test_unknown_section_names_top_level_keys(tmp_path):
    msg = refused(tmp_path, space_with("  optimizer.lr: 0.1\n"))
    assert "'optimizer'" in msg and "valid: name, data, model, loss, optim" in msg


def test_low_not_below_high(tmp_path):
    msg = refused(tmp_path, space_with("  optim.d.lr: {float: [1.0e-3, 1.0e-4]}\n"))
    assert "params > optim.d.lr" in msg and "low must be < high" in msg
    msg = refused(tmp_path, space_with("  train.d_steps: {int: [2, 2]}\n"))
    assert "params > train.d_steps" in msg and "[2, 2]" in msg


def test_log_with_non_positive_bound(tmp_path):
    msg = refused(tmp_path, space_with("  model.dropout: {float: [0.0, 0.5], log: true}\n"))
    assert "params > model.dropout" in msg and "log: needs bounds > 0" in msg


def test_unknown_preset_lists_presets(tmp_path):
    msg = refused(tmp_path, "base: mnist-resnet\nbudget: {images: 10, eval_every: 5}\nparams: {eval.n: 10}\n")
    assert "base: 'mnist-resnet'" in msg
    assert "mnist-dcgan" in msg and "mnist-mlp" in msg and "fashion-dcgan" in msg


def test_unknown_architecture_lists_architectures(tmp_path):
    msg = refused(tmp_path, space_with("  model.arch: {choice: [mlp, resnet]}\n"))
    assert "params > model.arch" in msg and "'resnet'" in msg
    assert "mlp, dcgan-upsample, dcgan-transpose, cgan" in msg


def test_unknown_loss_lists_losses(tmp_path):
    msg = refused(tmp_path, space_with("  loss.name: wasserstein\n"))
    assert "params > loss.name" in msg and "'wasserstein'" in msg
    assert "bce, minimax, lsgan, hinge, wgan-gp" in msg


def test_unknown_choice_inside_a_branch(tmp_path):
    msg = refused(tmp_path, space_with(
        "  model.arch:\n    choice: [mlp, cgan]\n    when:\n      cgan: {loss.name: {choice: [bce, w]}}\n"))
    assert "params > model.arch > when cgan > loss.name" in msg and "'w'" in msg and "hinge" in msg


def test_empty_choice_list(tmp_path):
    msg = refused(tmp_path, space_with("  train.batch_size: {choice: []}\n"))
    assert "params > train.batch_size" in msg and "non-empty list" in msg


def test_when_label_must_be_a_choice(tmp_path):
    msg = refused(tmp_path, space_with(
        "  model.arch:\n    choice: [mlp, cgan]\n    when:\n      dcgan: {model.width: 0.5}\n"))
    assert "params > model.arch > when" in msg and "'dcgan'" in msg and "(mlp, cgan)" in msg


def test_wrong_kind_for_the_key(tmp_path):
    msg = refused(tmp_path, space_with("  model.g_depth: {float: [1.0, 3.0]}\n"))
    assert "params > model.g_depth" in msg and "use {int: ...}" in msg
    msg = refused(tmp_path, space_with("  model.arch: {int: [1, 3]}\n"))
    assert "params > model.arch" in msg and "use {choice: [...]}" in msg


def test_spec_needs_exactly_one_kind(tmp_path):
    msg = refused(tmp_path, space_with("  optim.d.lr: {low: 1.0e-4, high: 1.0e-3}\n"))
    assert "params > optim.d.lr" in msg and "exactly one of float, int, choice" in msg
    msg = refused(tmp_path, space_with("  optim.d.lr: {float: [1.0e-4, 1.0e-3], lgo: true}\n"))
    assert "lgo: unknown key for a float (valid: float, log, step)" in msg


def test_reserved_keys(tmp_path):
    msg = refused(tmp_path, space_with("  train.images: {choice: [1000, 2000]}\n"))
    assert "params > train.images" in msg and "budget.images" in msg
    msg = refused(tmp_path, space_with("  train.seed: 3\n"))
    assert "--seed" in msg


def test_key_set_twice(tmp_path):
    msg = refused(tmp_path, space_with(
        "  model.width: 0.5\n  model.arch:\n    choice: [mlp, cgan]\n    when:\n      mlp: {model.width: 1.0}\n"))
    assert "model.width" in msg and "set twice" in msg


def test_out_of_range_type_and_registry_values(tmp_path):
    msg = refused(tmp_path, space_with("  model.dropout: {float: [0.0, 1.5]}\n"))
    assert "params > model.dropout" in msg and "[0, 1)" in msg
    msg = refused(tmp_path, space_with("  optim.d.name: {choice: [adam, lion]}\n"))
    assert "'lion'" in msg and "adam, rmsprop, sgd" in msg
    msg = refused(tmp_path, space_with("  eval.objective: {choice: [cfd, fid]}\n"))
    assert "params > eval.objective" in msg and "'fid'" in msg and "cfd" in msg


def test_invalid_drawn_combination(tmp_path):
    msg = refused(tmp_path, space_with(
        "  balance.enabled: true\n  balance.lower: {float: [0.3, 0.7]}\n  balance.upper: {float: [0.4, 0.9]}\n"))
    assert "params: a drawn combination is invalid" in msg and "balance" in msg and "drawn:" in msg


def test_combination_that_cannot_be_built(tmp_path):
    # 28 px images take at most two stride-2 transposed convolutions.
    path = write(tmp_path, "base: fashion-dcgan\nbudget: {images: 64000, eval_every: 16000}\n"
                           "params:\n  data.name: mnist\n  model.g_depth: {int: [2, 4]}\n")
    load_space(path)  # the typed tree has no view on shapes
    with pytest.raises(GansearchError) as info:
        load_space(path, build_models=True)
    msg = str(info.value)
    assert msg.startswith(f"{path}: params: a drawn combination cannot be built")
    assert "divisible by" in msg and ("model.g_depth=3" in msg or "model.g_depth=4" in msg)


def test_budget_and_top_level_problems(tmp_path):
    assert "budget: missing" in refused(tmp_path, "base: mnist-mlp\nparams: {eval.n: 10}\n")
    msg = refused(tmp_path, "base: mnist-mlp\nbudget: {images: 100, eval_every: 50}\nparams: {eval.n: 10}\nparam: {}\n")
    assert "param: unknown key (valid: name, description, base, budget" in msg
    msg = refused(tmp_path, "base: mnist-mlp\nbudget: {images: 100, eval_every: 500}\nparams: {eval.n: 10}\n")
    assert "budget.eval_every: 500 exceeds budget.images (100)" in msg
    msg = refused(tmp_path, "base: mnist-mlp\nbudget: {images: 100, eval_every: 50, grace_images: 400}\n"
                            "params: {eval.n: 10}\n")
    assert "budget.grace_images" in msg
    msg = refused(tmp_path, "base: mnist-mlp\nbudget: {images: 100, eval_every: 50}\nparams: {eval.n: 10}\n"
                            "search: {scheduler: hyperband}\n")
    assert "search.scheduler: 'hyperband' is not one of asha, pbt, fifo" in msg
    msg = refused(tmp_path, "base: mnist-mlp\nbudget: {images: 100, eval_every: 50}\nparams: {eval.n: 10}\n"
                            "objective: {metric: score, mode: lowest}\n")
    assert "objective.mode: 'lowest' is not one of min, max" in msg


def test_points_are_checked(tmp_path):
    msg = refused(tmp_path, space_with("  optim.d.lr: {float: [1.0e-4, 1.0e-3]}\npoints:\n  - {optim.d.lr: 0.5}\n"))
    assert "points[0]: optim.d.lr" in msg and "outside" in msg
    msg = refused(tmp_path, space_with("  optim.d.lr: {float: [1.0e-4, 1.0e-3]}\npoints:\n  - {optim.g.lr: 0.5}\n"))
    assert "points[0]: optim.g.lr: not a searched key (valid: optim.d.lr)" in msg


def test_bad_yaml_and_missing_file(tmp_path):
    assert "not valid YAML" in refused(tmp_path, "base: [unclosed\n")
    with pytest.raises(GansearchError, match="no such space file"):
        load_space(tmp_path / "nope.yaml")


def test_parse_space_without_a_file():
    space = parse_space(GOOD, "inline")
    assert space.name == "inline" and space.path == "inline"


def test_a_space_searches_a_user_architectures_options(tmp_path):
    """model.options.KEY is searched like any key: choices, ranges, conditional branches and
    fixed values of any YAML kind reach the user's build() as model_cfg.options."""
    from gan_core.config import from_dict
    from search.space import parse_space

    base = from_dict({"model": {"arch": "my_pkg.nets:build", "options": {"channels": 64, "norm": "batch"}}})
    text = """
name: mine
base: mine.yaml
budget: {images: 1024, eval_every: 512}
params:
  model.options.channels: {choice: [32, 64]}
  model.options.depth: {int: [2, 4]}
  model.options.blocks: [1, 2, 2]
  model.options.norm:
    choice: [batch, none]
    when:
      batch: {model.options.momentum: {float: [0.01, 0.5], log: true}}
"""
    space = parse_space(text, "mine_space.yaml", base_config=base, dry_run=0)
    from search.space import random_draws

    for params, fixed in random_draws(space, 6, 3):
        opts = space.config_for({**params, **fixed}).model.options
        assert opts["channels"] in (32, 64) and opts["depth"] in (2, 3, 4) and opts["blocks"] == [1, 2, 2]
        assert opts["norm"] in ("batch", "none") and ("momentum" in opts) == (opts["norm"] == "batch")
        assert "momentum" not in opts or 0.01 <= opts["momentum"] <= 0.5
    assert space.base_point() == {"model.options.channels": 64, "model.options.norm": "batch"}
    assert space.values_of("model.options.channels") == [64, 32]
    with pytest.raises(GansearchError, match=r"mine_space.yaml: params > model.options.depth: int: low must be < high"):
        parse_space(text.replace("[2, 4]", "[4, 2]"), "mine_space.yaml", base_config=base, dry_run=0)


def test_an_objective_named_by_a_metrics_base_name_is_one_line():
    """`metric: cfd` was accepted and every trial failed at its first report (Tune expects a
    reported key; the trials report cfd_2k and score)."""
    from gan_core.config import load_preset
    from search.space import parse_space

    text = "base: mnist-mlp\nbudget: {images: 1024, eval_every: 512}\nobjective: {metric: cfd, mode: min}\n" \
           "params:\n  optim.d.lr: {float: [1.0e-4, 1.0e-3]}\n"
    with pytest.raises(GansearchError, match=r"^s.yaml: objective.metric: cfd is reported with its sample count, as "
                                             r"cfd_\w+ \(eval.n \d+\); use that, or score with eval.objective: cfd"):
        parse_space(text, "s.yaml", base_config=load_preset("mnist-mlp"), dry_run=0)
