"""WER with a HuBERT CTC recogniser (NS3's WER model) from a local Hugging Face directory."""
import json
import shutil

import numpy as np
import pytest

from evaluation.metrics import build_metric
from evaluation.metrics.wer_hubert import receptive_field

# the character inventory and special tokens of facebook/hubert-large-ls960-ft's vocab.json
VOCAB = ["<pad>", "<s>", "</s>", "<unk>", "|", *"ETAONIHSRDLUMWCFGYPBVK'XJQZ"]


@pytest.fixture(scope="module")
def tiny_hubert_dir(tmp_path_factory):
    """Random-weight HubertForCTC in the hub repo's layout: model + config, vocab.json and tokenizer files,
    preprocessor_config.json (stable layer norm like hubert-large; 320x downsampling like the real model)."""
    import torch
    from transformers import HubertConfig, HubertForCTC, Wav2Vec2CTCTokenizer, Wav2Vec2FeatureExtractor

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("hubert_ctc")
    (path / "vocab.json").write_text(json.dumps({c: i for i, c in enumerate(VOCAB)}))
    Wav2Vec2CTCTokenizer(str(path / "vocab.json"), unk_token="<unk>", pad_token="<pad>",
                         word_delimiter_token="|").save_pretrained(path)
    Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000, padding_value=0.0, do_normalize=True,
                             return_attention_mask=True).save_pretrained(path)
    config = HubertConfig(vocab_size=len(VOCAB), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                          intermediate_size=64, conv_dim=(16, 16, 16), conv_stride=(5, 8, 8), conv_kernel=(10, 8, 8),
                          num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2, feat_extract_norm="layer",
                          do_stable_layer_norm=True, pad_token_id=0)
    HubertForCTC(config).save_pretrained(path)
    return path


def direct_transcript(path, wav):
    """What the model card does: processor -> HubertForCTC -> argmax -> batch_decode."""
    import torch
    from transformers import HubertForCTC, Wav2Vec2Processor

    model = HubertForCTC.from_pretrained(str(path)).eval()
    processor = Wav2Vec2Processor.from_pretrained(str(path))
    with torch.no_grad():
        logits = model(processor(wav, sampling_rate=16000, return_tensors="pt").input_values).logits
    return processor.batch_decode(torch.argmax(logits, dim=-1))[0]


def test_wer_hubert_transcript_equals_transformers_greedy_ctc(tiny_hubert_dir, speech, speech_other_text):
    m = build_metric("wer_hubert", checkpoint=str(tiny_hubert_dir))
    assert m.unavailable_reason is None
    text = m.transcribe(speech)
    expected = direct_transcript(tiny_hubert_dir, speech)
    assert len(expected.split()) >= 1
    assert text == expected
    assert m.transcribe(speech_other_text) == direct_transcript(tiny_hubert_dir, speech_other_text) != expected
    # scored against its own transcript: zero errors, hypothesis kept verbatim
    v = m.score(speech, expected)
    assert v.value == 0.0 and v.detail["hypothesis"] == expected.strip()


def test_wer_hubert_scores_and_aggregates_like_wer(tiny_hubert_dir, speech):
    m = build_metric("wer_hubert", checkpoint=tiny_hubert_dir)
    v = m.score(speech, "The quick brown fox jumps over the lazy dog near the river bank.")
    assert v.available and v.detail["tokens"] == 13 and v.value >= 0.0
    r = m.aggregate([v, m.score(speech, m.transcribe(speech))])
    assert r.name == "wer_hubert"
    assert r.value == pytest.approx(v.detail["errors"] / (13 + r.per_utterance[1].detail["tokens"]))
    assert r.extras["wer_hubert_utt_mean"] == pytest.approx(v.value / 2)
    assert r.extras["wer_hubert_utt_mean_capped"] == pytest.approx(min(v.value, 1.0) / 2)


def test_wer_hubert_too_short_input_is_unavailable(tiny_hubert_dir):
    # tiny front end: kernels (10, 8, 8), strides (5, 8, 8) -> one frame needs 325 samples
    m = build_metric("wer_hubert", checkpoint=tiny_hubert_dir)
    v = m.score(np.zeros(324, np.float32), "hello")
    assert not v.available and "325" in v.reason
    assert m.score(np.full(325, 0.01, np.float32), "hello").available


def test_receptive_field_of_the_hubert_front_end():
    assert receptive_field((10, 3, 3, 3, 3, 2, 2), (5, 2, 2, 2, 2, 2, 2)) == 400
    assert receptive_field((10, 8, 8), (5, 8, 8)) == 325


@pytest.mark.parametrize("checkpoint, words", [(None, "no HuBERT"), ("/definitely/missing", "not found")])
def test_wer_hubert_unconfigured_is_unavailable(speech, checkpoint, words):
    m = build_metric("wer_hubert", checkpoint=checkpoint)
    v = m.score(speech, "the quick brown fox")
    assert not v.available and words in v.reason
    r = m.score_corpus([(speech, "x")])
    assert r.value is None and words in r.reason and r.as_metrics() == {}


@pytest.mark.parametrize("remove, match", [
    ("config.json", "no config.json"),
    ("vocab.json", "no vocab.json"),
    ("preprocessor_config.json", "no preprocessor_config.json or processor_config.json"),
    ("model.safetensors", "no weights"),
])
def test_wer_hubert_incomplete_directory_is_an_error(tiny_hubert_dir, tmp_path, speech, remove, match):
    broken = tmp_path / "broken"
    shutil.copytree(tiny_hubert_dir, broken)
    (broken / remove).unlink()
    with pytest.raises(ValueError, match=match):
        build_metric("wer_hubert", checkpoint=broken).score(speech, "x")


def test_wer_hubert_rejects_other_models_and_files(tiny_hubert_dir, tmp_path, speech):
    other = tmp_path / "wav2vec2"
    shutil.copytree(tiny_hubert_dir, other)
    config = json.loads((other / "config.json").read_text())
    (other / "config.json").write_text(json.dumps({**config, "model_type": "wav2vec2"}))
    with pytest.raises(ValueError, match="model_type is 'wav2vec2'"):
        build_metric("wer_hubert", checkpoint=other).score(speech, "x")
    with pytest.raises(ValueError, match="not a directory"):
        build_metric("wer_hubert", checkpoint=other / "config.json").score(speech, "x")
