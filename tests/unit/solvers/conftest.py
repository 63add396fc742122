"""Tiny models do not gain from intra-op threads, and on a busy 2-core runner OpenMP spin-waiting makes
them several times slower; run this folder single-threaded and restore the setting afterwards."""
from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _single_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
