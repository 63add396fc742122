"""The align stage on a micro corpus synthesized in the test (espeak, 16 kHz, real shard format)."""
from __future__ import annotations

import io
import json
import tarfile

import numpy as np
import pytest

from ns3.align.plot import plot_alignment
from ns3.align.stage import align_shards, read_training_audio, scan_shard, split_of, training_sample
from ns3.align.train import TrainSchedule
from ns3.align.model import AlignerConfig, AlignerModel
from ns3.align.types import Alignment
from ns3.audio import SAMPLE_RATE, encode_flac, num_frames, resample
from ns3.data.pitch import extract_pitch
from ns3.text.espeak import Voice, synthesize
from ns3.text.inventory import PhoneInventory

TEXTS = ["the quick brown fox", "a gentle river slowly", "my patient doctor answered", "some golden basket"]


def _write_shard(path, samples):
    with tarfile.open(path, "w") as tar:
        for key, data in samples:
            for ext, blob in data.items():
                ti = tarfile.TarInfo(f"{key}.{ext}")
                ti.size = len(blob)
                tar.addfile(ti, io.BytesIO(blob))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("micro")
    refs, shards = [], {"train": [], "test": []}
    speakers = {"s1": Voice("en-us", pitch=40), "s2": Voice("en-us+f3", pitch=70, rate=180), "s3": Voice("en+m3")}
    for si, (spk, voice) in enumerate(speakers.items()):
        split = "test" if spk == "s3" else "train"
        for ui, text in enumerate(TEXTS[:2] if split == "test" else TEXTS):
            syn = synthesize(text, voice)
            audio = resample(syn.audio, syn.sample_rate, SAMPLE_RATE)
            key = f"{spk}-1-{ui:04d}"
            meta = {"key": key, "speaker": spk, "text": text.upper(), "duration": len(audio) / SAMPLE_RATE}
            shards[split].append((key, {"flac": encode_flac(audio), "json": json.dumps(meta).encode()}))
            refs.append({"key": key, "phones": [{"phone": p.phone, "start": p.start, "end": p.start} for p in syn.phones]})
    bad = {"key": "s3-1-0009", "speaker": "s3", "text": "  ", "duration": 0.5}
    shards["test"].append(("s3-1-0009", {"flac": encode_flac(np.zeros(8000, np.float32)), "json": json.dumps(bad).encode()}))
    paths = []
    for split, samples in shards.items():
        p = root / f"{split}-000000.tar"
        _write_shard(p, samples)
        paths.append(p)
    ref_path = root / "reference_alignments.jsonl"
    ref_path.write_text("".join(json.dumps(r) + "\n" for r in refs))
    return paths, ref_path


@pytest.fixture(scope="module")
def stage(corpus, tmp_path_factory):
    paths, ref_path = corpus
    out = tmp_path_factory.mktemp("aligned")
    return align_shards(paths, out, config=AlignerConfig(channels=16, kernel_size=3, dilations=(1,)),
                        schedule=TrainSchedule(rounds=1, flat_epochs=1, epochs_per_round=1),
                        reference_alignments=ref_path)


def _read(path):
    out = {}
    with tarfile.open(path) as tar:
        for m in tar:
            key, _, ext = m.name.partition(".")
            out.setdefault(key, {})[ext] = tar.extractfile(m).read()
    return out


def test_outputs_and_counts_reconcile(stage):
    assert {p.name for p in stage.out_dir.glob("*.tar")} == {"train-000000.tar", "test-000000.tar"}
    by_split = {r.split: r for r in stage.shards}
    assert (by_split["train"].utterances, by_split["train"].aligned) == (8, 8)
    assert (by_split["test"].utterances, by_split["test"].aligned) == (3, 2)
    assert [(f["key"], f["reason"]) for f in stage.failures] == [("s3-1-0009", "g2p")]
    for r in stage.shards:
        assert r.utterances == r.aligned + len(r.failures)
    lines = (stage.out_dir / "failures.jsonl").read_text().splitlines()
    assert [json.loads(x)["key"] for x in lines] == ["s3-1-0009"]
    m = json.loads((stage.out_dir / "metrics.json").read_text())
    assert m["splits"]["test"]["failed"] == 1 and m["splits"]["train"]["aligned"] == 8
    assert 0.0 <= m["splits"]["train"]["boundary"]["within_20ms"] <= 1.0
    assert m["splits"]["test"]["boundary"]["utterances"] == 2
    assert m["unknown_symbols"]["total"] == 0


def test_per_utterance_members_line_up(stage):
    inv = PhoneInventory.load(stage.inventory_path)
    assert AlignerModel.load(stage.checkpoint_path).inventory.hash == inv.hash
    samples = _read(stage.out_dir / "train-000000.tar")
    assert len(samples) == 8
    for key, parts in samples.items():
        assert set(parts) == {"phones.json", "labels.npy", "f0.npy", "uv.npy", "lf0n.npy"}
        doc = json.loads(parts["phones.json"])
        arrays = {k: np.load(io.BytesIO(parts[k])) for k in ("labels.npy", "f0.npy", "uv.npy", "lf0n.npy")}
        n = doc["num_frames"]
        assert sum(doc["durations"]) == n and all(len(a) == n for a in arrays.values())
        assert arrays["labels.npy"].dtype == np.int16
        assert np.array_equal(arrays["labels.npy"], np.repeat(doc["phone_ids"], doc["durations"]))
        assert np.all(arrays["lf0n.npy"][arrays["uv.npy"] == 0] == 0)
        assert doc["inventory_hash"] == inv.hash and doc["words"]


