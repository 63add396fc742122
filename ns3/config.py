"""Typed schema of params.yaml.

params.yaml holds every knob (no hidden defaults here): a missing or unknown key, or a bad value, is an
error naming the dotted key. A profile (``configs/<name>.yaml``) is a partial overlay merged on top of
params.yaml, so ``paper`` lists only what differs from the embedded ``mini`` default.
Library modules never import this file; builders and pipelines pass plain kwargs.
"""
from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from ns3.tracking import PROJECT_ROOT


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PathsConfig(_Section):
    data: str = Field(description="root folder of stage outputs (relative to the project root or absolute)")
    metrics: str
    reports: str
    shards_url: str | None = Field(
        min_length=1,
        description="where train_codec and train_diffusion stream their shards from: null = <data>/shards and "
        "<data>/codes; else a URL (s3://bucket/prefix, any fsspec URL) or folder holding copies of them as "
        "<shards_url>/shards (tars + manifest.jsonl) and <shards_url>/codes (tars + code_info.json), e.g. "
        "`aws s3 sync data/shards s3://bucket/prefix/shards`. S3 endpoint and credentials come from the standard "
        "AWS_* variables (AWS_ENDPOINT_URL for MinIO/Ceph/moto). Labels (<data>/align) and the codec stay local")


class SynthConfig(_Section):
    """The embedded corpus: espeak-ng voices reading generated sentences."""

    num_speakers: int = Field(ge=3)
    utts_per_speaker: int = Field(ge=1)
    min_words: int = Field(ge=1)
    max_words: int = Field(ge=1)
    style_actors: int = Field(ge=0, le=24, description="RAVDESS-layout actors (0 = no style set)")
    style_repetitions: int = Field(ge=1, le=2)
    workers: int = Field(ge=1)
    noise_floor_db: float | None = Field(le=-20, description="seeded background noise (dBFS RMS); None = digital silence")

    @model_validator(mode="after")
    def _words(self):
        if self.max_words < self.min_words:
            raise ValueError("max_words must be >= min_words")
        return self


class VadConfig(_Section):
    threshold_db: float = Field(le=0, description="frame energy relative to the file maximum counted as speech")
    min_silence: float = Field(gt=0, description="seconds of silence that may split a segment")


class CorpusConfig(_Section):
    source: Literal["synth", "librispeech", "librilight"]
    root: str | None = Field(description="path to a real corpus; required unless source is synth")
    style_source: Literal["synth", "ravdess", "none"]
    style_root: str | None
    min_duration: float = Field(gt=0)
    max_duration: float = Field(gt=0)
    synth: SynthConfig
    vad: VadConfig

    @model_validator(mode="after")
    def _check(self):
        if self.max_duration <= self.min_duration:
            raise ValueError("max_duration must be > min_duration")
        if self.source != "synth" and not self.root:
            raise ValueError(f"corpus.root is required when corpus.source is {self.source!r}")
        if self.style_source == "ravdess" and not self.style_root:
            raise ValueError("corpus.style_root is required when corpus.style_source is 'ravdess'")
        return self


class SplitConfig(_Section):
    """Speaker counts (whole numbers >= 1) or fractions of speakers (0 < x < 1) held out per split."""

    valid_speakers: float
    test_speakers: float

    @field_validator("valid_speakers", "test_speakers")
    @classmethod
    def _count_or_fraction(cls, v: float) -> float:
        # The shard stage reads x >= 1 as a count (int(x)): 1.5 would silently become 1 speaker.
        if 0 < v < 1 or (math.isfinite(v) and v >= 1 and v == int(v)):
            return v
        raise ValueError("use a fraction of speakers in (0, 1) or a whole speaker count >= 1")


class ShardConfig(_Section):
    utts_per_shard: int = Field(ge=1)
    splits: SplitConfig
    task_runner: Literal["threads", "processes", "dask"]
    workers: int = Field(ge=1)
    dask_address: str | None = Field(description="scheduler address for task_runner=dask; None = a local cluster")


