"""The device policy of --gpus-per-trial: a GPU trial whose torch cannot use CUDA fails in one line
(node, torch build, what CUDA says) unless --allow-cpu-fallback; and what this machine's torch says."""

from __future__ import annotations

import re

import pytest

from search.device_policy import CudaReport, NoUsableGpu, choose_device, probe_cuda

NO_DRIVER = CudaReport(node="gpu-1 (10.0.0.7)", torch_version="2.14.1+cu130", torch_cuda="13.0", available=False,
                       device_count=0, init_error="Found no NVIDIA driver on your system")
CPU_WHEEL = CudaReport(node="gpu-2 (10.0.0.8)", torch_version="2.14.1+cpu", torch_cuda=None, available=False,
                       device_count=0, init_error="Torch not compiled with CUDA enabled")
WORKING = CudaReport(node="gpu-3 (10.0.0.9)", torch_version="2.14.1+cu130", torch_cuda="13.0", available=True,
                     device_count=1)


def test_a_trial_without_gpus_trains_on_the_cpu_and_never_asks_cuda():
    for allow in (False, True):
        assert choose_device([], None, allow) == ("cpu", None)
        assert choose_device([], NO_DRIVER, allow) == ("cpu", None)


def test_a_gpu_trial_with_usable_cuda_trains_on_it():
    assert choose_device([0], WORKING, False) == ("cuda", None)
    assert choose_device(["0", "1"], WORKING, True) == ("cuda", None)


@pytest.mark.parametrize("report,build", [(NO_DRIVER, "torch 2.14.1+cu130 (CUDA 13.0 build)"),
                                          (CPU_WHEEL, "torch 2.14.1+cpu (CPU-only build)")])
def test_a_gpu_trial_without_usable_cuda_fails_in_one_line(report, build):
    with pytest.raises(NoUsableGpu) as e:
        choose_device(["0"], report, False)
    line = str(e.value)
    assert line == (f"on {report.node} Ray gave the trial GPU 0 but its torch cannot use CUDA: {build}, "
                    f"cuda.is_available()=False, device_count=0, CUDA init: {report.init_error}; "
                    "fix the node's NVIDIA driver or torch build, or pass --allow-cpu-fallback")


def test_a_device_count_of_zero_is_not_usable_even_if_available_says_so():
    odd = CudaReport(node="n", torch_version="2.14.1", torch_cuda="13.0", available=True, device_count=0)
    with pytest.raises(NoUsableGpu):
        choose_device([0], odd, False)


def test_allow_cpu_fallback_trains_on_the_cpu_with_the_same_facts_as_a_warning():
    device, warning = choose_device([1], NO_DRIVER, True)
    assert device == "cpu" and warning is not None and "\n" not in warning
    assert warning.startswith("on gpu-1 (10.0.0.7) Ray gave the trial GPU 1 but its torch cannot use CUDA: torch ")
    assert warning.endswith("; training on the CPU (--allow-cpu-fallback)")


def test_a_gpu_trial_must_bring_its_report():
    with pytest.raises(ValueError, match="CudaReport"):
        choose_device([0], None, True)


def test_probe_reports_this_machines_torch():
    """This machine has no GPU: whatever the torch build, CUDA is not usable, and initialising it
    says why in one short line."""
    import torch

    report = probe_cuda("here (127.0.0.1)")
    assert report.node == "here (127.0.0.1)" and report.torch_version == torch.__version__
    assert report.torch_cuda == torch.version.cuda
    assert not report.available and report.device_count == 0
    assert report.init_error and "\n" not in report.init_error and len(report.init_error) <= 100
    with pytest.raises(NoUsableGpu, match=re.escape(f"torch {torch.__version__}")):
        choose_device([0], report, False)
