"""Every constructor argument of FACodec, in one frozen dataclass.

``paper()`` is the released configuration (the public FACodec checkpoints load into it);
``mini()`` is the CPU-sized variant used by tests and the embedded default pipeline.
Builders elsewhere translate ``params.yaml`` into these fields; the codec never reads a config file.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

PROSODY_INPUTS = ("v1", "v2")
POSITIONAL_MODES = ("constant", "time")
DECODERS = ("dac", "istft")


@dataclass(frozen=True)
class FACodecHParams:
    """FACodec sizes and switches. Shapes below use D = ``latent_dim``, F = frames."""

    sample_rate: int = 16_000
    strides: tuple[int, ...] = (2, 4, 5, 5)  # encoder downsampling; the decoder mirrors it (hop = product)
    encoder_channels: int = 32  # first encoder width; doubles at every stride (DAC "ngf")
    latent_dim: int = 256  # D: encoder output, quantizer input/output, timbre vector, decoder input
    decoder_channels: int = 1024  # width after the decoder's first conv; halves at every upsampling
    anti_alias: bool = True  # SnakeBeta at 2x rate with sinc filters (the release); False: native rate, faster
    # "dac": the release's sample-rate generator (transposed convolutions; official weights load into it);
    # "istft": a frame-rate ConvNeXt trunk predicting an STFT with hop = the codec's hop (ns3/codec/istft.py).
    decoder: str = "dac"
    istft_channels: int = 512
    istft_layers: int = 8
    istft_n_fft: int = 800  # 50 ms window at 16 kHz: 20 Hz bins resolve a voice's harmonics

    # Factorized VQ: codebooks per factor, entries per codebook, low-dim lookup space.
    n_prosody: int = 1
    n_content: int = 2
    n_detail: int = 3
    codebook_size: int = 1024
    codebook_dim: int = 8
    information_bottleneck: bool = True  # False: no D -> codebook_dim projection, quantize in D (ablation)
    codebook_restart_decay: float = 0.95  # EMA decay of code usage for dead-code restarts in training (0: off)
    normalized_codes: bool = False  # unit-norm code vectors (stable from-scratch training); False = the release
    use_detail: bool = True  # False: no detail codebooks at all (ablation)
    # False: the paper's "-factorization" codec (Table 10). One plain residual VQ of the encoder output over all
    # the codebooks in code order (the p / c / d names then only say a level's position), no timbre branch
    # (the timbre vector is zeros, so the decoder's conditional norms are plain learned norms), no
    # supervision or GRL heads; the decoder gets the sum of every level's code.
    factorized: bool = True

    # Prosody input: "v1" = encoder output; "v2" = first ``prosody_mel_bins`` log-mel bins through
    # their own transformer (the paper's "Mel 20 bins" variant / released V2 checkpoints).
    prosody_input: str = "v1"
    prosody_mel_bins: int = 20
    n_mels: int = 80
    n_fft: int = 1024
    win_length: int = 800
    mel_fmin: float = 0.0
    mel_fmax: float = 8000.0
    prosody_encoder_layers: int = 4

    # Transformers (timbre extractor, V2 prosody encoder, re-decoder prosody restyler).
    timbre_layers: int = 4
    attention_heads: int = 4
    ffn_channels: int = 1024
    ffn_kernel: int = 5
    transformer_dropout: float = 0.1
    # "constant": every frame gets the table's row 0, which is exactly what the release computes at
    # batch size 1 (it indexes its table by batch position) while staying batch-independent here;
    # "time": ordinary sinusoidal positions over frames.
    positional: str = "constant"

    # Disentangling (training only).
    detail_dropout: float = 0.75  # P(drop the whole detail group of a sample) in training
    detach_prosody_content: bool = True  # decoder sees sg(q_p + q_c) + mask * q_d, as the release does
    heads: bool = True  # build the supervision / gradient-reversal heads
    num_phones: int = 5003
    num_speakers: int = 245_200
    grl_coefficient: float = 1.0
    grl_detail_phone: bool = True
    grl_detail_f0: bool = True
    grl_speaker: bool = True
    grl_prosody_phone: bool = False  # the paper's phone-GRL on z_p (off in the release)
    grl_content_f0: bool = False  # the paper's F0-GRL on z_c (off in the release)
    timbre_speaker: bool = False  # the paper's speaker-ID classifier on the timbre vector h_t (not in the release)

    # Pitch excitation (not in the release): the decoder also gets a harmonic source at the F0 predicted
    # from the prosody codes and the timbre's register (ns3/codec/excitation.py). Needs the heads.
    excitation: bool = False
    excitation_harmonics: int = 8

    # Framing. True: zero-pad the input to a multiple of the hop, so F = ceil(T / hop) exactly.
    # False reproduces the release's V1 arithmetic (no padding; see ``frames_for``).
    pad_input: bool = True

    # The release's zero-shot VC re-decoder (code embeddings + timbre-conditioned prosody + generator).
    redecoder: bool = False
    redecoder_channels: int = 1280

    def __post_init__(self) -> None:
        problems = []
        if self.prosody_input not in PROSODY_INPUTS:
            problems.append(f"prosody_input={self.prosody_input!r} (use one of {PROSODY_INPUTS})")
        if self.decoder not in DECODERS:
            problems.append(f"decoder={self.decoder!r} (use one of {DECODERS})")
        if self.decoder == "istft" and self.excitation:
            problems.append("excitation=True needs decoder='dac' (the iSTFT head places harmonics itself)")
        if self.decoder == "istft" and self.istft_n_fft < self.hop_length:
            problems.append(f"istft_n_fft={self.istft_n_fft} must be >= the hop {self.hop_length}")
        if self.positional not in POSITIONAL_MODES:
            problems.append(f"positional={self.positional!r} (use one of {POSITIONAL_MODES})")
        if not 0.0 <= self.detail_dropout <= 1.0:
            problems.append(f"detail_dropout={self.detail_dropout} (a probability in [0, 1])")
        if self.latent_dim % self.attention_heads:
            problems.append(f"latent_dim={self.latent_dim} not divisible by attention_heads={self.attention_heads}")
        if self.decoder_channels % 2 ** len(self.strides):
            problems.append(f"decoder_channels={self.decoder_channels} must be divisible by 2**{len(self.strides)}")
        if self.n_prosody < 1 or self.n_content < 1 or (self.use_detail and self.n_detail < 1):
            problems.append("each factor needs at least one codebook (set use_detail=False to drop details)")
        if self.prosody_mel_bins > self.n_mels:
            problems.append(f"prosody_mel_bins={self.prosody_mel_bins} > n_mels={self.n_mels}")
        if self.excitation and not self.heads:
            problems.append("excitation=True needs heads=True (F0 and voicing are predicted by the prosody head)")
        if not self.factorized:
            clash = [name for name, on in (("heads", self.heads), ("excitation", self.excitation),
                                           ("redecoder", self.redecoder), ("timbre_speaker", self.timbre_speaker),
                                           ("prosody_input='v2'", self.prosody_input == "v2"),
                                           ("detail_dropout > 0", self.detail_dropout > 0),
                                           ("detach_prosody_content", self.detach_prosody_content)) if on]
            if clash:
                problems.append(f"factorized=False (one plain residual VQ, no timbre) excludes {clash}")
        if self.prosody_input == "v2" and not self.pad_input:
            problems.append("prosody_input='v2' needs pad_input=True (mel and encoder frame counts must agree)")
        if problems:
            raise ValueError("invalid FACodecHParams: " + "; ".join(problems))

    @classmethod
    def unfactorized(cls, base: "FACodecHParams") -> "FACodecHParams":
        """``base`` as the "-factorization" codec: the same sizes and codebooks, and off what it excludes."""
        return dataclasses.replace(base, factorized=False, heads=False, excitation=False, redecoder=False,
                                   timbre_speaker=False, prosody_input="v1", detail_dropout=0.0,
                                   detach_prosody_content=False)

    @property
    def hop_length(self) -> int:
        return math.prod(self.strides)

    @property
    def frame_rate(self) -> float:
        return self.sample_rate / self.hop_length

    @property
    def codebooks(self) -> dict[str, int]:
        """Codebooks per factor, in code order (prosody, content, detail)."""
        return {"prosody": self.n_prosody, "content": self.n_content, "detail": self.n_detail if self.use_detail else 0}

    def frames_for(self, num_samples: int) -> int:
        """Frames the codec emits for ``num_samples`` input samples.

        With ``pad_input`` the input is zero-padded to ``F * hop`` with F = ceil(T / hop); each strided
        conv (kernel 2s, stride s, padding ceil(s/2)) then divides a multiple of the hop exactly.
        Without it, each stage maps L -> floor((L + 2*ceil(s/2) - 2s) / s) + 1, which is usually
        floor(T / hop) but can be one more (T = 16180 -> 81 at hop 200), as in the release.
        """
        if self.pad_input:
            return -(-int(num_samples) // self.hop_length)
        n = int(num_samples)
        for s in self.strides:
            n = (n + 2 * (s // 2 + s % 2) - 2 * s) // s + 1
        return n

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["strides"] = list(self.strides)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "FACodecHParams":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown FACodecHParams fields {unknown}; known fields: {sorted(known)}")
        d = dict(d)
        if "strides" in d:
            d["strides"] = tuple(int(s) for s in d["strides"])
        return cls(**d)

    @classmethod
    def paper(cls, **overrides: Any) -> "FACodecHParams":
        """The released configuration (Amphion ns3_codec, README call), ~4.2 M encoder + 98 M decoder params."""
        return dataclasses.replace(cls(), **overrides)

    @classmethod
    def mini(cls, **overrides: Any) -> "FACodecHParams":
        """A CPU-trainable variant (~1.3 M params with heads): same topology, narrow channels, 2-layer transformers."""
        base = cls(
            encoder_channels=8,
            latent_dim=64,
            decoder_channels=128,
            prosody_encoder_layers=2,
            timbre_layers=2,
            attention_heads=4,
            ffn_channels=128,
            ffn_kernel=5,
            num_phones=64,
            num_speakers=16,
            redecoder_channels=128,
            istft_channels=192,
            istft_layers=6,
        )
        return dataclasses.replace(base, **overrides)
