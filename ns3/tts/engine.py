"""Zero-shot TTS with the trained models: text + speech prompts -> waveform, and zero-shot VC.

``TTSEngine`` holds the codec, the factorized diffusion, the align stage's aligner and phone inventory. A
request names one prompt per attribute (duration, prosody, content, detail; paper §3.3.1) and a timbre
prompt, each defaulting to the main prompt: the diffusion sees each attribute's prompt only in that
attribute's process, the decoder takes the timbre prompt's vector. Timing covers generation and decoding,
not prompt preparation (the paper's RTF is the synthesis of a prepared prompt); per item RTF = its batch's
seconds / its batch's audio seconds (exact for batches of one, the paper's protocol).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch

from ns3.diffusion.generate import PROMPT_ROLES, GenerationConfig, generate
from ns3.tts.prompt import SpeechPrompt, prepare_prompts, target_phones


@dataclass
class TTSRequest:
    """What to say (``text``, or ``phones`` in the inventory's symbols) and in whose manner."""

    prompt: SpeechPrompt
    text: str | None = None
    phones: Sequence[str] | None = None
    attribute_prompts: Mapping[str, SpeechPrompt] = field(default_factory=dict)  # role -> prompt (PROMPT_ROLES)
    timbre_prompt: SpeechPrompt | None = None

    def role(self, name: str) -> SpeechPrompt:
        return self.attribute_prompts.get(name, self.prompt)


@dataclass
class Synthesis:
    """One generated utterance. P = phones, L = code levels, F = frames."""

    wav: np.ndarray  # [F * hop] float32, 16 kHz
    phones: list[str]  # [P]
    durations: np.ndarray  # [P] frames
    codes: np.ndarray  # [L, F]
    nfe: int
    seconds: float  # this item's share of its batch's generation + decoding time
    rtf: float


class TTSEngine:
    def __init__(self, codec, model, aligner, inventory, voice: str = "en-us") -> None:
        if len(inventory) != model.hp.num_phones:
            raise ValueError(f"the phone inventory has {len(inventory)} symbols, the diffusion model "
                             f"{model.hp.num_phones}: both must come from the same align stage")
        self.codec, self.model, self.aligner, self.inventory, self.voice = codec, model, aligner, inventory, voice

    @classmethod
    def load(cls, codec_path: str | Path, diffusion_path: str | Path, align_dir: str | Path,
             voice: str = "en-us") -> "TTSEngine":
        """From the stages' outputs: ``data/codec/codec.pt``, ``data/diffusion/diffusion.pt``, ``data/align``
        (its ``aligner.pt`` and ``inventory.json``). Refuses a diffusion model trained on another codec."""
        from ns3.align.model import AlignerModel
        from ns3.codec.checkpoint import load_codec
        from ns3.diffusion.checkpoint import load_diffusion
        from ns3.text.inventory import PhoneInventory

        align_dir = Path(align_dir)
        if not (align_dir / "aligner.pt").is_file():
            raise FileNotFoundError(f"{align_dir / 'aligner.pt'} not found: TTS prompts are aligned by the align "
                                    "stage's built-in aligner (run `ns3 align` with align.backend=builtin)")
        model, _ = load_diffusion(diffusion_path, codec_path=codec_path)
        return cls(load_codec(codec_path).eval(), model, AlignerModel.load(align_dir / "aligner.pt"),
                   PhoneInventory.load(align_dir / "inventory.json"), voice)

    def prompts(self, audios: Sequence[np.ndarray], texts: Sequence[str | None] | None = None,
                phones: Sequence[Sequence[str] | None] | None = None) -> list[SpeechPrompt]:
        return prepare_prompts(self.codec, self.aligner, self.inventory, audios, texts=texts, phones=phones,
                               voice=self.voice)

    def _target(self, r: TTSRequest) -> tuple[list[str], np.ndarray]:
        if r.phones is not None:
            phones = list(r.phones)
            return phones, np.asarray(self.inventory.encode(phones), np.int64)
        if not r.text:
            raise ValueError("a TTS request needs a text or a phone sequence")
        return target_phones(r.text, self.inventory, self.voice)

    def decode(self, codes: np.ndarray, timbre: np.ndarray) -> np.ndarray:
        """Frame codes [L, F] + timbre [D] -> [F * hop] float32."""
        from ns3.codec.codes import FactorCodes

        hp = self.codec.hp
        with torch.inference_mode():
            c = FactorCodes.from_stacked(torch.as_tensor(np.asarray(codes, np.int64))[None], hp.codebooks["prosody"], hp.codebooks["content"])
            return self.codec.decode(c, torch.as_tensor(np.asarray(timbre, np.float32))[None])[0].numpy()

    def synthesize(self, requests: Sequence[TTSRequest], config: GenerationConfig = GenerationConfig(),
                   seed: int = 0, batch_size: int = 1) -> list[Synthesis]:
        """One ``Synthesis`` per request, in order; item i draws from its own generator (seed + i), so its
        output does not depend on the batch it falls in."""
        out: list[Synthesis] = []
        for start in range(0, len(requests), batch_size):
            chunk = requests[start:start + batch_size]
            targets = [self._target(r) for r in chunk]
            prompts = [{role: r.role(role).utterance() for role in PROMPT_ROLES} for r in chunk]
            gens = [torch.Generator().manual_seed(seed + start + i) for i in range(len(chunk))]
            t0 = time.perf_counter()
            g = generate(self.model, [torch.as_tensor(ids) for _, ids in targets], prompts, config, gens)
            wavs = [self.decode(codes.numpy(), (r.timbre_prompt or r.prompt).timbre) for r, codes in zip(chunk, g.codes)]
            seconds = time.perf_counter() - t0
            audio = sum(len(w) for w in wavs) / self.codec.hp.sample_rate
            for (phones, _), w, codes, durs in zip(targets, wavs, g.codes, g.durations):
                share = seconds * len(w) / self.codec.hp.sample_rate / max(audio, 1e-9)
                out.append(Synthesis(w.astype(np.float32), phones, durs.numpy(), codes.numpy(), g.nfe, share,
                                     seconds / max(audio, 1e-9)))
        return out

    def convert_voice(self, source: np.ndarray, prompt: np.ndarray) -> np.ndarray:
        """Zero-shot VC (the codec's): the source's prosody and content codes in the prompt's timbre, [T_source]."""
        with torch.inference_mode():
            return self.codec.convert_voice(torch.as_tensor(source)[None], torch.as_tensor(prompt)[None])[0].numpy()
