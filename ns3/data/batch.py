"""Codec training batches: fixed-length crops of waveform plus frame-level labels on the 80 frames/s grid.

One utterance becomes a `CodecExample` (numpy, any length); `collate_codec` random-crops a list of them to
one crop length, cut on the 200-sample hop grid so sample ``s * hop`` and label frame ``s`` stay aligned,
and stacks them into a `CodecBatch` of tensors.

Crop randomness never touches the global RNGs: `RandomCropCollate` draws from a generator seeded by
(seed, epoch, worker, call index). A batch stream is then a pure function of its epoch, which is what
lets the solver resume mid-epoch by replaying the epoch's iterator (see ``ns3.solvers.base``).
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Sequence

import numpy as np
import torch

from ns3.audio import HOP_LENGTH, num_frames
from ns3.data.pitch import denormalise_log_f0

IGNORE_INDEX = -100  # matches torch.nn.functional.cross_entropy's default ignore_index


@dataclass
class CodecExample:
    """One utterance before cropping.

    wav: [T] float32 at 16 kHz; phone_ids: [F] int (IGNORE_INDEX where unknown); f0: [F] per-speaker
    normalised log-F0 (any value on unvoiced frames); uv: [F] 1 = voiced; F = ceil(T / hop);
    f0_stats: (mean, std) of the speaker's voiced natural-log F0, which undo the normalisation.
    """

    wav: np.ndarray
    phone_ids: np.ndarray
    f0: np.ndarray
    uv: np.ndarray
    speaker_id: int
    f0_stats: tuple[float, float]
    key: str = ""

    def validate(self, hop_length: int = HOP_LENGTH) -> None:
        n = num_frames(len(self.wav), hop_length)
        for name in ("phone_ids", "f0", "uv"):
            got = len(getattr(self, name))
            if got != n:
                raise ValueError(
                    f"example {self.key or '<unnamed>'}: {name} has {got} frames but the waveform of "
                    f"{len(self.wav)} samples has {n} (ceil(T/{hop_length})); re-run the align stage"
                )


@dataclass
class CodecBatch:
    """wav [B, T] float; phone_ids [B, F] long (-100 = ignore); f0 [B, F] float (normalised log-F0);
    uv [B, F] float 0/1; speaker_ids [B] long (-100 = unknown); frame_mask [B, F] bool (False = padding);
    f0_stats [B, 2] float: each speaker's (mean, std) of voiced log-F0."""

    wav: torch.Tensor
    phone_ids: torch.Tensor
    f0: torch.Tensor
    uv: torch.Tensor
    speaker_ids: torch.Tensor
    frame_mask: torch.Tensor
    f0_stats: torch.Tensor

    @property
    def f0_hz(self) -> torch.Tensor:
        """[B, F] absolute F0 in Hz on voiced frames, 0 elsewhere (drives a pitch-excited decoder)."""
        return denormalise_log_f0(self.f0, (self.uv > 0.5) & self.frame_mask, self.f0_stats)

    def to(self, device: torch.device | str, non_blocking: bool = False) -> "CodecBatch":
        return CodecBatch(**{f.name: getattr(self, f.name).to(device, non_blocking=non_blocking) for f in fields(self)})

    def pin_memory(self) -> "CodecBatch":
        # DataLoader(pin_memory=True) calls this on custom batch types.
        return CodecBatch(**{f.name: getattr(self, f.name).pin_memory() for f in fields(self)})

    @property
    def batch_size(self) -> int:
        return int(self.wav.shape[0])

    @property
    def num_frames(self) -> int:
        return int(self.phone_ids.shape[1])


def collate_codec(
    examples: Sequence[CodecExample],
    crop_samples: int,
    rng: np.random.Generator,
    hop_length: int = HOP_LENGTH,
) -> CodecBatch:
    """Random-crop each example to ``crop_samples`` (a multiple of ``hop_length``) and stack.

    Longer utterances get a crop starting at a uniformly drawn frame; shorter ones are zero-padded with
    ``frame_mask`` False and phone ids IGNORE_INDEX on the padded frames.
    """
    if not examples:
        raise ValueError("collate_codec: empty list of examples")
    if crop_samples <= 0 or crop_samples % hop_length:
        raise ValueError(f"crop_samples={crop_samples} must be a positive multiple of the hop ({hop_length})")
    crop_frames = crop_samples // hop_length
    b = len(examples)
    wav = np.zeros((b, crop_samples), np.float32)
    phone = np.full((b, crop_frames), IGNORE_INDEX, np.int64)
    f0 = np.zeros((b, crop_frames), np.float32)
    uv = np.zeros((b, crop_frames), np.float32)
    mask = np.zeros((b, crop_frames), bool)
    spk = np.empty(b, np.int64)
    stats = np.zeros((b, 2), np.float32)
    for i, ex in enumerate(examples):
        ex.validate(hop_length)
        n_frames = len(ex.phone_ids)
        start = int(rng.integers(0, n_frames - crop_frames + 1)) if n_frames > crop_frames else 0
        stop = min(n_frames, start + crop_frames)
        seg = ex.wav[start * hop_length: start * hop_length + crop_samples]
        wav[i, : len(seg)] = seg
        n = stop - start
        phone[i, :n] = ex.phone_ids[start:stop]
        f0[i, :n] = ex.f0[start:stop]
        uv[i, :n] = ex.uv[start:stop]
        mask[i, :n] = True
        spk[i] = ex.speaker_id
        stats[i] = ex.f0_stats
    return CodecBatch(
        wav=torch.from_numpy(wav), phone_ids=torch.from_numpy(phone), f0=torch.from_numpy(f0),
        uv=torch.from_numpy(uv), speaker_ids=torch.from_numpy(spk), frame_mask=torch.from_numpy(mask),
        f0_stats=torch.from_numpy(stats),
    )


class RandomCropCollate:
    """``collate_fn`` for a DataLoader: crops drawn from a generator seeded by (seed, epoch, worker, call).

    Call `set_epoch` before iterating an epoch (like DistributedSampler.set_epoch). With DataLoader workers
    each worker holds its own copy, so the worker id is part of the seed; batches are assigned to workers
    round-robin, so the crops of batch k of an epoch are the same on every replay of that epoch.
    """

    def __init__(self, crop_samples: int, seed: int = 0, hop_length: int = HOP_LENGTH) -> None:
        if crop_samples <= 0 or crop_samples % hop_length:
            raise ValueError(f"crop_samples={crop_samples} must be a positive multiple of the hop ({hop_length})")
        self.crop_samples = crop_samples
        self.seed = seed
        self.hop_length = hop_length
        self.epoch = 0
        self._calls = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)
        self._calls = 0

    def __call__(self, examples: Sequence[CodecExample]) -> CodecBatch:
        info = torch.utils.data.get_worker_info()
        worker = info.id if info is not None else 0
        rng = np.random.default_rng([self.seed, self.epoch, worker, self._calls])
        self._calls += 1
        return collate_codec(examples, self.crop_samples, rng, self.hop_length)
