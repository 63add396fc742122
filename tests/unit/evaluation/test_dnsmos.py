"""DNSMOS P.835 / P.808 through the speechmos wheel's ONNX models (each clip costs ~2-3 s of CPU)."""
import sys

import numpy as np
import pytest
from eval_signals import add_noise

from evaluation.metrics import build_metric


@pytest.fixture(scope="module")
def dnsmos():
    return build_metric("dnsmos")


@pytest.fixture(scope="module")
def clean_score(dnsmos, speech):
    return dnsmos.score(speech)


def test_dnsmos_equals_speechmos_on_the_same_audio(clean_score, speech):
    from speechmos import dnsmos as upstream

    expected = upstream.run(speech, 16000)
    v = clean_score
    assert v.available and v.value == v.detail["ovrl"]
    for ours, theirs in (("ovrl", "ovrl_mos"), ("sig", "sig_mos"), ("bak", "bak_mos"), ("p808", "p808_mos")):
        assert v.detail[ours] == pytest.approx(float(expected[theirs]), abs=1e-4), ours
    assert v.detail["clipped"] == 0
    assert 1.0 <= v.value <= 5.0


def test_dnsmos_overall_drops_with_white_noise_at_5db(dnsmos, clean_score, speech):
    noisy = dnsmos.score(add_noise(speech, 5.0))
    # measured on this corpus's espeak speech: OVRL 2.55 clean -> 1.74 at 5 dB; BAK is the noise axis
    assert clean_score.value - noisy.value > 0.5
    assert clean_score.detail["bak"] - noisy.detail["bak"] > 1.0
    r = dnsmos.aggregate([clean_score, noisy])
    assert r.value == pytest.approx((clean_score.value + noisy.value) / 2)
    for k in ("sig", "bak", "p808"):
        assert r.extras[f"dnsmos_{k}"] == pytest.approx((clean_score.detail[k] + noisy.detail[k]) / 2)
    assert set(r.as_metrics()) == {"eval/dnsmos", "eval/dnsmos_sig", "eval/dnsmos_bak", "eval/dnsmos_p808"}


def test_dnsmos_clips_overshooting_samples_and_says_so(dnsmos, speech):
    from speechmos import dnsmos as upstream

    loud = speech * 3.0
    assert np.abs(loud).max() > 1.0
    with pytest.raises(ValueError):
        upstream.run(loud, 16000)  # why the metric clips
    v = dnsmos.score(loud)
    assert v.detail["clipped"] == int(np.count_nonzero(np.abs(loud) > 1.0)) > 0
    assert v.value == pytest.approx(float(upstream.run(np.clip(loud, -1.0, 1.0), 16000)["ovrl_mos"]), abs=1e-4)


def test_dnsmos_without_speechmos_is_unavailable(monkeypatch, speech):
    for mod in ("speechmos", "speechmos.dnsmos", "onnxruntime"):
        monkeypatch.setitem(sys.modules, mod, None)  # makes `import mod` raise ImportError
    m = build_metric("dnsmos")
    v = m.score(speech)
    assert not v.available and "speechmos" in v.reason and "ns3[dnsmos]" in v.reason
    r = m.score_corpus([speech])
    assert r.value is None and "ns3[dnsmos]" in r.reason and r.as_metrics() == {}


def test_dnsmos_rejects_bad_thread_count():
    with pytest.raises(ValueError, match="num_threads"):
        build_metric("dnsmos", num_threads=0)
