"""The factorized-diffusion training recipe: code shards -> streamed frame-budget batches -> DiffusionSolver
-> ``diffusion.pt``.

``diffusion_training_data`` reads what ``extract_codes`` left (code-shard info, shard lists) and the train
codes' statistics, and refuses codes made by another codec than the one configured;
``ns3.builders.diffusion_train_spec`` turns params into a `DiffusionTrainSpec`; `train_diffusion` runs
the solver and exports the model with its codec hash and statistics.

Layout as for the codec: ``out_dir`` (the DVC out) holds ``diffusion.pt`` and ``train_summary.json``;
``state_dir`` (never a DVC out) holds ``last.pt`` and ``recipe.json``.
"""
from __future__ import annotations

import copy
import itertools
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from ns3.recipes.state import prepare_training_state, recipe_fingerprint, write_json_atomic

DIFFUSION_FILE = "diffusion.pt"
SUMMARY_FILE = "train_summary.json"


@dataclass(frozen=True)
class DiffusionTrainingData:
    code_dir: str | Path  # a local folder or a URL (ns3.data.storage)
    train_shards: tuple[str, ...]
    valid_shards: tuple[str, ...]
    codec_hash: str
    codebook_size: int
    num_levels: int
    factorized: bool  # False: the -factorization codec's levels, one attribute prompted and generated together
    num_phones: int
    train_utterances: int
    train_frames: int
    stats: Any  # ns3.diffusion.validation.CodeStats


def diffusion_training_data(code_dir: str | Path, codec_path: Path | None, num_phones: int,
                            duration_percentile: float = 99.5) -> DiffusionTrainingData:
    """Code-shard info + statistics of the train codes; refuses codes from a codec other than ``codec_path``.

    ``code_dir``: the extract_codes folder, or a URL holding a copy of it (``s3://bucket/prefix/codes``, with its
    code_info.json; see `ns3.data.storage`).
    """
    from ns3.data import storage
    from ns3.data.code_shards import check_codec, iter_code_shard, read_code_info
    from ns3.diffusion.validation import code_stats

    code_dir = code_dir if storage.is_url(code_dir) else Path(code_dir)
    train = tuple(str(p) for p in storage.glob(code_dir, "train-*.tar"))  # a URL with nothing there raises here
    valid = tuple(str(p) for p in storage.glob(code_dir, "valid-*.tar"))
    info = read_code_info(code_dir)
    if codec_path is not None:
        check_codec(info, codec_path)
    if not train:
        raise FileNotFoundError(f"no train-*.tar code shards in {code_dir}: run `ns3 extract-codes`")
    utts = list(itertools.chain.from_iterable(iter_code_shard(s) for s in train))  # codes are small: [6, F] int16
    stats = code_stats(utts, info.codebook_size, duration_percentile)
    return DiffusionTrainingData(
        code_dir=code_dir, train_shards=train, valid_shards=valid, codec_hash=info.codec_hash,
        codebook_size=info.codebook_size, num_levels=info.n_prosody + info.n_content + info.n_detail,
        factorized=info.factorized,
        num_phones=num_phones, train_utterances=len(utts), train_frames=sum(u.codes.shape[1] for u in utts),
        stats=stats,
    )


@dataclass(frozen=True)
class DiffusionTrainSpec:
    out_dir: Path
    state_dir: Path
    hparams: Any  # DiffusionHParams (sizes from the data: phones, codebook, levels, duration cap)
    lr: float
    betas: tuple[float, float]
    weight_decay: float
    warmup_steps: int
    batch_frames: int
    loss_weights: dict[str, float]
    prompt_drop: float
    ema_decay: float | None
    grad_clip: float | None
    seed: int
    shuffle_buffer: int
    valid_utterances: int
    max_steps: int = 1000
    max_minutes: float | None = None
    log_every: int = 25
    ckpt_every: int = 250
    eval_every: int = 500
    threads: int | None = None
    tags: dict[str, str] = field(default_factory=dict)
    codec_path: Path | None = None  # decodes the samples logged at each evaluation
    samples: int = 1  # validation utterances generated, plotted and decoded at each evaluation
    generation: Any = None  # GenerationConfig of those samples (None: the defaults)
    # Device numerics (ns3/solvers/precision.py): resumable, outside the fingerprint (as for the codec).
    precision: str = "auto"
    tf32: bool = True
    compile: bool = False

    def fingerprint(self, codec_hash: str) -> dict:
        """The run's identity: the recipe and the codec whose codes it learns (new codes never resume old state)."""
        recipe = {k: v for k, v in asdict(self).items() if k not in RESUMABLE and k not in ("out_dir", "state_dir", "tags")}
        recipe["hparams"] = self.hparams.to_dict()
        recipe["codec_hash"] = codec_hash
        return recipe_fingerprint(json.loads(json.dumps(recipe, default=str)))


