"""The only bridge from the typed config (ns3.config) to library objects: config sections -> plain kwargs.

Library modules never read params; they take what these functions build.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # heavy imports stay out of `ns3 --help`
    from ns3.align.model import AlignerConfig
    from ns3.align.train import TrainSchedule
    from ns3.codec.hparams import FACodecHParams
    from ns3.config import AlignConfig, CodecModelConfig
    from ns3.recipes.codec import CodecTrainSpec


def aligner_settings(cfg: "AlignConfig", seed: int) -> tuple["AlignerConfig", "TrainSchedule"]:
    from ns3.align.model import AlignerConfig
    from ns3.align.train import TrainSchedule

    net = cfg.aligner.model_dump()
    net["dilations"] = tuple(net["dilations"])
    return AlignerConfig(**net), TrainSchedule(**cfg.schedule.model_dump(), seed=seed)


def codec_hparams(cfg: "CodecModelConfig", num_phones: int, num_speakers: int) -> "FACodecHParams":
    """Size preset + the configured switches; head sizes come from the phone inventory and the train speakers."""
    from ns3.codec.hparams import FACodecHParams

    preset = FACodecHParams.mini if cfg.size == "mini" else FACodecHParams.paper
    fields = cfg.model_dump(exclude={"size", "factorized"})
    hp = preset(**fields, num_phones=num_phones, num_speakers=max(1, num_speakers))
    return hp if cfg.factorized else FACodecHParams.unfactorized(hp)


def codec_loss_weights(configured: dict[str, float], hp: "FACodecHParams") -> dict[str, float]:
    """The configured weights for the losses this configuration computes.

    Ablations switch losses off (no detail codebooks -> no GRL heads on them); their weights are dropped
    here. A key that no configuration computes is a typo and an error.
    """
    from ns3.solvers.codec import PAPER_LOSS_WEIGHTS, available_loss_keys

    full = set(PAPER_LOSS_WEIGHTS)  # every loss some configuration computes (a test keeps this true)
    unknown = sorted(set(configured) - full)
    if unknown:
        raise ValueError(f"codec.train.loss_weights: unknown loss key(s) {unknown}; known: {sorted(full)}")
    have = available_loss_keys(hp)
    return {k: float(v) for k, v in configured.items() if k in have}


def codec_train_spec(params, data) -> "CodecTrainSpec":
    """params (a validated ``ns3.config.Params``) + what the data stages left -> the codec recipe's spec."""
    from ns3.recipes.codec import CodecTrainSpec

    t = params.codec.train
    hp = codec_hparams(params.codec.model, num_phones=data.num_phones, num_speakers=len(data.speakers))
    data_root = params.resolve("data")
    return CodecTrainSpec(
        out_dir=data_root / "codec", state_dir=data_root / "state" / "train_codec", hparams=hp,
        discriminator=t.discriminator, mel_scales=t.mel_scales, loss_weights=codec_loss_weights(t.loss_weights, hp),
        crop_seconds=t.crop_seconds, batch_size=t.batch_size, lr=t.lr, betas=tuple(t.betas),
        adv_start_step=t.adv_start_step, grad_clip=t.grad_clip, seed=params.seed, shuffle_buffer=t.shuffle_buffer,
        valid_utterances=t.valid_utterances, max_steps=t.max_steps,
        max_minutes=t.max_minutes, log_every=t.log_every, ckpt_every=t.ckpt_every, eval_every=t.eval_every,
        threads=t.threads, precision=t.precision, tf32=t.tf32, compile=t.compile,
        tags={"ns3.variant": params.variant, "ns3.profile": params.profile},
    )


def diffusion_hparams(cfg, num_phones: int, codebook_size: int, levels: tuple[str, ...], max_duration: int):
    """Size preset + the ablation switches; vocabularies and the duration cap come from the code shards."""
    from ns3.diffusion.hparams import ATTRIBUTES, DiffusionHParams

    preset = DiffusionHParams.mini if cfg.size == "mini" else DiffusionHParams.paper
    return preset(num_phones=num_phones, codebook_size=codebook_size, levels=levels,
                  level_attributes=tuple(ATTRIBUTES.get(n, "codes") for n in levels), max_duration=max_duration,
                  duration_objective=cfg.duration_objective, duration_uses_prosody=cfg.duration_uses_prosody,
                  duration_uses_prompt=cfg.duration_uses_prompt)


def diffusion_levels(num_levels: int, factorized: bool) -> tuple[str, ...]:
    """Frame-level names: p, c1, c2, d1, d2, d3 (a factorized codec; fewer without details); q1..qN for the
    -factorization codec, whose levels are one attribute (each prompt shows them all)."""
    from ns3.diffusion.hparams import LEVELS

    if factorized and num_levels <= len(LEVELS):
        return LEVELS[:num_levels]
    return tuple(f"q{i + 1}" for i in range(num_levels))


def diffusion_train_spec(params, data):
    """params + what extract_codes left (``DiffusionTrainingData``) -> the diffusion recipe's spec."""
    from ns3.recipes.diffusion import DiffusionTrainSpec
    from ns3.solvers.diffusion import PAPER_LOSS_WEIGHTS

    t = params.diffusion.train
    unknown = sorted(set(t.loss_weights) - set(PAPER_LOSS_WEIGHTS))
    if unknown:
        raise ValueError(f"diffusion.train.loss_weights: unknown loss key(s) {unknown}; known: {sorted(PAPER_LOSS_WEIGHTS)}")
    levels = diffusion_levels(data.num_levels, data.factorized)
    hp = diffusion_hparams(params.diffusion.model, data.num_phones, data.codebook_size, levels, data.stats.max_duration)
    root = params.resolve("data")
    return DiffusionTrainSpec(
        out_dir=root / "diffusion", state_dir=root / "state" / "train_diffusion", hparams=hp, lr=t.lr,
        betas=tuple(t.betas), weight_decay=t.weight_decay, warmup_steps=t.warmup_steps, batch_frames=t.batch_frames,
        loss_weights=dict(t.loss_weights), prompt_drop=t.prompt_drop, ema_decay=t.ema_decay, grad_clip=t.grad_clip,
        seed=params.seed, shuffle_buffer=t.shuffle_buffer, valid_utterances=t.valid_utterances, max_steps=t.max_steps,
        max_minutes=t.max_minutes, log_every=t.log_every, ckpt_every=t.ckpt_every, eval_every=t.eval_every,
        threads=t.threads, precision=t.precision, tf32=t.tf32, compile=t.compile,
        tags={"ns3.variant": params.variant, "ns3.profile": params.profile},
        codec_path=root / "codec" / "codec.pt", samples=t.samples, generation=generation_config(params.diffusion.sample),
    )


def generation_config(cfg):
    """diffusion.sample -> the sampler settings of `ns3.diffusion.generate`."""
    from ns3.diffusion.generate import GenerationConfig

    return GenerationConfig(steps=cfg.steps, duration_steps=cfg.duration_steps, use_cfg=cfg.use_cfg,
                            cfg_alpha=cfg.cfg_alpha, cfg_rescale=cfg.cfg_rescale,
                            top_k=cfg.top_k, temperature=cfg.temperature, gumbel_scale=cfg.gumbel_scale)
