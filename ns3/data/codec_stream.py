"""Codec training batches streamed from WebDataset shards: bounded memory, exact resume position.

Epoch ``e`` of rank ``r`` (a BatchSource, see ns3.solvers.base):
- the train shards are permuted with a generator seeded by (seed, e) and rank ``r`` takes every
  ``world_size``-th of them (shard-level node splitting; ranks read disjoint shards);
- each shard's audio tar is read in order and joined by key to its label tar from the align stage
  (``<label_dir>/<shard name>``); utterances without labels are skipped and counted;
- samples pass through a shuffle buffer of ``shuffle_buffer`` utterances seeded by (seed, e, r), with
  the audio still FLAC bytes: it is decoded only when a batch is yielded, so skipping batches on resume
  costs tar reads, not decoding;
- every rank yields exactly ``batches_per_epoch`` batches (DDP collectives would hang otherwise); a rank
  whose shards run out first starts over on them in a new seeded order;
- crops are seeded by (seed, e, r, batch index), independent of what was skipped.
So ``stream(e, start)`` yields exactly ``list(stream(e, 0))[start:]``. Memory holds the shuffle buffer,
one shard's labels and one batch, whatever the corpus size. Decoding runs in the training process.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from ns3.audio import decode_audio_bytes
from ns3.data import storage
from ns3.data.batch import CodecBatch, CodecExample, collate_codec
from ns3.data.codec_data import labelled_example
from ns3.data.pitch import SpeakerPitchStats
from ns3.data.rank_stream import rank_items
from ns3.data.shards import iter_tar_groups


class CodecBatchStream:
    """BatchSource of CodecBatch: ``stream(epoch, start)`` -> the batches of ``epoch`` from index ``start``.

    ``shards``: local paths or URLs (`ns3.data.storage`); ``label_dir`` is a local folder."""

    def __init__(
        self,
        *,
        shards: Sequence[str | Path],
        label_dir: str | Path,
        speakers: dict[str, int],
        pitch_stats: SpeakerPitchStats,
        batch_size: int,
        crop_samples: int,
        seed: int,
        shuffle_buffer: int,
        rank: int = 0,
        world_size: int = 1,
        utterances: int,
        batches_per_epoch: int | None = None,
    ) -> None:
        self.shards = [str(s) for s in shards]
        if len(self.shards) < world_size:
            raise ValueError(f"{len(self.shards)} training shards cannot feed {world_size} ranks: lower "
                             "shard.utts_per_shard so the train split has at least one shard per rank")
        self.label_dir = Path(label_dir)
        self.speakers, self.pitch_stats = speakers, pitch_stats
        self.batch_size, self.crop_samples, self.seed = batch_size, crop_samples, seed
        self.shuffle_buffer, self.rank, self.world_size = max(1, shuffle_buffer), rank, world_size
        self.batches_per_epoch = batches_per_epoch or max(1, utterances // (batch_size * world_size))
        self.missing_labels = 0  # running count of unlabelled utterances read (every pass, every epoch)

    # ------------------------------------------------------------------ samples
    def _shard_samples(self, shard: str) -> Iterator[tuple[dict, bytes, dict[str, bytes]]]:
        labels_path = self.label_dir / storage.basename(shard)  # the audio may be a URL; labels are local
        if not labels_path.exists():
            raise FileNotFoundError(f"{labels_path}: no labels for {storage.basename(shard)}; run `ns3 align` first")
        labels = dict(iter_tar_groups(labels_path))  # one shard's labels: small next to its audio
        for key, parts in iter_tar_groups(shard):
            lab = labels.get(key)
            if lab is None:
                self.missing_labels += 1
                continue
            yield json.loads(parts["json"]), parts["flac"], lab

    def _rank_samples(self, epoch: int) -> Iterator[tuple[dict, bytes, dict[str, bytes]]]:
        """This rank's shards of the epoch, over and over (each pass in a new seeded order)."""
        return rank_items(self.shards, self._shard_samples, seed=self.seed, epoch=epoch, rank=self.rank,
                          world_size=self.world_size)

    def _shuffled(self, epoch: int) -> Iterator[tuple[dict, bytes, dict[str, bytes]]]:
        rng = np.random.default_rng([self.seed, epoch, self.rank, 7])
        buf: list = []
        for s in self._rank_samples(epoch):
            if len(buf) < self.shuffle_buffer:
                buf.append(s)
                continue
            i = int(rng.integers(len(buf)))
            yield buf[i]
            buf[i] = s

    def _example(self, meta: dict, flac: bytes, lab: dict[str, bytes]) -> CodecExample:
        return labelled_example(decode_audio_bytes(flac), meta["key"], meta["speaker"], lab, self.speakers,
                                self.pitch_stats)

    # ------------------------------------------------------------------ batches
    def __call__(self, epoch: int, start: int) -> Iterator[CodecBatch]:
        samples = self._shuffled(epoch)
        for index in range(self.batches_per_epoch):
            group = [next(samples) for _ in range(self.batch_size)]
            if index < start:
                continue  # skipped on resume: read, never decoded
            rng = np.random.default_rng([self.seed, epoch, self.rank, index])
            yield collate_codec([self._example(*s) for s in group], self.crop_samples, rng)