class AlignerNetConfig(_Section):
    """The built-in aligner's frame classifier (ns3.align.model.AlignerConfig)."""

    channels: int = Field(ge=8)
    kernel_size: int = Field(ge=1)
    dilations: list[int]
    dropout: float = Field(ge=0, lt=1)
    prior_weight: float = Field(ge=0)
    switch_penalty: float = Field(ge=0)


class AlignerScheduleConfig(_Section):
    """Flat start, then rounds of re-align -> retrain (ns3.align.train.TrainSchedule)."""

    rounds: int = Field(ge=0)
    flat_epochs: int = Field(ge=1)
    epochs_per_round: int = Field(ge=1)
    batch_frames: int = Field(ge=100)
    lr: float = Field(gt=0)
    label_smoothing: float = Field(ge=0, lt=1)


class AlignConfig(_Section):
    backend: Literal["builtin", "mfa"]
    voice: str = Field(description="espeak-ng language voice used for G2P, e.g. en-us")
    pitch_method: Literal["dio", "harvest"]
    max_train_utterances: int | None = Field(ge=1)
    mfa_acoustic_model: str | None = Field(description="MFA acoustic model (path or name); None = train one with `mfa train`")
    mfa_jobs: int = Field(ge=1)
    aligner: AlignerNetConfig
    schedule: AlignerScheduleConfig


class CodecModelConfig(_Section):
    """FACodec: a size preset plus the switches the ablations and the paper recipe touch."""

    size: Literal["mini", "paper"]
    prosody_input: Literal["v1", "v2"]
    information_bottleneck: bool
    use_detail: bool
    factorized: bool = Field(description="false: the paper's -factorization codec (one plain residual VQ over all "
                             "the codebooks, no timbre branch, no heads; Table 10), and a diffusion over its levels")
    codebook_size: int = Field(ge=2)
    codebook_dim: int = Field(ge=1)
    detail_dropout: float = Field(ge=0, le=1)
    detach_prosody_content: bool = Field(description="decoder sees sg(prosody + content) as in the release")
    normalized_codes: bool = Field(description="unit-norm code vectors: bounded VQ losses (the release: false)")
    grl_coefficient: float = Field(ge=0)
    grl_detail_phone: bool = Field(description="gradient-reversed phone classifier on the detail codes "
                                   "(codec/grl_phone; the ablation of paper Appendix B.2 turns it off)")
    grl_detail_f0: bool = Field(description="gradient-reversed F0 / voicing predictor on the detail codes "
                                "(codec/grl_f0, codec/grl_uv; ditto)")
    grl_prosody_phone: bool = Field(description="the paper's gradient-reversed phone classifier on the prosody "
                                    "codes (codec/grl_phone; not in the release)")
    grl_content_f0: bool = Field(description="the paper's gradient-reversed F0 / voicing predictor on the content "
                                 "codes (codec/grl_f0, codec/grl_uv; not in the release)")
    codebook_restart_decay: float = Field(ge=0, lt=1, description="EMA decay of code usage for dead-code restarts "
                                          "in training (0: no restarts)")
    anti_alias: bool = Field(description="anti-aliased SnakeBeta activations (the paper's); False is ~2.5x faster on CPU")
    timbre_speaker: bool = Field(description="the paper's speaker-ID classifier on the timbre vector (codec/speaker)")
    excitation: bool = Field(description="pitch-excited decoder: a harmonic source at the F0 predicted from the "
                             "prosody codes and the timbre's register (codec/register; not in the release)")
    decoder: Literal["dac", "istft"] = Field(description="dac: the release's sample-rate generator (official "
                                             "weights load into it); istft: frame-rate ConvNeXt + iSTFT head")
    istft_channels: int = Field(ge=8, description="width of the iSTFT decoder's ConvNeXt trunk")
    istft_layers: int = Field(ge=1, description="ConvNeXt blocks of the iSTFT decoder")
    istft_n_fft: int = Field(ge=200, description="STFT size of the iSTFT decoder (hop = the codec's 200)")

    @model_validator(mode="after")
    def _decoder(self):
        if self.decoder == "istft" and self.excitation:
            raise ValueError("codec.model.excitation needs codec.model.decoder: dac (the iSTFT head places "
                             "harmonics itself)")
        return self


