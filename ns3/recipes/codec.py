"""The FACodec training recipe: shards + labels -> streamed batches -> CodecSolver -> ``codec.pt``.

``codec_training_data`` reads what the data stages left (no audio: speaker ids, phone inventory size,
labelled utterance count, shard lists); ``ns3.builders.codec_train_spec`` turns params into a typed
`CodecTrainSpec`; `train_codec` assembles and runs the solver. Under torchrun every rank runs
`train_codec` on its own slice of the shards; rank 0 alone writes the exported model and the summary.

Layout: ``out_dir`` (the DVC out) holds ``codec.pt`` and ``train_summary.json``; ``state_dir`` (never a
DVC out) holds the solver's ``last.pt`` (model, optimizers, RNG, stream position) and ``recipe.json``.
"""
from __future__ import annotations

import itertools
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from ns3.recipes.state import prepare_training_state, recipe_fingerprint, write_json_atomic

CODEC_FILE = "codec.pt"
SUMMARY_FILE = "train_summary.json"


@dataclass(frozen=True)
class CodecTrainingData:
    """What training needs to know about the data before reading any audio."""

    train_shards: tuple[str, ...]  # audio shard paths or URLs; labels are <label_dir>/<same name>
    valid_shards: tuple[str, ...]
    label_dir: Path
    speakers: dict[str, int]  # train speaker -> id for the speaker heads
    num_phones: int
    labelled_utterances: int  # train utterances the align stage labelled (the stream's epoch length)
    missing_labels: int  # train utterances the align stage could not label (left out)


def codec_training_data(shards_dir: str | Path, label_dir: Path) -> CodecTrainingData:
    """Read the shard manifest and the align stage's inventory/metrics; fail clearly when a stage is missing.

    ``shards_dir``: the shard stage's folder, or a URL holding a copy of it (``s3://bucket/prefix/shards``: the
    manifest and the tars are read from there, see `ns3.data.storage`); ``label_dir`` is a local folder.
    """
    from ns3.data import storage
    from ns3.data.codec_data import speaker_index
    from ns3.data.shards import list_shards
    from ns3.text.inventory import PhoneInventory

    shards_dir = shards_dir if storage.is_url(shards_dir) else Path(shards_dir)
    label_dir = Path(label_dir)
    train_shards = tuple(str(p) for p in list_shards(shards_dir, "train"))  # a URL with nothing there raises here
    manifest = storage.join(shards_dir, "manifest.jsonl")
    if not storage.exists(manifest):
        copy = f" and copy its folder to {shards_dir}" if storage.is_url(shards_dir) else ""
        raise FileNotFoundError(f"{manifest} is missing: run `ns3 shard` first{copy}")
    metrics_path = label_dir / "metrics.json"
    if not metrics_path.exists():
        raise FileNotFoundError(f"{metrics_path} is missing: run `ns3 align` first")
    train = json.loads(metrics_path.read_text())["splits"].get("train", {})
    if not train_shards or not train.get("aligned"):
        raise ValueError(f"no labelled training utterances in {label_dir}: check the align stage's failures.jsonl")
    return CodecTrainingData(
        train_shards=train_shards, valid_shards=tuple(str(p) for p in list_shards(shards_dir, "valid")),
        label_dir=label_dir, speakers=speaker_index(manifest, "train"),
        num_phones=len(PhoneInventory.load(label_dir / "inventory.json")),
        labelled_utterances=int(train["aligned"]), missing_labels=int(train.get("failed", 0)),
    )


@dataclass(frozen=True)
class CodecTrainSpec:
    """Everything a codec training run is, as plain values (built from params by ``ns3.builders``)."""

    out_dir: Path
    state_dir: Path
    hparams: Any  # FACodecHParams (sizes from the data: phones, speakers)
    discriminator: str  # "mini" | "paper"
    mel_scales: str  # "mini" | "dac"
    loss_weights: dict[str, float]
    crop_seconds: float
    batch_size: int
    lr: float
    betas: tuple[float, float]
    adv_start_step: int | None
    grad_clip: float | None
    seed: int
    shuffle_buffer: int
    valid_utterances: int
    # Budgets and cadence: may change between a run and its resume (RESUMABLE below).
    max_steps: int = 1000
    max_minutes: float | None = None
    log_every: int = 25
    ckpt_every: int = 250
    eval_every: int = 500
    threads: int | None = None
    # Device numerics (ns3/solvers/precision.py): how the steps run, not what is trained, so they may change
    # on resume (a run started on a CPU continues on a GPU) and stay out of the fingerprint.
    precision: str = "auto"
    tf32: bool = True
    compile: bool = False
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def crop_samples(self) -> int:
        """Crops are whole codec frames (the hop comes from the codec, not a literal)."""
        hop = self.hparams.hop_length
        return int(round(self.crop_seconds * self.hparams.sample_rate / hop)) * hop

    def fingerprint(self) -> dict:
        """The run's identity: everything but budgets, cadence, threads, paths and tags."""
        recipe = {k: v for k, v in asdict(self).items() if k not in RESUMABLE and k not in ("out_dir", "state_dir", "tags")}
        recipe["hparams"] = self.hparams.to_dict()
        return recipe_fingerprint(json.loads(json.dumps(recipe, default=str)))


