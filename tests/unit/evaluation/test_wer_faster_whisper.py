"""WER with Whisper as a faster-whisper (CTranslate2) directory, and picking the runtime from the checkpoint's format.

The models are tiny random-weight Whispers built in transformers and converted with CTranslate2's own converter,
so they are in exactly the format ``ct2-transformers-converter`` writes. The tokenizer is made by hand with the
real multilingual layout (50257 text tokens, then <|endoftext|>, <|startoftranscript|>, 99 language tokens, the
task / lm / prev / nocaptions / notimestamps tokens and 1501 timestamps = 51865): CTranslate2 counts the languages
from those ids, and faster-whisper looks the special tokens up by name.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from evaluation.metrics import CorpusResult, build_metric, build_whisper_wer
from evaluation.metrics.whisper_backend import detect_whisper_backend
from evaluation.metrics.whisper_scoring import hypothesis_word_limit, normalize_english

N_TEXT_TOKENS = 50257
LOOP_TOKEN = "Ġno"  # byte-level BPE spelling of " no": the looping model says it forever
SAMPLE_LEN = 24
REQUIRED = ("model.bin", "config.json", "vocabulary.json", "tokenizer.json", "preprocessor_config.json")


def whisper_tokenizer():
    """-> (tokenizers.Tokenizer, special tokens): byte-level BPE with Whisper's id layout."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers
    from whisper.tokenizer import LANGUAGES

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {c: i for i, c in enumerate(alphabet)}  # every byte: any text encodes, as faster-whisper needs
    vocab[LOOP_TOKEN] = len(vocab)
    vocab[""] = len(vocab)  # CTranslate2 4.8 calls a Whisper vocabulary multilingual iff it holds an empty token
    fillers = (a + b for a in alphabet for b in alphabet)  # unreachable by encoding; they only pad the layout
    while len(vocab) < N_TEXT_TOKENS:
        vocab.setdefault(next(fillers), len(vocab))
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    languages = [c for c in LANGUAGES if c != "yue"]  # whisper-base's 99, <|en|> first (yue came with large-v3)
    specials = ["<|endoftext|>", "<|startoftranscript|>", *(f"<|{c}|>" for c in languages), "<|translate|>",
                "<|transcribe|>", "<|startoflm|>", "<|startofprev|>", "<|nocaptions|>", "<|notimestamps|>"]
    tok.add_special_tokens([AddedToken(s, special=True) for s in specials])
    tok.add_tokens([AddedToken(f"<|{i * 0.02:.2f}|>", special=False) for i in range(1501)])
    return tok, specials


def build_tiny_whisper_dirs(root: Path) -> dict[str, Path]:
    """Random and looping tiny Whispers: HF source directory + CTranslate2 conversion of each."""
    import ctranslate2.converters
    import torch
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    tok, specials = whisper_tokenizer()
    ids = {s: tok.token_to_id(s) for s in specials}
    eot = ids["<|endoftext|>"]
    config = WhisperConfig(vocab_size=tok.get_vocab_size(), num_mel_bins=80, d_model=64, encoder_layers=2,
                           decoder_layers=2, encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=128,
                           decoder_ffn_dim=128, max_source_positions=1500, max_target_positions=448,
                           pad_token_id=eot, bos_token_id=eot, eos_token_id=eot,
                           decoder_start_token_id=ids["<|startoftranscript|>"])
    torch.manual_seed(0)
    model = WhisperForConditionalGeneration(config).eval()
    g = model.generation_config
    # what the hub's generation_config.json carries; CTranslate2 reads the language ids from it
    g.lang_to_id = {s: ids[s] for s in specials[2:-6]}  # the language tokens sit between sot and translate
    g.task_to_id = {"transcribe": ids["<|transcribe|>"], "translate": ids["<|translate|>"]}
    g.is_multilingual, g.no_timestamps_token_id = True, ids["<|notimestamps|>"]
    g.suppress_tokens, g.begin_suppress_tokens = [], [tok.token_to_id("Ġ"), eot]
    g._from_model_config = False  # else from_pretrained rebuilds it from the model config, dropping lang_to_id

    out = {}
    for kind in ("random", "loop"):
        if kind == "loop":
            # final decoder norm -> a constant vector whose logit (tied output embedding) is LOOP_TOKEN's by far:
            # greedy decoding then says " no" until the token budget runs out, as Whisper does on bad audio
            with torch.no_grad():
                d = model.model.decoder
                d.layer_norm.weight.zero_()
                d.layer_norm.bias.fill_(1.0)
                d.embed_tokens.weight[tok.token_to_id(LOOP_TOKEN)] = 1.0
        hf = root / f"{kind}-hf"
        model.save_pretrained(hf)
        tok.save(str(hf / "tokenizer.json"))
        (hf / "tokenizer_config.json").write_text(json.dumps({
            "tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>",
            "unk_token": "<|endoftext|>", "additional_special_tokens": specials[1:]}))
        (hf / "preprocessor_config.json").write_text(json.dumps({
            "feature_extractor_type": "WhisperFeatureExtractor", "feature_size": 80, "sampling_rate": 16000,
            "hop_length": 160, "chunk_length": 30, "n_fft": 400}))
        ct2 = root / f"{kind}-ct2"
        ctranslate2.converters.TransformersConverter(
            str(hf), copy_files=["tokenizer.json", "preprocessor_config.json"]).convert(str(ct2), force=True)
        out[kind], out[f"{kind}-hf"] = ct2, hf
    return out


