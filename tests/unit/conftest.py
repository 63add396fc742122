"""Unit tests use tiny models, which do not gain from intra-op threads; on a busy 2-core runner OpenMP
spin-waiting makes them several times slower. Every unit test runs single-threaded (restored afterwards)."""
from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _single_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
