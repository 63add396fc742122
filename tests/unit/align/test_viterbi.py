"""Forced alignment and phone-loop decoding on hand-built score matrices with known answers."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from ns3.align.viterbi import AlignmentError, decode_loop, forced_align


def _scores_for(path: list[int], n_tokens: int, hi: float = 0.0, lo: float = -5.0) -> np.ndarray:
    s = np.full((len(path), n_tokens), lo)
    s[np.arange(len(path)), path] = hi
    return s


def test_known_path_is_recovered():
    truth = [0, 0, 1, 1, 1, 2, 3, 3]
    p = forced_align(_scores_for(truth, 4))
    assert p.states.tolist() == truth
    assert p.durations(4).tolist() == [2, 3, 1, 2]
    assert p.score == pytest.approx(0.0)


def test_every_required_token_gets_a_frame_even_against_the_scores():
    # Token 1 scores badly everywhere, yet it must occupy at least one frame.
    s = np.zeros((5, 3))
    s[:, 1] = -100
    p = forced_align(s)
    assert p.durations(3).min() >= 1 and p.durations(3)[1] == 1


def test_optional_tokens_are_skipped_or_used():
    # tokens: sil? a sil? b sil?  (optional silences around and between)
    opt = np.array([True, False, True, False, True])
    skip = forced_align(_scores_for([1, 1, 3, 3], 5), opt)
    assert skip.durations(5).tolist() == [0, 2, 0, 2, 0]
    used = forced_align(_scores_for([0, 1, 2, 2, 3, 4], 5), opt)
    assert used.durations(5).tolist() == [1, 1, 2, 1, 1]


def _brute_force(scores: np.ndarray, opt: np.ndarray) -> float:
    T, N = scores.shape
    best = -np.inf
    for dur in itertools.product(range(T + 1), repeat=N):
        if sum(dur) != T or any(d == 0 and not o for d, o in zip(dur, opt)):
            continue
        states = np.repeat(np.arange(N), dur)
        best = max(best, scores[np.arange(T), states].sum())
    return best


@pytest.mark.parametrize("seed", range(6))
def test_matches_brute_force_on_random_cases(seed):
    rng = np.random.default_rng(seed)
    T, N = 6, 4
    scores = rng.normal(size=(T, N))
    opt = np.array([True, False, True, False]) if seed % 2 else np.zeros(N, bool)
    p = forced_align(scores, opt)
    assert p.score == pytest.approx(_brute_force(scores, opt))
    assert p.score == pytest.approx(scores[np.arange(T), p.states].sum())
    assert np.all(np.diff(p.states) >= 0) and np.all(np.diff(p.states) <= 2)


def test_bad_inputs_fail_clearly():
    with pytest.raises(AlignmentError, match="cannot hold"):
        forced_align(np.zeros((2, 3)))
    with pytest.raises(AlignmentError, match="adjacent"):
        forced_align(np.zeros((5, 3)), np.array([False, True, True]))
    with pytest.raises(AlignmentError, match=r"\[T, N\]"):
        forced_align(np.zeros(5))


def test_decode_loop_known_answer_and_insertion_penalty():
    labels = [0] * 4 + [2] * 3 + [1] * 4
    s = _scores_for(labels, 3, hi=0.0, lo=-3.0)
    segs = decode_loop(s)
    assert [(g.label, g.start, g.end) for g in segs] == [(0, 0, 4), (2, 4, 7), (1, 7, 11)]
    # a one-frame flicker disappears under a penalty larger than its gain
    flick = _scores_for([0, 0, 0, 1, 0, 0, 0], 2, hi=0.0, lo=-1.0)
    assert [g.label for g in decode_loop(flick)] == [0, 1, 0]
    assert [g.label for g in decode_loop(flick, switch_penalty=2.0)] == [0]
