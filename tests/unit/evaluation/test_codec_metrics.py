"""PESQ, STOI and MSTFT: known answers, agreement with the reference packages, monotonic degradation."""
import numpy as np
import pytest
from eval_signals import add_noise

from evaluation.metrics import build_metric
from evaluation.metrics.pesq_metric import raw_nb_from_mos_lqo

SNRS = (30, 20, 10, 0)


def test_pesq_identical_signals(speech):
    assert build_metric("pesq_wb").score(speech, speech).value == pytest.approx(4.64, abs=0.01)
    assert build_metric("pesq_nb").score(speech, speech).value == pytest.approx(4.55, abs=0.02)


@pytest.mark.parametrize("name, mode", [("pesq_wb", "wb"), ("pesq_nb", "nb")])
def test_pesq_agrees_with_the_package(speech, name, mode):
    from pesq import pesq

    deg = add_noise(speech, 15)
    expected = pesq(16000, speech, deg, mode)
    assert build_metric(name).score(speech, deg).value == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("name", ["pesq_wb", "pesq_nb", "pesq_nb_raw", "stoi"])
def test_sample_aligned_metrics_refuse_different_lengths(speech, name):
    # Cutting to the shorter signal would hide a misaligned caller; the error names both lengths.
    n = len(speech)
    with pytest.raises(ValueError, match=rf"{name}: reference has {n} samples, degraded {n - 1234}"):
        build_metric(name).score(speech, speech[: n - 1234])
    with pytest.raises(ValueError, match=rf"reference has {n - 1} samples, degraded {n}"):
        build_metric(name).score_corpus([(speech[:-1], speech)])


def test_pesq_nb_raw_inverts_the_p862_1_mapping(speech):
    deg = add_noise(speech, 10)
    lqo = build_metric("pesq_nb").score(speech, deg).value
    raw = build_metric("pesq_nb_raw").score(speech, deg).value
    assert 0.999 + 4.0 / (1.0 + np.exp(-1.4945 * raw + 4.6607)) == pytest.approx(lqo, abs=1e-9)
    assert raw_nb_from_mos_lqo(4.5486) == pytest.approx(4.5, abs=0.01)


@pytest.mark.parametrize("name", ["pesq_wb", "pesq_nb", "stoi"])
def test_more_noise_scores_lower(speech, name):
    m = build_metric(name)
    scores = [m.score(speech, add_noise(speech, snr)).value for snr in SNRS]
    assert all(a > b for a, b in zip(scores, scores[1:])), scores


def test_mstft_more_noise_scores_higher(speech):
    m = build_metric("mstft")
    scores = [m.score(speech, add_noise(speech, snr)).value for snr in SNRS]
    assert all(a < b for a, b in zip(scores, scores[1:])), scores


@pytest.mark.parametrize("name", ["pesq_wb", "pesq_nb", "pesq_nb_raw"])
def test_pesq_silent_or_short_input_is_unavailable_with_reason(speech, name):
    m = build_metric(name)
    silent = m.score(np.zeros(16000, np.float32), speech[:16000])
    short = m.score(speech[:2000], speech[:2000])
    assert not silent.available and "zeros" in silent.reason
    assert not short.available and "BufferTooShort" in short.reason


def test_stoi_identical_and_agrees_with_pystoi(speech, speech_other_voice):
    from pystoi import stoi

    m = build_metric("stoi")
    assert m.score(speech, speech).value == pytest.approx(1.0, abs=1e-6)
    n = min(len(speech), len(speech_other_voice))
    expected = stoi(speech[:n].astype(np.float64), speech_other_voice[:n].astype(np.float64), 16000)
    assert m.score(speech[:n], speech_other_voice[:n]).value == pytest.approx(expected, abs=1e-9)
    ext = build_metric("stoi", extended=True).score(speech[:n], speech_other_voice[:n]).value
    assert ext == pytest.approx(stoi(speech[:n].astype(np.float64), speech_other_voice[:n].astype(np.float64), 16000, extended=True))


def test_stoi_too_short_is_unavailable(speech):
    v = build_metric("stoi").score(speech[:3000], speech[:3000])
    assert not v.available and "too little" in v.reason


def test_mstft_zero_for_identical_and_positive_otherwise(speech, speech_other_voice):
    m = build_metric("mstft")
    assert m.score(speech, speech).value == 0.0
    assert m.score(speech, speech_other_voice).value > 0.5


@pytest.mark.parametrize("window", ["rect", "hann"])
@pytest.mark.parametrize("gain", [0.5, 2.0])
def test_mstft_known_answer_for_a_pure_gain(window, gain):
    # |X| = g|Y| in every bin, so SC = |1 - g| and the log-magnitude L1 = |ln g| exactly
    # (white noise keeps every bin far above the 1e-7 power floor)
    ref = (0.1 * np.random.default_rng(1).standard_normal(16000)).astype(np.float32)
    v = build_metric("mstft", window=window).score(ref, (gain * ref).astype(np.float32))
    assert v.detail["spectral_convergence"] == pytest.approx(abs(1 - gain), rel=1e-4)
    assert v.detail["log_magnitude"] == pytest.approx(abs(np.log(gain)), rel=1e-4)
    assert v.value == pytest.approx(abs(1 - gain) + abs(np.log(gain)), rel=1e-4)


def test_mstft_rejects_unknown_window():
    with pytest.raises(ValueError, match="window"):
        build_metric("mstft", window="hamming")


def test_corpus_aggregation_mean_and_unavailable(speech):
    r = build_metric("pesq_wb").score_corpus([(speech, speech), (speech[:100], speech[:100]), (speech, add_noise(speech, 0))])
    assert r.n_available == 2 and r.n_unavailable == 1
    assert r.value == pytest.approx(np.mean([v.value for v in r.per_utterance if v.available]))


@pytest.mark.parametrize("window", ["rect", "hann"])
def test_stft_frames_match_torch_stft(speech, window):
    import torch

    from evaluation.metrics.mstft import stft_magnitude

    n_fft, hop, win = 1024, 120, 600
    w = torch.ones(win) if window == "rect" else torch.hann_window(win, dtype=torch.float64)
    spec = torch.stft(torch.from_numpy(speech).double(), n_fft, hop, win, window=w.double(), center=True,
                      pad_mode="reflect", return_complex=True)
    expected = torch.sqrt(torch.clamp(spec.abs() ** 2, min=1e-7)).T.numpy()
    np.testing.assert_allclose(stft_magnitude(speech, n_fft, hop, win, window), expected, rtol=1e-6, atol=1e-9)
