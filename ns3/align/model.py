"""The built-in aligner's acoustic model and the two things it is used for: forced alignment and
free phone recognition.

A small dilated-conv frame classifier over normalised log-mel frames (80 frames/s, the codec
grid) predicts a phone posterior per frame. For decoding, posteriors become scaled likelihoods
(log-posterior minus a fraction of the log class prior, the usual hybrid-HMM trick) so frequent
classes such as silence do not swallow their neighbours.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from ns3.align.types import Alignment, WordSpan
from ns3.align.viterbi import decode_loop, forced_align
from ns3.audio import FRAME_RATE, HOP_LENGTH, SAMPLE_RATE, log_mel, num_frames
from ns3.text.g2p import Pronunciation
from ns3.text.inventory import PhoneInventory
from ns3.text.phones import SIL

CHECKPOINT_KIND = "ns3.align.builtin"


@dataclass(frozen=True)
class AlignerConfig:
    n_mels: int = 80
    win_length: int = 400  # 25 ms: sharper boundaries than the codec's 50 ms window
    n_fft: int = 512
    channels: int = 128
    # A deliberately local view (+-5 frames, ~60 ms): with a wide receptive field the classifier
    # learns *where in the word* a frame is and reproduces the flat start's boundaries instead of
    # moving them to acoustic changes (measured on the embedded corpus: 50% -> 74% of onsets
    # within 20 ms going from +-28 to +-5 frames).
    kernel_size: int = 3
    dilations: tuple[int, ...] = (1, 1, 1, 1)
    dropout: float = 0.1
    prior_weight: float = 1.0  # share of the log class prior subtracted before decoding (1.0: plain scaled likelihood; best of 0/0.25/0.5/1 on the embedded corpus)
    switch_penalty: float = 4.0  # phone-insertion penalty for free recognition (log domain)


def features(audio: np.ndarray, config: AlignerConfig) -> np.ndarray:
    """[T] 16 kHz -> [n_mels, num_frames(T)] log-mel, mean/variance normalised per utterance and bin.

    Per-utterance normalisation removes most of the channel and speaker level differences, which
    matters more than model size when a few hundred utterances train the model from scratch.
    """
    return normalise(raw_features(audio, config))


def raw_features(audio: np.ndarray, config: AlignerConfig) -> np.ndarray:
    """[T] -> [n_mels, num_frames(T)] log-mel whose frame i is centred on the middle of hop block i.

    ``log_mel`` centres frame i on sample i*hop; durations treat frame i as the block
    [i*hop, (i+1)*hop). Dropping half a hop first centres each frame on its block, so a boundary
    between frames i-1 and i means time i/80 s with no half-frame (6.25 ms) bias.
    """
    n = num_frames(len(audio))
    shifted = audio[HOP_LENGTH // 2:] if len(audio) > HOP_LENGTH else audio
    mel = log_mel(shifted, SAMPLE_RATE, n_mels=config.n_mels, n_fft=config.n_fft, win_length=config.win_length)
    if mel.shape[1] < n:
        mel = np.pad(mel, ((0, 0), (0, n - mel.shape[1])), mode="edge")
    return mel[:, :n]


def normalise(mel: np.ndarray) -> np.ndarray:
    """[n_mels, F] -> per-bin zero mean, unit variance over the utterance."""
    mel = mel - mel.mean(axis=1, keepdims=True)
    return (mel / (mel.std(axis=1, keepdims=True) + 1e-5)).astype(np.float32)


class _ChannelNorm(nn.Module):
    """LayerNorm over channels at each frame: independent of padding and batch composition."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x.transpose(1, 2)).transpose(1, 2)


