"""FACodec: waveform -> factorized codes (prosody, content, detail) + timbre vector -> waveform.

Framing: with ``hp.pad_input`` (our default) a [B, T] input is zero-padded to F * hop samples,
F = ceil(T / hop), and the codec emits exactly F frames; the reconstruction (F * hop samples) is
trimmed back to T. Without it (the release's V1 arithmetic, used for imported V1 weights) no padding
is added and F = ``hp.frames_for(T)``; a shorter reconstruction is zero-padded to T.

Every item is processed independently of the rest of the batch: no batch-position tables, masked
pooling/attention when ``lengths`` are given.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ns3.codec.codes import Encoded, FactorCodes
from ns3.codec.decoder import WaveGenerator
from ns3.codec.excitation import RegisterHead
from ns3.codec.encoder import ConvEncoder
from ns3.codec.heads import FACodecHeads
from ns3.codec.istft import ISTFTGenerator
from ns3.codec.hparams import FACodecHParams
from ns3.codec.mel import MelFrontEnd, ProsodyMelEncoder
from ns3.codec.quantizer import FactorizedQuantizer
from ns3.codec.redecoder import Redecoder
from ns3.codec.timbre import ConditionalLayerNorm, TimbreEncoder
from ns3.data.pitch import denormalise_log_f0


@dataclass
class CodecOutput:
    """Result of ``FACodec.forward``. B = batch, T = input samples, F = frames, D = latent dim."""

    wav_hat: Tensor  # [B, T]
    codes: FactorCodes
    timbre: Tensor  # [B, D]
    factors: dict[str, Tensor]  # "prosody" / "content" / "detail" -> quantized [B, D, F]
    latent: Tensor  # [B, D, F] continuous encoder output
    codebook_loss: Tensor  # scalar, summed over codebooks ("codec/codebook_loss")
    commitment_loss: Tensor  # scalar, summed over codebooks ("codec/commitment_loss")
    frame_mask: Tensor | None  # [B, F] True on real frames (None: all real)
    detail_kept: Tensor  # [B] 1.0 where the detail group reached the decoder, 0.0 where dropped
    phone_logits: Tensor | None = None  # [B, F, num_phones]
    f0_pred: Tensor | None = None  # [B, F]
    uv_logits: Tensor | None = None  # [B, F]
    grl_phone_logits: Tensor | None = None  # [B, F, num_phones] (from detail, gradient reversed)
    grl_f0_pred: Tensor | None = None  # [B, F]
    grl_uv_logits: Tensor | None = None  # [B, F]
    grl_speaker_logits: Tensor | None = None  # [B, num_speakers]
    grl_prosody_phone_logits: Tensor | None = None
    grl_content_f0_pred: Tensor | None = None
    grl_content_uv_logits: Tensor | None = None
    speaker_logits: Tensor | None = None  # [B, num_speakers] from the timbre vector
    register: Tensor | None = None  # [B, 2] predicted (mean, std) of the speaker's voiced log-F0 (excitation)

    @property
    def num_frames(self) -> int:
        return self.codes.num_frames

    def metrics(self) -> dict[str, float]:
        return {"codec/codebook_loss": self.codebook_loss.item(), "codec/commitment_loss": self.commitment_loss.item()}


@dataclass
class _Analysis:
    latent: Tensor
    mask: Tensor | None
    quant: object  # QuantizerOutput
    timbre: Tensor
    num_frames: int


class FACodec(nn.Module):
    def __init__(self, hp: FACodecHParams):
        super().__init__()
        self.hp = hp
        d = hp.latent_dim
        self.encoder = ConvEncoder(hp.encoder_channels, hp.strides, d, hp.anti_alias)
        if hp.prosody_input == "v2":
            self.mel = MelFrontEnd(hp.sample_rate, hp.n_fft, hp.hop_length, hp.win_length, hp.n_mels, hp.mel_fmin, hp.mel_fmax)
            self.prosody_encoder = ProsodyMelEncoder(
                hp.prosody_mel_bins, d, hp.prosody_encoder_layers, hp.attention_heads, hp.ffn_channels,
                hp.ffn_kernel, hp.transformer_dropout, hp.positional,
            )
        self.quantizer = FactorizedQuantizer(
            d, hp.n_prosody, hp.n_content, hp.n_detail if hp.use_detail else 0,
            hp.codebook_size, hp.codebook_dim, hp.information_bottleneck, hp.codebook_restart_decay, hp.normalized_codes,
        )
        self.timbre_encoder = TimbreEncoder(
            d, hp.timbre_layers, hp.attention_heads, hp.ffn_channels, hp.ffn_kernel, hp.transformer_dropout, hp.positional
        )
        self.decoder_cln = ConditionalLayerNorm(d)
        if hp.decoder == "istft":
            self.decoder = ISTFTGenerator(d, hp.istft_channels, hp.istft_layers, hp.hop_length, hp.istft_n_fft, d)
        else:
            self.decoder = WaveGenerator(d, hp.decoder_channels, tuple(reversed(hp.strides)), hp.anti_alias,
                                         hp.excitation, hp.sample_rate, hp.excitation_harmonics)
        self.register_head = RegisterHead(d) if hp.excitation else None
        self.heads = (
            FACodecHeads(
                d, hp.num_phones, hp.num_speakers, hp.grl_coefficient, detail=hp.use_detail,
                detail_phone=hp.grl_detail_phone, detail_f0=hp.grl_detail_f0, speaker=hp.grl_speaker,
                prosody_phone=hp.grl_prosody_phone, content_f0=hp.grl_content_f0, timbre_speaker=hp.timbre_speaker,
            )
            if hp.heads
            else None
        )
        self.redecoder = Redecoder(hp) if hp.redecoder else None

    # ---- analysis -------------------------------------------------------------------------------
    def _check_wav(self, wav: Tensor) -> Tensor:
        if wav.dim() == 3 and wav.shape[1] == 1:
            wav = wav.squeeze(1)
        if wav.dim() != 2 or wav.shape[-1] == 0:
            raise ValueError(f"FACodec expects a waveform batch [B, T] with T > 0, got shape {tuple(wav.shape)}")
        return wav.float()

    def _analyze(self, wav: Tensor, lengths: Tensor | None) -> _Analysis:
        hp = self.hp
        wav = self._check_wav(wav)
        n = hp.frames_for(wav.shape[-1])
        if hp.pad_input:
            wav = F.pad(wav, (0, n * hp.hop_length - wav.shape[-1]))
        mask = None
        if lengths is not None:
            frames = torch.tensor([hp.frames_for(int(t)) for t in lengths], device=wav.device)
            mask = torch.arange(n, device=wav.device)[None, :] < frames[:, None]
        latent = self.encoder(wav.unsqueeze(1))
        if latent.shape[-1] != n:  # guards the framing arithmetic documented above
            raise RuntimeError(f"encoder produced {latent.shape[-1]} frames for {wav.shape[-1]} samples, expected {n}")
        prosody_input = latent
        if hp.prosody_input == "v2":
            mel = self.mel(wav)[:, : hp.prosody_mel_bins]
            prosody_input = self.prosody_encoder(mel, mask)
        quant = self.quantizer(latent, prosody_input, mask)
        timbre = self.timbre_encoder(latent, mask)
        return _Analysis(latent, mask, quant, timbre, n)

    # ---- synthesis ------------------------------------------------------------------------------
    def synthesize(self, z: Tensor, timbre: Tensor, f0: Tensor | None = None) -> Tensor:
        """Decoder input z [B, D, F] + timbre [B, D] (+ f0 [B, F] Hz for a pitch-excited decoder) -> wav [B, F * hop]"""
        x = self.decoder_cln(z, timbre)
        if self.hp.decoder == "istft":  # its ConvNeXt norms are conditioned on the timbre too
            return self.decoder(x, timbre).squeeze(1)
        return self.decoder(x, f0).squeeze(1)

    def predict_f0(self, prosody: Tensor, timbre: Tensor) -> Tensor:
        """Quantized prosody [B, D, F] + timbre [B, D] -> F0 [B, F] Hz (0 unvoiced), which drives the excitation."""
        if self.register_head is None or self.heads is None:
            raise ValueError("predict_f0 needs a pitch-excited codec (FACodecHParams.excitation=True)")
        f0n, uv = self.heads.f0(prosody)
        return denormalise_log_f0(f0n.squeeze(-1), uv.squeeze(-1) > 0, self.register_head(timbre))

    @staticmethod
    def _fit(wav: Tensor, length: int) -> Tensor:
        return wav[..., :length] if wav.shape[-1] >= length else F.pad(wav, (0, length - wav.shape[-1]))

    def forward(self, wav: Tensor, phone_ids: Tensor | None = None, lengths: Tensor | None = None,
                f0: Tensor | None = None) -> CodecOutput:
        """wav [B, T] float at ``hp.sample_rate``; lengths [B] samples (None: all T); f0 [B, F] Hz, the
        ground-truth F0 that drives a pitch-excited decoder in training (None: the codec's own prediction).

        ``phone_ids`` [B, F] (frame phone labels), when given, are only checked against the frame
        count so misaligned labels fail here, not silently in a loss.
        """
        a = self._analyze(wav, lengths)
        b = a.latent.shape[0]
        if phone_ids is not None and tuple(phone_ids.shape[:2]) != (b, a.num_frames):
            raise ValueError(
                f"phone_ids shape {tuple(phone_ids.shape)} does not match the codec grid ({b}, {a.num_frames}) "
                f"for {wav.shape[-1]} samples; labels must have ceil(T / {self.hp.hop_length}) frames"
            )
        factors = a.quant.factors
        pc = factors["prosody"] + factors["content"]
        kept = torch.ones(b, device=a.latent.device)
        z = pc.detach() if self.hp.detach_prosody_content else pc
        codes_sum = pc
        if "detail" in factors:
            if self.training and self.hp.detail_dropout > 0:
                kept = (torch.rand(b, device=a.latent.device) >= self.hp.detail_dropout).float()
            detail = factors["detail"] * kept[:, None, None]
            z, codes_sum = z + detail, codes_sum + detail
        excitation_f0 = None
        if self.hp.excitation:
            excitation_f0 = f0 if f0 is not None else self.predict_f0(factors["prosody"], a.timbre).detach()
        wav_hat = self._fit(self.synthesize(z, a.timbre, excitation_f0), wav.shape[-1])
        out = CodecOutput(
            wav_hat=wav_hat, codes=a.quant.codes, timbre=a.timbre, factors=factors, latent=a.latent,
            codebook_loss=a.quant.codebook_loss, commitment_loss=a.quant.commitment_loss,
            frame_mask=a.mask, detail_kept=kept,
        )
        if self.heads is not None:
            h = self.heads(factors, codes_sum, a.mask, a.timbre)
            for name in h.__dataclass_fields__:
                setattr(out, name, getattr(h, name))
        if self.register_head is not None:
            out.register = self.register_head(a.timbre)
        return out

    @torch.no_grad()
    def encode(self, wav: Tensor, lengths: Tensor | None = None) -> Encoded:
        """wav [B, T] -> Encoded(codes [B, ., F], timbre [B, D], num_samples [B])."""
        a = self._analyze(wav, lengths)
        n = lengths if lengths is not None else torch.full((a.latent.shape[0],), self._check_wav(wav).shape[-1])
        return Encoded(a.quant.codes, a.timbre, n.long().cpu())

    @torch.no_grad()
    def decode(self, codes: FactorCodes, timbre: Tensor, use_detail: bool = True) -> Tensor:
        """codes + timbre [B, D] -> wav [B, F * hop] (trim with ``Encoded.num_samples`` if needed)."""
        self._check_codes(codes)
        factors = self.quantizer.embed(codes, use_detail)
        f0 = self.predict_f0(factors["prosody"], timbre) if self.hp.excitation else None
        return self.synthesize(sum(factors.values()), timbre, f0)

    @torch.no_grad()
    def convert_voice(
        self, source_wav: Tensor, prompt_wav: Tensor, keep_detail: bool = False, use_redecoder: bool | None = None
    ) -> Tensor:
        """Source prosody/content (and detail if ``keep_detail``) codes + the prompt's timbre -> wav [B, T_source].

        The release drops the detail codes for VC (they carry some of the source speaker) and, when the
        re-decoder is loaded, decodes with it; ``use_redecoder=None`` uses it when present.
        """
        src = self.encode(source_wav)
        wav = self.convert_codes(src.codes, self.encode(prompt_wav).timbre, keep_detail, use_redecoder)
        return self._fit(wav, self._check_wav(source_wav).shape[-1])

    @torch.no_grad()
    def convert_codes(
        self, codes: FactorCodes, timbre: Tensor, keep_detail: bool = False, use_redecoder: bool | None = None
    ) -> Tensor:
        """The VC decode of ``convert_voice`` on codes already encoded: codes + timbre [B or 1, D] -> wav [B, F * hop]."""
        if timbre.shape[0] == 1 and codes.prosody.shape[0] > 1:
            timbre = timbre.expand(codes.prosody.shape[0], -1)
        if use_redecoder is None:
            use_redecoder = self.redecoder is not None
        if use_redecoder:
            if self.redecoder is None:
                raise ValueError("use_redecoder=True but this codec has no re-decoder (import it with redecoder_ckpt)")
            return self.redecoder(codes, timbre, use_detail=keep_detail)
        return self.decode(codes, timbre, use_detail=keep_detail)

    def _check_codes(self, codes: FactorCodes) -> None:
        want = self.hp.codebooks
        got = {"prosody": codes.prosody.shape[1], "content": codes.content.shape[1], "detail": codes.detail.shape[1]}
        bad = {k: (got[k], want[k]) for k in want if got[k] != want[k] and not (k == "detail" and got[k] == 0)}
        if bad:
            raise ValueError(f"codes do not fit this codec: factor -> (got, expected) codebooks {bad}")
        for name in ("prosody", "content", "detail"):
            c = getattr(codes, name)
            if c.numel() and (int(c.min()) < 0 or int(c.max()) >= self.hp.codebook_size):
                raise ValueError(f"{name} codes outside [0, {self.hp.codebook_size}): min {int(c.min())}, max {int(c.max())}")

    def num_parameters(self, trainable_only: bool = False) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)
