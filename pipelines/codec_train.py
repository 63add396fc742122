"""FACodec training from the pipeline's shards and labels, as a plain function.

The Prefect flow calls ``train_codec`` in-process; for several GPUs run the same function under torchrun:
    torchrun --nproc-per-node 8 -m pipelines.codec_train --profile paper
(each rank trains on its own draw of utterances; rank 0 logs and writes checkpoints).
"""
from __future__ import annotations

import argparse
import itertools
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ns3 import tracking
from ns3.builders import codec_hparams, codec_loss_weights
from ns3.config import Params, load_params
from ns3.data.shards import iter_shard, list_shards

CODEC_FILE = "codec.pt"


def codec_dir(params: Params) -> Path:
    return params.resolve("data") / "codec"


def label_dir(params: Params) -> Path:
    return params.resolve("data") / "align"


@dataclass
class CodecTrainOutput:
    checkpoint: Path
    steps: int
    stopped_reason: str
    final_metrics: dict
    minutes: float
    hparams: dict


def _batches(examples, batch_size: int, crop_samples: int, seed: int):
    """BatchSource: epoch e = a seeded permutation of the examples cut into batches, crops seeded by (seed, e)."""
    from ns3.data.batch import RandomCropCollate
    from ns3.solvers.base import replay_epochs

    collate = RandomCropCollate(crop_samples, seed)
    rank, world = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))

    def make_epoch(epoch: int):
        collate.set_epoch(epoch)
        order = np.random.default_rng([seed, epoch]).permutation(len(examples))
        # Every rank gets the same number of batches (a DDP collective would hang otherwise).
        order = order[: len(order) - len(order) % world][rank::world]
        for i in range(0, len(order) - batch_size + 1, batch_size):
            yield collate([examples[j] for j in order[i:i + batch_size]])

    return replay_epochs(make_epoch)


def validation_eval(valid_wavs: list[np.ndarray]):
    """eval_fn for the solver: PESQ / STOI / F0 RMSE / mel distance of full reconstructions of held-out speakers.

    These are the curves over training the codec report shows (``eval/valid_*`` in MLflow).
    """
    from evaluation.metrics import build_metric
    from ns3.solvers.codec import GENERATOR

    metrics = {name: build_metric(name) for name in ("pesq_wb", "stoi", "f0_rmse")}

    def run(solver, step: int) -> dict[str, float]:
        gen = solver.unwrapped(GENERATOR)
        was = gen.training
        gen.eval()
        out: dict[str, list[float]] = {f"eval/valid_{name}": [] for name in (*metrics, "mel")}
        try:
            with torch.inference_mode():
                for wav in valid_wavs:
                    x = torch.from_numpy(wav)[None].to(solver.device)
                    y = gen(x).wav_hat[:, : x.shape[1]]
                    out["eval/valid_mel"].append(float(solver.mel_loss(y, x)))
                    rec = y[0].float().cpu().numpy()
                    for name, m in metrics.items():
                        v = m.score(wav, rec)
                        if v.value is not None:
                            out[f"eval/valid_{name}"].append(v.value)
        finally:
            gen.train(was)
        return {k: float(np.mean(v)) for k, v in out.items() if v}

    return run


# Knobs that may change between a run and its resume: budgets and logging cadence. Everything else
# (model, data, losses, optimiser) defines the run; a checkpoint made under other values is not resumed.
RESUMABLE_KNOBS = ("max_steps", "max_minutes", "log_every", "ckpt_every", "eval_every", "threads")
FINGERPRINT_FILE = "recipe.json"


def _recipe_fingerprint(params: Params, hp) -> dict:
    train = {k: v for k, v in params.codec.train.model_dump().items() if k not in RESUMABLE_KNOBS}
    recipe = {"hparams": hp.to_dict(), "train": train, "seed": params.seed}
    return {"hash": tracking.config_hash(recipe), "recipe": recipe}


def _retire_stale_training_state(train_dir: Path, fingerprint: dict) -> None:
    """Resume only a run of the same recipe. State from another recipe is moved aside (never deleted) to
    ``<train_dir>.replaced-<its hash>`` (``-2``, ``-3``… when taken), and training starts fresh; the
    caller is told why. Call on one process only (see ``train_codec``)."""
    import logging

    marker = train_dir / FINGERPRINT_FILE
    if train_dir.exists() and any(train_dir.iterdir()):
        old = json.loads(marker.read_text()) if marker.exists() else {"hash": "unknown"}
        if old["hash"] != fingerprint["hash"]:
            base = f"{train_dir.name}.replaced-{old['hash']}"
            aside, n = train_dir.with_name(base), 1
            while aside.exists():
                n += 1
                aside = train_dir.with_name(f"{base}-{n}")
            train_dir.rename(aside)
            logging.getLogger(__name__).warning(
                "codec recipe changed (%s -> %s): previous training state moved to %s; training from scratch",
                old["hash"], fingerprint["hash"], aside)
    train_dir.mkdir(parents=True, exist_ok=True)
    tmp = marker.with_suffix(".tmp")
    tmp.write_text(json.dumps(fingerprint, indent=1, sort_keys=True))
    tmp.replace(marker)


