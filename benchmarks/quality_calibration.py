"""What the codec quality figures mean: the reconstruction metrics of controlled degradations.

    python benchmarks/quality_calibration.py [--shards data/shards] [--n 12] [--codec data/codec/codec.pt]

Takes held-out test utterances from the shard stage (``test-*.tar``; without shards, espeak-ng
utterances in a few voices) and scores, with the codec evaluation's metrics (STOI, wide-band PESQ,
MSTFT, MCD, F0 RMSE), a ladder of known degradations:
  - white noise at 30 / 20 / 10 dB SNR (broadband error at a known level),
  - Griffin-Lim from the exact 80-bin log-mel the codec works with (perfect envelope, estimated phase),
  - WORLD analysis-synthesis of the utterance (a vocoder given its own exact F0, envelope and
    aperiodicity), then the same with F0 raised 50 and 200 cents (what an F0 error alone costs),
  - and, with ``--codec``, that checkpoint's reconstructions.
Placing a codec's row on this ladder says what error level its figures correspond to, e.g. how far
"PESQ-wb >= 2.0" is from where a model stands. Quality figures only; nothing is timed or asserted.
"""
from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path
from typing import Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from evaluation.codec_eval import RECON_METRICS, pick_test_utterances  # noqa: E402
from evaluation.metrics import build_metric  # noqa: E402
from ns3.audio import SAMPLE_RATE, resample  # noqa: E402
from ns3.codec.hparams import FACodecHParams  # noqa: E402
from ns3.text.espeak import Voice, synthesize  # noqa: E402

COLUMNS = [m for m in RECON_METRICS if m != "pesq_nb"]
WORLD_FRAME_MS = 5.0
FALLBACK_VOICES = ["en-us+m3", "en-us+f3", "en-us+m1", "en-us+f2"]
FALLBACK_TEXT = "A gentle breeze carried the smell of rain across the quiet valley before dawn."


def load_references(shard_dir: Path, n: int) -> tuple[list[np.ndarray], str]:
    shards = sorted(shard_dir.glob("test-*.tar"))
    if shards:
        return [u.audio.astype(np.float32) for u in pick_test_utterances(shards, n)], f"test split of {shard_dir}"
    refs = []
    for voice in FALLBACK_VOICES:
        s = synthesize(FALLBACK_TEXT, Voice(voice))
        refs.append(resample(s.audio, s.sample_rate, SAMPLE_RATE).astype(np.float32))
    return refs, f"espeak-ng voices {FALLBACK_VOICES} (no test-*.tar under {shard_dir})"


def add_noise(snr_db: float) -> Callable[[np.ndarray], np.ndarray]:
    def degrade(x: np.ndarray) -> np.ndarray:
        rng = np.random.default_rng(0)
        noise = rng.standard_normal(len(x)).astype(np.float32)
        scale = np.sqrt(np.mean(x**2) / np.mean(noise**2) / 10 ** (snr_db / 10))
        return x + scale * noise
    return degrade


def mel_griffin_lim(x: np.ndarray) -> np.ndarray:
    import librosa

    hp = FACodecHParams()  # the codec's own mel analysis
    kw = dict(sr=hp.sample_rate, n_fft=hp.n_fft, hop_length=hp.hop_length, win_length=hp.win_length)
    mel = librosa.feature.melspectrogram(y=x, n_mels=hp.n_mels, fmin=hp.mel_fmin, fmax=hp.mel_fmax, **kw)
    return librosa.feature.inverse.mel_to_audio(mel, n_iter=64, length=len(x), fmin=hp.mel_fmin, fmax=hp.mel_fmax,
                                                **kw).astype(np.float32)


@functools.lru_cache(maxsize=None)
def _world_analysis(audio: bytes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(F0, envelope, aperiodicity) of float32 audio bytes, computed once per utterance for every shift."""
    import pyworld

    x = np.frombuffer(audio, dtype=np.float32).astype(np.float64)
    f0, t = pyworld.dio(x, SAMPLE_RATE, frame_period=WORLD_FRAME_MS)
    f0 = pyworld.stonemask(x, f0, t, SAMPLE_RATE)
    return f0, pyworld.cheaptrick(x, f0, t, SAMPLE_RATE), pyworld.d4c(x, f0, t, SAMPLE_RATE)


def world_resynthesis(cents: float) -> Callable[[np.ndarray], np.ndarray]:
    def degrade(x: np.ndarray) -> np.ndarray:
        import pyworld

        # A vocoder instead of a phase-vocoder pitch shift: the latter smears phase by itself (about
        # PESQ-wb 1.3 at a 0.1-semitone shift), which would hide the cost of the F0 error.
        f0, env, aper = _world_analysis(x.astype(np.float32).tobytes())
        y = pyworld.synthesize(f0 * 2 ** (cents / 1200), env, aper, SAMPLE_RATE, WORLD_FRAME_MS)[: len(x)]
        return np.pad(y, (0, len(x) - len(y))).astype(np.float32)
    return degrade


def codec_reconstruction(path: Path) -> Callable[[np.ndarray], np.ndarray]:
    import torch

    from ns3.codec.checkpoint import load_codec

    model = load_codec(path).eval()

    def degrade(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            enc = model.encode(torch.from_numpy(x)[None])
            return model.decode(enc.codes, enc.timbre)[0, : len(x)].numpy().astype(np.float32)
    return degrade


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shards", type=Path, default=Path("data/shards"), help="the shard stage's output folder")
    ap.add_argument("--n", type=int, default=12, help="test utterances (spread over the test speakers)")
    ap.add_argument("--codec", type=Path, default=None, help="also score this codec checkpoint")
    args = ap.parse_args()

    refs, source = load_references(args.shards, args.n)
    ladder: dict[str, Callable[[np.ndarray], np.ndarray]] = {
        "noise 30 dB SNR": add_noise(30), "noise 20 dB SNR": add_noise(20), "noise 10 dB SNR": add_noise(10),
        "Griffin-Lim from 80-bin mel": mel_griffin_lim,
        "WORLD copy synthesis": world_resynthesis(0), "WORLD, F0 +50 cents": world_resynthesis(50),
        "WORLD, F0 +200 cents": world_resynthesis(200),
    }
    if args.codec:
        ladder[f"codec {args.codec}"] = codec_reconstruction(args.codec)

    metrics = {name: build_metric(name) for name in COLUMNS}
    print(f"{len(refs)} utterances: {source}")
    print(f"{'degradation':36s}" + "".join(f"{c:>10s}" for c in COLUMNS))
    for label, degrade in ladder.items():
        outs = [degrade(x) for x in refs]
        row = []
        for name, metric in metrics.items():
            values = [metric.score(x, y).value for x, y in zip(refs, outs)]
            values = [v for v in values if v is not None]
            row.append(f"{np.mean(values):10.3f}" if values else f"{'n/a':>10s}")
        print(f"{label:36s}" + "".join(row), flush=True)


if __name__ == "__main__":
    main()
