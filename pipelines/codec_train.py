"""Codec training under torchrun: the same stage as ``ns3 train-codec``, one process per GPU.

    torchrun --nproc-per-node 8 -m pipelines.codec_train --profile paper

Each rank streams its own slice of the training shards (ns3.data.codec_stream); rank 0 alone writes
checkpoints, the exported codec, the metrics file and the MLflow run (see pipelines.codec_flows).
"""
from __future__ import annotations

import argparse

from ns3.config import load_params
from pipelines.codec_flows import run_train_codec


def main() -> None:
    ap = argparse.ArgumentParser(description="train the codec (run under torchrun for DDP)")
    ap.add_argument("--params", default=None)
    ap.add_argument("--profile", default=None)
    args = ap.parse_args()
    run_train_codec(load_params(args.params, args.profile))


if __name__ == "__main__":
    main()
