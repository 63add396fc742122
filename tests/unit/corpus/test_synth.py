import hashlib
import json
import re

import soundfile as sf

from ns3.corpus.readers import read_librispeech, read_ravdess
from ns3.corpus.synth import make_speakers, synthesize_corpus


def _tree_digest(root):
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(root)).encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def _synth(root, workers=1, seed=3):
    return synthesize_corpus(root / "corpus", num_speakers=4, utts_per_speaker=3, min_words=4, max_words=8,
                             style_dir=root / "style", style_actors=2, style_repetitions=1, seed=seed, workers=workers)


def test_deterministic_across_runs_and_worker_counts(tmp_path):
    _synth(tmp_path / "a", workers=1)
    _synth(tmp_path / "b", workers=2)
    assert _tree_digest(tmp_path / "a" / "corpus") == _tree_digest(tmp_path / "b" / "corpus")
    assert _tree_digest(tmp_path / "a" / "style") == _tree_digest(tmp_path / "b" / "style")
    _synth(tmp_path / "c", seed=4)
    assert _tree_digest(tmp_path / "a" / "corpus") != _tree_digest(tmp_path / "c" / "corpus")


def test_librispeech_layout_and_reference_alignments(tmp_path):
    res = _synth(tmp_path)
    corpus = res.corpus_dir
    flacs = sorted(corpus.rglob("*.flac"))
    assert len(flacs) == 12 and res.utterances == 12
    for f in flacs:
        spk, chapter, _ = f.stem.split("-")
        assert f.parent.name == chapter and f.parent.parent.name == spk
        assert (f.parent / f"{spk}-{chapter}.trans.txt").exists()
        info = sf.info(str(f))
        assert info.samplerate == 16000 and info.channels == 1
    # The real reader accepts the whole corpus.
    read = read_librispeech(corpus, min_duration=0.5, max_duration=30)
    assert len(read.kept) == 12 and not read.rejected
    assert all(re.fullmatch(r"[A-Z' ]+", u.text) for u in read.kept)
    refs = [json.loads(line) for line in (corpus / "reference_alignments.jsonl").read_text().splitlines()]
    assert {r["key"] for r in refs} == {u.key for u in read.kept}
    for r in refs:
        starts = [p["start"] for p in r["phones"]]
        assert starts == sorted(starts) and all(p["end"] >= p["start"] for p in r["phones"])
        dur = next(u.duration for u in read.kept if u.key == r["key"])
        assert abs(r["phones"][-1]["end"] - dur) < 0.02


def test_style_set_is_ravdess_layout(tmp_path):
    res = _synth(tmp_path)
    read = read_ravdess(res.style_dir, min_duration=0.3, max_duration=30)
    # 2 actors x (neutral 1 + 7 emotions x 2 intensities) x 2 statements x 1 repetition
    assert len(read.kept) == 2 * 15 * 2 and not read.rejected
    emotions = {u.extra["emotion"] for u in read.kept}
    assert len(emotions) == 8


def test_speakers_are_distinct():
    spk = make_speakers(30, seed=0)
    assert len({s.voice.name for s in spk}) == 30 and len({s.id for s in spk}) == 30
