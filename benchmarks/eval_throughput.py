"""Throughput of every evaluation metric on synthesized utterances, as ratios to loading the audio.

    python benchmarks/eval_throughput.py [--n 20] [--whisper PATH] [--wavlm DIR] [--utmos PATH] [--random-weights]

Speech comes from espeak-ng (several voices and sentences, 16 kHz); the "degraded" side is the same
utterance with white noise at 20 dB SNR. The reference workload is reading the same utterances back
from FLAC with ``ns3.audio.load_audio``; each metric is reported as utterances per minute and as
"x load" (its time per utterance over the load time per utterance) so numbers compare across machines.
A warm-up utterance (model loading, first-call initialisation) is timed separately and excluded.

Metrics that need weights run with the paths given. ``--random-weights`` instead builds full-size
random-weight models in the real formats (UTMOS22-strong, WavLM-base x-vector, Whisper-base capped at
32 decoded tokens): compute cost is realistic, scores are meaningless, and random Whisper decodes a
fixed number of tokens, so its figure is only indicative.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from evaluation.metrics import build_metric  # noqa: E402
from ns3.audio import SAMPLE_RATE, load_audio, resample, write_audio  # noqa: E402
from ns3.text.espeak import Voice, synthesize  # noqa: E402

VOICES = ["en-us", "en-us+f3", "en-us+m3", "en-us+m1", "en-us+f2"]
SENTENCES = [
    "The quick brown fox jumps over the lazy dog near the river bank.",
    "Seven silver spoons were left on the kitchen table yesterday.",
    "A gentle breeze carried the smell of rain across the quiet valley.",
    "Please remember to lock the back door before you leave tonight.",
]
EMOTIONS = {"neutral": dict(rate=160, pitch=50), "sad": dict(rate=110, pitch=25), "happy": dict(rate=210, pitch=75)}


def speak(text: str, voice: str, **params: int) -> np.ndarray:
    s = synthesize(text, Voice(voice, **params))
    return resample(s.audio, s.sample_rate, SAMPLE_RATE)


def noisy(wav: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    scale = np.sqrt(np.mean(wav.astype(np.float64) ** 2) / 10 ** (snr_db / 10))
    return (wav + scale * rng.standard_normal(len(wav))).astype(np.float32)


def timed(fn: Callable[[int], object], n: int) -> tuple[float, float]:
    """(warm-up seconds for item 0, mean seconds per item over items 1..n-1)."""
    t0 = time.perf_counter()
    fn(0)
    warm = time.perf_counter() - t0
    t0 = time.perf_counter()
    for i in range(1, n):
        fn(i)
    return warm, (time.perf_counter() - t0) / max(1, n - 1)


def random_models(root: Path) -> dict[str, Path]:
    """Full-size random-weight checkpoints in the real formats (see module doc)."""
    import torch
    from transformers import Wav2Vec2FeatureExtractor, WavLMConfig, WavLMForXVector
    from whisper.model import ModelDimensions, Whisper

    from evaluation.metrics.utmos_model import UTMOS22Strong

    torch.manual_seed(0)
    torch.save(UTMOS22Strong().state_dict(), root / "utmos.pt")
    WavLMForXVector(WavLMConfig()).save_pretrained(root / "wavlm")
    Wav2Vec2FeatureExtractor(return_attention_mask=True).save_pretrained(root / "wavlm")
    dims = ModelDimensions(n_mels=80, n_audio_ctx=1500, n_audio_state=512, n_audio_head=8, n_audio_layer=6,
                           n_vocab=51865, n_text_ctx=448, n_text_state=512, n_text_head=8, n_text_layer=6)
    torch.save({"dims": dims.__dict__, "model_state_dict": Whisper(dims).state_dict()}, root / "whisper.pt")
    return {"utmos": root / "utmos.pt", "wavlm": root / "wavlm", "whisper": root / "whisper.pt"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20, help="utterances")
    ap.add_argument("--whisper", type=Path)
    ap.add_argument("--wavlm", type=Path)
    ap.add_argument("--utmos", type=Path)
    ap.add_argument("--random-weights", action="store_true", help="full-size random models where no path is given")
    args = ap.parse_args()

    rng = np.random.default_rng(0)
    items = [(SENTENCES[i % len(SENTENCES)], VOICES[i % len(VOICES)]) for i in range(args.n)]
    refs = [speak(t, v) for t, v in items]
    degs = [noisy(w, 20.0, rng) for w in refs]
    audio_s = sum(len(w) for w in refs) / SAMPLE_RATE
    emotion_sets = [{e: speak(t, v, **p) for e, p in EMOTIONS.items()} for t, v in items]

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        paths = []
        for i, w in enumerate(refs):
            paths.append(tmp / f"{i}.flac")
            write_audio(paths[-1], w)
        _, load_s = timed(lambda i: load_audio(paths[i]), args.n)

        given = {"whisper": args.whisper, "wavlm": args.wavlm, "utmos": args.utmos}
        if args.random_weights:
            rnd = random_models(tmp)
            given = {k: v or rnd[k] for k, v in given.items()}

        metrics = {name: build_metric(name) for name in
                   ("pesq_wb", "pesq_nb", "stoi", "mstft", "mcd", "mcd_acc", "sim_resemblyzer")}
        metrics["sim_wavlm"] = build_metric("sim_wavlm", checkpoint=given["wavlm"])
        metrics["utmos"] = build_metric("utmos", checkpoint=given["utmos"])
        metrics["wer"] = build_metric("wer", checkpoint=given["whisper"], sample_len=32)

        calls: dict[str, Callable[[int], object]] = {
            "wer": lambda i: metrics["wer"].score(degs[i], items[i][0]),
            "utmos": lambda i: metrics["utmos"].score(degs[i]),
            "mcd_acc": lambda i: metrics["mcd_acc"].score(degs[i], "neutral", emotion_sets[i]),
        }
        print(f"{args.n} utterances, {audio_s:.1f} s of audio; reference: load_audio (FLAC) "
              f"{load_s * 1e3:.2f} ms/utt = {60 / load_s:,.0f} utt/min")
        print(f"{'metric':<16}{'utt/min':>10}{'s/utt':>9}{'x load':>10}{'warm-up s':>11}  note")
        for name, metric in metrics.items():
            if metric.unavailable_reason:
                print(f"{name:<16}{'-':>10}{'-':>9}{'-':>10}{'-':>11}  unavailable: {metric.unavailable_reason}")
                continue
            call = calls.get(name, lambda i, m=metric: m.score(refs[i], degs[i]))
            warm, per = timed(call, args.n)
            note = "random weights" if args.random_weights and name in ("wer", "utmos", "sim_wavlm") else ""
            if name == "mcd_acc":
                note = f"{len(EMOTIONS)} candidate recordings per utterance"
            print(f"{name:<16}{60 / per:>10,.0f}{per:>9.3f}{per / load_s:>10,.0f}{warm:>11.2f}  {note}")


if __name__ == "__main__":
    main()