def test_speaker_pitch_stats_from_train_only(stage):
    stats = json.loads(stage.pitch_stats_path.read_text())
    assert set(stats["speakers"]) == {"s1", "s2"}  # s3 is a test speaker
    assert stats["speakers"]["s2"][0] > stats["speakers"]["s1"][0]  # higher voice, higher mean log-F0


def test_bad_arguments(corpus, tmp_path):
    paths, _ = corpus
    with pytest.raises(ValueError, match="no train"):
        align_shards([p for p in paths if split_of(p) != "train"], tmp_path)
    with pytest.raises(FileNotFoundError, match="shard stage"):
        align_shards([tmp_path / "train-000009.tar"], tmp_path)
    with pytest.raises(ValueError, match="backend"):
        align_shards(paths, tmp_path, backend="htk")


def test_mfa_backend_without_mfa_fails_clearly(corpus, tmp_path, monkeypatch):
    from ns3.align.mfa import MFAError

    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(MFAError, match="conda-forge"):
        align_shards(corpus[0], tmp_path / "out", backend="mfa")


def test_plot_helper(corpus):
    syn = synthesize("the quick brown fox", Voice("en-us"))
    audio = resample(syn.audio, syn.sample_rate, SAMPLE_RATE)
    n = num_frames(len(audio))
    a = Alignment(["<sil>", "ð", "ə"], np.array([n - 20, 10, 10]))
    fig = plot_alignment(audio, a, extract_pitch(audio), "u1", reference=[{"phone": "ð", "start": 0.1}])
    assert len(fig.axes) == 2
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_codec_examples_carry_the_stats_that_undo_the_normalisation(stage, corpus):
    from ns3.data.batch import collate_codec
    from ns3.data.codec_data import load_labelled

    paths, _ = corpus
    train = [p for p in paths if split_of(p) == "train"]
    data = load_labelled(train, stage.out_dir, {"s1": 0, "s2": 1})
    stats = json.loads(stage.pitch_stats_path.read_text())["speakers"]
    raw = {k: np.load(io.BytesIO(v["f0.npy"])) for k, v in _read(stage.out_dir / "train-000000.tar").items()}
    ex = data.examples[0]
    assert ex.f0_stats == pytest.approx(tuple(stats["s1" if ex.speaker_id == 0 else "s2"]))
    batch = collate_codec([ex], len(ex.phone_ids) * 200, np.random.default_rng(0))
    f0 = raw[ex.key]
    assert batch.f0_hz[0].numpy() == pytest.approx(np.where(ex.uv > 0, f0, 0), rel=1e-3, abs=1e-3)
    (stage.out_dir / "pitch_stats.json").rename(stage.out_dir / "moved.json")
    try:
        with pytest.raises(FileNotFoundError, match="ns3 align"):
            load_labelled(train, stage.out_dir, {"s1": 0, "s2": 1})
    finally:
        (stage.out_dir / "moved.json").rename(stage.out_dir / "pitch_stats.json")


def test_scans_carry_no_audio_and_training_reads_a_bounded_seeded_sample(corpus, monkeypatch):
    import pickle

    import ns3.audio

    paths, _ = corpus
    train = [p for p in paths if split_of(p) == "train"]
    scan = scan_shard(train[0], PhoneInventory.english())
    assert len(scan.utterances) == 8
    # What goes back to the driver is keys and pronunciations: far smaller than the shard's audio.
    assert len(pickle.dumps(scan)) < train[0].stat().st_size / 4
    sample = training_sample([scan], max_utterances=3, seed=7)
    keys = [u.key for us in sample.values() for u in us]
    assert len(keys) == 3 and keys == [u.key for us in training_sample([scan], 3, seed=7).values() for u in us]
    assert len([u for us in training_sample([scan], None).values() for u in us]) == 8
    decoded = []
    real = ns3.audio.decode_audio_bytes
    monkeypatch.setattr(ns3.audio, "decode_audio_bytes", lambda b, *a: decoded.append(1) or real(b, *a))
    utts = read_training_audio(sample)
    assert [u.key for u in utts] == keys and len(decoded) == 3  # the other five stay undecoded
    assert all(u.audio.dtype == np.float32 and len(u.audio) > SAMPLE_RATE // 4 for u in utts)


def test_per_shard_work_pins_torch_threads(corpus, tmp_path):
    import torch

    seen = []

    def recording_map(fn, items):
        out = []
        for x in items:
            out.append(fn(x))
            seen.append(torch.get_num_threads())
        return out

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        align_shards(corpus[0], tmp_path / "out", config=AlignerConfig(channels=16, kernel_size=3, dilations=(1,)),
                     schedule=TrainSchedule(rounds=0, flat_epochs=1, epochs_per_round=1), max_train_utterances=4,
                     map_fn=recording_map, threads=1)
        after = torch.get_num_threads()
    finally:
        torch.set_num_threads(before)
    assert seen and set(seen) == {1}
    assert after == 2  # the driver's own count is back (the aligner trained on it)