@pytest.fixture(scope="module")
def whisper_dirs(tmp_path_factory) -> dict[str, Path]:
    pytest.importorskip("faster_whisper")
    return build_tiny_whisper_dirs(tmp_path_factory.mktemp("faster_whisper"))


@pytest.fixture(scope="module")
def audio() -> np.ndarray:
    """1.5 s of a gliding tone in noise at 16 kHz (a random model hears nothing in particular either way)."""
    t = np.arange(24000) / 16000
    rng = np.random.default_rng(0)
    return (0.3 * np.sin(2 * np.pi * (200 + 300 * t) * t) + 0.05 * rng.standard_normal(t.size)).astype(np.float32)


def direct_transcript(path: Path, wav: np.ndarray, compute_type: str) -> str:
    """faster-whisper used the way its README does, with the metric's documented decoding options."""
    from faster_whisper import WhisperModel

    model = WhisperModel(str(path), device="cpu", compute_type=compute_type, local_files_only=True)
    segments, info = model.transcribe(wav, language="en", beam_size=1, temperature=0.0,
                                      condition_on_previous_text=False, without_timestamps=True,
                                      max_new_tokens=SAMPLE_LEN, vad_filter=False)
    assert info.language == "en"
    return "".join(s.text for s in segments)


def test_converted_directory_has_the_converter_layout(whisper_dirs):
    for name in REQUIRED:
        assert (whisper_dirs["random"] / name).is_file(), name
    import ctranslate2

    model = ctranslate2.models.Whisper(str(whisper_dirs["random"]))
    assert model.is_multilingual and model.n_mels == 80  # the layout whisper-base has, so the <|en|> path runs


def test_metric_loads_the_directory_and_scores_its_transcript(whisper_dirs, audio):
    m = build_metric("wer_faster_whisper", checkpoint=str(whisper_dirs["random"]), sample_len=SAMPLE_LEN)
    assert m.unavailable_reason is None
    text = m.transcribe(audio)
    assert isinstance(text, str)
    v = m.score(audio, "the quick brown fox")
    assert v.detail["hypothesis"] == text.strip()
    assert v.available and v.detail["tokens"] == 4 and v.value >= 0.0  # an empty transcript is 4 deletions
    r = m.aggregate([v])
    assert r.name == "wer_faster_whisper"
    assert set(r.extras) == {"wer_faster_whisper_utt_mean", "wer_faster_whisper_utt_mean_capped"}


@pytest.mark.parametrize("kind, compute_type", [("random", "float32"), ("loop", "float32"), ("loop", "int8")])
def test_transcript_equals_faster_whisper_called_directly(whisper_dirs, audio, kind, compute_type):
    m = build_metric("wer_faster_whisper", checkpoint=whisper_dirs[kind], sample_len=SAMPLE_LEN,
                     compute_type=compute_type)
    assert m.transcribe(audio) == direct_transcript(whisper_dirs[kind], audio, compute_type)


def test_looping_transcript_is_capped_like_openai_whisper(whisper_dirs, audio):
    m = build_metric("wer_faster_whisper", checkpoint=whisper_dirs["loop"], sample_len=SAMPLE_LEN)
    text = m.transcribe(audio)
    words = normalize_english(text)
    assert len(words) > hypothesis_word_limit(2) and set(words) == {"no"}  # it really loops
    v = m.score(audio, "hello world")
    assert v.detail["truncated"] == 1
    assert v.detail["errors"] == hypothesis_word_limit(2)  # 2 substitutions + 8 insertions, not len(words)
    assert v.detail["hypothesis"] == text.strip()  # the loop stays visible in the report
    r = m.aggregate([v, m.score(audio, "no")])  # "no": 1 word against 10 kept -> 9 insertions
    assert r.value == pytest.approx((10 + 9) / 3)
    assert r.extras["wer_faster_whisper_utt_mean_capped"] == pytest.approx(1.0)


