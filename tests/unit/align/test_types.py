"""Alignment invariants: durations, frame labels, conversions from seconds."""
from __future__ import annotations

import numpy as np
import pytest

from ns3.align.types import Alignment, WordSpan, fit_to_frames, seconds_to_durations
from ns3.text.inventory import PhoneInventory
from ns3.text.phones import SIL


def test_frame_labels_and_json_round_trip():
    inv = PhoneInventory.english()
    a = Alignment([SIL, "h", "aɪ", SIL], np.array([3, 2, 4, 1]), [WordSpan("hi", 3, 9, 1, 3)], [0, 0, 1, 0])
    lab = a.frame_labels(inv)
    assert lab.dtype == np.int16 and len(lab) == a.num_frames == 10
    assert lab.tolist() == [inv.sil_id] * 3 + [inv.id("h")] * 2 + [inv.id("aɪ")] * 4 + [inv.sil_id]
    assert a.starts.tolist() == [0, 3, 5, 9]
    assert a.speech_phones() == [1, 2]
    back = Alignment.from_json(a.to_json())
    assert back.phones == a.phones and back.durations.tolist() == a.durations.tolist() and back.words == a.words


def test_invalid_alignments():
    with pytest.raises(ValueError, match="at least one frame"):
        Alignment(["a", "b"], np.array([1, 0]))
    with pytest.raises(ValueError, match="durations"):
        Alignment(["a"], np.array([1, 2]))


@pytest.mark.parametrize("seed", range(5))
def test_fit_to_frames_keeps_sum_and_minimum(seed):
    rng = np.random.default_rng(seed)
    d = rng.integers(0, 6, size=12)
    target = int(rng.integers(12, 60))
    out = fit_to_frames(d, target)
    assert out.sum() == target and out.min() >= 1


def test_seconds_to_durations_rounds_each_boundary():
    bounds = [(0.0, 0.1), (0.1, 0.1124), (0.1124, 0.5)]
    d = seconds_to_durations(bounds, num_frames=41)
    assert d.sum() == 41 and d.min() >= 1
    assert d[0] == 8  # 0.1 s = 8 frames at 80 fps
