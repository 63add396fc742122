"""WER (Whisper from a local checkpoint) and PER (caller's phone recogniser)."""
import numpy as np
import pytest

from evaluation.metrics import build_metric
from evaluation.metrics.error_rate import aggregate_error_rate, token_errors
from evaluation.metrics.wer import normalize_english, word_errors


def test_english_normalisation_makes_formatting_free():
    assert word_errors("Mr. Smith has twenty cats!", "mister smith has 20 cats").value == 0.0
    assert normalize_english("The colour, it's GREY.") == ["the", "color", "it", "is", "gray"]


@pytest.mark.parametrize("hyp, counts", [
    ("the cat sit on the mat", (1, 0, 0)),
    ("the cat on the mat", (0, 1, 0)),
    ("the cat sat on the mat today", (0, 0, 1)),
])
def test_word_errors_known_answer(hyp, counts):
    v = word_errors("the cat sat on the mat", hyp)
    assert (v.detail["substitutions"], v.detail["deletions"], v.detail["insertions"]) == counts
    assert v.value == pytest.approx(1 / 6) and v.detail["tokens"] == 6


def test_word_errors_edge_cases():
    assert word_errors("the cat", "").value == 1.0
    assert not word_errors("[noise] (laughs) um", "anything").available  # nothing left to score


def test_corpus_wer_is_total_errors_over_total_words():
    vals = [word_errors("a b c d", "a b c x"), word_errors("e f", "")]  # 1/4 and 2/2
    r = aggregate_error_rate("wer", vals)
    assert r.value == pytest.approx(3 / 6)
    assert r.extras["wer_utt_mean"] == pytest.approx((0.25 + 1.0) / 2)


def test_token_errors_rejects_tokens_with_spaces():
    with pytest.raises(ValueError, match="whitespace"):
        token_errors(["a b"], ["a"])


@pytest.mark.parametrize("checkpoint, words", [(None, "no Whisper"), ("/definitely/missing.pt", "not found")])
def test_wer_unconfigured_is_unavailable(speech, checkpoint, words):
    m = build_metric("wer", checkpoint=checkpoint)
    v = m.score(speech, "the quick brown fox")
    assert not v.available and words in v.reason
    r = m.score_corpus([(speech, "x")])
    assert r.value is None and words in r.reason and r.as_metrics() == {}


def test_wer_rejects_a_file_that_is_not_a_whisper_checkpoint(speech, tmp_path):
    import torch

    bad = tmp_path / "bad.pt"
    torch.save({"weights": torch.zeros(2)}, bad)
    with pytest.raises(ValueError, match="dims"):
        build_metric("wer", checkpoint=bad).score(speech, "x")
    with pytest.raises(ValueError, match=".pt file"):
        build_metric("wer", checkpoint=tmp_path).score(speech, "x")


@pytest.fixture(scope="module")
def micro_whisper(tmp_path_factory):
    """Random-weight Whisper in the released checkpoint format with micro dimensions (n_vocab keeps the
    multilingual tokenizer; n_audio_ctx 1500 is what 30 s of log-mel frames become)."""
    import torch
    from whisper.model import ModelDimensions, Whisper

    torch.manual_seed(0)
    dims = ModelDimensions(n_mels=80, n_audio_ctx=1500, n_audio_state=32, n_audio_head=2, n_audio_layer=1,
                           n_vocab=51865, n_text_ctx=448, n_text_state=32, n_text_head=2, n_text_layer=1)
    path = tmp_path_factory.mktemp("whisper") / "micro.pt"
    torch.save({"dims": dims.__dict__, "model_state_dict": Whisper(dims).half().state_dict()}, path)
    return path


def test_wer_micro_random_checkpoint_runs_the_real_pipeline(micro_whisper, speech):
    m = build_metric("wer", checkpoint=str(micro_whisper), sample_len=6)
    text = m.transcribe(speech)
    assert isinstance(text, str)
    v = m.score(speech, "The quick brown fox jumps over the lazy dog near the river bank.")
    assert v.available and v.value >= 0.0 and v.detail["tokens"] == 13
    assert v.detail["hypothesis"] == text.strip()
    r = m.aggregate([v])
    assert r.value == pytest.approx(v.value) and r.extras["wer_utt_mean"] == pytest.approx(v.value)


def test_per_with_a_recogniser_callable(speech):
    heard = ["ð", "ə", "k", "w", "ɪ", "k"]
    m = build_metric("per", recognize=lambda wav: heard)
    assert m.score(speech, heard).value == 0.0
    v = m.score(speech, ["ð", "ə", "k", "w", "ɪ", "k", "b"])  # one deletion over 7 phones
    assert v.value == pytest.approx(1 / 7) and v.detail["deletions"] == 1
    r = m.score_corpus([(speech, heard), (speech, ["ð", "ə", "k", "w", "ɪ", "k", "b"])])
    assert r.value == pytest.approx(1 / 13)


def test_per_inputs_and_unconfigured(speech):
    m = build_metric("per", recognize=lambda wav: ["a"])
    with pytest.raises(TypeError, match="list of phone"):
        m.score(speech, "a b")
    assert not m.score(speech, []).available
    v = build_metric("per").score(speech, ["a"])
    assert not v.available and "recogniser" in v.reason
    seen = []
    build_metric("per", recognize=lambda wav: seen.append(wav.dtype) or ["a"]).score(speech, ["a"])
    assert seen == [np.float32]
