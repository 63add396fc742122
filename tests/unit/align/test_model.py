"""Built-in aligner: exact frame bookkeeping, checkpoints, recognition, flat-start training."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from ns3.align.model import AlignerConfig, AlignerModel, align, recognize
from ns3.align.scoring import BoundaryReport, score_alignment
from ns3.align.types import Alignment
from ns3.align.train import AlignerUtterance, TrainSchedule, flat_start_labels, speech_region, train_aligner
from ns3.audio import SAMPLE_RATE, log_mel, num_frames, resample
from ns3.text.espeak import Voice, synthesize
from ns3.text.g2p import g2p
from ns3.text.inventory import PhoneInventory
from ns3.text.phones import SIL

TINY = AlignerConfig(channels=16, kernel_size=3, dilations=(1,), dropout=0.0)


def speak(text: str, voice: str = "en-us", rate: int = 160, pitch: int = 50):
    syn = synthesize(text, Voice(voice, rate=rate, pitch=pitch))
    return resample(syn.audio, syn.sample_rate, SAMPLE_RATE), [{"phone": p.phone, "start": p.start} for p in syn.phones]


@pytest.fixture(scope="module")
def tiny_model():
    torch.manual_seed(0)
    return AlignerModel(PhoneInventory.english(), TINY)


@pytest.mark.parametrize("n_samples", [16000, 16001, 15999, 8123])
def test_durations_sum_exactly_to_the_frame_count(tiny_model, n_samples):
    audio = np.random.default_rng(n_samples).normal(0, 0.1, n_samples).astype(np.float32)
    pron = g2p("Hello there, general.")
    a = align(tiny_model, audio, pron)
    assert a.num_frames == num_frames(n_samples) and a.durations.min() >= 1
    assert [p for p in a.phones if p != SIL] == pron.phones  # silences optional, phones all kept in order
    assert len(a.stress) == len(a.phones)
    assert [w.text for w in a.words] == ["Hello", "there", "general"]
    for w in a.words:
        assert a.starts[w.phone_start] == w.start and w.end == a.starts[w.phone_end - 1] + a.durations[w.phone_end - 1]
    labels = a.frame_labels(tiny_model.inventory)
    assert len(labels) == num_frames(n_samples)


def test_plain_phone_list_and_too_short_audio(tiny_model):
    a = align(tiny_model, np.zeros(4000, np.float32), ["h", "aɪ"])
    assert [p for p in a.phones if p != SIL] == ["h", "aɪ"] and a.num_frames == 20
    with pytest.raises(ValueError, match="cannot hold"):
        align(tiny_model, np.zeros(300, np.float32), ["h", "aɪ", "t", "s"])
    with pytest.raises(ValueError, match="empty"):
        align(tiny_model, np.zeros(4000, np.float32), [])


def test_checkpoint_round_trip_weights_only(tiny_model, tmp_path):
    tiny_model.log_prior = np.log(np.full(len(tiny_model.inventory), 1 / len(tiny_model.inventory), np.float32))
    path = tiny_model.save(tmp_path / "a.pt")
    state = torch.load(path, weights_only=True)
    assert state["kind"] == "ns3.align.builtin" and state["inventory"]["hash"] == tiny_model.inventory.hash
    back = AlignerModel.load(path)
    mel = np.random.default_rng(0).normal(size=(80, 50)).astype(np.float32)
    np.testing.assert_allclose(back.scaled_likelihoods(mel), tiny_model.scaled_likelihoods(mel), atol=1e-5)
    assert back.config == tiny_model.config
    torch.save({"kind": "other"}, tmp_path / "b.pt")
    with pytest.raises(ValueError, match="not a built-in aligner"):
        AlignerModel.load(tmp_path / "b.pt")
    with pytest.raises(FileNotFoundError, match="not found"):
        AlignerModel.load(tmp_path / "missing.pt")


def test_recognize_returns_inventory_phones(tiny_model):
    audio, _ = speak("the quick brown fox")
    phones = recognize(tiny_model, audio)
    assert all(p in tiny_model.inventory and p not in ("<pad>", "<unk>", SIL) for p in phones)
    assert recognize(tiny_model, np.zeros(0, np.float32)) == []


def test_recognize_never_emits_classes_unseen_in_training():
    torch.manual_seed(1)
    m = AlignerModel(PhoneInventory.english(), TINY)
    audio, _ = speak("the quick brown fox")
    before = recognize(m, audio)
    seen = [m.inventory.id(p) for p in before[:3]] + [m.inventory.sil_id]
    counts = np.ones(len(m.inventory))
    counts[seen] = 100.0
    m.log_prior = np.log(counts / counts.sum()).astype(np.float32)
    after = recognize(m, audio)
    assert after and set(after) <= {m.inventory.symbols[i] for i in seen}


def test_flat_start_labels_and_speech_region():
    audio, _ = speak("hello")
    padded = np.concatenate([np.zeros(8000, np.float32), audio, np.zeros(8000, np.float32)])
    mel = log_mel(padded)
    s, e = speech_region(mel)
    assert 35 <= s <= 45 and mel.shape[1] - 45 <= e <= mel.shape[1] - 35  # 0.5 s of silence = 40 frames
    lab = flat_start_labels(mel.shape[1], [5, 6, 7], sil_id=1, region=(s, e))
    assert lab[0] == 1 and lab[-1] == 1 and set(lab[s:e]) == {5, 6, 7}
    assert flat_start_labels(4, [5, 6, 7, 8], 1, (2, 3)).tolist() == [5, 6, 7, 8]  # region too small: whole utterance


def test_training_runs_and_records_rounds():
    texts = ["the quick brown fox", "jumps over the lazy dog", "a bright yellow kettle"]
    utts = [AlignerUtterance(f"u{i}", speak(t)[0], g2p(t)) for i, t in enumerate(texts)]
    utts.append(AlignerUtterance("short", np.zeros(100, np.float32), g2p("a long sentence with many phones")))
    seen = []
    model = train_aligner(utts, PhoneInventory.english(), TINY,
                          TrainSchedule(rounds=1, flat_epochs=1, epochs_per_round=1), progress=seen.append)
    assert [h["round"] for h in model.history] == [0, 1] and seen == model.history
    assert all(h["utterances"] == 3 for h in model.history)  # the too-short one was skipped
    assert all(0.0 <= h["relabelled"] <= 1.0 and np.isfinite(h["loss"]) for h in model.history)
    assert np.isclose(np.exp(model.log_prior).sum(), 1.0, atol=1e-4)
    with pytest.raises(ValueError, match="at least one"):
        train_aligner([], PhoneInventory.english(), TINY)


@pytest.mark.slow
def test_trained_aligner_finds_phone_onsets():
    """A real (small) training run: onsets land near espeak's own timings."""
    from ns3.corpus.textgen import sentence
    import random

    rng = random.Random(0)
    voices = [("en-us", 150, 40), ("en-us+f3", 175, 70), ("en+m3", 140, 30)]
    data = []
    for i in range(60):
        text = sentence(rng, 6, 10)
        v = voices[i % 3]
        audio, ref = speak(text, *v)
        data.append((AlignerUtterance(f"u{i}", audio, g2p(text)), ref))
    inv = PhoneInventory.english()
    model = train_aligner([u for u, _ in data], inv, AlignerConfig(), TrainSchedule())
    rep, flat = BoundaryReport(), BoundaryReport()
    for u, ref in data:
        rep.add(score_alignment(align(model, u.audio, u.pron), ref, u.key))
        # the flat start this training began from, as a baseline
        mel = log_mel(u.audio)
        lab = flat_start_labels(mel.shape[1], inv.encode(u.pron.phones), inv.sil_id, speech_region(mel))
        cuts = np.flatnonzero(np.diff(lab)) + 1
        runs = np.diff(np.concatenate(([0], cuts, [len(lab)])))
        flat.add(score_alignment(Alignment(inv.decode(lab[np.concatenate(([0], cuts))]), runs), ref, u.key))
    s, f = rep.summary(), flat.summary()
    assert s["matched_share"] > 0.8
    assert s["within_40ms"] > f["within_40ms"] + 0.2 and s["within_40ms"] > 0.7, (s, f)
