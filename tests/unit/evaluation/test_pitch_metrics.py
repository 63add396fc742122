"""Pitch metrics on espeak voices: F0 RMSE of a reconstruction, and VC pitch transfer (slope of the achieved
log-F0 shift on the wanted one)."""
import numpy as np
import pytest

from evaluation.metrics import build_metric
from evaluation.metrics.pitch_transfer import median_log_f0, pitch_transfer

from eval_signals import OTHER_SENTENCE, SENTENCE, speak


@pytest.fixture(scope="module")
def voices():
    # Source and control: a low voice saying SENTENCE; prompt: a high voice saying another sentence.
    low = speak(SENTENCE, pitch=20, pitch_range=30)
    mid = speak(SENTENCE, pitch=50, pitch_range=30)
    high = speak(SENTENCE, pitch=85, pitch_range=30)
    prompt = speak(OTHER_SENTENCE, pitch=85, pitch_range=30)
    return low, mid, high, prompt


def test_median_log_f0_orders_voices(voices):
    low, mid, high, _ = voices
    f = [median_log_f0(w) for w in (low, mid, high)]
    assert f[0] < f[1] < f[2]
    assert median_log_f0(np.zeros(16000, np.float32)) is None


def test_full_partial_and_no_transfer(voices):
    low, mid, high, prompt = voices
    full = pitch_transfer([low], [prompt], [high], [low])
    none = pitch_transfer([low], [prompt], [low], [low])
    part = pitch_transfer([low], [prompt], [mid], [low])
    assert full.value == pytest.approx(1.0, abs=0.2)
    assert none.value == pytest.approx(0.0, abs=1e-9)
    assert 0.2 < part.value < 0.8
    # Moving away from the prompt is negative; the control, not the source, is the zero point.
    assert pitch_transfer([low], [prompt], [low], [mid]).value < -0.2
    assert full.detail["pairs"] == 1


def test_pairs_without_signal_are_counted_not_scored(voices):
    low, _, high, prompt = voices
    silent = np.zeros_like(low)
    r = pitch_transfer([low, low, low], [prompt, low, prompt], [high, low, silent], [low, low, low])
    assert r.detail == {"pairs": 1, "skipped_unvoiced": 1, "skipped_small_gap": 1}
    assert r.value == pytest.approx(pitch_transfer([low], [prompt], [high], [low]).value)
    empty = pitch_transfer([low], [low], [low], [low])
    assert empty.value is None and "gap" in empty.reason
    with pytest.raises(ValueError, match="aligned"):
        pitch_transfer([low], [prompt], [], [low])


def test_f0_rmse_grows_with_the_pitch_error(voices):
    low, mid, high, _ = voices
    m = build_metric("f0_rmse")
    assert m.score(low, low).value == pytest.approx(0.0, abs=1e-6)
    shifted = speak(SENTENCE, pitch=24, pitch_range=30)  # a few semitones above ``low``
    small, large = m.score(low, shifted), m.score(low, mid)
    assert 0 < small.value < large.value
    assert large.detail["gross_error"] > 0.5 and 0 <= large.detail["vuv_error"] <= 1
    # A monotone copy (the pitch contour flattened) is penalised even at the right register.
    flat = speak(SENTENCE, pitch=20, pitch_range=0)
    assert m.score(low, flat).value > 50
    silent = m.score(low, np.zeros_like(low))
    assert silent.value is None and "voiced" in silent.reason
