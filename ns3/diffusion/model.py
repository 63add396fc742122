"""FactorizedDiffusion: the phoneme encoder, the phone-level model and the frame-level model together,
and the one training objective over a CodeBatch.

Training view of a batch (paper §3.3.2 with the notes' §9 choices):
- a prompt prefix of each utterance: its first k phones (k ~ U[prompt_min, prompt_max] of the phones) and
  their frames; with probability ``prompt_drop`` no prompt at all (the CFG path; the whole utterance is
  the target);
- phone-level prosody: one t, Bernoulli(σ(t)) masking of the target phones' codes, CE on the masked ones;
- duration: the same over durations (classes), conditioned on the true phone-level prosody codes (what the
  generated ones stand in for at inference); or, for the L2 ablation, every target duration hidden and a
  regression on log-duration. Without the duration prompt its prefix durations are hidden as well;
- frames: one level q per item; levels < q given on the target, q masked by σ(t), levels > q hidden; the
  prompt prefix shows only q's attribute levels (each attribute is prompted by its own tokens); CE on the
  masked level-q tokens.
The three losses are reported under their metric names and combined by the configured weights.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ns3.data.code_batch import CodeBatch
from ns3.diffusion.hparams import DiffusionHParams
from ns3.diffusion.networks import (TASK_DURATION, TASK_PROSODY, FrameLevelModel, PhoneLevelModel, PhonemeEncoder,
                                    length_regulate)
from ns3.diffusion.schedule import corrupt, sample_time
from ns3.losses.diffusion import log_duration_l2, masked_token_loss

FRAME_CE, PROSODY_CE, DURATION = "diffusion/frame_ce", "diffusion/prosody_ce", "diffusion/duration"


@dataclass
class DiffusionLosses:
    losses: dict[str, Tensor]  # metric name -> scalar loss (weighted by the solver)
    metrics: dict[str, float]  # accuracies of the masked tokens (per level), token counts


@dataclass
class PromptSplit:
    phones: Tensor  # [B] prompt phones (0: no prompt)
    frames: Tensor  # [B] prompt frames (the durations of those phones)

    def phone_target(self, phone_mask: Tensor) -> Tensor:
        return phone_mask & (torch.arange(phone_mask.shape[1], device=phone_mask.device)[None] >= self.phones[:, None])

    def frame_target(self, frame_mask: Tensor) -> Tensor:
        return frame_mask & (torch.arange(frame_mask.shape[1], device=frame_mask.device)[None] >= self.frames[:, None])

    def frame_prompt(self, frame_mask: Tensor) -> Tensor:
        return frame_mask & ~self.frame_target(frame_mask)


def split_prompts(batch: CodeBatch, generator: torch.Generator | None, drop: float, low: float, high: float) -> PromptSplit:
    """A random prompt prefix per item (k phones, at least one target phone left), none with p = ``drop``."""
    n = batch.phone_mask.sum(1)
    frac = low + (high - low) * torch.rand(n.shape, generator=generator)
    k = torch.minimum((frac * n.float()).long(), (n - 1).clamp_min(0))
    k = torch.where(torch.rand(n.shape, generator=generator) < drop, torch.zeros_like(k), k).to(n.device)
    ends = torch.cumsum(batch.durations, dim=1)
    frames = torch.where(k > 0, torch.gather(ends, 1, (k - 1).clamp_min(0)[:, None])[:, 0], torch.zeros_like(k))
    return PromptSplit(k, frames)


class FactorizedDiffusion(nn.Module):
    def __init__(self, hp: DiffusionHParams):
        super().__init__()
        self.hp = hp
        self.encoder = PhonemeEncoder(hp)
        self.phone_model = PhoneLevelModel(hp)
        self.frame_model = FrameLevelModel(hp)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    # ---------------------------------------------------------------- training
    def forward(self, batch: CodeBatch, generator: torch.Generator | None = None, prompt_drop: float = 0.15,
                prompt_range: tuple[float, float] = (0.1, 0.5)) -> DiffusionLosses:
        """The training objective on one batch (forward, so DDP sees it) -> losses by metric name + accuracies."""
        hp, dev = self.hp, batch.codes.device
        b = batch.size
        split = split_prompts(batch, generator, prompt_drop, *prompt_range)
        phones = self.encoder(batch.phone_ids, batch.phone_mask)
        phone_target = split.phone_target(batch.phone_mask)
        losses: dict[str, Tensor] = {}
        metrics: dict[str, float] = {}

        # Phone-level prosody.
        t = sample_time(b, generator).to(dev)
        c = corrupt(batch.phone_prosody, t, phone_target, hp.mask_id, generator)
        logits = self.phone_model(TASK_PROSODY, c.noised, phones, t, batch.phone_mask)
        losses[PROSODY_CE], acc = masked_token_loss(logits, batch.phone_prosody, c.masked)
        metrics["diffusion/acc/phone_prosody"] = float(acc)

        # Duration.
        dur = batch.durations.clamp(1, hp.max_duration) * batch.phone_mask
        mask_id = self.phone_model.duration_mask_id
        if hp.duration_objective == "ce":
            t = sample_time(b, generator).to(dev)
            c = corrupt(dur, t, phone_target, mask_id, generator)
            tokens, masked = c.noised, c.masked
        else:  # regression: every target duration hidden, predicted in one pass
            t = torch.ones(b, device=dev)
            masked = phone_target
            tokens = torch.where(masked, torch.full_like(dur, mask_id), dur)
        if not hp.duration_uses_prompt:
            tokens = torch.where(batch.phone_mask & ~phone_target, torch.full_like(tokens, mask_id), tokens)
        out = self.phone_model(TASK_DURATION, tokens, phones, t, batch.phone_mask, batch.phone_prosody)
        if hp.duration_objective == "ce":
            losses[DURATION], acc = masked_token_loss(out, dur, masked)
            metrics["diffusion/acc/duration"] = float(acc)
        else:
            losses[DURATION] = log_duration_l2(out[..., 0], batch.durations, masked)

        # Frame levels.
        frames, _ = length_regulate(phones, batch.durations, batch.phone_mask)
        frames = _fit_frames(frames, batch.codes.shape[-1])
        level = torch.randint(0, hp.num_levels, (b,), generator=generator).to(dev)
        t = sample_time(b, generator).to(dev)
        tokens, target_tokens, masked = self.frame_inputs(batch.codes, level, t, split, batch.frame_mask, generator)
        logits = self.frame_model(tokens, level, frames, t, batch.frame_mask)
        losses[FRAME_CE], _ = masked_token_loss(logits, target_tokens, masked)
        with torch.no_grad():
            hits = (logits.argmax(-1) == target_tokens) & masked
            for q, name in enumerate(hp.levels):
                sel = (level == q)[:, None] & masked
                if sel.any():
                    metrics[f"diffusion/acc/{name}"] = float(hits[sel].float().mean())
        return DiffusionLosses(losses, metrics)

    def frame_inputs(self, codes: Tensor, level: Tensor, t: Tensor, split: PromptSplit, frame_mask: Tensor,
                     generator: torch.Generator | None) -> tuple[Tensor, Tensor, Tensor]:
        """codes [B, L, T] -> (input tokens [B, L, T], level-q targets [B, T], masked [B, T]) as described above."""
        hp = self.hp
        b, n_lev, _ = codes.shape
        target = split.frame_target(frame_mask)
        prompt = split.frame_prompt(frame_mask)
        lev = torch.arange(n_lev, device=codes.device)[None, :]  # [1, L]
        q = level[:, None]
        shown_in_prompt = torch.zeros(b, n_lev, dtype=torch.bool, device=codes.device)
        for i in range(b):
            shown_in_prompt[i, list(hp.prompt_levels(int(level[i])))] = True
        given = (prompt[:, None] & shown_in_prompt[..., None]) | (target[:, None] & (lev < q)[..., None])
        tokens = torch.where(given, codes, torch.full_like(codes, hp.mask_id))
        target_tokens = codes[torch.arange(b), level]
        c = corrupt(target_tokens, t, target, hp.mask_id, generator)
        tokens[torch.arange(b), level] = c.noised
        return tokens, target_tokens, c.masked


def _fit_frames(frames: Tensor, t: int) -> Tensor:
    """Length-regulated frames padded/trimmed to the codes' T (they agree unless a batch is all padding)."""
    if frames.shape[1] >= t:
        return frames[:, :t]
    return nn.functional.pad(frames, (0, 0, 0, t - frames.shape[1]))
