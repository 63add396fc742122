"""The embedded corpus: espeak-ng speakers reading generated sentences, in LibriSpeech layout.

A speaker is an espeak voice (accent + variant) with a base pitch, pitch range and rate. Everything is
derived from the seed per utterance, so the output does not depend on worker count or order.
espeak's own phoneme timings are written aside to ``reference_alignments.jsonl``: they score aligners and
are never pipeline input. A RAVDESS-layout style set realises 8 "emotions" as prosody settings.
"""
from __future__ import annotations

import json
import random
import shutil
import zlib
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ns3.audio import SAMPLE_RATE, resample, write_audio
from ns3.corpus.textgen import sentence
from ns3.text.espeak import Voice, synthesize

ACCENTS = ["en-us", "en", "en-gb-scotland", "en-029", "en-us-nyc", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd"]
VARIANTS = ["m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5", "klatt2", "klatt3"]
CHAPTERS_PER_SPEAKER = 2

# RAVDESS emotion codes -> prosody change at normal intensity (rate factor, pitch delta, range, word gap).
# Strong intensity doubles the change. Neutral has no strong intensity, as in RAVDESS.
EMOTIONS = {
    "01": ("neutral", 1.00, 0, 50, 0),
    "02": ("calm", 0.90, -5, 30, 1),
    "03": ("happy", 1.10, 12, 80, 0),
    "04": ("sad", 0.78, -12, 20, 2),
    "05": ("angry", 1.15, 6, 90, 0),
    "06": ("fearful", 1.22, 18, 65, 0),
    "07": ("disgust", 0.85, -8, 70, 3),
    "08": ("surprised", 1.05, 22, 100, 0),
}
STATEMENTS = {"01": "Kids are talking by the door", "02": "Dogs are sitting by the door"}


@dataclass(frozen=True)
class SynthSpeaker:
    id: str
    sex: str
    voice: Voice


def make_speakers(num_speakers: int, seed: int, first_id: int = 100) -> list[SynthSpeaker]:
    """Distinct (accent, variant) pairs with random pitch/range/rate; sex follows the variant."""
    rng = random.Random(f"speakers-{seed}")
    combos = [(a, v) for a in ACCENTS for v in VARIANTS]
    rng.shuffle(combos)
    if num_speakers > len(combos):
        raise ValueError(f"at most {len(combos)} synthetic speakers (asked for {num_speakers})")
    speakers = []
    for i, (accent, variant) in enumerate(combos[:num_speakers]):
        female = variant.startswith("f")
        voice = Voice(
            name=f"{accent}+{variant}",
            rate=rng.randint(135, 195),
            pitch=rng.randint(50, 80) if female else rng.randint(20, 50),
            pitch_range=rng.randint(25, 85),
        )
        speakers.append(SynthSpeaker(id=str(first_id + i * 7), sex="F" if female else "M", voice=voice))
    return speakers


def _reference(key: str, text: str, syn, duration: float) -> dict:
    """espeak events -> phones with start/end (seconds) and words with start and text."""
    phones = []
    for i, ev in enumerate(syn.phones):
        end = syn.phones[i + 1].start if i + 1 < len(syn.phones) else duration
        phones.append({"phone": ev.phone, "start": round(ev.start, 4), "end": round(min(end, duration), 4)})
    words = [
        {"start": round(w.start, 4), "text": text[w.text_position:w.text_position + w.length]} for w in syn.words
    ]
    return {"key": key, "text": text, "phones": phones, "words": words}


def _speak(text: str, voice: Voice, path: Path, noise_floor_db: float | None) -> tuple[float, object]:
    syn = synthesize(text, voice)
    audio = resample(syn.audio, syn.sample_rate, SAMPLE_RATE)
    if noise_floor_db is not None:
        # espeak writes exact digital silence between words; real recordings never do, and log-spectral
        # metrics (MCD, PESQ) degenerate on it. A faint seeded noise floor, like a quiet room.
        rng = np.random.default_rng(zlib.crc32(path.name.encode()))
        audio = audio + rng.normal(0.0, 10 ** (noise_floor_db / 20), len(audio)).astype(np.float32)
    write_audio(path, audio, SAMPLE_RATE)
    return len(audio) / SAMPLE_RATE, syn


def _synth_speaker(args) -> list[dict]:
    """Worker: all utterances of one speaker. Returns reference alignments (one dict per utterance)."""
    out_dir, spk, utts, min_words, max_words, seed, noise_floor_db = args
    spk = SynthSpeaker(spk["id"], spk["sex"], Voice(**spk["voice"]))
    refs, per_chapter = [], -(-utts // CHAPTERS_PER_SPEAKER)
    lines: dict[str, list[str]] = {}
    for u in range(utts):
        chapter = str(1000 + int(spk.id) * 10 + u // per_chapter)
        key = f"{spk.id}-{chapter}-{u:04d}"
        rng = random.Random(f"text-{seed}-{spk.id}-{u}")
        text = sentence(rng, min_words, max_words)
        path = Path(out_dir) / spk.id / chapter / f"{key}.flac"
        duration, syn = _speak(text, spk.voice, path, noise_floor_db)
        refs.append(_reference(key, text, syn, duration))
        # LibriSpeech transcripts are upper case without punctuation except apostrophes.
        norm = "".join(c for c in text.upper() if c.isalnum() or c in " '")
        lines.setdefault(chapter, []).append(f"{key} {' '.join(norm.split())}")
    for chapter, ls in lines.items():
        (Path(out_dir) / spk.id / chapter / f"{spk.id}-{chapter}.trans.txt").write_text("\n".join(ls) + "\n")
    return refs


def _synth_style_actor(args) -> int:
    out_dir, actor, voice, repetitions, noise_floor_db = args
    voice = Voice(**voice)
    n = 0
    for code, (_, rate_f, dpitch, rng_, gap) in EMOTIONS.items():
        for intensity in ("01",) if code == "01" else ("01", "02"):
            k = 1.0 if intensity == "01" else 2.0
            v = Voice(
                name=voice.name,
                rate=int(round(voice.rate * (1 + (rate_f - 1) * k))),
                pitch=max(0, min(100, int(voice.pitch + dpitch * k))),
                pitch_range=max(0, min(100, int(50 + (rng_ - 50) * k))),
                wordgap=int(gap * k),
            )
            for st, text in STATEMENTS.items():
                for rep in range(1, repetitions + 1):
                    name = f"03-01-{code}-{intensity}-{st}-{rep:02d}-{actor:02d}.wav"
                    _speak(text, v, Path(out_dir) / f"Actor_{actor:02d}" / name, noise_floor_db)
                    n += 1
    return n


@dataclass
class SynthResult:
    corpus_dir: Path
    style_dir: Path | None
    utterances: int
    style_files: int
    hours: float
    speakers: int


def _map(fn, jobs: list, workers: int, desc: str) -> list:
    if workers <= 1:
        return [fn(j) for j in tqdm(jobs, desc=desc, unit="spk")]
    # espeak-ng is one global engine per process (a lock serialises threads): parallelism needs processes.
    with ProcessPoolExecutor(max_workers=workers) as ex:
        return list(tqdm(ex.map(fn, jobs), total=len(jobs), desc=desc, unit="spk"))


def _swap_into_place(tmp: Path, final: Path) -> None:
    if final.exists():
        shutil.rmtree(final)
    tmp.rename(final)


def synthesize_corpus(
    out_dir: str | Path,
    *,
    num_speakers: int,
    utts_per_speaker: int,
    min_words: int,
    max_words: int,
    style_dir: str | Path | None,
    style_actors: int,
    style_repetitions: int,
    seed: int,
    workers: int = 1,
    noise_floor_db: float | None = -60.0,
) -> SynthResult:
    """Write the LibriSpeech-layout corpus to ``out_dir`` (and the RAVDESS-layout set to ``style_dir``).

    Each folder is built beside its destination and renamed into place, so a crash never leaves half a corpus.
    """
    out_dir = Path(out_dir)
    speakers = make_speakers(num_speakers, seed)
    tmp = out_dir.with_name(f".{out_dir.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    jobs = [(str(tmp), asdict(s), utts_per_speaker, min_words, max_words, seed, noise_floor_db) for s in speakers]
    refs = [r for rs in _map(_synth_speaker, jobs, workers, "synth corpus") for r in rs]
    with open(tmp / "reference_alignments.jsonl", "w", encoding="utf-8") as f:
        for r in refs:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    seconds = sum(r["phones"][-1]["end"] for r in refs if r["phones"])
    with open(tmp / "SPEAKERS.TXT", "w", encoding="utf-8") as f:
        f.write("; ID | SEX | SUBSET | MINUTES | NAME\n")
        for s in speakers:
            f.write(f"{s.id} | {s.sex} | synth | {0:.2f} | {s.voice.name} rate={s.voice.rate} pitch={s.voice.pitch} range={s.voice.pitch_range}\n")
    _swap_into_place(tmp, out_dir)

    n_style = 0
    if style_dir is not None and style_actors > 0:
        style_dir = Path(style_dir)
        stmp = style_dir.with_name(f".{style_dir.name}.tmp")
        shutil.rmtree(stmp, ignore_errors=True)
        stmp.mkdir(parents=True)
        actors = make_speakers(style_actors, seed + 1, first_id=900)
        # RAVDESS convention: odd actor numbers are male, even are female; pick voices to match.
        males = [a for a in make_speakers(len(ACCENTS) * len(VARIANTS), seed + 1) if a.sex == "M"]
        females = [a for a in make_speakers(len(ACCENTS) * len(VARIANTS), seed + 1) if a.sex == "F"]
        jobs = [
            (str(stmp), i, asdict((males if i % 2 else females)[i // 2].voice), style_repetitions, noise_floor_db)
            for i in range(1, len(actors) + 1)
        ]
        n_style = sum(_map(_synth_style_actor, jobs, workers, "synth style set"))
        _swap_into_place(stmp, style_dir)
    return SynthResult(out_dir, Path(style_dir) if style_dir else None, len(refs), n_style, seconds / 3600, len(speakers))
