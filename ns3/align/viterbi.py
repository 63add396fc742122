"""Dynamic-programming cores: monotonic forced alignment and free phone-loop decoding.

Pure numpy, no model: scores in, paths out, so both can be tested on hand-built score matrices
with a known best path. Scores are log-domain emission scores ``[T, N]`` (any scale; larger is
better); a path's score is the sum of the emissions it visits.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_NEG = -1e30


class AlignmentError(ValueError):
    pass


@dataclass(frozen=True)
class ForcedPath:
    """``states[t]`` = index into the token sequence occupied by frame t (non-decreasing)."""

    states: np.ndarray  # [T] int64
    score: float

    def durations(self, num_tokens: int) -> np.ndarray:
        """[N] frames per token (0 for skipped optional tokens)."""
        return np.bincount(self.states, minlength=num_tokens).astype(np.int64)


def forced_align(scores: np.ndarray, optional: np.ndarray | None = None) -> ForcedPath:
    """Best monotonic path through tokens 0..N-1 over frames 0..T-1.

    scores:   [T, N] emission score of token n at frame t (already gathered per token, so a phone
              that occurs twice has two columns).
    optional: [N] bool; an optional token may be skipped (0 frames). Every other token gets >= 1
              frame. Two optional tokens may not be adjacent (a skip jumps over one token).
    Moves per frame: stay, advance by one, or advance by two over an optional token.
    """
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2:
        raise AlignmentError(f"scores must be [T, N], got shape {scores.shape}")
    T, N = scores.shape
    opt = np.zeros(N, bool) if optional is None else np.asarray(optional, bool)
    if opt.shape != (N,):
        raise AlignmentError(f"optional must be [N={N}], got shape {opt.shape}")
    if N == 0:
        raise AlignmentError("cannot align an empty token sequence")
    if np.any(opt[1:] & opt[:-1]):
        raise AlignmentError("optional tokens must not be adjacent")
    required = int((~opt).sum())
    if T < required:
        raise AlignmentError(f"{T} frames cannot hold {required} tokens of at least one frame each")

    can_skip_prev = np.zeros(N, bool)  # entering n by jumping over an optional n-1
    can_skip_prev[2:] = opt[1:-1]
    delta = np.full(N, _NEG)
    delta[0] = scores[0, 0]
    if N > 1 and opt[0]:
        delta[1] = scores[0, 1]
    back = np.zeros((T, N), np.int8)  # 0 stay, 1 from n-1, 2 from n-2
    for t in range(1, T):
        stay = delta
        adv = np.concatenate(([_NEG], delta[:-1]))
        skip = np.where(can_skip_prev, np.concatenate(([_NEG, _NEG], delta[:-2])), _NEG)
        cand = np.stack([stay, adv, skip])
        choice = cand.argmax(axis=0)
        back[t] = choice
        delta = cand[choice, np.arange(N)] + scores[t]

    finals = [N - 1] + ([N - 2] if N > 1 and opt[N - 1] else [])
    end = max(finals, key=lambda n: delta[n])
    if delta[end] <= _NEG / 2:
        raise AlignmentError("no valid path (too few frames for the required tokens)")
    states = np.empty(T, np.int64)
    n = end
    for t in range(T - 1, -1, -1):
        states[t] = n
        n -= int(back[t, n]) if t > 0 else 0
    return ForcedPath(states=states, score=float(delta[end]))


@dataclass(frozen=True)
class Segment:
    label: int
    start: int  # frame, inclusive
    end: int  # frame, exclusive


def decode_loop(scores: np.ndarray, switch_penalty: float = 0.0) -> list[Segment]:
    """Free decoding: best label per frame with a penalty for every change of label.

    scores: [T, V] emission scores. Returns the runs of the best path (consecutive labels differ).
    A positive ``switch_penalty`` suppresses one-frame flickers (a phone-insertion penalty).
    """
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2 or scores.shape[0] == 0:
        raise AlignmentError(f"scores must be [T>0, V], got shape {scores.shape}")
    T, V = scores.shape
    delta = scores[0].copy()
    back = np.zeros((T, V), np.int64)
    for t in range(1, T):
        best = int(delta.argmax())
        switch = delta[best] - switch_penalty
        stay_better = delta >= switch
        back[t] = np.where(stay_better, np.arange(V), best)
        delta = np.where(stay_better, delta, switch) + scores[t]
    labels = np.empty(T, np.int64)
    labels[-1] = int(delta.argmax())
    for t in range(T - 1, 0, -1):
        labels[t - 1] = back[t, labels[t]]
    change = np.flatnonzero(np.diff(labels)) + 1
    starts = np.concatenate(([0], change))
    ends = np.concatenate((change, [T]))
    return [Segment(int(labels[s]), int(s), int(e)) for s, e in zip(starts, ends)]
