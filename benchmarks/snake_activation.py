"""SnakeBeta training cost: the hand-differentiated activation against autograd through the same formula.

SnakeBeta is the codec's largest CPU cost in training (it runs at every resolution of the encoder and
decoder). Times forward + backward on a [batch, channels, samples] activation, both ways, in the same run;
prints the ratio (autograd / hand-written, > 1 means the hand-written one is faster). Nothing is asserted.

    python benchmarks/snake_activation.py [--shape 8 16 16000] [--repeats 10]
"""
from __future__ import annotations

import argparse

import torch

from ns3.codec.layers import SnakeBeta
from timing import timed  # benchmarks/timing.py (scripts run from benchmarks/ on sys.path)


def autograd_snake(act: SnakeBeta, x: torch.Tensor) -> torch.Tensor:
    a = act.alpha.exp()[None, :, None]
    inv_b = 1.0 / (act.beta.exp()[None, :, None] + 1e-9)
    return x + torch.sin(x * a).pow(2) * inv_b



def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", type=int, nargs=3, default=(8, 16, 16000), metavar=("B", "C", "T"))
    ap.add_argument("--repeats", type=int, default=10)
    args = ap.parse_args()
    torch.manual_seed(0)
    act = SnakeBeta(args.shape[1])
    x = torch.randn(*args.shape, requires_grad=True)
    grad = torch.randn(*args.shape)
    ref = timed(lambda: autograd_snake(act, x).backward(grad), args.repeats)
    ours = timed(lambda: act(x).backward(grad), args.repeats)
    print(f"SnakeBeta forward+backward on {list(args.shape)}, {torch.get_num_threads()} threads")
    print(f"{'autograd formula (reference)':32s} {ref * 1e3:8.1f} ms   1.00")
    print(f"{'hand-differentiated':32s} {ours * 1e3:8.1f} ms   {ours / ref:.2f}  (speed-up {ref / ours:.2f}x)")


if __name__ == "__main__":
    main()
