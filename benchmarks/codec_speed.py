"""FACodec speed and memory on this CPU, as ratios against references measured in the same run.

Measures, for the ``paper`` configuration with random weights on ``--seconds`` of audio:
encode / decode wall time and real-time factor (RTF = compute time / audio time), peak resident
memory, and the same figures for (a) the same networks with the anti-aliased SnakeBeta activations
replaced by a plain LeakyReLU ("plain conv stack": same convolutions, no 2x resampling), (b) the
``mini`` configuration, and (c) both sizes with the frame-rate iSTFT decoder (``codec.model.decoder: istft``). Nothing is asserted; numbers are printed.

    python benchmarks/codec_speed.py [--seconds 10] [--repeats 3] [--threads 2]
"""
from __future__ import annotations

import argparse
import copy
import resource

import torch
from torch import nn

from ns3.codec import FACodec, FACodecHParams
from ns3.codec.layers import AntiAliasedSnake
from timing import timed  # benchmarks/timing.py (scripts run from benchmarks/ on sys.path)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux reports KiB



def plain_activations(model: nn.Module) -> nn.Module:
    """A copy of ``model`` whose anti-aliased SnakeBeta layers are plain LeakyReLUs."""
    model = copy.deepcopy(model)
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, AntiAliasedSnake):
                setattr(parent, name, nn.LeakyReLU(0.1))
    return model


def measure(model: FACodec, wav: torch.Tensor, repeats: int) -> dict[str, float]:
    model.eval()
    with torch.inference_mode():
        enc = model.encode(wav)
        t_enc = timed(lambda: model.encode(wav), repeats)
        t_dec = timed(lambda: model.decode(enc.codes, enc.timbre), repeats)
    return {"encode_s": t_enc, "decode_s": t_dec, "peak_rss_mb": peak_rss_mb()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    sr = 16_000
    wav = 0.1 * torch.randn(1, int(args.seconds * sr))
    print(f"torch {torch.__version__}, {args.threads} threads, {args.seconds:.1f} s of audio, median of {args.repeats}")

    base_rss = peak_rss_mb()
    # Inference does not use the training-only heads (73.5 M params in the release); leave them out.
    paper = FACodec(FACodecHParams.paper(heads=False))
    built_rss = peak_rss_mb()
    rows = {"paper": measure(paper, wav, args.repeats)}
    rows["paper, plain activations"] = measure(plain_activations(paper), wav, args.repeats)
    rows["mini"] = measure(FACodec(FACodecHParams.mini(heads=False)), wav, args.repeats)
    rows["paper, istft decoder"] = measure(FACodec(FACodecHParams.paper(heads=False, decoder="istft")), wav, args.repeats)
    rows["mini, istft decoder"] = measure(FACodec(FACodecHParams.mini(heads=False, decoder="istft")), wav, args.repeats)

    ref = rows["paper"]
    print(f"paper params (no heads): {paper.num_parameters() / 1e6:.2f} M; RSS before build {base_rss:.0f} MB, "
          f"after build {built_rss:.0f} MB")
    print(f"{'model':28s} {'encode s':>9s} {'enc RTF':>8s} {'decode s':>9s} {'dec RTF':>8s} {'paper/this enc':>15s} {'paper/this dec':>15s}")
    for name, r in rows.items():
        print(f"{name:28s} {r['encode_s']:9.3f} {r['encode_s'] / args.seconds:8.3f} {r['decode_s']:9.3f} "
              f"{r['decode_s'] / args.seconds:8.3f} {ref['encode_s'] / r['encode_s']:15.2f} {ref['decode_s'] / r['decode_s']:15.2f}")
    print(f"peak RSS after all runs: {peak_rss_mb():.0f} MB (process-wide high-water mark)")


if __name__ == "__main__":
    main()
