"""FACodec: waveform -> factorized codes (prosody, content, detail) + timbre vector -> waveform.

Framing: with ``hp.pad_input`` (our default) a [B, T] input is zero-padded to F * hop samples,
F = ceil(T / hop), and the codec emits exactly F frames; the reconstruction (F * hop samples) is
trimmed back to T. Without it (the release's V1 arithmetic, used for imported V1 weights) no padding
is added and F = ``hp.frames_for(T)``; a shorter reconstruction is zero-padded to T.

Every item is processed independently of the rest of the batch: no batch-position tables, masked
pooling/attention when ``lengths`` are given. The convolutional front end still runs on into a padded
item's zeros (its last frames change); ``encode_with_prosody_latent`` recomputes those frames, so each item
of a padded batch encodes exactly as it would alone.
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
    prosody_input: Tensor  # [B, D, F] what the prosody quantizer reads (V1: the latent; V2: the mel encoder's output)


@dataclass
class _FrontEnd:
    """The frame-local analysis of a batch: every frame depends only on a bounded window of samples."""

    latent: Tensor  # [B, D, F] encoder output
    mel: Tensor | None  # [B, prosody_mel_bins, F] low log-mel bins (prosody_input v2), else None

    def splice(self, item: int, start: int, other: "_FrontEnd", other_start: int) -> None:
        """Overwrite frames ``start:`` of ``item`` with ``other``'s item 0 from ``other_start`` to its end."""
        n = other.latent.shape[-1] - other_start
        self.latent[item, :, start:start + n] = other.latent[0, :, other_start:]
        if self.mel is not None:
            self.mel[item, :, start:start + n] = other.mel[0, :, other_start:]


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
            hp.factorized,
        )
        self.timbre_encoder = TimbreEncoder(
            d, hp.timbre_layers, hp.attention_heads, hp.ffn_channels, hp.ffn_kernel, hp.transformer_dropout, hp.positional
        ) if hp.factorized else None  # -factorization: no timbre branch (a zero timbre vector)
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
        self._reach: int | None = None  # cached by _front_reach

    # ---- analysis -------------------------------------------------------------------------------
    def _check_wav(self, wav: Tensor) -> Tensor:
        if wav.dim() == 3 and wav.shape[1] == 1:
            wav = wav.squeeze(1)
        if wav.dim() != 2 or wav.shape[-1] == 0:
            raise ValueError(f"FACodec expects a waveform batch [B, T] with T > 0, got shape {tuple(wav.shape)}")
        return wav.float()

    def _front_end(self, wav: Tensor) -> _FrontEnd:
        """wav [B, T] -> the convolutional / STFT features (padded to F * hop first with ``pad_input``)."""
        hp = self.hp
        wav = self._check_wav(wav)
        n = hp.frames_for(wav.shape[-1])
        if hp.pad_input:
            wav = F.pad(wav, (0, n * hp.hop_length - wav.shape[-1]))
        latent = self.encoder(wav.unsqueeze(1))
        if latent.shape[-1] != n:  # guards the framing arithmetic documented above
            raise RuntimeError(f"encoder produced {latent.shape[-1]} frames for {wav.shape[-1]} samples, expected {n}")
        mel = self.mel(wav)[:, : hp.prosody_mel_bins] if hp.prosody_input == "v2" else None
        return _FrontEnd(latent, mel)

    def _analyze(self, wav: Tensor, lengths: Tensor | None, front: _FrontEnd | None = None) -> _Analysis:
        hp = self.hp
        front = front if front is not None else self._front_end(wav)
        latent = front.latent
        n = latent.shape[-1]
        mask = None
        if lengths is not None:
            frames = torch.tensor([hp.frames_for(int(t)) for t in lengths], device=latent.device)
            mask = torch.arange(n, device=latent.device)[None, :] < frames[:, None]
        prosody_input = latent if front.mel is None else self.prosody_encoder(front.mel, mask)
        quant = self.quantizer(latent, prosody_input, mask)
        timbre = (self.timbre_encoder(latent, mask) if self.timbre_encoder is not None
                  else latent.new_zeros(latent.shape[0], hp.latent_dim))
        return _Analysis(latent, mask, quant, timbre, n, prosody_input)

    # ---- batched encoding, each item as if alone --------------------------------------------------
    @torch.no_grad()
    def _front_reach(self) -> int:
        """Frames at either edge of an input whose front-end features depend on what lies beyond that edge.

        Measured, not derived (convolutions, anti-aliasing filters and the STFT all add to it): a random probe
        is encoded whole and cut in two; frames of a part that differ from the whole's are within reach of
        the cut. +1 frame of margin. Cached: it depends on the architecture, not on the weights' values.
        """
        if self._reach is not None:
            return self._reach
        hop, n = self.hp.hop_length, 32
        gen = torch.Generator().manual_seed(0)
        device = next(self.parameters()).device
        while True:
            probe = (0.1 * torch.randn(1, 2 * n * hop, generator=gen)).to(device)
            whole, head, tail = (self._front_end(x) for x in (probe, probe[:, : n * hop], probe[:, n * hop:]))

            def differing(part: _FrontEnd, ref: slice) -> Tensor:
                feats = [(part.latent, whole.latent)] + ([(part.mel, whole.mel)] if part.mel is not None else [])
                bad = torch.zeros(part.latent.shape[-1], dtype=torch.bool, device=part.latent.device)
                for a, b in feats:
                    b = b[..., ref]
                    bad |= ((a - b).abs() > 1e-5 * b.abs().max().clamp_min(1e-12)).any(dim=1)[0]
                return bad.nonzero().flatten().cpu()

            bad_head, bad_tail = differing(head, slice(0, n)), differing(tail, slice(n, 2 * n))
            reach = max(n - int(bad_head.min()) if len(bad_head) else 0,
                        int(bad_tail.max()) + 1 if len(bad_tail) else 0)
            if reach < n // 2:
                self._reach = reach + 1
                return self._reach
            if n >= 4096:
                raise RuntimeError(f"the codec's front end reaches more than {n // 2} frames past an edge")
            n *= 2

    @torch.no_grad()
    def _front_end_alone(self, wav: Tensor, lengths: Tensor) -> _FrontEnd:
        """Front end of a zero-padded batch [B, T] whose items have ``lengths`` [B] samples, equal to each item's own.

        In a padded batch the convolutions of a shorter item run on into the padding, which changes its last
        frames (on the mini codec, its last 4-6 codes and its timbre at 1e-2). Those frames are recomputed from
        a crop of the item's last 2R frames (R = ``_front_reach``) that ends where the item alone would; the crops
        have one length, so they run as one batch too. Needs ``pad_input`` (the crop must end on the item's grid).
        """
        hp, hop = self.hp, self.hp.hop_length
        wav = self._check_wav(wav)
        keep = torch.arange(wav.shape[-1], device=wav.device)[None, :] < lengths.to(wav.device)[:, None]
        wav = wav * keep  # what lies past an item's end must be the zeros its own encode pads with
        front = self._front_end(wav)
        r, n = self._front_reach(), front.latent.shape[-1]
        frames = [hp.frames_for(int(t)) for t in lengths]
        crops, owners = [], []
        for i, f in enumerate(frames):
            if f == n:
                continue
            if f <= 2 * r:  # shorter than a crop: encode it whole (it is cheap)
                front.splice(i, 0, self._front_end(wav[i:i + 1, : int(lengths[i])]), 0)
            else:
                crops.append(wav[i, (f - 2 * r) * hop: int(lengths[i])])
                owners.append(i)
        if crops:
            batch = torch.stack([F.pad(c, (0, 2 * r * hop - c.shape[-1])) for c in crops])
            tails = self._front_end(batch)
            for j, i in enumerate(owners):
                one = _FrontEnd(tails.latent[j:j + 1], None if tails.mel is None else tails.mel[j:j + 1])
                front.splice(i, frames[i] - r, one, r)
        return front

    @torch.no_grad()
    def encode_with_prosody_latent(self, wav: Tensor, lengths: Tensor | None = None) -> tuple[Encoded, Tensor]:
        """wav [B, T] (items zero-padded; ``lengths`` [B] samples, None: all T) -> (Encoded, prosody latent [B, D, F]).

        The prosody latent is the pre-quantization input of the prosody codebooks (what ``phone_prosody_codes``
        pools). Unlike ``encode`` on a padded batch, every item's codes, timbre and latent equal those of the
        item encoded alone (frames past an item's own F are padding: codes there are meaningless).
        """
        wav = self._check_wav(wav)
        b, t = wav.shape
        n_samples = lengths.long().cpu() if lengths is not None else torch.full((b,), t)
        if lengths is None or bool((n_samples == t).all()):
            a = self._analyze(wav, lengths)
        elif self.hp.pad_input:
            a = self._analyze(wav, n_samples, self._front_end_alone(wav, n_samples))
        else:  # the release's framing: a crop cannot end on the item's grid; encode one by one
            return self._encode_one_by_one(wav, n_samples)
        return Encoded(a.quant.codes, a.timbre, n_samples), a.prosody_input

    def _encode_one_by_one(self, wav: Tensor, lengths: Tensor) -> tuple[Encoded, Tensor]:
        n = self.hp.frames_for(wav.shape[-1])
        parts = [self._analyze(wav[i:i + 1, : int(lengths[i])], None) for i in range(wav.shape[0])]

        def pad(x: Tensor) -> Tensor:
            return F.pad(x, (0, n - x.shape[-1]))

        codes = FactorCodes(*(torch.cat([pad(getattr(p.quant.codes, k)) for p in parts])
                              for k in ("prosody", "content", "detail")))
        timbre = torch.cat([p.timbre for p in parts])
        return Encoded(codes, timbre, lengths), torch.cat([pad(p.prosody_input) for p in parts])

    @torch.no_grad()
    def phone_prosody_codes(self, prosody_latent: Tensor, durations: Tensor, phone_mask: Tensor) -> Tensor:
        """One prosody code per phone (NaturalSpeech 3 §4.1): the prosody latent [B, D, F] mean-pooled over each
        phone's frames (``durations`` [B, P] long, in codec frames, phone after phone from frame 0), quantized by
        the codec's own first prosody codebook. ``phone_mask`` [B, P] bool marks real phones. -> [B, P] long, 0 on
        padding phones."""
        b, d, f = prosody_latent.shape
        if durations.shape != phone_mask.shape or durations.shape[0] != b:
            raise ValueError(f"durations {tuple(durations.shape)} and phone_mask {tuple(phone_mask.shape)} must both be "
                             f"[B={b}, P]")
        durations = durations.long().masked_fill(~phone_mask, 0)
        if bool((durations[phone_mask] < 1).any()) or int(durations.sum(1).max()) > f:
            raise ValueError(f"every real phone needs >= 1 frame and an item's durations at most {f} frames; got sums "
                             f"{durations.sum(1).tolist()}")
        p = durations.shape[1]
        ends = durations.cumsum(1)  # [B, P]
        frame_phone = (torch.arange(f, device=ends.device)[None, :, None] >= ends[:, None, :]).sum(-1)  # [B, F] in 0..P
        sums = prosody_latent.new_zeros(b, p + 1, d).scatter_add_(
            1, frame_phone[..., None].expand(-1, -1, d), prosody_latent.transpose(1, 2))
        # [B, P, D]; the frames past an item's durations (its padding) fell into bin P and are dropped
        pooled = sums[:, :p] / durations.clamp_min(1)[..., None].to(sums.dtype)
        layer = self.quantizer.prosody.layers[0]
        z = layer.in_proj(pooled)
        if layer.normalized:
            z = F.normalize(z, dim=-1)
        return layer.lookup(z).masked_fill(~phone_mask, 0)

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