class CodecTrainConfig(_Section):
    crop_seconds: float = Field(gt=0)
    batch_size: int = Field(ge=1)
    max_steps: int = Field(ge=1)
    max_minutes: float | None = Field(gt=0, description="wall-clock budget; training stops (and saves) when reached")
    lr: float = Field(gt=0)
    betas: tuple[float, float]
    adv_start_step: int | None = Field(ge=0, description="adversarial + feature losses start after this many steps "
                                        "(null: never, reconstruction and supervision losses only)")
    discriminator: Literal["mini", "paper"]
    mel_scales: Literal["mini", "dac"]
    grad_clip: float | None = Field(gt=0)
    log_every: int = Field(ge=1)
    ckpt_every: int = Field(ge=1)
    eval_every: int = Field(ge=1)
    loss_weights: dict[str, float] = Field(description="metric key -> weight, e.g. codec/rec: 10")
    threads: int | None = Field(ge=1, description="torch CPU threads (None: torch's default)")
    shuffle_buffer: int = Field(ge=0, description="utterances in the stream's shuffle buffer (bounds memory)")
    valid_utterances: int = Field(ge=0, description="held-out utterances scored every eval_every steps")
    precision: Literal["fp32", "bf16", "auto"] = Field(description="autocast of the model forwards; auto: bf16 on "
                                                       "a CUDA GPU with native bf16, else fp32")
    tf32: bool = Field(description="TF32 tensor cores for fp32 matmuls/convolutions (CUDA only)")
    compile: bool = Field(description="torch.compile the trained models (checkpoints keep the plain keys)")


class OfficialCodecConfig(_Section):
    """Released FACodec weights to import instead of training (all None = train our own)."""

    encoder: str | None
    decoder: str | None
    redecoder: str | None
    variant: Literal["v1", "v2"]

    @model_validator(mode="after")
    def _pairs(self):
        # The import needs both halves; with one of them set the train stage would quietly train instead.
        if bool(self.encoder) != bool(self.decoder):
            given, missing = ("encoder", "decoder") if self.encoder else ("decoder", "encoder")
            raise ValueError(f"codec.official.encoder and codec.official.decoder must be set together "
                             f"(codec.official.{given} is set, codec.official.{missing} is not)")
        if self.redecoder and not self.encoder:
            raise ValueError("codec.official.redecoder needs codec.official.encoder and codec.official.decoder")
        return self


class CodecConfig(_Section):
    model: CodecModelConfig
    train: CodecTrainConfig
    official: OfficialCodecConfig


