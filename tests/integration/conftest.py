import pytest
import torch


@pytest.fixture(autouse=True)
def _single_thread():
    """Bitwise comparisons and speed: one intra-op thread in integration tests."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
