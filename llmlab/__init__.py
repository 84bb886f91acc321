"""llmlab: small, tested helpers for the "Build a GPT from scratch" notebook course."""
from __future__ import annotations

import os
import platform
import random

import numpy as np
import torch

from llmlab._validate_input import as_int

__version__ = "0.1.0"

__all__ = ["__version__", "set_seed", "get_device", "quick_mode", "cpu_name",
           "notebook_threads"]


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and PyTorch so a CPU run repeats exactly."""
    seed = as_int(seed, "seed", 0)
    if seed >= 2**64:  # torch.manual_seed takes a 64-bit seed; a larger one overflows inside torch
        raise ValueError(f"seed={seed} is beyond 64 bits: PyTorch takes a seed from 0 to 2**64 - 1; "
                         "use a small number such as 0 or 1337")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def get_device() -> torch.device:
    """Return the best available device: CUDA, then Apple MPS, then CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def quick_mode() -> bool:
    """True when LLMLAB_QUICK=1: notebooks then train with smaller budgets (used by the tests)."""
    return os.environ.get("LLMLAB_QUICK", "0").strip() not in ("", "0", "false", "False")


def cpu_name() -> str:
    """This machine's CPU model (from /proc/cpuinfo on Linux), or its architecture elsewhere."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def notebook_threads(most: int = 4) -> int:
    """Torch threads for training in a notebook: the usable cores but one (at least 1, at most `most`).

    One core stays free for the browser and Jupyter: torch's threads wait for each other whenever
    one of them loses its core, so a step can become several times slower on a busy machine.
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(most, (cores or 2) - 1))
