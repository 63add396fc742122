"""Sharding throughput vs the decode limit, measured in one run on this machine.

Prints audio-seconds processed per wall-second for: decoding the corpus files (the reference), the same
decode with its damage check (decoded length == header length, what catches a truncated FLAC in the shard
workers), the readers' header-only scan, and the shard stage's library function with its per-shard map run
sequentially, on 2 threads and on 2 processes (the task runners the Prefect flow offers). Ratios compare
each to the decode-only reference.
Usage: python benchmarks/shard_speed.py [--speakers 24] [--utts 40]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

from ns3.audio import load_audio
from ns3.corpus.readers import read_librispeech
from ns3.corpus.synth import synthesize_corpus
from ns3.data.sharding import sequential_map, shard_corpus


def _pool_map(pool_cls, workers):
    def run(fn, items):
        with pool_cls(max_workers=workers) as ex:
            return list(ex.map(fn, items))
    return run


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--speakers", type=int, default=24)
    ap.add_argument("--utts", type=int, default=40)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        synthesize_corpus(d / "corpus", num_speakers=args.speakers, utts_per_speaker=args.utts, min_words=8,
                          max_words=18, style_dir=None, style_actors=0, style_repetitions=1, seed=0, workers=2)
        read = read_librispeech(d / "corpus", min_duration=0.5, max_duration=30)
        audio_s = sum(u.duration for u in read.kept)
        t = time.perf_counter()
        for u in read.kept:
            load_audio(u.path, verify=False)
        ref = audio_s / (time.perf_counter() - t)
        t = time.perf_counter()
        for u in read.kept:
            load_audio(u.path, verify=True)
        checked = audio_s / (time.perf_counter() - t)
        t = time.perf_counter()
        read_librispeech(d / "corpus", min_duration=0.5, max_duration=30)
        scan = audio_s / (time.perf_counter() - t)
        print(f"corpus: {len(read.kept)} utterances, {audio_s / 60:.1f} min of audio")
        print(f"{'mode':<30}{'audio-s / wall-s':>18}{'ratio to decode':>18}")
        print(f"{'decode only (1 thread)':<30}{ref:>18.1f}{1.0:>18.2f}")
        print(f"{'decode + damage check':<30}{checked:>18.1f}{checked / ref:>18.2f}")
        print(f"{'reader scan (headers only)':<30}{scan:>18.1f}{scan / ref:>18.2f}")
        for name, mapper in [("shard, sequential", sequential_map),
                             ("shard, 2 threads", _pool_map(ThreadPoolExecutor, 2)),
                             ("shard, 2 processes", _pool_map(ProcessPoolExecutor, 2))]:
            out = d / name.replace(" ", "_").replace(",", "")
            t = time.perf_counter()
            shard_corpus(read, out, utts_per_shard=64, valid_speakers=2, test_speakers=4, seed=0, map_fn=mapper)
            rate = audio_s / (time.perf_counter() - t)
            print(f"{name:<30}{rate:>18.1f}{rate / ref:>18.2f}")


if __name__ == "__main__":
    main()
