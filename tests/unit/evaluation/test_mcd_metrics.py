"""MCD (hand-computed DTW example, properties) and MCD-Acc (1-NN emotion by MCD)."""
import math

import numpy as np
import pytest
from eval_signals import SENTENCE, add_noise, speak

from evaluation.metrics import build_metric
from evaluation.metrics.mcd import MCD_CONSTANT, dtw_mcd, dtw_path

EMOTIONS = {  # prosody settings standing in for emotions, as in the embedded RAVDESS-layout set
    "neutral": dict(rate=160, pitch=50, pitch_range=50),
    "sad": dict(rate=110, pitch=25, pitch_range=15),
    "happy": dict(rate=210, pitch=75, pitch_range=95),
}


def test_mcd_constant():
    assert MCD_CONSTANT == pytest.approx(6.141851463713754)


def test_dtw_mcd_hand_computed_example():
    # Euclidean frame costs (ref rows, deg cols): [[0, 5], [1, 4], [5, 0]].
    # Accumulated: (1,1) = 4 + 0 = 4, (2,1) = 0 + min(acc(1,0)=1, acc(1,1)=4, acc(2,0)=6) = 1,
    # so the path is (0,0) (1,0) (2,1) with frame costs 0, 1, 0 -> MCD = K * 1/3.
    ref = np.array([[0.0, 0.0], [0.6, 0.8], [3.0, 4.0]])
    deg = np.array([[0.0, 0.0], [3.0, 4.0]])
    a = dtw_mcd(ref, deg)
    assert a.path.tolist() == [[0, 0], [1, 0], [2, 1]]
    assert a.value == pytest.approx(10 / math.log(10) * math.sqrt(2) / 3)


def test_dtw_path_is_monotonic_covers_both_ends_and_matches_librosa():
    import librosa

    cost = np.random.default_rng(3).random((37, 23))
    path = dtw_path(cost)
    assert path[0].tolist() == [0, 0] and path[-1].tolist() == [36, 22]
    steps = np.diff(path, axis=0)
    assert np.all((steps >= 0) & (steps <= 1)) and np.all(steps.sum(axis=1) >= 1)
    acc, wp = librosa.sequence.dtw(C=cost, backtrack=True)
    np.testing.assert_array_equal(path, wp[::-1])
    assert cost[path[:, 0], path[:, 1]].sum() == pytest.approx(acc[-1, -1])


def test_dtw_mcd_rejects_mismatched_orders():
    with pytest.raises(ValueError, match="equal D"):
        dtw_mcd(np.zeros((3, 24)), np.zeros((3, 12)))


def test_mcd_identical_is_zero_and_gain_is_free(speech):
    m = build_metric("mcd")
    assert m.score(speech, speech).value == 0.0
    # a gain only moves c0, which MCD excludes
    assert m.score(speech, (0.5 * speech).astype(np.float32)).value < 0.05


def test_mcd_settings(speech):
    m = build_metric("mcd")
    assert m.alpha == pytest.approx(0.41, abs=0.005) and m.order == 24
    assert m.mel_cepstrum(speech).shape[1] == 24  # c1..c24, no c0
    assert build_metric("mcd", sample_rate=22050).alpha == pytest.approx(0.455, abs=0.01)


def test_mcd_grows_with_noise_and_other_voice(speech, speech_other_voice):
    m = build_metric("mcd")
    scores = [m.score(speech, add_noise(speech, snr)).value for snr in (30, 10, 0)]
    assert scores[0] < scores[1] < scores[2], scores
    assert m.score(speech, speech_other_voice).value > scores[0]


@pytest.fixture(scope="module")
def emotion_refs():
    return {e: speak(SENTENCE, **p) for e, p in EMOTIONS.items()}


def test_mcd_acc_picks_the_nearest_emotion(emotion_refs):
    acc = build_metric("mcd_acc")
    items = [(add_noise(w, 35, seed=i), e, emotion_refs) for i, (e, w) in enumerate(emotion_refs.items())]
    result = acc.score_corpus(items)
    assert [v.detail["predicted"] for v in result.per_utterance] == list(EMOTIONS)
    assert result.value == 1.0
    assert result.extras["mcd_target_mean"] == pytest.approx(np.mean([v.detail["mcd"] for v in result.per_utterance]))
    # the same generated speech labelled with the wrong target emotion is wrong every time
    mcs = {e: acc.mcd.mel_cepstrum(w) for e, w in emotion_refs.items()}
    shifted = {"neutral": "sad", "sad": "happy", "happy": "neutral"}
    wrong = acc.aggregate([acc.score(g, shifted[t], c, precomputed=mcs) for g, t, c in items])
    assert wrong.value == 0.0
    assert all(v.detail["mcd"] > r.detail["mcd"] for v, r in zip(wrong.per_utterance, result.per_utterance))


def test_mcd_acc_missing_target_is_unavailable(emotion_refs):
    v = build_metric("mcd_acc").score(emotion_refs["sad"], "angry", emotion_refs)
    assert not v.available and "angry" in v.reason