RESUMABLE = ("max_steps", "max_minutes", "log_every", "ckpt_every", "eval_every", "threads", "codec_path", "samples",
             "generation", "precision", "tf32", "compile")


@dataclass
class DiffusionTrainOutput:
    checkpoint: Path
    steps: int
    resumed_from: int
    stopped_reason: str
    summary: dict


def _valid_batches(shards: tuple[str, ...], n: int, batch_frames: int) -> list:
    from ns3.data.code_batch import collate_codes, frame_budget_groups
    from ns3.data.code_shards import iter_code_shard

    utts = list(itertools.islice((u for s in shards for u in iter_code_shard(s)), n))
    return [collate_codes(g) for g in frame_budget_groups(utts, batch_frames)]


def _load_codec(path: Path):
    from ns3.codec.checkpoint import load_codec

    return load_codec(path)


def log_samples(model, batch, step: int, n: int, codec, generation) -> None:
    """Generate the first ``n`` utterances of ``batch`` from their own first 30 % as the prompt; log code maps,
    durations and (with a codec) the decoded audio with the prompt's timbre beside the resynthesis."""
    from ns3 import tracking
    from ns3.codec.codes import FactorCodes
    from ns3.diffusion.generate import GenerationConfig, PromptUtterance, generate
    from ns3.diffusion.plots import code_map_figure, duration_figure
    from ns3.diffusion.validation import fixed_split

    if not n or not tracking.active():
        return
    split = fixed_split(batch, 0.3)
    b = min(n, batch.size)
    phones, prompts, truth = [], [], []
    for i in range(b):
        k, f, p, t = (int(split.phones[i]), int(split.frames[i]), int(batch.phone_mask[i].sum()),
                      int(batch.frame_mask[i].sum()))
        prompts.append({"prosody": PromptUtterance(batch.phone_ids[i, :k].cpu(), batch.durations[i, :k].cpu(),
                                                   batch.phone_prosody[i, :k].cpu(), batch.codes[i, :, :f].cpu())})
        phones.append(batch.phone_ids[i, k:p].cpu())
        truth.append((batch.codes[i, :, f:t].cpu(), batch.durations[i, k:p].cpu()))
    sampler = copy.deepcopy(model).cpu()  # generation runs on the CPU; the training weights stay where they are
    out = generate(sampler, phones, prompts, generation or GenerationConfig())
    root = f"samples/step_{step:07d}"
    for i, (codes, durs) in enumerate(truth):
        key = batch.keys[i]
        tracking.log_figure(code_map_figure(codes.numpy(), out.codes[i].numpy(), model.hp.levels, key),
                            f"{root}/{i}_codes.png")
        tracking.log_figure(duration_figure(durs.numpy(), out.durations[i].numpy(), key), f"{root}/{i}_durations.png")
        if codec is not None:
            hp = codec.hp
            n_p, n_c = hp.codebooks["prosody"], hp.codebooks["content"]
            timbre = batch.timbre[i:i + 1].cpu()
            with torch.inference_mode():
                gen = codec.decode(FactorCodes.from_stacked(out.codes[i][None], n_p, n_c), timbre)[0]
                ref = codec.decode(FactorCodes.from_stacked(codes[None], n_p, n_c), timbre)[0]
            tracking.log_audio(gen.numpy(), f"{root}/{i}_generated.wav", hp.sample_rate)
            tracking.log_audio(ref.numpy(), f"{root}/{i}_resynthesis.wav", hp.sample_rate)