RESUMABLE = ("max_steps", "max_minutes", "log_every", "ckpt_every", "eval_every", "threads", "precision", "tf32",
             "compile")


@dataclass
class CodecTrainOutput:
    checkpoint: Path  # the exported codec.pt
    steps: int
    resumed_from: int
    stopped_reason: str
    summary: dict  # what train_summary.json / metrics/train_codec.json hold


def validation_eval(valid_wavs: list[np.ndarray]) -> Callable:
    """eval_fn for the solver: PESQ / STOI / F0 RMSE / mel distance of full reconstructions of held-out speakers.

    These are the curves over training the codec report shows (``eval/valid_*`` in MLflow). The codec pads
    its output to whole frames; it is trimmed to the input length before scoring.
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


def _valid_wavs(shards: tuple[str, ...], n: int) -> list[np.ndarray]:
    """The first ``n`` validation utterances (read lazily: only those)."""
    from ns3.data.shards import iter_shard

    return [s.audio for s in itertools.islice((s for shard in shards for s in iter_shard(shard)), n)]


def train_codec(spec: CodecTrainSpec, data: CodecTrainingData) -> CodecTrainOutput:
    """Train (or resume) the codec; export ``<out_dir>/codec.pt`` and ``train_summary.json`` (rank 0)."""
    from ns3.codec import FACodec
    from ns3.codec.discriminators import CodecDiscriminator
    from ns3.data.codec_stream import CodecBatchStream
    from ns3.data.pitch import PITCH_STATS_FILE, SpeakerPitchStats
    from ns3.losses.mel import DAC_SCALES, MINI_SCALES, MultiScaleMelLoss
    from ns3.solvers.codec import CodecSolver, make_codec_optimizers
    from ns3.solvers.distributed import init_distributed

    if spec.threads:
        torch.set_num_threads(spec.threads)
    if data.labelled_utterances < spec.batch_size:
        raise ValueError(f"{data.labelled_utterances} labelled training utterances < codec.train.batch_size="
                         f"{spec.batch_size}")
    dist = init_distributed()
    stats_path = data.label_dir / PITCH_STATS_FILE
    if not stats_path.exists():
        raise FileNotFoundError(f"{stats_path}: no pitch statistics; re-run `ns3 align` (it writes them)")
    batches = CodecBatchStream(
        shards=list(data.train_shards), label_dir=data.label_dir, speakers=data.speakers,
        pitch_stats=SpeakerPitchStats.load(stats_path), batch_size=spec.batch_size, crop_samples=spec.crop_samples,
        seed=spec.seed, shuffle_buffer=spec.shuffle_buffer, rank=dist.rank, world_size=dist.world_size,
        utterances=data.labelled_utterances,
    )
    valid = _valid_wavs(data.valid_shards, spec.valid_utterances) if dist.is_main else []
    generator = FACodec(spec.hparams)
    discriminator = CodecDiscriminator.mini() if spec.discriminator == "mini" else CodecDiscriminator.paper()
    prepare_training_state(spec.state_dir, spec.fingerprint())
    solver = CodecSolver(
        generator=generator, discriminator=discriminator,
        optimizers=make_codec_optimizers(generator, discriminator, lr=spec.lr, betas=tuple(spec.betas),
                                         fused=dist.device.type == "cuda"),
        mel_loss=MultiScaleMelLoss(MINI_SCALES if spec.mel_scales == "mini" else DAC_SCALES),
        loss_weights=spec.loss_weights, adv_start_step=spec.adv_start_step, batches=batches, out_dir=spec.state_dir,
        max_steps=spec.max_steps, log_every=spec.log_every, ckpt_every=spec.ckpt_every, eval_every=spec.eval_every,
        grad_clip=spec.grad_clip, seed=spec.seed, max_minutes=spec.max_minutes,
        eval_fn=validation_eval(valid) if valid else None,
        precision=spec.precision, tf32=spec.tf32, compile=spec.compile,
    )
    start = time.perf_counter()
    result = solver.run()
    minutes = (time.perf_counter() - start) / 60
    if result.stopped_reason == "non_finite":
        raise RuntimeError(f"codec training stopped: {result.message}; the last good checkpoint is {result.checkpoint}")
    checkpoint = spec.out_dir / CODEC_FILE
    summary = {"steps": result.steps, "resumed_from": result.resumed_from, "minutes": round(minutes, 2),
               "minutes_total": round(solver.minutes_trained(), 2), "stopped_reason": result.stopped_reason, "train_utterances": data.labelled_utterances,
               "missing_labels": data.missing_labels, "world_size": dist.world_size,
               "precision": solver.precision, "compiled": solver.compiled,
               "params_m": round(sum(p.numel() for p in generator.parameters()) / 1e6, 3),
               **{k: v for k, v in result.final_metrics.items() if isinstance(v, float) and math.isfinite(v)}}
    if dist.is_main:
        solver.export(checkpoint)
        write_json_atomic(spec.out_dir / SUMMARY_FILE, summary)
    return CodecTrainOutput(checkpoint, result.steps, result.resumed_from, result.stopped_reason, summary)
