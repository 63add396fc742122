"""Speaker similarity: Resemblyzer (bundled weights) and WavLM x-vector from a local HF directory."""
import numpy as np
import pytest

from evaluation.metrics import build_metric


def test_resemblyzer_identity_symmetry_and_speaker_ordering(speech, speech_other_voice, speech_other_text):
    m = build_metric("sim_resemblyzer")
    assert m.score(speech, speech).value == pytest.approx(1.0, abs=1e-5)
    ab, ba = m.score(speech, speech_other_voice).value, m.score(speech_other_voice, speech).value
    assert ab == pytest.approx(ba, abs=1e-6)
    # same voice, different sentence is closer than same sentence, different voice
    assert m.score(speech, speech_other_text).value > ab


def test_resemblyzer_silence_is_unavailable(speech):
    v = build_metric("sim_resemblyzer").score(speech, np.zeros(16000, np.float32))
    assert not v.available and "voiced" in v.reason


@pytest.mark.parametrize("checkpoint, words", [(None, "no WavLM"), ("/definitely/missing", "not found")])
def test_wavlm_unconfigured_is_unavailable(speech, checkpoint, words):
    m = build_metric("sim_wavlm", checkpoint=checkpoint)
    v = m.score(speech, speech)
    assert not v.available and words in v.reason
    r = m.score_corpus([(speech, speech)])
    assert r.value is None and words in r.reason


def test_wavlm_incomplete_directory_is_an_error(speech, tmp_path):
    with pytest.raises(ValueError, match="no config.json"):
        build_metric("sim_wavlm", checkpoint=tmp_path).score(speech, speech)
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ValueError, match="no preprocessor_config.json"):
        build_metric("sim_wavlm", checkpoint=tmp_path).score(speech, speech)


@pytest.fixture(scope="module")
def tiny_wavlm_dir(tmp_path_factory):
    import torch
    from transformers import Wav2Vec2FeatureExtractor, WavLMConfig, WavLMForXVector

    torch.manual_seed(0)
    # 320x downsampling like the real model (50 frames/s), so attention stays small
    config = WavLMConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                         conv_dim=(16, 16, 16), conv_stride=(5, 8, 8), conv_kernel=(10, 8, 8), num_conv_pos_embeddings=16,
                         num_conv_pos_embedding_groups=2, tdnn_dim=(16, 16), tdnn_kernel=(3, 1), tdnn_dilation=(1, 1),
                         xvector_output_dim=8, num_buckets=32, max_bucket_distance=100)
    path = tmp_path_factory.mktemp("wavlm_sv")
    WavLMForXVector(config).save_pretrained(path)
    Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000, padding_value=0.0, do_normalize=True,
                             return_attention_mask=True).save_pretrained(path)
    return path


def test_wavlm_tiny_random_checkpoint_loads_and_scores(tiny_wavlm_dir, speech, speech_other_voice):
    m = build_metric("sim_wavlm", checkpoint=str(tiny_wavlm_dir))
    assert m.unavailable_reason is None
    assert m.embed(speech).shape == (8,)
    assert m.score(speech, speech).value == pytest.approx(1.0, abs=1e-5)
    other = m.score(speech, speech_other_voice).value
    assert -1.0 <= other <= 1.0
    assert m.score(speech_other_voice, speech).value == pytest.approx(other, abs=1e-5)