class ExtractConfig(_Section):
    """The extract_codes stage: codec codes, timbre and phone-level prosody codes per utterance."""

    batch_size: int = Field(ge=1, description="utterances per encode batch (the codes do not depend on it; "
                            "batching pays on a GPU, one at a time is faster on a CPU)")
    splits: list[Literal["train", "valid", "test"]] = Field(min_length=1, description="audio splits to extract")

    @field_validator("splits")
    @classmethod
    def _distinct(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError(f"list each split once, got {v}")
        return v


class DiffusionModelConfig(_Section):
    """The factorized diffusion: a size preset plus the ablation switches of the paper's Table 11."""

    size: Literal["mini", "paper"]
    duration_objective: Literal["ce", "l2"] = Field(description="ce: duration classes (the paper); l2: regression "
                                                    "on log-duration (the Table 11 ablation)")
    duration_uses_prosody: bool = Field(description="condition durations on the phone-level prosody codes")
    duration_uses_prompt: bool = Field(description="give the duration model the prompt's durations")
    duration_percentile: float = Field(gt=50, le=100, description="duration classes cap at this percentile of "
                                       "the train durations (data-driven)")


class DiffusionTrainConfig(_Section):
    batch_frames: int = Field(ge=1, description="frames per batch (B x longest utterance)")
    max_steps: int = Field(ge=1)
    max_minutes: float | None = Field(gt=0, description="wall-clock budget over the whole run (resumes add to it)")
    lr: float = Field(gt=0)
    betas: tuple[float, float]
    weight_decay: float = Field(ge=0)
    warmup_steps: int = Field(ge=0)
    prompt_drop: float = Field(ge=0, lt=1, description="probability of training without a prompt (the CFG path)")
    ema_decay: float | None = Field(gt=0, lt=1, description="EMA of the weights, exported instead (None: off)")
    grad_clip: float | None = Field(gt=0)
    log_every: int = Field(ge=1)
    ckpt_every: int = Field(ge=1)
    eval_every: int = Field(ge=1)
    loss_weights: dict[str, float] = Field(description="metric key -> weight, e.g. diffusion/frame_ce: 1")
    threads: int | None = Field(ge=1)
    shuffle_buffer: int = Field(ge=1)
    valid_utterances: int = Field(ge=0)
    samples: int = Field(ge=0, description="validation utterances generated, plotted and decoded at each evaluation")
    precision: Literal["fp32", "bf16", "auto"] = Field(description="autocast of the model forward; auto: bf16 on "
                                                       "a CUDA GPU with native bf16, else fp32")
    tf32: bool = Field(description="TF32 tensor cores for fp32 matmuls (CUDA only)")
    compile: bool = Field(description="torch.compile the model (checkpoints keep the plain keys)")


class DiffusionSampleConfig(_Section):
    steps: int = Field(ge=1, description="iterations per process (4: 60 NFE; 1: the one-step mode, 15 NFE)")
    duration_steps: int = Field(ge=1, description="iterations of the duration diffusion (1: the Table 11 "
                                "'one-step duration' ablation); steps: 1 makes it one-step as well")
    use_cfg: bool = Field(description="false: the -cfg ablation (iterations doubled to keep 60 NFE)")
    cfg_alpha: float = Field(ge=0)
    cfg_rescale: float = Field(ge=0, le=1, description="phi: 1 = full rescale (the paper's formula)")
    top_k: int = Field(ge=1)
    temperature: float = Field(ge=0)
    gumbel_scale: float = Field(ge=0)


class DiffusionConfig(_Section):
    model: DiffusionModelConfig
    train: DiffusionTrainConfig
    sample: DiffusionSampleConfig
    check_pairs: int = Field(ge=0, description="test-speaker (prompt, target) pairs synthesized after training: "
                             "PER and SIM-O beside the codec's resynthesis (0: skip)")


class SynthesizeConfig(_Section):
    """The synthesize stage: the paper's zero-shot TTS test lists, synthesized (ns3/tts/protocols.py)."""

    protocols: list[Literal["librispeech", "librispeech_valle", "ravdess"]] = Field(
        min_length=1, description="test lists to synthesize (librispeech_valle: targets of 4-10 s)")
    prompt_seconds: float = Field(gt=0, description="LibriSpeech prompt clip length (paper: 3 s)")
    sentences_per_speaker: int = Field(ge=1, description="LibriSpeech targets per test speaker (paper: 1, on 40 "
                                       "test-clean speakers)")
    valle_sentences_per_speaker: int = Field(ge=1, description="ditto for the 4-10 s VALL-E list")
    one_step: bool = Field(description="also synthesize the LibriSpeech list in the one-step mode (15 NFE, Table 10)")
    batch_size: int = Field(ge=1, description="utterances per generation batch (1: exact per-item RTF, the paper's)")
    librispeech_root: str | None = Field(description="a real LibriSpeech test-clean root (null: the corpus's test split)")

    @field_validator("protocols")
    @classmethod
    def _distinct(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError(f"list each protocol once, got {v}")
        return v


class EvaluateConfig(_Section):
    max_utterances: int = Field(ge=1, description="test-split utterances for reconstruction metrics")
    vc_pairs: int = Field(ge=1)
    probe_utterances: int = Field(ge=0, description="train-speaker utterances for the disentanglement probes "
                                  "(0: no probes)")
    classic_codecs: bool
    samples: int = Field(ge=0, description="audio examples kept for the report")
    whisper_checkpoint: str | None = Field(description="local Whisper for WER, its runtime picked by format: an "
                                            "openai-whisper .pt file or a faster-whisper (CTranslate2) directory "
                                            "with model.bin + tokenizer.json (None: WER unavailable)")
    wavlm_checkpoint: str | None = Field(description="local WavLM speaker-verification model dir for SIM")
    wavlm_tdnn_checkpoint: str | None = Field(default=None, description="local UniSpeech wavlm_large_finetune.pth "
                                              "(WavLM-Large + ECAPA-TDNN): the paper's TTS SIM-O / SIM-R model, "
                                              "columns sim_*_wavlm_tdnn (None: those columns are n/a)")
    utmos_checkpoint: str | None = Field(description="local SpeechMOS UTMOS22-strong .pt: the `utmos` of every "
                                         "reconstruction and of the converted speech (None: not scored)")
    hubert_checkpoint: str | None = Field(description="local facebook/hubert-large-ls960-ft directory: the paper's "
                                          "TTS WER (wer_hubert); preferred over Whisper when both are set")
    dnsmos: bool = Field(description="DNSMOS P.835/P.808 of the TTS output (speechmos; rates the mini codec above the "
                         "ground truth, so never a UTMOS column)")


class TrackingConfig(_Section):
    experiment: str = Field(min_length=1, description="MLflow experiment of every stage run (the report reads it)")


class RegistryConfig(_Section):
    """MLflow model registry: training stages register their models, evaluation stages pick the champion."""

    enabled: bool = Field(description="false: nothing is registered or promoted (stages log runs as before)")
    codec_model: str = Field(min_length=1, description="registered model of train_codec's checkpoint")
    tts_model: str = Field(min_length=1, description="registered model of train_diffusion (diffusion + its codec)")
    codec_criteria: dict[str, Literal["higher", "lower", "not_lower", "not_higher"]] = Field(
        min_length=1, description="evaluate_codec metric -> rule a new version must meet against the champion "
        "(higher/lower: improve; not_lower/not_higher: tie or improve)")
    tts_criteria: dict[str, Literal["higher", "lower", "not_lower", "not_higher"]] = Field(
        min_length=1, description="evaluate_tts metric -> rule, as codec_criteria")


class ReportConfig(_Section):
    baseline: str = Field(description="the variant other variants are compared against")
    pesq: Literal["pesq_wb", "pesq_nb"]
    from_mlflow: bool = Field(description="also collect ablation variants from MLflow evaluate_codec runs")
    dashboard: bool = Field(description="also write reports/compare/index.html (the `ns3 compare` page of this "
                            "experiment and profile) and link the codec and TTS reports to it")


class Params(_Section):
    profile: str
    variant: str = Field(description="name of this parameter variant in reports (ablations set it)")
    seed: int
    paths: PathsConfig
    corpus: CorpusConfig
    shard: ShardConfig
    align: AlignConfig
    codec: CodecConfig
    extract: ExtractConfig
    diffusion: DiffusionConfig
    synthesize: SynthesizeConfig
    evaluate: EvaluateConfig
    report: ReportConfig
    tracking: TrackingConfig
    registry: RegistryConfig
    _root: Path = PrivateAttr(default=PROJECT_ROOT)

    @property
    def root(self) -> Path:
        """The folder of the params file: relative paths (and the local MLflow store) live under it."""
        return self._root

    def resolve(self, path: str) -> Path:
        """A path from ``paths`` made absolute against the params file's folder."""
        p = Path(getattr(self.paths, path))
        return p if p.is_absolute() else self._root / p


class ConfigError(ValueError):
    """Invalid params; the message names each bad key and what to do."""


def _deep_merge(base: dict, overlay: dict, where: str = "") -> dict:
    out = copy.deepcopy(base)
    for k, v in overlay.items():
        key = f"{where}.{k}" if where else k
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v, key)
        else:
            out[k] = v
    return out


def _format_errors(err: ValidationError, source: str) -> str:
    lines = [f"invalid parameters in {source}:"]
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"]) or "(top level)"
        if e["type"] == "extra_forbidden":
            lines.append(f"  - {key}: unknown key (typo? remove it or check the spelling against params.yaml)")
        elif e["type"] == "missing":
            lines.append(f"  - {key}: missing (every knob must be set in params.yaml)")
        else:
            lines.append(f"  - {key}: {e['msg']} (got {e.get('input')!r})")
    return "\n".join(lines)


def _read_yaml(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({e})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return data


def profile_path(name: str, root: Path = PROJECT_ROOT) -> Path:
    return root / "configs" / f"{name}.yaml"


def default_params_path() -> Path:
    """./params.yaml when run inside a project folder (as DVC does), else the installed project's."""
    local = Path.cwd() / "params.yaml"
    return local if local.exists() else PROJECT_ROOT / "params.yaml"


def _profile_name(profile: str | None, overrides: dict[str, Any], file_profile: Any) -> str:
    """The profile to apply: ``--profile``, else an override ``profile=X``, else the params file's own key.

    A profile override selects the overlay; it cannot be a plain value set after the merge (that would label
    the run with one profile while keeping another's values).
    """
    if "profile" in overrides:
        chosen = overrides["profile"]
        if not isinstance(chosen, str) or not chosen:
            raise ConfigError(f"profile: expected a profile name (configs/<name>.yaml), got {chosen!r}")
        if profile is not None and profile != chosen:
            raise ConfigError(f"profile: --profile {profile} and --set profile={chosen} disagree; give one of them")
        return chosen
    return profile or file_profile or "mini"


def _set_dotted(data: dict, dotted: str, value: Any) -> None:
    """``data[a][b][c] = value`` for ``dotted`` = 'a.b.c'; missing sections are created (and then rejected
    as unknown keys by validation), descending into a value that is not a section is an error naming it."""
    parts = dotted.split(".")
    if not all(parts):
        raise ConfigError(f"{dotted!r}: not a dotted key (e.g. shard.workers)")
    node = data
    for i, p in enumerate(parts[:-1]):
        node = node.setdefault(p, {})
        if not isinstance(node, dict):
            where = ".".join(parts[: i + 1])
            raise ConfigError(f"{dotted}: {where} is a value ({node!r}), not a section with keys; "
                              f"set it directly, e.g. {where}=...")
    node[parts[-1]] = value


def load_params(
    path: str | Path | None = None,
    profile: str | None = None,
    overrides: dict[str, Any] | None = None,
) -> Params:
    """params.yaml (+ profile overlay + dotted overrides) -> validated Params.

    ``profile`` defaults to the file's own ``profile`` key; every profile, the default 'mini' included, is the
    overlay ``configs/<name>.yaml`` beside the params file ('mini' is params.yaml itself, so its overlay is
    empty). ``overrides`` maps dotted keys to values, e.g. {"shard.workers": 4}, applied on top of the overlay;
    an override ``profile`` picks the overlay as ``profile`` does. Relative paths resolve against the params
    file's folder.
    """
    path = Path(path).resolve() if path else default_params_path()
    root = path.parent
    data = _read_yaml(path)
    overrides = dict(overrides or {})
    name = _profile_name(profile, overrides, data.get("profile"))
    overrides.pop("profile", None)
    overlay_file = profile_path(name, root)
    if not overlay_file.exists():
        known = sorted(p.stem for p in (root / "configs").glob("*.yaml"))
        raise ConfigError(f"unknown profile {name!r}: no {overlay_file} (known: {', '.join(known) or 'none'})")
    data = _deep_merge(data, _read_yaml(overlay_file))
    source = f"{path} + {overlay_file}"
    data["profile"] = name
    for dotted, value in overrides.items():
        _set_dotted(data, dotted, value)
    try:
        params = Params.model_validate(data)
    except ValidationError as e:
        raise ConfigError(_format_errors(e, source)) from None
    params._root = root
    return params
