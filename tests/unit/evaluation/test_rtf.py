"""Real-time factor arithmetic with an injected clock (no timing assertions)."""
import pytest

from evaluation.metrics import build_metric
from evaluation.metrics.rtf import RealTimeFactor


class FakeClock:
    def __init__(self, ticks):
        self.ticks = iter(ticks)

    def __call__(self):
        return next(self.ticks)


def test_rtf_is_total_processing_over_total_audio():
    syncs = []
    rtf = RealTimeFactor(clock=FakeClock([0.0, 2.0, 10.0, 11.0]), synchronize=lambda: syncs.append(1))
    with rtf.measure() as m:
        m.audio_samples = 4 * 16000  # 2 s of work for 4 s of audio
    with rtf.measure() as m:
        m.audio_seconds_hint = None
        m.audio_samples = 16000  # 1 s of work for 1 s
    r = rtf.result()
    assert r.value == pytest.approx(3.0 / 5.0)
    assert r.extras["rtf_utt_mean"] == pytest.approx((0.5 + 1.0) / 2)
    assert [v.value for v in r.per_utterance] == [0.5, 1.0]
    assert len(syncs) == 4  # before and after each timed block


def test_rtf_without_audio_is_unavailable():
    rtf = build_metric("rtf", clock=FakeClock([0.0, 1.0, 1.0, 2.0]))
    with rtf.measure():
        pass
    with rtf.measure() as m:
        m.audio_samples = 0
    r = rtf.result()
    assert r.value is None and r.n_unavailable == 2
    assert "did not report" in r.per_utterance[0].reason and "no audio" in r.per_utterance[1].reason
    assert rtf.add(0.3, 1.5).value == pytest.approx(0.2)
