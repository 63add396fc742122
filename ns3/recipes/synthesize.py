"""The ``synthesize`` stage as a library function: test lists -> prompts -> generated speech, with its references.

For every item of every protocol list (``ns3.tts.protocols``) it writes, under ``<out>/<protocol>/``:
- ``generated/<id>.wav`` (the configured sampler, 60 NFE by default) and, for the LibriSpeech lists when asked,
  ``generated_one_step/<id>.wav`` (15 NFE, paper Table 10);
- ``resynthesis/<id>.wav``: the codec's encode -> decode of the target recording (the ceiling this codec allows);
- ``ground_truth/<id>.wav``, ``prompt/<id>.wav`` (the clip the model saw) and ``prompt_resynthesis/<id>.wav``
  (that clip through the codec: SIM-R's reference);
- RAVDESS: ``candidates/<key>.wav``, the same actor's recordings of the target statement in every emotion (MCD-Acc);
- ``items.jsonl``: the list item + the snapped prompt clip, how its phones were obtained, per system NFE / RTF.
One item that cannot be prepared (its prompt does not align, its audio is unreadable) is skipped with its
reason into ``skipped.jsonl``; counts reconcile (listed = synthesized + skipped). The folder is built under a
temporary name and swapped in whole, so a crash never leaves half a stage output.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np
from tqdm import tqdm

from ns3.audio import load_audio, write_audio
from ns3.diffusion.generate import GenerationConfig
from ns3.tts.engine import TTSRequest
from ns3.tts.prompt import clip_prompt
from ns3.tts.protocols import LIBRISPEECH, PoolUtterance, TestItem, write_list

log = logging.getLogger(__name__)
GENERATED, ONE_STEP, RESYNTHESIS = "generated", "generated_one_step", "resynthesis"
GROUND_TRUTH, PROMPT, PROMPT_RESYNTHESIS, CANDIDATES = "ground_truth", "prompt", "prompt_resynthesis", "candidates"
ITEMS_FILE, SKIPPED_FILE, SUMMARY_FILE = "items.jsonl", "skipped.jsonl", "summary.json"


class AudioStore:
    """Audio of pool utterances by key: from the shard named in ``source`` (read once per shard) or a file."""

    def __init__(self, pool: Sequence[PoolUtterance], shard_dir: Path | None) -> None:
        self.by_key = {u.key: u for u in pool}
        self.shard_dir = shard_dir
        self._cache: dict[str, np.ndarray] = {}

    def __call__(self, key: str) -> np.ndarray:
        if key not in self._cache:
            u = self.by_key[key]
            if u.source.endswith(".tar"):
                from ns3.data.shards import iter_shard

                if self.shard_dir is None:
                    raise ValueError(f"{key}: its audio is in shard {u.source}, but no shard folder was given")
                wanted = {k for k, v in self.by_key.items() if v.source == u.source}
                for s in iter_shard(self.shard_dir / u.source):
                    if s.key in wanted:
                        self._cache[s.key] = s.audio.astype(np.float32)
                if key not in self._cache:
                    raise KeyError(f"{key}: not in shard {self.shard_dir / u.source}")
            else:
                self._cache[key] = load_audio(u.source)
        return self._cache[key]


@dataclass
class SynthesizeResult:
    out_dir: Path
    listed: dict[str, int] = field(default_factory=dict)
    synthesized: dict[str, int] = field(default_factory=dict)
    skipped: list[dict] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)  # synth/<protocol>/<system>/{rtf,nfe}


def system_configs(config: GenerationConfig, protocol: str, one_step: bool) -> dict[str, GenerationConfig]:
    """The sampler settings per generated system: the configured one, plus one-step on the LibriSpeech lists."""
    out = {GENERATED: config}
    if one_step and protocol == LIBRISPEECH:
        out[ONE_STEP] = config.one_step()
    return out


def synthesize_lists(engine, lists: Mapping[str, Sequence[TestItem]], audio: Mapping[str, Callable[[str], np.ndarray]],
                     out_dir: str | Path, config: GenerationConfig, *, one_step: bool = True, seed: int = 0,
                     batch_size: int = 1) -> SynthesizeResult:
    """``audio[protocol](key)`` -> [T] float32 16 kHz of a list's target, prompt and candidate keys."""
    out_dir = Path(out_dir)
    tmp = out_dir.with_name(f".{out_dir.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    result = SynthesizeResult(out_dir)
    hp = engine.codec.hp
    for protocol, items in lists.items():
        pdir = tmp / protocol
        write_list(tmp / "lists" / f"{protocol}.jsonl", items)
        result.listed[protocol] = len(items)
        load = audio[protocol]
        ready: list[tuple[TestItem, object, dict]] = []
        for it in tqdm(items, desc=f"prompts {protocol}", leave=False):
            try:
                full = engine.prompts([load(it.prompt_key)], texts=[it.prompt_text])[0]
                clip = clip_prompt(full, it.prompt_start, it.prompt_seconds, hp.hop_length, hp.frame_rate)
                target = load(it.target_key)
            except (ValueError, KeyError, OSError, RuntimeError) as e:
                result.skipped.append({"protocol": protocol, "id": it.id, "reason": type(e).__name__, "detail": str(e)})
                continue
            row = {**it.to_json(), "prompt_clip_seconds": round(len(clip.audio) / hp.sample_rate, 3),
                   "prompt_phones": clip.phones, "prompt_phones_source": clip.phones_source, "systems": {}}
            write_audio(pdir / PROMPT / f"{it.id}.wav", clip.audio)
            write_audio(pdir / PROMPT_RESYNTHESIS / f"{it.id}.wav", engine.decode(clip.codes, clip.timbre))
            write_audio(pdir / GROUND_TRUTH / f"{it.id}.wav", target)
            write_audio(pdir / RESYNTHESIS / f"{it.id}.wav", _resynthesize(engine, target))
            for emotion, key in it.candidates.items():
                if not (pdir / CANDIDATES / f"{key}.wav").exists():
                    write_audio(pdir / CANDIDATES / f"{key}.wav", load(key))
            ready.append((it, clip, row))
        requests = [TTSRequest(clip, text=it.target_text) for it, clip, _ in ready]
        for system, cfg in system_configs(config, protocol, one_step).items():
            outs = []
            for start in tqdm(range(0, len(requests), batch_size), desc=f"{system} {protocol}", leave=False):
                outs += engine.synthesize(requests[start:start + batch_size], cfg, seed=seed + start, batch_size=batch_size)
            secs = audio_secs = 0.0
            for (it, _, row), s in zip(ready, outs):
                write_audio(pdir / system / f"{it.id}.wav", s.wav)
                audio_seconds = len(s.wav) / hp.sample_rate
                row["systems"][system] = {"nfe": s.nfe, "rtf": round(s.rtf, 4), "seconds": round(s.seconds, 4),
                                          "audio_seconds": round(audio_seconds, 4), "frames": int(s.codes.shape[1])}
                secs, audio_secs = secs + s.seconds, audio_secs + audio_seconds
            if outs:
                result.metrics[f"synth/{protocol}/{system}/rtf"] = secs / max(audio_secs, 1e-9)
                result.metrics[f"synth/{protocol}/{system}/nfe"] = float(outs[0].nfe)
        pdir.mkdir(parents=True, exist_ok=True)
        (pdir / ITEMS_FILE).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for _, _, r in ready),
                                       encoding="utf-8")
        result.synthesized[protocol] = len(ready)
    for p, n in result.listed.items():  # every listed item is either synthesized or skipped with its reason
        skipped = sum(s["protocol"] == p for s in result.skipped)
        if n != result.synthesized[p] + skipped:
            raise AssertionError(f"synthesize {p}: {n} listed != {result.synthesized[p]} synthesized + {skipped} skipped")
    (tmp / SKIPPED_FILE).write_text("".join(json.dumps(s) + "\n" for s in result.skipped), encoding="utf-8")
    summary = {"listed": result.listed, "synthesized": result.synthesized, "skipped": len(result.skipped),
               "metrics": result.metrics}
    (tmp / SUMMARY_FILE).write_text(json.dumps(summary, indent=1, sort_keys=True))
    if out_dir.exists():
        old = out_dir.with_name(f".{out_dir.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(out_dir, old)
        os.replace(tmp, out_dir)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, out_dir)
    return result


def _resynthesize(engine, audio: np.ndarray) -> np.ndarray:
    import torch

    with torch.inference_mode():
        enc = engine.codec.encode(torch.as_tensor(audio)[None])
        return engine.codec.decode(enc.codes, enc.timbre)[0, : len(audio)].numpy()


def ravdess_pool(style_root: str | Path) -> list[PoolUtterance]:
    """The RAVDESS-layout style set (the embedded corpus's, or a real RAVDESS root), speech files only."""
    from ns3.corpus.readers.ravdess import read_ravdess
    from ns3.tts.protocols import raw_pool

    return raw_pool(read_ravdess(style_root).kept)

