"""Shared fixtures for the unit tests."""
import matplotlib
import matplotlib.pyplot as plt
import pytest
import torch

matplotlib.use("Agg")  # tests draw off-screen; notebooks keep their own inline backend


@pytest.fixture
def text_file(tmp_path):
    """A small training text file (a few thousand characters of Shakespeare), for CLI tests."""
    from llmlab.data import load_text

    path = tmp_path / "tiny.txt"
    path.write_text(load_text("tinyshakespeare")[:5000], encoding="utf-8")
    return path


@pytest.fixture
def one_thread():
    """Run a test on one torch thread: tiny models run fastest so, and on a busy 2-core machine
    extra threads only spin. Use it with `pytestmark = pytest.mark.usefixtures("one_thread")`."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def no_pyplot_figures():
    """Fail a test whose code leaves figures in pyplot's registry: llmlab.viz draws without pyplot.
    Use it with `pytestmark = pytest.mark.usefixtures("no_pyplot_figures")`."""
    before = plt.get_fignums()
    yield
    assert plt.get_fignums() == before
