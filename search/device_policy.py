"""Which device a trial trains on: the device policy of ``--gpus-per-trial``.

A trial Ray gave GPUs trains on CUDA. When its torch cannot use CUDA there (a CPU-only torch
wheel, an NVIDIA driver older than the torch build needs, no device visible), training on the
CPU would spend a paid GPU machine's hours at a fraction of the speed with only a warning in a
log nobody reads; so the trial fails with one line that names the node, the torch build and
what CUDA reports. ``--allow-cpu-fallback`` keeps training on the CPU with a warning (the tests'
logical GPUs have no CUDA behind them).

The decision (:func:`choose_device`) is pure; :func:`probe_cuda` gathers what it decides on.

Example::

    gpu_ids = ray.get_gpu_ids()
    cuda = probe_cuda("node-a (10.0.0.5)") if gpu_ids else None  # a CPU trial leaves CUDA alone
    device, warning = choose_device(gpu_ids, cuda, allow_cpu_fallback=False)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gan_core.errors import GansearchError


class NoUsableGpu(GansearchError):
    """Ray assigned a trial GPUs that its torch cannot use, and CPU fallback is off."""


@dataclass(frozen=True)
class CudaReport:
    """What a trial's torch says about CUDA on its node."""

    node: str  # host name and address, as a person finds the machine
    torch_version: str  # torch.__version__
    torch_cuda: str | None  # torch.version.cuda; None: a CPU-only build
    available: bool  # torch.cuda.is_available()
    device_count: int  # torch.cuda.device_count()
    init_error: str | None = None  # what initialising CUDA raised, if it did

    def describe(self) -> str:
        build = f"CUDA {self.torch_cuda}" if self.torch_cuda else "CPU-only"
        said = f"torch {self.torch_version} ({build} build), cuda.is_available()={self.available}, " \
               f"device_count={self.device_count}"
        return f"{said}, CUDA init: {self.init_error}" if self.init_error else said


def choose_device(gpu_ids: Sequence[Any], cuda: CudaReport | None,
                  allow_cpu_fallback: bool) -> tuple[str, str | None]:
    """``("cuda" | "cpu", warning or None)`` for a trial Ray gave ``gpu_ids``, whose torch said
    ``cuda`` (None: not asked, which only a trial without GPUs may skip).

    No GPUs: the CPU (a CPU trial never grabs a GPU). GPUs and a usable CUDA: "cuda" (Ray sets
    CUDA_VISIBLE_DEVICES to the trial's GPUs, so that is its own GPU or its share of one). GPUs
    and no usable CUDA: ``NoUsableGpu``, or the CPU with a warning when ``allow_cpu_fallback``."""
    if not gpu_ids:
        return "cpu", None
    if cuda is None:
        raise ValueError("choose_device: a trial with GPUs needs its CudaReport")
    if cuda.available and cuda.device_count > 0:
        return "cuda", None
    ids = ", ".join(str(g) for g in gpu_ids)
    what = f"on {cuda.node} Ray gave the trial GPU {ids} but its torch cannot use CUDA: {cuda.describe()}"
    if allow_cpu_fallback:
        return "cpu", f"{what}; training on the CPU (--allow-cpu-fallback)"
    raise NoUsableGpu(f"{what}; fix the node's NVIDIA driver or torch build, or pass --allow-cpu-fallback")


def _first_sentence(text: str) -> str:
    """An error's first sentence on one line (CUDA's go on with links), short enough to leave the
    line's fix readable."""
    text = " ".join(text.split())
    end = text.find(". ")
    text = (text if end < 0 else text[:end]).rstrip(".")
    return text if len(text) <= 100 else text[:97] + "..."


def probe_cuda(node: str) -> CudaReport:
    """Ask this process's torch about CUDA (initialising it, which a GPU trial does anyway)."""
    import torch

    init_error = None
    try:
        torch.cuda.init()
    except Exception as exc:  # a CPU-only build, no driver, a driver too old: each its own message
        init_error = _first_sentence(str(exc)) or type(exc).__name__
    return CudaReport(node=node, torch_version=str(torch.__version__), torch_cuda=torch.version.cuda,
                      available=torch.cuda.is_available(), device_count=torch.cuda.device_count(),
                      init_error=init_error)