def _partial_copy(src: Path, dst: Path, leave_out: str) -> Path:
    dst.mkdir()
    for f in src.iterdir():
        if f.name != leave_out:
            os.symlink(f, dst / f.name)  # model.bin is the bulk; a link keeps the copy instant
    return dst


@pytest.mark.parametrize("missing, words", [
    ("model.bin", "no model.bin"), ("tokenizer.json", "no tokenizer.json"), ("config.json", "no config.json"),
    ("vocabulary.json", "no vocabulary.json"),
])
def test_incomplete_directory_fails_naming_the_file_and_the_fix(whisper_dirs, tmp_path, missing, words):
    d = _partial_copy(whisper_dirs["random"], tmp_path / "partial", missing)
    m = build_metric("wer_faster_whisper", checkpoint=d)
    with pytest.raises(ValueError, match=words) as e:
        m.score(np.zeros(1600, np.float32), "x")
    assert "ct2-transformers-converter" in str(e.value) and "--copy_files tokenizer.json" in str(e.value)
    with pytest.raises(ValueError, match=words):  # the runtime choice checks the same, before any scoring
        build_whisper_wer(d)


def test_transformers_directory_is_told_how_to_convert_itself(whisper_dirs):
    hf = whisper_dirs["random-hf"]
    with pytest.raises(ValueError, match="transformers Whisper directory") as e:
        build_whisper_wer(hf)
    assert f"--model {hf}" in str(e.value)


def test_mel_bins_must_match_the_model(whisper_dirs, tmp_path):
    d = _partial_copy(whisper_dirs["random"], tmp_path / "mels", "preprocessor_config.json")
    (d / "preprocessor_config.json").write_text(json.dumps({"feature_size": 128}))
    with pytest.raises(ValueError, match="takes 80 mel bins but preprocessor_config.json gives 128"):
        build_metric("wer_faster_whisper", checkpoint=d).transcribe(np.zeros(1600, np.float32))


def test_format_picks_the_runtime(whisper_dirs, tmp_path):
    pt = tmp_path / "base.pt"
    pt.write_bytes(b"")  # only the format is looked at here; nothing is loaded
    assert detect_whisper_backend(pt).runtime == "openai-whisper"
    metric, label = build_whisper_wer(str(pt))
    assert metric.name == "wer" and label == f"Whisper (openai-whisper, {pt})"

    ct2 = whisper_dirs["random"]
    assert detect_whisper_backend(ct2).runtime == "faster-whisper"
    metric, label = build_whisper_wer(str(ct2), sample_len=8, compute_type="int8")
    assert metric.name == "wer_faster_whisper" and label == f"Whisper (faster-whisper, {ct2})"
    assert metric.compute_type == "int8" and metric.sample_len == 8

    metric, label = build_whisper_wer(None)
    assert label is None and "no Whisper" in metric.unavailable_reason
    # not there (yet): unavailable, not an error; the suffix says which runtime was meant
    assert build_whisper_wer(tmp_path / "gone.pt")[0].name == "wer"
    gone, _ = build_whisper_wer(tmp_path / "gone-ct2")
    assert gone.name == "wer_faster_whisper" and "not found" in gone.unavailable_reason


@pytest.mark.parametrize("name, words", [("model.safetensors", "openai-whisper .pt file or a faster-whisper"),
                                         ("model.bin", "point at the directory")])
def test_other_files_are_rejected_naming_both_formats(tmp_path, name, words):
    f = tmp_path / name
    f.write_bytes(b"\0")
    with pytest.raises(ValueError, match=words):
        build_whisper_wer(f)


def test_tts_scorers_label_the_runtime_and_keep_its_capped_mean(whisper_dirs, audio, monkeypatch):
    from evaluation.tts_eval import Scorers, _score_system

    sc = Scorers(None, whisper_checkpoint=str(whisper_dirs["loop"]))
    assert sc.models["wer"] == f"Whisper (faster-whisper, {whisper_dirs['loop']})"
    monkeypatch.setattr(sc.wer, "transcribe", lambda wav: "no " * 50)
    # only WER is under test: every other scorer reports itself unavailable (whichever scorers exist)
    off = SimpleNamespace(score_corpus=lambda items: CorpusResult("off", None, [], reason="off"))
    for attr, scorer in list(vars(sc).items()):
        if attr != "wer" and hasattr(scorer, "score_corpus"):
            setattr(sc, attr, off)
    row = _score_system(sc, [audio, audio], [audio] * 2, [audio] * 2, ["hello world", "no"], [[], []], {}, "generated")
    assert row["wer"] == pytest.approx(19 / 3, abs=1e-4)
    assert row["wer_utt_mean"] == pytest.approx((5.0 + 9.0) / 2) and row["wer_utt_mean_capped"] == 1.0
