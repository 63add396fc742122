"""Do generated codes decode to speech? Zero-shot TTS on the held-out test speakers, with its baselines.

For each test speaker, pairs (prompt utterance, target utterance) of that speaker: the prompt is the first
``prompt_seconds`` of the prompt utterance (cut at a phone boundary), the target text is the target
utterance's aligned phones. The diffusion model generates the target's codes from the prompt's
attributes; the codec decodes them with the prompt's timbre. Scored, with the same recogniser and
speaker encoder, beside
- ``resynthesis``: the codec's own encode -> decode of the target (codes from the code shards, its own timbre),
- ``ground_truth``: the target's recorded audio;
- phone error rate (the align stage's recogniser; references = the G2P phones of the target text) and
  Resemblyzer similarity to the prompt's recorded audio (SIM-O).
Metric keys: ``gen/<system>/per``, ``gen/<system>/sim_o``; plus ``gen/nfe`` and ``gen/rtf`` (generation +
decoding time / generated audio time).
"""
from __future__ import annotations

import time
from collections import defaultdict
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ns3.diffusion.generate import GenerationConfig, PromptUtterance, generate

SYSTEMS = ("generated", "resynthesis", "ground_truth")


def _prompt_cut(u, max_frames: int) -> PromptUtterance:
    """The first phones of ``u`` whose frames fit in ``max_frames`` (at least one phone)."""
    ends = np.cumsum(u.durations)
    k = max(1, int(np.searchsorted(ends, max_frames, side="right")))
    f = int(ends[k - 1])
    t = lambda a: torch.as_tensor(np.asarray(a, dtype=np.int64))  # noqa: E731
    return PromptUtterance(t(u.phone_ids[:k]), t(u.durations[:k]), t(u.phone_prosody[:k]), t(u.codes[:, :f]))


def make_pairs(utterances: Sequence, n: int, seed: int) -> list[tuple]:
    """Up to ``n`` (prompt, target) pairs, each within one speaker, spread over the speakers round-robin."""
    by_spk: dict[str, list] = defaultdict(list)
    for u in utterances:
        by_spk[u.speaker].append(u)
    rng = np.random.default_rng(seed)
    queues = []
    for spk in sorted(by_spk):
        us = by_spk[spk]
        if len(us) < 2:
            continue
        order = rng.permutation(len(us))
        queues.append([(us[order[i]], us[order[(i + 1) % len(us)]]) for i in range(len(us))])
    pairs = []
    while len(pairs) < n and any(queues):
        for q in queues:
            if q and len(pairs) < n:
                pairs.append(q.pop(0))
    return pairs


def check_generation(codec, model, test_code_shards: Sequence[Path], test_audio_shards: Sequence[Path], *,
                     recognize, n_pairs: int, config: GenerationConfig, prompt_seconds: float = 3.0,
                     batch_size: int = 8, seed: int = 0) -> dict[str, float]:
    from evaluation.metrics import build_metric
    from ns3.codec.codes import FactorCodes
    from ns3.data.code_shards import iter_code_shard
    from ns3.data.shards import iter_shard
    from ns3.text.g2p import g2p

    utts = [u for s in test_code_shards for u in iter_code_shard(s)]
    pairs = make_pairs(utts, n_pairs, seed)
    if not pairs:
        return {}
    wanted = {u.key for pair in pairs for u in pair}
    audio = {s.key: s for shard in test_audio_shards for s in iter_shard(shard) if s.key in wanted}
    hp = codec.hp
    n_p, n_c = hp.codebooks["prosody"], hp.codebooks["content"]
    wavs: dict[str, list[np.ndarray]] = {s: [] for s in SYSTEMS}
    gen_seconds, audio_seconds, nfe = 0.0, 0.0, 0
    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start:start + batch_size]
        prompts = [{"prosody": _prompt_cut(p, int(prompt_seconds * hp.frame_rate))} for p, _ in chunk]
        phones = [torch.as_tensor(np.asarray(t.phone_ids, dtype=np.int64)) for _, t in chunk]
        gens = [torch.Generator().manual_seed(seed + start + i) for i in range(len(chunk))]
        t0 = time.perf_counter()
        out = generate(model, phones, prompts, config, gens)
        with torch.inference_mode():
            for (p, t), codes in zip(chunk, out.codes):
                timbre = torch.as_tensor(np.asarray(p.timbre, dtype=np.float32))[None]
                wav = codec.decode(FactorCodes.from_stacked(codes[None], n_p, n_c), timbre)[0].numpy()
                wavs["generated"].append(wav)
                audio_seconds += len(wav) / hp.sample_rate
        gen_seconds += time.perf_counter() - t0
        nfe = out.nfe
        with torch.inference_mode():
            for _, t in chunk:
                codes = torch.as_tensor(np.asarray(t.codes, dtype=np.int64))[None]
                timbre = torch.as_tensor(np.asarray(t.timbre, dtype=np.float32))[None]
                wavs["resynthesis"].append(codec.decode(FactorCodes.from_stacked(codes, n_p, n_c), timbre)[0].numpy())
                wavs["ground_truth"].append(audio[t.key].audio.astype(np.float32))
    refs = [g2p(audio[t.key].text).phones for _, t in pairs]
    prompt_audio = [audio[p.key].audio.astype(np.float32) for p, _ in pairs]
    per = build_metric("per", recognize=recognize)
    sim = build_metric("sim_resemblyzer")
    result: dict[str, float] = {"gen/pairs": float(len(pairs)), "gen/nfe": float(nfe),
                                "gen/rtf": gen_seconds / max(audio_seconds, 1e-9)}
    for system, ws in wavs.items():
        r = per.score_corpus(zip(ws, refs))
        if r.value is not None:
            result[f"gen/{system}/per"] = float(r.value)
        s = sim.score_corpus(zip(prompt_audio, ws))
        if s.value is not None:
            result[f"gen/{system}/sim_o"] = float(s.value)
    return result
