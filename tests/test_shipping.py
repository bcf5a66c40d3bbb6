"""A user's own GAN and images reach trials on another node with nothing installed there: the
example's package (examples/shapes_gan) and a feature network exist only in a temporary folder on
the driver's $PYTHONPATH, the images only in a folder the driver converts, and a trial of each
runs on each node of a real two-node Ray cluster (`ray start`)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.test_tune import REPO, two_nodes  # noqa: F401  (two_nodes: a fixture)

EXAMPLES = REPO / "examples"

FEATURES = '''
import os
from pathlib import Path

import torch
from torch import nn

TRACE = {trace!r}


def extractor(shape):
    with open(TRACE, "a") as f:  # which copy of this module a process imported
        f.write(f"{{os.getpid()}} {{Path(__file__).resolve()}}\\n")
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(shape[0], 8, 3, 2, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten())
'''


@pytest.mark.e2e
def test_a_module_only_on_the_driver_trains_on_the_second_node(two_nodes, tmp_path):  # noqa: F811
    address, env, nodes = two_nodes
    only_here = tmp_path / "only-here"
    shutil.copytree(EXAMPLES / "shapes_gan", only_here / "shapes_gan")
    trace = tmp_path / "trace.txt"
    (only_here / "tinyfeats.py").write_text(FEATURES.format(trace=str(trace)))
    subprocess.run([sys.executable, str(EXAMPLES / "make_shapes.py"), str(tmp_path / "shapes"), "--per-class", "12",
                    "--size", "16"], check=True, capture_output=True, timeout=300)
    base = {"name": "shipped", "data": {"name": f"folder:{tmp_path / 'shapes'}", "resolution": 16, "channels": 3},
            "model": {"arch": "shapes_gan.nets:build", "latent_dim": 8, "output": "tanh", "options": {"channels": 8}},
            "train": {"batch_size": 8, "images": 64, "log_every": 32, "sample_every": 32, "checkpoint_every": 32},
            "eval": {"every": 32, "n": 32, "features": "tinyfeats:extractor", "objective": "cfd"}}
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(base))
    (tmp_path / "space.yaml").write_text(
        "name: shipped\nbase: base.yaml\nbudget: {images: 64, eval_every: 32}\nobjective: {metric: score, mode: min}\n"
        "params:\n  model.options.channels: {choice: [8, 16]}\n  optim.d.lr: {float: [1.0e-4, 1.0e-3], log: true}\n"
        "search: {scheduler: fifo}\n")
    driver_env = {**env, "PYTHONPATH": os.pathsep.join([str(only_here), str(REPO)])}  # the driver's alone
    cmd = [sys.executable, "-m", "search.cli", "search", "--space", str(tmp_path / "space.yaml"), "--name", "shipped",
           "--storage", str(tmp_path / "runs"), "--trials", "2", "--address", address, "--cpus-per-trial", "1",
           "--quiet"]
    out = subprocess.run(cmd, env=driver_env, cwd=REPO, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    summary = json.loads((tmp_path / "runs" / "shipped" / "summary.json").read_text())
    assert summary["counts"]["completed"] == 2
    assert {t["node_id"] for t in summary["trials"]} == set(nodes)  # one trial on each node
    # The trials imported Ray's copy of the package, never the driver's folder.
    imported = [Path(line.split(" ", 1)[1]) for line in trace.read_text().splitlines()]
    assert imported and all(only_here not in p.parents for p in imported), imported
