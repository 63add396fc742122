"""Validation of the diffusion model against baselines measured on the same utterances.

On held-out utterances, with a fixed prompt (the first ``prompt_fraction`` of the phones) and every target
token of the scored process hidden (t = 1: generation from scratch, one pass, argmax):
- per frame level q (levels < q given, as in generation): masked-token accuracy, next to
  the most frequent train code of that level (``majority``) and the code at the same offset in the prompt
  (``prompt_copy``: target frame j predicts prompt frame j mod prompt length);
- phone-level prosody codes: accuracy next to the majority code;
- durations: mean absolute error in frames per phone, next to each phone's train-set mean duration.
Metric keys: ``valid/acc/<level>``, ``valid/acc_majority/<level>``, ``valid/acc_prompt_copy/<level>``,
``valid/duration_mae``, ``valid/duration_mae_phone_mean`` (the same names in MLflow and the report).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np
import torch

from ns3.data.code_batch import CodeBatch
from ns3.diffusion.model import FactorizedDiffusion, PromptSplit
from ns3.diffusion.networks import TASK_DURATION, TASK_PROSODY, length_regulate


@dataclass(frozen=True)
class CodeStats:
    """What the train codes say, for the caps and the baselines."""

    max_duration: int  # duration cap (a high percentile of the train durations)
    majority: list[int]  # most frequent code per frame level
    phone_prosody_majority: int
    phone_mean_duration: dict[int, float]  # phone id -> mean frames
    mean_duration: float

    def to_dict(self) -> dict:
        return {"max_duration": self.max_duration, "majority": self.majority,
                "phone_prosody_majority": self.phone_prosody_majority,
                "phone_mean_duration": {str(k): v for k, v in self.phone_mean_duration.items()},
                "mean_duration": self.mean_duration}

    @classmethod
    def from_dict(cls, d: dict) -> "CodeStats":
        return cls(int(d["max_duration"]), [int(x) for x in d["majority"]], int(d["phone_prosody_majority"]),
                   {int(k): float(v) for k, v in d["phone_mean_duration"].items()}, float(d["mean_duration"]))


def code_stats(utterances: Iterable, codebook_size: int, percentile: float = 99.5) -> CodeStats:
    """One pass over train CodeUtterances -> CodeStats."""
    counts = None
    pros = np.zeros(codebook_size, dtype=np.int64)
    dur_sum: dict[int, float] = {}
    dur_n: dict[int, int] = {}
    all_durs: list[np.ndarray] = []
    for u in utterances:
        codes = np.asarray(u.codes)
        if counts is None:
            counts = np.zeros((codes.shape[0], codebook_size), dtype=np.int64)
        for q in range(codes.shape[0]):
            counts[q] += np.bincount(codes[q], minlength=codebook_size)
        pros += np.bincount(np.asarray(u.phone_prosody), minlength=codebook_size)
        d = np.asarray(u.durations)
        all_durs.append(d)
        for p, n in zip(np.asarray(u.phone_ids).tolist(), d.tolist()):
            dur_sum[p] = dur_sum.get(p, 0.0) + n
            dur_n[p] = dur_n.get(p, 0) + 1
    if counts is None:
        raise ValueError("no training utterances in the code shards: run `ns3 extract-codes`")
    durs = np.concatenate(all_durs)
    return CodeStats(
        max_duration=max(1, int(np.ceil(np.percentile(durs, percentile)))),
        majority=[int(c.argmax()) for c in counts], phone_prosody_majority=int(pros.argmax()),
        phone_mean_duration={p: dur_sum[p] / dur_n[p] for p in dur_sum}, mean_duration=float(durs.mean()),
    )


def fixed_split(batch: CodeBatch, prompt_fraction: float) -> PromptSplit:
    n = batch.phone_mask.sum(1)
    k = torch.minimum((prompt_fraction * n.float()).long().clamp_min(1), (n - 1).clamp_min(0))
    ends = torch.cumsum(batch.durations, 1)
    frames = torch.where(k > 0, torch.gather(ends, 1, (k - 1).clamp_min(0)[:, None])[:, 0], torch.zeros_like(k))
    return PromptSplit(k, frames)


@torch.no_grad()
def validate(model: FactorizedDiffusion, batches: Iterable[CodeBatch], stats: CodeStats,
             prompt_fraction: float = 0.3, device: torch.device | str = "cpu") -> dict[str, float]:
    hp = model.hp
    was = model.training
    model.eval()
    hits: dict[str, float] = {}
    total: dict[str, float] = {}

    def add(key: str, h: torch.Tensor, n: torch.Tensor) -> None:
        hits[key] = hits.get(key, 0.0) + float(h)
        total[key] = total.get(key, 0.0) + float(n)

    try:
        for batch in batches:
            batch = batch.to(device)
            b = batch.size
            split = fixed_split(batch, prompt_fraction)
            phones = model.encoder(batch.phone_ids, batch.phone_mask)
            ptgt = split.phone_target(batch.phone_mask)
            ones = torch.ones(b, device=batch.codes.device)
            # Phone-level prosody.
            tok = torch.where(ptgt, torch.full_like(batch.phone_prosody, hp.mask_id), batch.phone_prosody)
            pred = model.phone_model(TASK_PROSODY, tok, phones, ones, batch.phone_mask).argmax(-1)
            add("valid/acc/phone_prosody", ((pred == batch.phone_prosody) & ptgt).sum(), ptgt.sum())
            add("valid/acc_majority/phone_prosody", ((batch.phone_prosody == stats.phone_prosody_majority) & ptgt).sum(),
                ptgt.sum())
            # Durations (true phone-level prosody as the condition, as in training).
            mid = model.phone_model.duration_mask_id
            dur = batch.durations.clamp(1, hp.max_duration) * batch.phone_mask
            tok = torch.where(ptgt, torch.full_like(dur, mid), dur)
            if not hp.duration_uses_prompt:
                tok = torch.where(batch.phone_mask, torch.full_like(dur, mid), dur)
            out = model.phone_model(TASK_DURATION, tok, phones, ones, batch.phone_mask, batch.phone_prosody)
            d_hat = out.argmax(-1).float() if hp.duration_objective == "ce" else torch.exp(out[..., 0])
            err = (d_hat - batch.durations.float()).abs()
            add("valid/duration_mae", (err * ptgt).sum(), ptgt.sum())
            mean = torch.tensor([[stats.phone_mean_duration.get(int(p), stats.mean_duration) for p in row]
                                 for row in batch.phone_ids.cpu()], device=err.device)
            add("valid/duration_mae_phone_mean", ((mean - batch.durations.float()).abs() * ptgt).sum(), ptgt.sum())
            # Frame levels.
            frames, _ = length_regulate(phones, batch.durations, batch.phone_mask)
            frames = frames[:, : batch.codes.shape[-1]]
            ftgt = split.frame_target(batch.frame_mask)
            for q, name in enumerate(hp.levels):
                level = torch.full((b,), q, dtype=torch.long, device=ones.device)
                tokens, target, masked = model.frame_inputs(batch.codes, level, ones, split, batch.frame_mask, None)
                pred = model.frame_model(tokens, level, frames, ones, batch.frame_mask).argmax(-1)
                add(f"valid/acc/{name}", ((pred == target) & masked).sum(), masked.sum())
                add(f"valid/acc_majority/{name}", ((target == stats.majority[q]) & ftgt).sum(), ftgt.sum())
                copy = _prompt_copy(target, split.frames, batch.frame_mask)
                add(f"valid/acc_prompt_copy/{name}", ((copy == target) & ftgt & (split.frames[:, None] > 0)).sum(),
                    (ftgt & (split.frames[:, None] > 0)).sum())
    finally:
        model.train(was)
    return {k: hits[k] / total[k] for k in hits if total[k] > 0}


def _prompt_copy(target: torch.Tensor, prompt_frames: torch.Tensor, frame_mask: torch.Tensor) -> torch.Tensor:
    """Target frame j (counted from the prompt's end) predicted as prompt frame j mod prompt length."""
    t = target.shape[1]
    pos = torch.arange(t, device=target.device)[None].expand(target.shape[0], -1)
    plen = prompt_frames.clamp_min(1)[:, None]
    src = torch.where(pos >= prompt_frames[:, None], (pos - prompt_frames[:, None]) % plen, pos)
    return torch.gather(target, 1, src)
