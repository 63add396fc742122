"""Flat-start training of the built-in aligner (no pretrained weights, no reference timings).

Viterbi training, as in classic HMM aligners: start from a uniform segmentation of each
utterance's phones over its speech region (leading/trailing silence found by frame energy), fit
the frame classifier to those labels, re-align every utterance with the model (monotonic, optional
silences between words), and fit again. Each round the labels move towards acoustic boundaries;
a handful of rounds converges. Nothing here depends on how the audio was produced.
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch

from ns3.align.model import AlignerConfig, AlignerModel, align_features, normalise, raw_features
from ns3.text.g2p import Pronunciation
from ns3.text.inventory import PhoneInventory, UnknownReport

log = logging.getLogger(__name__)
_IGNORE = -100


@dataclass(frozen=True)
class AlignerUtterance:
    key: str
    audio: np.ndarray  # [T] float32, 16 kHz
    pron: Pronunciation


@dataclass(frozen=True)
class TrainSchedule:
    rounds: int = 5  # re-alignment rounds after the flat start
    flat_epochs: int = 3  # epochs on the uniform segmentation
    epochs_per_round: int = 2  # short rounds: labels improve faster by re-aligning than by fitting longer
    batch_frames: int = 6000  # frames per batch (utterances packed by length)
    lr: float = 2e-3
    label_smoothing: float = 0.1
    seed: int = 0


def speech_region(mel: np.ndarray, rel_threshold: float = 0.2) -> tuple[int, int]:
    """[n_mels, F] raw log-mel -> (first, last+1) frame above an energy floor set between the quiet and loud levels."""
    e = mel.mean(axis=0)
    lo, hi = np.percentile(e, 5), np.percentile(e, 95)
    above = np.flatnonzero(e > lo + rel_threshold * (hi - lo))
    if above.size == 0:
        return 0, mel.shape[1]
    return int(above[0]), int(above[-1]) + 1


def flat_start_labels(num_frames: int, phone_ids: Sequence[int], sil_id: int, region: tuple[int, int]) -> np.ndarray:
    """[F] labels: silence outside ``region``, phones spread uniformly inside it (>= 1 frame each)."""
    n = len(phone_ids)
    s, e = region
    if e - s < n:
        s, e = 0, num_frames
    labels = np.full(num_frames, sil_id, np.int64)
    edges = np.round(np.linspace(s, e, n + 1)).astype(np.int64)
    for i, pid in enumerate(phone_ids):
        labels[edges[i]:max(edges[i + 1], edges[i] + 1)] = pid
    return labels


def _batches(lengths: np.ndarray, batch_frames: int, rng: np.random.Generator) -> list[np.ndarray]:
    order = np.argsort(lengths, kind="stable")
    batches, cur, longest = [], [], 0
    for i in order:
        longest = max(longest, int(lengths[i]))
        if cur and longest * (len(cur) + 1) > batch_frames:
            batches.append(np.asarray(cur))
            cur, longest = [], int(lengths[i])
        cur.append(i)
    if cur:
        batches.append(np.asarray(cur))
    rng.shuffle(batches)
    return batches


def _fit(model: AlignerModel, mels: list[np.ndarray], labels: list[np.ndarray], epochs: int,
         schedule: TrainSchedule, opt: torch.optim.Optimizer, lr_sched, rng: np.random.Generator) -> tuple[float, float]:
    net = model.net
    lengths = np.array([m.shape[1] for m in mels])
    loss_fn = torch.nn.CrossEntropyLoss(ignore_index=_IGNORE, label_smoothing=schedule.label_smoothing)
    total, correct, count = 0.0, 0, 0
    for _ in range(epochs):
        net.train()
        total, correct, count = 0.0, 0, 0
        for idx in _batches(lengths, schedule.batch_frames, rng):
            width = int(lengths[idx].max())
            x = torch.zeros(len(idx), mels[0].shape[0], width)
            y = torch.full((len(idx), width), _IGNORE, dtype=torch.long)
            for b, i in enumerate(idx):
                x[b, :, : lengths[i]] = torch.from_numpy(mels[i])
                y[b, : lengths[i]] = torch.from_numpy(labels[i])
            logits = net(x)
            loss = loss_fn(logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
            opt.step()
            lr_sched.step()
            mask = y != _IGNORE
            n = int(mask.sum())
            total += float(loss.detach()) * n
            correct += int((logits.argmax(1) == y)[mask].sum())
            count += n
    return total / max(count, 1), correct / max(count, 1)


def _update_prior(model: AlignerModel, labels: list[np.ndarray]) -> None:
    counts = np.bincount(np.concatenate(labels), minlength=len(model.inventory)).astype(np.float64) + 1.0
    counts[model.inventory.pad_id] = 1.0
    model.log_prior = np.log(counts / counts.sum()).astype(np.float32)


def train_aligner(
    utterances: Sequence[AlignerUtterance],
    inventory: PhoneInventory,
    config: AlignerConfig = AlignerConfig(),
    schedule: TrainSchedule = TrainSchedule(),
    unknown: UnknownReport | None = None,
    progress: Callable[[dict], None] | None = None,
) -> AlignerModel:
    """Flat-start Viterbi training on ``utterances``; returns the trained model.

    ``model.history`` holds one dict per round (loss, frame accuracy against that round's labels,
    share of frames whose label changed at re-alignment — the convergence signal, seconds).
    Utterances with fewer frames than phones cannot be aligned and are skipped (logged).
    Unknown phone symbols are mapped to ``<unk>`` and counted in ``unknown``.
    """
    if not utterances:
        raise ValueError("train_aligner needs at least one utterance")
    torch.manual_seed(schedule.seed)
    rng = np.random.default_rng(schedule.seed)
    model = AlignerModel(inventory, config)
    model.history = []  # type: ignore[attr-defined]
    t0 = time.perf_counter()

    mels, labels, kept = [], [], []
    for u in utterances:
        raw = raw_features(u.audio, config)
        ids = inventory.encode(u.pron.phones, unknown, u.key)
        if raw.shape[1] < len(ids) or not ids:
            log.warning("aligner training: skipping %s (%d frames for %d phones)", u.key, raw.shape[1], len(ids))
            continue
        mels.append(normalise(raw))
        labels.append(flat_start_labels(raw.shape[1], ids, inventory.sil_id, speech_region(raw)))
        kept.append(u)
    if not kept:
        raise ValueError("no utterance is long enough to align (each phone needs one 12.5 ms frame)")

    total_epochs = schedule.flat_epochs + schedule.rounds * schedule.epochs_per_round
    opt = torch.optim.AdamW(model.net.parameters(), lr=schedule.lr, weight_decay=1e-4)
    steps_per_epoch = len(_batches(np.array([m.shape[1] for m in mels]), schedule.batch_frames, np.random.default_rng(0)))
    total_steps = max(1, total_epochs * steps_per_epoch)
    warmup = max(1, steps_per_epoch)
    # Short warm-up, then cosine: the late rounds refine boundaries with small steps.
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(s, total_steps) / total_steps))
    )

    for rnd in range(schedule.rounds + 1):
        _update_prior(model, labels)
        epochs = schedule.flat_epochs if rnd == 0 else schedule.epochs_per_round
        loss, acc = _fit(model, mels, labels, epochs, schedule, opt, sched, rng)
        # Re-align after every round, the last one too: its labels set the final class prior.
        changed, total, new_labels = 0, 0, []
        for u, mel, old in zip(kept, mels, labels):
            lab = align_features(model, mel, u.pron).frame_labels(inventory).astype(np.int64)
            changed += int((lab != old).sum())
            total += len(lab)
            new_labels.append(lab)
        labels = new_labels
        stats = {"round": rnd, "loss": loss, "frame_acc": acc, "relabelled": changed / max(total, 1),
                 "seconds": time.perf_counter() - t0, "utterances": len(kept)}
        model.history.append(stats)  # type: ignore[attr-defined]
        log.info("aligner round %d: loss %.3f acc %.3f relabelled %.3f", rnd, loss, acc, stats["relabelled"])
        if progress is not None:
            progress(stats)
    _update_prior(model, labels)
    return model
