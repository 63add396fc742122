"""Boundary scoring against references whose phone strings differ from ours."""
from __future__ import annotations

import numpy as np
import pytest

from ns3.align.scoring import BoundaryReport, edit_distance, match_sequences, phone_error_rate, score_alignment
from ns3.align.types import Alignment
from ns3.text.phones import SIL


def test_match_sequences_pairs_only_equal_symbols():
    ref = ["ð", "ə", "k", "w", "ɪ", "k"]
    hyp = ["ð", "ɪ", "k", "w", "ɪ", "k", "s"]
    assert match_sequences(ref, hyp) == [(0, 0), (2, 2), (3, 3), (4, 4), (5, 5)]
    assert edit_distance(ref, hyp) == 2
    assert match_sequences([], ["a"]) == []


def test_score_alignment_known_errors():
    # ours: sil 0-4, ð 4-8, ə 8-12, k 12-20 frames (80 fps) -> onsets 50, 100, 150 ms
    a = Alignment([SIL, "ð", "ə", "k"], np.array([4, 4, 4, 8]))
    ref = [{"phone": "ð", "start": 0.060}, {"phone": "ˈə", "start": 0.100}, {"phone": "t", "start": 0.2}]
    s = score_alignment(a, ref, "u")
    assert (s.ref_phones, s.hyp_phones, s.matched) == (3, 3, 2)
    np.testing.assert_allclose(s.errors_ms, [10.0, 0.0], atol=1e-9)
    rep = BoundaryReport()
    rep.add(s)
    summ = rep.summary()
    assert summ["matched_share"] == pytest.approx(2 / 3)
    assert summ["within_20ms"] == 1.0 and summ["mean_abs_error_ms"] == pytest.approx(5.0)


def test_phone_error_rate_ignores_silence_and_stress():
    assert phone_error_rate(["ð", "ˈə"], [SIL, "ð", "ə", SIL]) == 0.0
    assert phone_error_rate(["a", "b", "c", "d"], ["a", "x", "c"]) == pytest.approx(0.5)
