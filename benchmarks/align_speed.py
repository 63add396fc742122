"""Built-in aligner: training time, alignment throughput and boundary accuracy on a synthesized set.

Synthesizes a small embedded-style corpus (espeak voices varying accent, variant, pitch, range and
rate), trains the aligner from a flat start on its transcripts, aligns every utterance and scores
phone onsets against espeak's own timings. Speeds are printed as ratios against computing the
log-mel spectrogram of the same audio on the same machine, so figures compare across machines.

    python benchmarks/align_speed.py --speakers 20 --utts 10
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from ns3.align.model import align, recognize
from ns3.align.scoring import BoundaryReport, phone_error_rate, score_alignment
from ns3.align.train import AlignerUtterance, TrainSchedule, train_aligner
from ns3.audio import SAMPLE_RATE, load_audio, log_mel
from ns3.corpus.synth import synthesize_corpus
from ns3.text.g2p import g2p
from ns3.text.inventory import PhoneInventory, UnknownReport


def load_corpus(root: Path) -> tuple[list[tuple[str, str, object]], dict]:
    refs = {}
    for line in (root / "reference_alignments.jsonl").read_text(encoding="utf-8").splitlines():
        r = json.loads(line)
        refs[r["key"]] = r
    utts = []
    for trans in sorted(root.glob("*/*/*.trans.txt")):
        for line in trans.read_text(encoding="utf-8").splitlines():
            key, _, text = line.partition(" ")
            utts.append((key, text, load_audio(trans.parent / f"{key}.flac")))
    return utts, refs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--speakers", type=int, default=20)
    ap.add_argument("--utts", type=int, default=10, help="utterances per speaker")
    ap.add_argument("--min-words", type=int, default=6)
    ap.add_argument("--max-words", type=int, default=14)
    ap.add_argument("--rounds", type=int, default=TrainSchedule.rounds)
    ap.add_argument("--flat-epochs", type=int, default=TrainSchedule.flat_epochs)
    ap.add_argument("--epochs-per-round", type=int, default=TrainSchedule.epochs_per_round)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        synthesize_corpus(Path(tmp) / "corpus", num_speakers=args.speakers, utts_per_speaker=args.utts,
                          min_words=args.min_words, max_words=args.max_words, style_dir=None, style_actors=0,
                          style_repetitions=0, seed=args.seed, workers=args.threads)
        t_synth = time.perf_counter() - t
        utts, refs = load_corpus(Path(tmp) / "corpus")
    audio_s = sum(len(a) for _, _, a in utts) / SAMPLE_RATE

    log_mel(utts[0][2])  # warm-up: librosa's first call pays for imports and caches
    t = time.perf_counter()
    for _, _, a in utts:
        log_mel(a)
    t_mel = time.perf_counter() - t

    inventory, unknown = PhoneInventory.english(), UnknownReport()
    t = time.perf_counter()
    prons = {k: g2p(text) for k, text, _ in utts}
    t_g2p = time.perf_counter() - t

    schedule = TrainSchedule(rounds=args.rounds, flat_epochs=args.flat_epochs, epochs_per_round=args.epochs_per_round, seed=args.seed)
    t = time.perf_counter()
    model = train_aligner([AlignerUtterance(k, a, prons[k]) for k, _, a in utts], inventory, schedule=schedule,
                          unknown=unknown, progress=lambda s: print("  round", json.dumps({k: round(v, 4) for k, v in s.items()})))
    t_train = time.perf_counter() - t

    report = BoundaryReport()
    t = time.perf_counter()
    alignments = {k: align(model, a, prons[k]) for k, _, a in utts}
    t_align = time.perf_counter() - t
    for k, a in alignments.items():
        report.add(score_alignment(a, refs[k]["phones"], k))

    t = time.perf_counter()
    per = [phone_error_rate(prons[k].phones, recognize(model, a)) for k, _, a in utts]
    t_rec = time.perf_counter() - t

    acc = report.summary()
    figures = {
        "utterances": len(utts), "audio_seconds": round(audio_s, 1), "synth_seconds": round(t_synth, 2),
        "logmel_seconds": round(t_mel, 3), "g2p_seconds": round(t_g2p, 3), "train_seconds": round(t_train, 1),
        "align_seconds": round(t_align, 2), "recognize_seconds": round(t_rec, 2),
        "align_audio_s_per_wall_s": round(audio_s / t_align, 1),
        "logmel_audio_s_per_wall_s": round(audio_s / t_mel, 1),
        "align_cost_vs_logmel": round(t_align / t_mel, 2),
        "train_cost_vs_logmel": round(t_train / t_mel, 1),
        "train_seconds_per_audio_hour": round(t_train / audio_s * 3600, 1),
        "unknown_symbols": unknown.to_json(),
        "recognition_per": round(sum(per) / len(per), 4),
        **{f"boundary_{k}": (round(v, 4) if isinstance(v, float) else v) for k, v in acc.items()},
    }
    for k, v in figures.items():
        print(f"{k:34s} {v}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
