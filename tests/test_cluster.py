"""cluster.yaml: valid under Ray's own cluster-config schema, and shaped as the README promises."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import jsonschema
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
CLUSTER = REPO / "cluster.yaml"
PINS = ("torch==2.14.1", "torchvision==0.29.1", "ray==2.60.0", "optuna==5.0.0")
CONSTRAINTS = "~/gansearch/constraints.txt"  # the repository's constraints.txt, on every node


def pinned() -> dict[str, str]:
    """constraints.txt: normalised package name -> exact version."""
    import re

    pins = {}
    for line in (REPO / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, version = line.split("==")
            pins[re.sub(r"[-_.]+", "-", name).lower()] = version
    return pins


@pytest.fixture(scope="module")
def raw() -> dict:
    return yaml.safe_load(CLUSTER.read_text())


@pytest.fixture(scope="module")
def schema() -> dict:
    import ray.autoscaler

    return json.loads((Path(ray.autoscaler.__file__).parent / "ray-schema.json").read_text())


def test_raw_config_matches_ray_schema(raw, schema):
    jsonschema.validate(raw, schema)


def test_ray_prepares_and_validates_it(raw):
    """The path `ray up` takes before it talks to AWS: merge AWS defaults, then validate."""
    from ray.autoscaler._private.util import prepare_config, validate_config

    prepared = prepare_config(copy.deepcopy(raw))
    validate_config(prepared)
    assert prepared["head_node_type"] == "head"
    assert prepared["available_node_types"]["head"]["max_workers"] == 0


def test_schema_catches_a_misspelt_field(raw, schema):
    bad = copy.deepcopy(raw)
    bad["available_node_types"]["gpu_spot"]["max_worker"] = 3
    with pytest.raises(jsonschema.ValidationError, match="max_worker"):
        jsonschema.validate(bad, schema)


def test_cpu_head_and_gpu_workers_with_spot(raw):
    types = raw["available_node_types"]
    head = types[raw["head_node_type"]]
    assert head["resources"] == {"CPU": 0}  # no trial lands on the head
    assert not head["node_config"]["InstanceType"].startswith(("g", "p"))
    spot = types["gpu_spot"]
    assert spot["node_config"]["InstanceType"] == "g5.xlarge"
    assert spot["node_config"]["InstanceMarketOptions"] == {"MarketType": "spot"}
    assert 0 <= spot["min_workers"] <= spot["max_workers"] <= raw["max_workers"]
    on_demand = types["gpu_on_demand"]
    assert on_demand["node_config"]["InstanceType"] == "g5.xlarge"
    assert "InstanceMarketOptions" not in on_demand["node_config"]
    assert raw["provider"]["type"] == "aws"


def test_setup_installs_project_with_exact_pins(raw):
    setup = " ".join(raw["setup_commands"])
    assert f"-c {CONSTRAINTS} -e ~/gansearch" in setup
    for pin in PINS:
        name, version = pin.split("==")
        assert pinned()[name] == version, pin
    assert raw["file_mounts"]["~/gansearch"] == "."
    assert ".venv" in raw["rsync_exclude"] and "runs" in raw["rsync_exclude"]
    assert "2.60.0" in raw["docker"]["image"] and "py311" in raw["docker"]["image"]


def test_results_go_to_shared_storage(raw):
    text = CLUSTER.read_text()
    assert raw["metadata"]["gansearch_results"].startswith("s3://")
    assert "--storage s3://YOUR-BUCKET/gansearch" in text
    assert "--address auto" in text


def node_configs(raw) -> dict[str, dict]:
    return {name: t["node_config"] for name, t in raw["available_node_types"].items()}


def test_dashboard_on_localhost_and_token_auth(raw):
    """Nobody reaching port 8265 (or the GCS) can submit a job: the dashboard listens on the
    head's loopback (the README forwards it over SSH) and every Ray connection needs the token."""
    text = CLUSTER.read_text()
    assert "0.0.0.0" not in text
    head = " ".join(raw["head_start_ray_commands"])
    assert "--dashboard-host=127.0.0.1" in head
    assert "--env RAY_AUTH_MODE=token" in raw["docker"]["run_options"]
    assert raw["file_mounts"]["~/.ray/auth_token"] == "~/.ray/auth_token"


def test_nodes_have_own_security_group_profile_imdsv2_and_encrypted_volumes(raw):
    for name, nc in node_configs(raw).items():
        assert nc["SecurityGroupIds"] == ["sg-GANSEARCH"], name  # not Ray's group (SSH from anywhere)
        profile = "gansearch-head" if name == raw["head_node_type"] else "gansearch-worker"
        assert nc["IamInstanceProfile"]["Arn"].endswith(f":instance-profile/{profile}"), name
        assert nc["MetadataOptions"]["HttpTokens"] == "required", name
        assert nc["MetadataOptions"]["HttpPutResponseHopLimit"] == 1, name
        volumes = nc["BlockDeviceMappings"]
        assert volumes and all(v["Ebs"]["Encrypted"] is True for v in volumes), name


def test_every_installed_package_is_pinned(raw):
    """Every pip command installs under constraints.txt, which pins each package it names."""
    commands = raw["setup_commands"] + raw["head_setup_commands"] + raw["worker_setup_commands"]
    pins = pinned()
    for command in commands:
        words = command.replace('"', " ").split()
        assert words[:2] == ["pip", "install"] and f"-c {CONSTRAINTS}" in command, command
        packages = [w for w in words[2:] if not w.startswith("-") and not w.startswith("~") and w != CONSTRAINTS]
        for w in packages:
            assert w.lower() in pins, w  # exact versions only


def test_every_node_boots_the_pinned_ami(raw):
    """Not Ray's default AMI, whose NVIDIA driver is too old for the GPU image's CUDA."""
    for name, nc in node_configs(raw).items():
        assert nc["ImageId"] == "AMI-ID", name
    text = CLUSTER.read_text()
    for trap in ("base-oss-nvidia-driver-gpu-ubuntu-22.04", "spot.amazonaws.com",
                 "Running On-Demand G and VT instances", "ray monitor cluster.yaml"):
        assert trap in text, trap


def test_readme_explains_each_setting(raw):
    readme = (CLUSTER.parent / "README.md").read_text()
    section = readme[readme.index("## On a Ray cluster"):]
    section = section[:section.index("\n## ", 3)]
    for words in ("127.0.0.1", "RAY_AUTH_MODE=token", "ADMIN_CIDR", "sg-GANSEARCH", "gansearch-worker",
                  "gansearch-head", "HttpTokens", "Encrypted", "pinned", "s3:ListBucket", "AMI-ID",
                  "create-service-linked-role --aws-service-name spot.amazonaws.com",
                  "Running On-Demand G and VT instances", "ray monitor cluster.yaml"):
        assert words in section, words
