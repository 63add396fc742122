import numpy as np
import pytest

from evaluation.metrics import CorpusResult, MetricValue, build_metric, check_waveform, metric_names
from evaluation.metrics.base import cosine, mean_of_available

ALL = ["dnsmos", "f0_rmse", "mcd", "mcd_acc", "mstft", "per", "pesq_nb", "pesq_nb_raw", "pesq_wb", "rtf", "sim_resemblyzer",
       "sim_wavlm", "sim_wavlm_tdnn", "stoi", "utmos", "wer", "wer_faster_whisper", "wer_hubert"]


def test_metric_value_needs_exactly_one_of_value_or_reason():
    with pytest.raises(ValueError):
        MetricValue(value=None)
    with pytest.raises(ValueError):
        MetricValue(value=1.0, reason="both")
    with pytest.raises(ValueError):
        MetricValue.of(float("nan"))
    assert MetricValue.of(2).value == 2.0 and MetricValue.of(2).available
    assert not MetricValue.unavailable("silent").available


def test_mean_skips_unavailable_and_reports_when_nothing_scored():
    vals = [MetricValue.of(1.0), MetricValue.unavailable("silent"), MetricValue.of(3.0)]
    r = mean_of_available("x", vals)
    assert r.value == 2.0 and r.n_available == 2 and r.n_unavailable == 1
    empty = mean_of_available("x", [MetricValue.unavailable("silent"), MetricValue.unavailable("short")])
    assert empty.value is None and "silent" in empty.reason and "short" in empty.reason
    assert empty.as_metrics() == {}


def test_as_metrics_uses_the_metric_name_as_key():
    r = CorpusResult("wer", 0.1, [MetricValue.of(0.1)], extras={"wer_utt_mean": 0.2})
    assert r.as_metrics() == {"eval/wer": 0.1, "eval/wer_utt_mean": 0.2}
    d = r.to_dict()
    assert d["n"] == 1 and d["per_utterance"][0]["value"] == 0.1


def test_registry_builds_every_metric_under_its_own_name():
    assert metric_names() == ALL
    for name in ALL:
        assert build_metric(name).name == name


def test_registry_errors_name_the_problem():
    with pytest.raises(KeyError, match="known metrics"):
        build_metric("pesq")
    with pytest.raises(TypeError, match="stoi"):
        build_metric("stoi", checkpoint="/x")


@pytest.mark.parametrize("bad, match", [
    (np.zeros((2, 100), np.float32), "1-D"),
    (np.zeros(100, np.int16), "dtype"),
    (np.zeros(0, np.float32), "empty"),
    (np.array([0.0, np.nan], np.float32), "NaN"),
])
def test_check_waveform_rejects_bad_input(bad, match):
    with pytest.raises(ValueError, match=match):
        check_waveform(bad, "reference")


def test_pairwise_metric_validates_both_inputs(speech):
    with pytest.raises(ValueError, match="degraded"):
        build_metric("stoi").score(speech, speech.astype(np.int16))


def test_cosine():
    assert cosine(np.array([1.0, 0.0]), np.array([2.0, 0.0])) == pytest.approx(1.0)
    assert cosine(np.array([1.0, 0.0]), np.array([0.0, 3.0])) == pytest.approx(0.0)
    with pytest.raises(ValueError):
        cosine(np.zeros(2), np.ones(2))