def prepare_training_state(train_dir: Path, fingerprint: dict) -> None:
    """``_retire_stale_training_state`` once per job. Under torchrun every rank calls this: rank 0 alone
    checks the state and the others wait for it before their solver loads it (the solver joins the same
    process group; joining is idempotent)."""
    from ns3.solvers.distributed import init_distributed

    info = init_distributed()
    if info.is_main:
        _retire_stale_training_state(train_dir, fingerprint)
    if info.enabled:
        torch.distributed.barrier()


def train_codec(params: Params) -> CodecTrainOutput:
    """Train (or resume) the codec on the train split; export ``<data>/codec/codec.pt``."""
    import time

    from ns3.codec import FACodec
    from ns3.codec.discriminators import CodecDiscriminator
    from ns3.data.codec_data import load_labelled, speaker_index
    from ns3.losses.mel import DAC_SCALES, MINI_SCALES, MultiScaleMelLoss
    from ns3.solvers.codec import CodecSolver, make_codec_optimizers
    from ns3.text.inventory import PhoneInventory

    t = params.codec.train
    if t.threads:
        torch.set_num_threads(t.threads)
    shards_dir = params.resolve("data") / "shards"
    inventory = PhoneInventory.load(label_dir(params) / "inventory.json")
    speakers = speaker_index(shards_dir / "manifest.jsonl", "train")
    data = load_labelled(list_shards(shards_dir, "train"), label_dir(params), speakers)
    if not data.examples:
        raise ValueError("no labelled training utterances: check the align stage's failures.jsonl")
    crop = int(round(t.crop_seconds * 16000 / 200)) * 200
    if len(data.examples) < t.batch_size:
        raise ValueError(f"{len(data.examples)} training utterances < codec.train.batch_size={t.batch_size}")
    valid = [x.audio for x in itertools.islice(
        (x for shard in list_shards(shards_dir, "valid") for x in iter_shard(shard)), 4)]
    hp = codec_hparams(params.codec.model, num_phones=len(inventory), num_speakers=len(speakers))
    generator = FACodec(hp)
    discriminator = CodecDiscriminator.mini() if t.discriminator == "mini" else CodecDiscriminator.paper()
    out_dir = codec_dir(params)
    prepare_training_state(out_dir / "train", _recipe_fingerprint(params, hp))
    solver = CodecSolver(
        generator=generator, discriminator=discriminator,
        optimizers=make_codec_optimizers(generator, discriminator, lr=t.lr, betas=tuple(t.betas)),
        mel_loss=MultiScaleMelLoss(MINI_SCALES if t.mel_scales == "mini" else DAC_SCALES),
        loss_weights=codec_loss_weights(t.loss_weights, hp), adv_start_step=t.adv_start_step,
        batches=_batches(data.examples, t.batch_size, crop, params.seed), out_dir=out_dir / "train",
        max_steps=t.max_steps, log_every=t.log_every, ckpt_every=t.ckpt_every, eval_every=t.eval_every,
        grad_clip=t.grad_clip, seed=params.seed, max_minutes=t.max_minutes,
        eval_fn=validation_eval(valid) if valid else None,
    )
    start = time.perf_counter()
    result = solver.run()
    minutes = (time.perf_counter() - start) / 60
    if result.stopped_reason == "non_finite":
        raise RuntimeError(f"codec training stopped: {result.message}; the last good checkpoint is {result.checkpoint}")
    checkpoint = solver.export(out_dir / CODEC_FILE)
    summary = {"steps": result.steps, "minutes": round(minutes, 2), "stopped_reason": result.stopped_reason,
               "train_utterances": len(data.examples), "missing_labels": data.missing_labels,
               "params_m": round(sum(p.numel() for p in generator.parameters()) / 1e6, 3),
               **{k: v for k, v in result.final_metrics.items() if isinstance(v, float) and math.isfinite(v)}}
    tmp = out_dir / ".train_summary.json.tmp"
    tmp.write_text(json.dumps(summary, indent=1, sort_keys=True))
    tmp.replace(out_dir / "train_summary.json")
    return CodecTrainOutput(checkpoint, result.steps, result.stopped_reason, summary, minutes, hp.to_dict())


def main() -> None:
    ap = argparse.ArgumentParser(description="train the codec (run under torchrun for DDP)")
    ap.add_argument("--params", default=None)
    ap.add_argument("--profile", default=None)
    args = ap.parse_args()
    params = load_params(args.params, args.profile)
    with tracking.stage_run("train_codec", params=params.codec.model_dump(), root=params.root):
        out = train_codec(params)
        tracking.log_metrics({f"train_codec/{k}": v for k, v in out.final_metrics.items() if isinstance(v, (int, float))})


if __name__ == "__main__":
    main()
