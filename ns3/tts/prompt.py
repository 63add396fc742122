"""A speech prompt as the factorized diffusion sees it: phones, durations, phone-level prosody codes, frame codes.

The diffusion was trained on code shards (``ns3.recipes.extract``); a prompt given as audio goes through the
same steps, so a prompt made here equals the code shard entry of the same audio and alignment:

1. its phones: the G2P of its transcript, or, without one, the align stage's free phone decoding (said in
   ``phones_source``, since a recognised transcript is only as good as the recogniser);
2. forced alignment of those phones (the align stage's built-in aligner, 80 frames/s) -> durations, fitted
   to the codec's frames exactly as the extract stage fits them (``fit_codec_frames``);
3. the codec's encoding (``encode_utterances``): frame codes, timbre, phone-level prosody codes.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from ns3.diffusion.generate import PromptUtterance
from ns3.text.phones import SIL

PHONES_FROM_TEXT, PHONES_GIVEN, PHONES_RECOGNISED = "transcript", "phones", "recognised"


@dataclass
class SpeechPrompt:
    """One prepared prompt. P = phones, L = code levels, F = frames, D = timbre dim."""

    audio: np.ndarray  # [T] float32, 16 kHz: what SIM-O compares against
    phones: list[str]  # [P] aligned symbols, '<sil>' included
    phone_ids: np.ndarray  # [P] int64 in the diffusion's inventory
    durations: np.ndarray  # [P] int64 codec frames, sum == F
    phone_prosody: np.ndarray  # [P] int64
    codes: np.ndarray  # [L, F] int64
    timbre: np.ndarray  # [D] float32
    phones_source: str  # transcript | phones | recognised

    def utterance(self) -> PromptUtterance:
        t = lambda a: torch.as_tensor(np.asarray(a, dtype=np.int64))  # noqa: E731
        return PromptUtterance(t(self.phone_ids), t(self.durations), t(self.phone_prosody), t(self.codes))


def target_phones(text: str, inventory, voice: str = "en-us") -> tuple[list[str], np.ndarray]:
    """Text -> the phone sequence the diffusion generates from: silence, the G2P phones with a silence after
    each clause-ending word, silence (the aligner puts leading and trailing silence on every training
    utterance). Raises ValueError naming the text when nothing is left to speak."""
    from ns3.text.g2p import g2p

    phones = [SIL, *g2p(text, voice).with_pauses(), SIL]
    if len(phones) == 2:
        raise ValueError(f"nothing to synthesize: {text!r} has no pronounceable words")
    return phones, np.asarray(inventory.encode(phones), np.int64)


def prepare_prompts(codec, aligner, inventory, audios: Sequence[np.ndarray], *, texts: Sequence[str | None] | None = None,
                    phones: Sequence[Sequence[str] | None] | None = None, voice: str = "en-us") -> list[SpeechPrompt]:
    """Audio prompts ([T] float32 16 kHz each) + per prompt a transcript, or its phones, or neither -> prompts.

    ``aligner``: ``ns3.align.model.AlignerModel``; ``inventory``: the align stage's ``PhoneInventory`` (ids the
    diffusion was trained on). Raises ValueError naming the prompt (its index) when it cannot be aligned.
    """
    from ns3.align.model import align, recognize
    from ns3.recipes.extract import AlignedAudio, encode_utterances, fit_codec_frames
    from ns3.text.g2p import g2p

    n = len(audios)
    texts = list(texts) if texts is not None else [None] * n
    given = list(phones) if phones is not None else [None] * n
    if len(texts) != n or len(given) != n:
        raise ValueError(f"{n} prompt audios but {len(texts)} transcripts and {len(given)} phone lists")
    items, meta = [], []
    for i, (audio, text, ph) in enumerate(zip(audios, texts, given)):
        audio = np.asarray(audio, np.float32)
        if ph is not None:
            pron, source = [p for p in ph if p != SIL], PHONES_GIVEN
        elif text:
            pron, source = g2p(text, voice), PHONES_FROM_TEXT
        else:
            pron, source = recognize(aligner, audio), PHONES_RECOGNISED
        try:
            a = align(aligner, audio, pron)
            durations = fit_codec_frames(a.durations, codec.hp.frames_for(len(audio)))
        except ValueError as e:
            raise ValueError(f"prompt {i}: cannot align its {source} to the audio ({e}); give a transcript "
                             "that matches the prompt, or a longer prompt") from e
        ids = a.phone_ids(inventory)
        items.append(AlignedAudio(f"prompt{i}", "", audio, ids, durations))
        meta.append((a.phones, source))
    out = []
    with torch.inference_mode():
        for it, (ph, source) in zip(items, meta):
            u = encode_utterances(codec, [it])[0]
            out.append(SpeechPrompt(it.audio, list(ph), u.phone_ids, u.durations, u.phone_prosody, u.codes, u.timbre,
                                    source))
    return out



def clip_prompt(prompt: SpeechPrompt, start_seconds: float, seconds: float | None, hop: int,
                frame_rate: float) -> SpeechPrompt:
    """The ``seconds`` long clip of ``prompt`` from ``start_seconds``, snapped to phone boundaries (the start to the
    boundary at or before it, the end to the last one within ``seconds``; at least one phone), so the
    phone-level prosody codes of the clip are exact. ``seconds`` None: the whole prompt."""
    if seconds is None:
        return prompt
    bounds = np.concatenate(([0], np.cumsum(prompt.durations)))  # [P + 1] frame of each phone boundary
    k0 = max(0, int(np.searchsorted(bounds, round(start_seconds * frame_rate), side="right")) - 1)
    k0 = min(k0, len(prompt.durations) - 1)
    k1 = int(np.searchsorted(bounds, bounds[k0] + seconds * frame_rate, side="right")) - 1
    k1 = min(max(k1, k0 + 1), len(prompt.durations))
    f0, f1 = int(bounds[k0]), int(bounds[k1])
    sl = slice(k0, k1)
    return SpeechPrompt(prompt.audio[f0 * hop: f1 * hop], prompt.phones[sl], prompt.phone_ids[sl],
                        prompt.durations[sl], prompt.phone_prosody[sl], prompt.codes[:, f0:f1], prompt.timbre,
                        prompt.phones_source)
