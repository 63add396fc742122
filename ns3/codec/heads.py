"""Training-only heads that shape what each factor carries.

Supervised: content -> frame phone classes; prosody -> normalised F0 + voiced/unvoiced.
Optionally (the paper, not the release) the timbre vector classifies the speaker, so it carries identity.
Adversarial (through gradient reversal): phone and F0 from the detail codes, speaker id from the
codes (optionally phone from prosody and F0 from content, as in the paper). A reversal layer is
the identity forward and multiplies the gradient by -coefficient backward, so minimising the head's
loss trains the head while pushing the quantized factor to *remove* that information.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ns3.codec.layers import AntiAliasedSnake, ResidualUnit


class GradientReversal(torch.autograd.Function):
    """y = x; dL/dx = -coefficient * dL/dy."""

    @staticmethod
    def forward(ctx, x: Tensor, coefficient: float) -> Tensor:  # type: ignore[override]
        ctx.coefficient = coefficient
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:  # type: ignore[override]
        return -ctx.coefficient * grad, None


def grad_reverse(x: Tensor, coefficient: float = 1.0) -> Tensor:
    return GradientReversal.apply(x, coefficient)


class FramePredictor(nn.Module):
    """Three dilated residual units + act, then one linear head per output.

    Frame mode: [B, D, F] -> list of [B, F, out]; global mode: mean over frames first -> list of [B, out].
    (The release calls this a "CNN-LSTM"; it has no recurrent layer, and we keep its layout.)
    """

    def __init__(self, dim: int, out_dim: int, n_heads: int, global_pred: bool = False):
        super().__init__()
        self.global_pred = global_pred
        self.model = nn.Sequential(ResidualUnit(dim, 1), ResidualUnit(dim, 2), ResidualUnit(dim, 3), AntiAliasedSnake(dim))
        self.heads = nn.ModuleList(nn.Linear(dim, out_dim) for _ in range(n_heads))

    def forward(self, x: Tensor, mask: Tensor | None = None) -> list[Tensor]:
        h = self.model(x).transpose(1, 2)  # [B, F, D]
        if self.global_pred:
            if mask is None:
                h = h.mean(dim=1)
            else:
                w = mask.to(h.dtype).unsqueeze(-1)
                h = (h * w).sum(dim=1) / w.sum(dim=1).clamp_min(1.0)
        return [head(h) for head in self.heads]


@dataclass
class HeadOutputs:
    """Logits/predictions; None for heads that are switched off."""

    phone_logits: Tensor  # [B, F, P] from content
    f0_pred: Tensor  # [B, F] normalised F0 from prosody
    uv_logits: Tensor  # [B, F] voiced logit from prosody
    grl_phone_logits: Tensor | None = None  # [B, F, P] from detail, reversed
    grl_f0_pred: Tensor | None = None  # [B, F] from detail, reversed
    grl_uv_logits: Tensor | None = None  # [B, F] from detail, reversed
    grl_speaker_logits: Tensor | None = None  # [B, S] from the summed codes, reversed
    grl_prosody_phone_logits: Tensor | None = None  # [B, F, P] from prosody, reversed
    grl_content_f0_pred: Tensor | None = None  # [B, F] from content, reversed
    grl_content_uv_logits: Tensor | None = None
    speaker_logits: Tensor | None = None  # [B, S] from the timbre vector (not reversed)


class FACodecHeads(nn.Module):
    def __init__(
        self, dim: int, num_phones: int, num_speakers: int, coefficient: float = 1.0, *,
        detail: bool = True, detail_phone: bool = True, detail_f0: bool = True, speaker: bool = True,
        prosody_phone: bool = False, content_f0: bool = False, timbre_speaker: bool = False,
    ):
        super().__init__()
        self.coefficient = coefficient
        self.f0 = FramePredictor(dim, 1, 2)
        self.phone = FramePredictor(dim, num_phones, 1)
        self.grl_detail_f0 = FramePredictor(dim, 1, 2) if detail and detail_f0 else None
        self.grl_detail_phone = FramePredictor(dim, num_phones, 1) if detail and detail_phone else None
        self.grl_speaker = FramePredictor(dim, num_speakers, 1, global_pred=True) if speaker else None
        self.grl_prosody_phone = FramePredictor(dim, num_phones, 1) if prosody_phone else None
        self.grl_content_f0 = FramePredictor(dim, 1, 2) if content_f0 else None
        self.speaker = nn.Linear(dim, num_speakers) if timbre_speaker else None

    def forward(
        self, factors: dict[str, Tensor], speaker_input: Tensor, mask: Tensor | None = None, timbre: Tensor | None = None
    ) -> HeadOutputs:
        """factors: name -> [B, D, F]; speaker_input [B, D, F] (what the decoder is given, before timbre);
        timbre [B, D] (needed when the timbre speaker head is on)."""
        rev = lambda x: grad_reverse(x, self.coefficient)  # noqa: E731
        f0, uv = self.f0(factors["prosody"])
        (phone,) = self.phone(factors["content"])
        out = HeadOutputs(phone_logits=phone, f0_pred=f0.squeeze(-1), uv_logits=uv.squeeze(-1))
        if "detail" in factors:
            if self.grl_detail_f0 is not None:
                f0_d, uv_d = self.grl_detail_f0(rev(factors["detail"]))
                out.grl_f0_pred, out.grl_uv_logits = f0_d.squeeze(-1), uv_d.squeeze(-1)
            if self.grl_detail_phone is not None:
                (out.grl_phone_logits,) = self.grl_detail_phone(rev(factors["detail"]))
        if self.grl_speaker is not None:
            (out.grl_speaker_logits,) = self.grl_speaker(rev(speaker_input), mask)
        if self.grl_prosody_phone is not None:
            (out.grl_prosody_phone_logits,) = self.grl_prosody_phone(rev(factors["prosody"]))
        if self.grl_content_f0 is not None:
            f0_c, uv_c = self.grl_content_f0(rev(factors["content"]))
            out.grl_content_f0_pred, out.grl_content_uv_logits = f0_c.squeeze(-1), uv_c.squeeze(-1)
        if self.speaker is not None:
            if timbre is None:
                raise ValueError("the timbre speaker head needs the timbre vector [B, D]")
            out.speaker_logits = self.speaker(timbre)
        return out