def train_diffusion(spec: DiffusionTrainSpec, data: DiffusionTrainingData) -> DiffusionTrainOutput:
    """Train (or resume) the diffusion model; export ``<out_dir>/diffusion.pt`` + ``train_summary.json`` (rank 0)."""
    from ns3.data.code_batch import CodeBatchStream
    from ns3.diffusion.checkpoint import save_diffusion
    from ns3.diffusion.model import FactorizedDiffusion
    from ns3.diffusion.validation import validate
    from ns3.solvers.diffusion import DiffusionSolver
    from ns3.solvers.distributed import init_distributed

    if spec.threads:
        torch.set_num_threads(spec.threads)
    dist = init_distributed()
    mean_frames = data.train_frames / max(1, data.train_utterances)
    batches_per_epoch = max(1, int(data.train_frames / (spec.batch_frames * dist.world_size)))
    batches = CodeBatchStream(shards=list(data.train_shards), batch_frames=spec.batch_frames, seed=spec.seed,
                              shuffle_buffer=max(spec.shuffle_buffer, int(2 * spec.batch_frames / mean_frames)),
                              batches_per_epoch=batches_per_epoch, rank=dist.rank, world_size=dist.world_size)
    valid = _valid_batches(data.valid_shards, spec.valid_utterances, spec.batch_frames) if dist.is_main else []
    model = FactorizedDiffusion(spec.hparams)
    prepare_training_state(spec.state_dir, spec.fingerprint(data.codec_hash))

    codec = _load_codec(spec.codec_path) if dist.is_main and spec.codec_path and spec.samples else None

    def eval_fn(solver, step: int) -> dict[str, float]:
        if not valid:
            return {}
        model = solver.inference_model()
        out = validate(model, valid, data.stats, device=solver.device)
        log_samples(model, valid[0], step, spec.samples, codec, spec.generation)
        return out

    solver = DiffusionSolver(
        model=model, lr=spec.lr, betas=tuple(spec.betas), weight_decay=spec.weight_decay,
        warmup_steps=spec.warmup_steps, loss_weights=spec.loss_weights, prompt_drop=spec.prompt_drop,
        ema_decay=spec.ema_decay, batches=batches, out_dir=spec.state_dir, max_steps=spec.max_steps,
        log_every=spec.log_every, ckpt_every=spec.ckpt_every, eval_every=spec.eval_every, grad_clip=spec.grad_clip,
        seed=spec.seed, max_minutes=spec.max_minutes, eval_fn=eval_fn,
        precision=spec.precision, tf32=spec.tf32, compile=spec.compile,
    )
    start = time.perf_counter()
    result = solver.run()
    minutes = (time.perf_counter() - start) / 60
    if result.stopped_reason == "non_finite":
        raise RuntimeError(f"diffusion training stopped: {result.message}; the last good checkpoint is {result.checkpoint}")
    final_valid = eval_fn(solver, result.steps) if dist.is_main else {}
    summary = {"steps": result.steps, "resumed_from": result.resumed_from, "minutes": round(minutes, 2),
               "minutes_total": round(solver.minutes_trained(), 2), "stopped_reason": result.stopped_reason,
               "train_utterances": data.train_utterances, "train_frames": data.train_frames,
               "world_size": dist.world_size, "params_m": round(model.num_parameters() / 1e6, 3),
               "precision": solver.precision, "compiled": solver.compiled,
               "max_duration": spec.hparams.max_duration,
               **{k: v for k, v in result.final_metrics.items() if isinstance(v, float) and math.isfinite(v)},
               **final_valid}
    checkpoint = spec.out_dir / DIFFUSION_FILE
    if dist.is_main:
        save_diffusion(checkpoint, solver.inference_model(), data.codec_hash, data.stats.to_dict())
        write_json_atomic(spec.out_dir / SUMMARY_FILE, summary)
    return DiffusionTrainOutput(checkpoint, result.steps, result.resumed_from, result.stopped_reason, summary)
