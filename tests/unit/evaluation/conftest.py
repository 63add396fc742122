"""Session-wide speech fixtures for the metric tests (helpers live in ``eval_signals``)."""
from __future__ import annotations

import numpy as np
import pytest
from eval_signals import OTHER_SENTENCE, SENTENCE, speak


@pytest.fixture(scope="session")
def speech() -> np.ndarray:
    return speak(SENTENCE)


@pytest.fixture(scope="session")
def speech_other_voice() -> np.ndarray:
    return speak(SENTENCE, "en-us+f3")


@pytest.fixture(scope="session")
def speech_other_text() -> np.ndarray:
    return speak(OTHER_SENTENCE)