class AlignerNet(nn.Module):
    """[B, n_mels, T] -> [B, V, T] phone logits."""

    def __init__(self, num_phones: int, config: AlignerConfig) -> None:
        super().__init__()
        c, k = config.channels, config.kernel_size
        self.inp = nn.Conv1d(config.n_mels, c, 3, padding=1)
        self.blocks = nn.ModuleList(
            nn.Sequential(
                nn.Conv1d(c, c, k, dilation=d, padding=d * (k - 1) // 2), _ChannelNorm(c), nn.GELU(), nn.Dropout(config.dropout)
            )
            for d in config.dilations
        )
        self.out = nn.Conv1d(c, num_phones, 1)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        x = torch.nn.functional.gelu(self.inp(mel))
        for block in self.blocks:
            x = x + block(x)
        return self.out(x)


class AlignerModel:
    """Network + inventory + config + class prior: everything decoding needs, saved together."""

    def __init__(self, inventory: PhoneInventory, config: AlignerConfig = AlignerConfig(),
                 net: AlignerNet | None = None, log_prior: np.ndarray | None = None) -> None:
        self.inventory = inventory
        self.config = config
        self.net = net if net is not None else AlignerNet(len(inventory), config)
        self.log_prior = np.zeros(len(inventory), np.float32) if log_prior is None else np.asarray(log_prior, np.float32)

    # --- scoring -------------------------------------------------------------------------------
    @torch.no_grad()
    def log_posteriors(self, mel: np.ndarray) -> np.ndarray:
        """[n_mels, F] normalised features -> [F, V] log posteriors."""
        self.net.eval()
        logits = self.net(torch.from_numpy(mel)[None])[0]
        return torch.log_softmax(logits, dim=0).T.numpy()

    def scaled_likelihoods(self, mel: np.ndarray) -> np.ndarray:
        """[F, V] log-posterior minus ``prior_weight`` x log-prior; padding and unknown never win."""
        s = self.log_posteriors(mel) - self.config.prior_weight * self.log_prior[None]
        s[:, self.inventory.pad_id] = -1e9
        return s

    # --- persistence ---------------------------------------------------------------------------
    def state(self) -> dict:
        return {
            "kind": CHECKPOINT_KIND,
            "config": {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self.config).items()},
            "inventory": self.inventory.to_json(),
            "log_prior": torch.from_numpy(self.log_prior.copy()),
            "model": self.net.state_dict(),
        }

    def save(self, path: str | Path) -> Path:
        """Atomic write; loadable with ``torch.load(..., weights_only=True)``."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        torch.save(self.state(), tmp)
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> "AlignerModel":
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"{path}: aligner checkpoint not found (train one with train_aligner or the align stage)")
        state = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(state, dict) or state.get("kind") != CHECKPOINT_KIND:
            raise ValueError(f"{path}: not a built-in aligner checkpoint (kind={state.get('kind') if isinstance(state, dict) else None})")
        cfg = dict(state["config"])
        cfg["dilations"] = tuple(cfg["dilations"])
        config = AlignerConfig(**cfg)
        inventory = PhoneInventory.from_json(state["inventory"], source=str(path))
        net = AlignerNet(len(inventory), config)
        net.load_state_dict(state["model"])
        return cls(inventory, config, net, state["log_prior"].numpy())


def _token_sequence(pron: Pronunciation | Sequence[str], optional_silence: bool):
    """Phones with a silence slot before, between words and after; returns tokens, optional mask, word of each token."""
    if isinstance(pron, Pronunciation):
        pairs = [(w.text, list(w.phones)) for w in pron.words if w.phones]
    else:
        pairs = [("", [p for p in pron if p != SIL])]
    word_texts = [t for t, _ in pairs]
    word_phones = [ph for _, ph in pairs if ph]
    if not word_phones:
        raise ValueError("nothing to align: the phone sequence is empty")
    tokens, optional, word_of = [], [], []
    if optional_silence:
        tokens.append(SIL), optional.append(True), word_of.append(-1)
    for wi, phones in enumerate(word_phones):
        for p in phones:
            tokens.append(p), optional.append(False), word_of.append(wi)
        if optional_silence:
            tokens.append(SIL), optional.append(True), word_of.append(-1)
    return tokens, np.asarray(optional, bool), word_of, word_texts


def align(model: AlignerModel, audio: np.ndarray, pron: Pronunciation | Sequence[str], optional_silence: bool = True) -> Alignment:
    """Force-align ``pron`` to ``audio`` ([T] float32, 16 kHz).

    Silences are optional before, between and after words; silences the path skips are dropped.
    Durations are 80 frames/s frames summing to ``num_frames(len(audio))``.
    """
    mel = features(audio, model.config)
    return align_features(model, mel, pron, optional_silence)


def align_features(model: AlignerModel, mel: np.ndarray, pron: Pronunciation | Sequence[str], optional_silence: bool = True) -> Alignment:
    tokens, optional, word_of, word_texts = _token_sequence(pron, optional_silence)
    ids = np.asarray(model.inventory.encode(tokens))
    scores = model.scaled_likelihoods(mel)[:, ids]
    path = forced_align(scores, optional)
    dur = path.durations(len(tokens))
    keep = dur > 0
    phones = [t for t, k in zip(tokens, keep) if k]
    durations = dur[keep]
    kept_word = [w for w, k in zip(word_of, keep) if k]
    stress = None
    if isinstance(pron, Pronunciation):
        all_stress = iter(pron.stress)
        stress = [0 if w < 0 else next(all_stress) for w in word_of]
        stress = [s for s, k in zip(stress, keep) if k]
    starts = np.concatenate(([0], np.cumsum(durations)[:-1]))
    words = []
    for wi, text in enumerate(word_texts):
        idx = [i for i, w in enumerate(kept_word) if w == wi]
        if idx:
            words.append(WordSpan(text, int(starts[idx[0]]), int(starts[idx[-1]] + durations[idx[-1]]), idx[0], idx[-1] + 1))
    return Alignment(phones=phones, durations=durations, words=words, stress=stress, frame_rate=FRAME_RATE)


def recognize(model: AlignerModel, audio: np.ndarray, keep_silence: bool = False) -> list[str]:
    """Free phone decoding of ``audio`` ([T] 16 kHz) with the aligner's acoustic model.

    A phone loop with an insertion penalty; silences are dropped unless ``keep_silence``. The
    evaluation suite scores intelligibility as a phone error rate against the G2P of the text.
    """
    if num_frames(len(audio)) == 0:
        return []
    scores = model.scaled_likelihoods(features(audio, model.config))
    scores[:, model.inventory.unk_id] = -1e9
    # Classes absent from the training labels have only the smoothing count in the prior; dividing
    # by that tiny prior would make them win free decoding with no acoustic evidence at all.
    lp = model.log_prior
    if lp.max() > lp.min() + 1e-6:
        scores[:, lp <= lp.min() + 1e-6] = -1e9
    segs = decode_loop(scores, switch_penalty=model.config.switch_penalty)
    phones = [model.inventory.symbols[s.label] for s in segs]
    return phones if keep_silence else [p for p in phones if p != SIL]
