"""Bounded error rates: the capped per-utterance mean and Whisper's hypothesis-length cap."""
import numpy as np
import pytest

from evaluation.metrics import build_metric
from evaluation.metrics.error_rate import aggregate_error_rate, token_errors
from evaluation.metrics.wer import capped_word_errors, hypothesis_word_limit, word_errors


def test_capped_mean_bounds_a_looping_utterance_while_corpus_wer_exceeds_one():
    looped = token_errors(["a", "b"], ["a", "b"] + ["no"] * 40)  # 40 insertions over 2 words: rate 20
    assert looped.value == pytest.approx(20.0)
    r = aggregate_error_rate("wer", [looped])
    assert r.value == pytest.approx(20.0) and r.value > 1.0
    assert r.extras["wer_utt_mean"] == pytest.approx(20.0)
    assert r.extras["wer_utt_mean_capped"] == 1.0


def test_capped_mean_leaves_rates_below_one_alone_and_skips_unavailable():
    vals = [token_errors(["a", "b", "c", "d"], ["a", "b", "c", "x"]),  # 0.25
            token_errors(["e", "f"], ["e", "f", "g", "h", "i", "j"]),  # 2.0 -> capped 1.0
            token_errors([], ["x"])]  # unavailable: empty reference
    r = aggregate_error_rate("per", vals)
    assert r.value == pytest.approx(5 / 6)
    assert r.extras["per_utt_mean"] == pytest.approx((0.25 + 2.0) / 2)
    assert r.extras["per_utt_mean_capped"] == pytest.approx((0.25 + 1.0) / 2)
    assert r.n_unavailable == 1


@pytest.mark.parametrize("n_ref, limit", [(0, 10), (3, 10), (5, 10), (6, 12), (40, 80)])
def test_hypothesis_word_limit(n_ref, limit):
    assert hypothesis_word_limit(n_ref) == limit


def test_capped_word_errors_truncates_only_overlong_hypotheses():
    ref = "the cat sat on the mat"  # 6 words -> at most 12 hypothesis words scored
    loop = "The cat sat on the mat. " + "No, no, " * 50
    v = capped_word_errors(ref, loop)
    assert v.detail["truncated"] == 1
    assert v.detail["insertions"] == 6 and v.value == pytest.approx(1.0)  # 12 - 6 words inserted
    assert word_errors(ref, loop).value == pytest.approx(100 / 6)  # what it would be uncapped
    assert v.detail["hypothesis"] == loop.strip()  # the full loop stays visible in the report
    honest = capped_word_errors(ref, "The cat sat on the mat today")
    assert honest.detail["truncated"] == 0
    assert honest.value == word_errors(ref, "The cat sat on the mat today").value == pytest.approx(1 / 6)
    assert capped_word_errors("yes", "no " * 30).detail["errors"] == 10  # floor of 10 words for short refs
    assert not capped_word_errors("[noise]", "a b c").available


def test_whisper_wer_caps_the_hypothesis_and_reports_the_capped_mean(tmp_path, monkeypatch):
    ckpt = tmp_path / "any.pt"
    ckpt.write_bytes(b"")  # exists, so the metric is available; transcribe is replaced, nothing is loaded
    m = build_metric("wer", checkpoint=ckpt)
    monkeypatch.setattr(m, "transcribe", lambda wav: "no " * 200)
    wav = np.zeros(16000, np.float32)
    v = m.score(wav, "hello world")
    assert v.detail["truncated"] == 1 and v.detail["errors"] == 10  # 2 substitutions + 8 insertions
    monkeypatch.setattr(m, "transcribe", lambda wav: "Hello, world!")
    ok = m.score(wav, "hello world")
    assert ok.value == 0.0 and ok.detail["truncated"] == 0
    r = m.aggregate([v, ok])
    assert r.value == pytest.approx(10 / 4)
    assert r.extras["wer_utt_mean"] == pytest.approx(2.5) and r.extras["wer_utt_mean_capped"] == pytest.approx(0.5)
