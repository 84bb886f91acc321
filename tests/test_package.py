"""Tests for the package root: version, seeding, device choice."""
import random

import numpy as np
import pytest
import torch

import llmlab


def test_version_is_a_string():
    assert isinstance(llmlab.__version__, str) and llmlab.__version__.count(".") == 2


def test_set_seed_repeats_python_numpy_and_torch():
    llmlab.set_seed(123)
    a = (random.random(), np.random.rand(), torch.rand(3))
    llmlab.set_seed(123)
    b = (random.random(), np.random.rand(), torch.rand(3))
    assert a[0] == b[0] and a[1] == b[1] and torch.equal(a[2], b[2])


def test_set_seed_rejects_nonsense():
    with pytest.raises(ValueError, match="seed"):
        llmlab.set_seed(-1)


def test_get_device_returns_cpu_without_accelerators(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert llmlab.get_device() == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert llmlab.get_device() == torch.device("cuda")


def test_quick_mode_reads_the_environment(monkeypatch):
    monkeypatch.setenv("LLMLAB_QUICK", "1")
    assert llmlab.quick_mode()
    monkeypatch.setenv("LLMLAB_QUICK", "0")
    assert not llmlab.quick_mode()


def test_cpu_name_names_the_processor():
    name = llmlab.cpu_name()
    assert isinstance(name, str) and name and name.strip() == name
    try:
        info = open("/proc/cpuinfo").read()
    except OSError:
        return  # not Linux: the architecture (e.g. "arm64") is all there is to say
    if "model name" in info:
        assert f": {name}\n" in info


def test_notebook_threads_leaves_one_core_free(monkeypatch):
    for cores, most, expected in ((1, 4, 1), (2, 4, 1), (3, 4, 2), (16, 4, 4), (16, 8, 8)):
        monkeypatch.setattr(llmlab.os, "sched_getaffinity", lambda pid, n=cores: set(range(n)),
                            raising=False)
        assert llmlab.notebook_threads(most) == expected, (cores, most)


@pytest.mark.parametrize("seed", [2**64, 2**70])
def test_set_seed_beyond_64_bits_is_named(seed):
    with pytest.raises(ValueError, match="beyond 64 bits.*2\\*\\*64 - 1"):
        llmlab.set_seed(seed)


@pytest.mark.parametrize("seed", [1.0, True, "1", None])
def test_set_seed_needs_an_int(seed):
    with pytest.raises(ValueError, match="seed must be an int >= 0"):
        llmlab.set_seed(seed)


def test_set_seed_accepts_the_largest_64_bit_seed_and_numpy_ints():
    llmlab.set_seed(2**64 - 1)
    llmlab.set_seed(np.int64(7))
    a = torch.rand(2)
    llmlab.set_seed(7)
    assert torch.equal(a, torch.rand(2))
