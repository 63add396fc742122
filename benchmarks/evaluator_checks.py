"""Do the TTS evaluators move the right way? Intelligibility, similarity and MOS of clean vs noisy copies.

    python benchmarks/evaluator_checks.py [--data data] [--n 20] [--whisper base.pt] [--hubert DIR] [--dnsmos]

Takes held-out test utterances from the shard stage and scores them clean and with white noise at 20 and 5 dB
SNR, with the evaluate_tts stage's own metric objects: PER (the align stage's recogniser, ``--data``/align),
WER (Whisper ``.pt``, a faster-whisper CTranslate2 directory or a HuBERT-CTC directory, when given),
Resemblyzer SIM to another utterance of the same speaker, and DNSMOS OVRL (``--dnsmos``, needs
``pip install 'ns3[dnsmos]'``). Each row beside the clean one says whether the metric got worse with the noise,
as it must. Quality figures only; nothing is timed.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from evaluation.codec_eval import phone_recognizer, pick_test_utterances  # noqa: E402
from evaluation.metrics import build_metric, build_whisper_wer  # noqa: E402
from ns3.data.shards import list_shards  # noqa: E402
from ns3.text.g2p import g2p  # noqa: E402

LEVELS = (None, 20.0, 5.0)  # SNR in dB; None = clean


def add_noise(wav: np.ndarray, snr_db: float, seed: int) -> np.ndarray:
    noise = np.random.default_rng(seed).standard_normal(len(wav)).astype(np.float32)
    scale = np.sqrt(np.mean(wav ** 2) / (np.mean(noise ** 2) * 10 ** (snr_db / 10)))
    return (wav + scale * noise).astype(np.float32)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=Path("data"))
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--whisper", default=None)
    ap.add_argument("--hubert", default=None)
    ap.add_argument("--dnsmos", action="store_true")
    args = ap.parse_args()

    utts = pick_test_utterances(list_shards(args.data / "shards", "test"), 2 * args.n)
    by_spk: dict[str, list] = {}
    for u in utts:
        by_spk.setdefault(u.speaker, []).append(u)
    pairs = [(us[i], us[(i + 1) % len(us)]) for us in by_spk.values() if len(us) > 1 for i in range(len(us))][: args.n]
    metrics = {"per": (build_metric("per", recognize=phone_recognizer(args.data / "align")), "transcript_phones", False),
               "sim_resemblyzer": (build_metric("sim_resemblyzer"), "pair", True)}
    if args.hubert:
        metrics["wer_hubert"] = (build_metric("wer_hubert", checkpoint=args.hubert), "transcript", False)
    if args.whisper:
        metrics["wer"] = (build_whisper_wer(args.whisper)[0], "transcript", False)  # .pt or CTranslate2 dir
    if args.dnsmos:
        metrics["dnsmos"] = (build_metric("dnsmos"), "signal", True)
    rows = {}
    for snr in LEVELS:
        wavs = [u.audio if snr is None else add_noise(u.audio, snr, i) for i, (u, _) in enumerate(pairs)]
        row = {}
        for name, (m, kind, _) in metrics.items():
            if kind == "transcript_phones":
                res = m.score_corpus((w, g2p(u.text).phones) for w, (u, _) in zip(wavs, pairs))
            elif kind == "transcript":
                res = m.score_corpus((w, u.text) for w, (u, _) in zip(wavs, pairs))
            elif kind == "pair":
                res = m.score_corpus((o.audio, w) for w, (_, o) in zip(wavs, pairs))
            else:
                res = m.score_corpus(wavs)
            row[name] = res.value
            if name.startswith(("per", "wer")):
                row[f"{name}_utt_mean_capped"] = res.extras.get(f"{res.name}_utt_mean_capped")
        rows["clean" if snr is None else f"{snr:g} dB"] = row
    print(f"{len(pairs)} test utterances of {len(by_spk)} speakers ({args.data})")
    names = list(rows["clean"])
    print("| copy | " + " | ".join(names) + " |")
    print("|---" * (len(names) + 1) + "|")
    for label, row in rows.items():
        print(f"| {label} | " + " | ".join("n/a" if row[k] is None else f"{row[k]:.3f}" for k in names) + " |")
    for name, (_, _, higher) in metrics.items():
        got = [rows[k][name] for k in rows]
        if None not in got:
            ok = all((a > b) if higher else (a < b) for a, b in zip(got, got[1:]))
            print(f"{name}: {'worse with each noise step, as it must' if ok else 'DOES NOT move the right way'}")


if __name__ == "__main__":
    main()
