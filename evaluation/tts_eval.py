"""Zero-shot TTS evaluation of the ``synthesize`` stage's output, the way the paper scores it (§4.1), offline.

Per protocol and system (``generated``, ``generated_one_step``, ``resynthesis``, ``ground_truth``):
- ``sim_o`` / ``sim_r``: speaker similarity to the prompt clip the model saw / to that clip's codec
  resynthesis (Resemblyzer, always; the paper used WavLM-TDNN); ``*_wavlm_tdnn`` with the paper's model (a local
  UniSpeech ``wavlm_large_finetune.pth``); ``*_wavlm`` with a WavLM x-vector checkpoint;
- ``per`` (+ ``per_utt_mean``, ``per_utt_mean_capped``): the align stage's phone recogniser against the G2P of
  the target text. It is the primary intelligibility measure on the embedded corpus (real ASR fails on
  formant-synthesized speech, ``shared notes/offline_evaluators.md``); the ground-truth row is its floor;
- ``wer`` (+ capped mean) with the configured ASR (HuBERT-CTC, the paper's, else Whisper: openai-whisper for a
  ``.pt``, faster-whisper for a CTranslate2 directory); unavailable without;
- ``utmos`` with a UTMOS checkpoint; ``dnsmos_*`` only when asked (never in a UTMOS column);
- ``rtf`` / ``nfe`` of the generated systems (from the synthesis stage's timing);
- RAVDESS: ``mcd`` (DTW mel-cepstral distortion to the same actor's recording of the target statement in the
  same emotion; the average and ``mcd/<emotion>``) and ``mcd_acc`` (1-NN emotion classification by MCD over
  the 8 emotions; chance 1/8).
The document's layout is the report's input (``evaluation/report/tts_collect.py``); MLflow keys are
``tts/<protocol>/<system>/<metric>``.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from evaluation.metrics import build_metric, build_whisper_wer
from ns3.audio import load_audio
from ns3.recipes.synthesize import (CANDIDATES, GENERATED, GROUND_TRUTH, ITEMS_FILE, ONE_STEP, PROMPT,
                                    PROMPT_RESYNTHESIS, RESYNTHESIS)
from ns3.tts.protocols import RAVDESS, RAVDESS_EMOTIONS

SYSTEMS = (GENERATED, ONE_STEP, RESYNTHESIS, GROUND_TRUTH)
RESULT_FILE = "eval_tts.json"
# The paper's TTS similarity model (UniSpeech WavLM-Large + ECAPA-TDNN) scores only from a local checkpoint.
WAVLM_TDNN_MISSING = ("no WavLM-TDNN checkpoint configured: set evaluate.wavlm_tdnn_checkpoint to a local UniSpeech "
                      "wavlm_large_finetune.pth (the paper's SIM model; weights are never downloaded)")
SAMPLE_SYSTEMS = (PROMPT, GROUND_TRUTH, GENERATED)


def _value(res) -> float | None:
    return None if res.value is None or not math.isfinite(res.value) else round(float(res.value), 4)


def _extras(res, row: dict, names: tuple[str, ...]) -> None:
    for k in names:
        v = res.extras.get(k)
        row[k] = None if v is None else round(float(v), 4)


class Scorers:
    """The metric objects, built once from plain arguments (paths and callables)."""

    def __init__(self, recognize: Callable | None, whisper_checkpoint: str | None = None,
                 hubert_checkpoint: str | None = None, wavlm_checkpoint: str | None = None,
                 utmos_checkpoint: str | None = None, dnsmos: bool = False,
                 wavlm_tdnn_checkpoint: str | None = None) -> None:
        self.sim = build_metric("sim_resemblyzer")
        # None when not configured: its columns then carry WAVLM_TDNN_MISSING, which names the param to set
        self.sim_wavlm_tdnn = (build_metric("sim_wavlm_tdnn", checkpoint=wavlm_tdnn_checkpoint)
                               if wavlm_tdnn_checkpoint else None)
        self.sim_wavlm = build_metric("sim_wavlm", checkpoint=wavlm_checkpoint)
        self.per = build_metric("per", recognize=recognize)
        if hubert_checkpoint:
            self.wer, self.wer_model = build_metric("wer_hubert", checkpoint=hubert_checkpoint), f"HuBERT-CTC ({hubert_checkpoint})"
        else:
            # a .pt file runs openai-whisper, a CTranslate2 directory faster-whisper; the label names which
            self.wer, self.wer_model = build_whisper_wer(whisper_checkpoint)
        self.utmos = build_metric("utmos", checkpoint=utmos_checkpoint)
        self.dnsmos = build_metric("dnsmos") if dnsmos else None
        self.mcd_acc = build_metric("mcd_acc")
        self.models = {"sim": "Resemblyzer",
                       "sim_wavlm_tdnn": (f"WavLM-Large + ECAPA-TDNN, UniSpeech speaker verification "
                                          f"({wavlm_tdnn_checkpoint})" if wavlm_tdnn_checkpoint else None),
                       "sim_wavlm": "WavLM-base-plus-sv" if wavlm_checkpoint else None,
                       "per": "ns3 aligner phone loop" if recognize else None, "wer": self.wer_model,
                       "mos": f"UTMOS ({utmos_checkpoint})" if utmos_checkpoint else None,
                       "dnsmos": "DNSMOS P.835/P.808 (speechmos)" if dnsmos else None}


def _score_system(sc: Scorers, wavs: list[np.ndarray], prompts: list[np.ndarray], prompt_resyn: list[np.ndarray],
                  texts: list[str], phones: list[list[str]], reasons: dict, system: str) -> dict[str, Any]:
    row: dict[str, Any] = {}

    def put(key: str, res, extras: tuple[str, ...] = ()) -> None:
        row[key] = _value(res)
        _extras(res, row, extras)
        if row[key] is None:
            reasons[f"{system}/{key}"] = res.reason

    put("sim_o", sc.sim.score_corpus(zip(prompts, wavs)))
    put("sim_r", sc.sim.score_corpus(zip(prompt_resyn, wavs)))
    for key, refs in (("sim_o_wavlm_tdnn", prompts), ("sim_r_wavlm_tdnn", prompt_resyn)):
        if sc.sim_wavlm_tdnn is None:
            row[key] = None
            reasons[f"{system}/{key}"] = WAVLM_TDNN_MISSING
        else:
            put(key, sc.sim_wavlm_tdnn.score_corpus(zip(refs, wavs)))
    put("sim_o_wavlm", sc.sim_wavlm.score_corpus(zip(prompts, wavs)))
    put("sim_r_wavlm", sc.sim_wavlm.score_corpus(zip(prompt_resyn, wavs)))
    put("per", sc.per.score_corpus(zip(wavs, phones)), ("per_utt_mean", "per_utt_mean_capped"))
    wer = sc.wer.score_corpus(zip(wavs, texts))
    put("wer", wer)
    # the row says "wer" whichever ASR scored it, but its extras carry the metric's own name (wer_hubert_utt_mean)
    for k in ("utt_mean", "utt_mean_capped"):
        v = wer.extras.get(f"{wer.name}_{k}")
        row[f"wer_{k}"] = None if v is None else round(float(v), 4)
    put("utmos", sc.utmos.score_corpus(wavs))
    if sc.dnsmos is not None:
        res = sc.dnsmos.score_corpus(wavs)
        row["dnsmos_ovrl"] = _value(res)
        for k in ("dnsmos_sig", "dnsmos_bak", "dnsmos_p808"):
            row[k] = None if res.extras.get(k) is None else round(float(res.extras[k]), 4)
    return row


def _ravdess(sc: Scorers, items: list[dict], wavs: list[np.ndarray], cands: Mapping[str, np.ndarray]) -> dict:
    """Average and per-emotion MCD to the same emotion's recording, and MCD-Acc over the 8 emotions."""
    row: dict[str, Any] = {}
    acc = sc.mcd_acc.score_corpus((w, it["emotion"], {e: cands[k] for e, k in it["candidates"].items()})
                                  for it, w in zip(items, wavs))
    row["mcd_acc"] = _value(acc)
    row["mcd"] = None if acc.extras.get("mcd_target_mean") is None else round(float(acc.extras["mcd_target_mean"]), 4)
    for emotion in RAVDESS_EMOTIONS:
        got = [float(v.detail["mcd"]) for it, v in zip(items, acc.per_utterance) if it["emotion"] == emotion and v.available]
        row[f"mcd/{emotion}"] = round(float(np.mean(got)), 4) if got else None
    return row


def read_items(pdir: Path) -> list[dict]:
    """The synthesize stage's rows of one protocol folder."""
    return [json.loads(x) for x in (pdir / ITEMS_FILE).read_text(encoding="utf-8").splitlines() if x.strip()]


def evaluate_protocol(sc: Scorers, pdir: Path, items: list[dict]) -> dict[str, Any]:
    from ns3.text.g2p import g2p

    if not items:
        return {"items": 0, "speakers": 0, "systems": {}, "reasons": {"*": "no synthesized items"}}
    read = lambda sub, it: load_audio(pdir / sub / f"{it['id']}.wav")  # noqa: E731
    prompts = [read(PROMPT, it) for it in items]
    prompt_resyn = [read(PROMPT_RESYNTHESIS, it) for it in items]
    texts = [it["target_text"] for it in items]
    phones = [g2p(t).phones for t in texts]
    reasons: dict[str, str] = {}
    systems: dict[str, dict] = {}
    is_ravdess = items[0]["protocol"] == RAVDESS
    cands = ({k: load_audio(pdir / CANDIDATES / f"{k}.wav") for it in items for k in it["candidates"].values()}
             if is_ravdess else {})
    for system in SYSTEMS:
        if not all((pdir / system / f"{it['id']}.wav").exists() for it in items):
            continue
        wavs = [read(system, it) for it in items]
        row = _score_system(sc, wavs, prompts, prompt_resyn, texts, phones, reasons, system)
        if is_ravdess:
            row.update(_ravdess(sc, items, wavs, cands))
        timing = [it["systems"][system] for it in items if system in it.get("systems", {})]
        if timing:
            secs = sum(t["seconds"] for t in timing)
            audio = sum(t["audio_seconds"] for t in timing)
            row["rtf"], row["nfe"] = round(secs / max(audio, 1e-9), 4), timing[0]["nfe"]
        systems[system] = row
    return {"items": len(items), "speakers": len({it["speaker"] for it in items}),
            "list": f"lists/{items[0]['protocol']}.jsonl", "systems": systems, "reasons": reasons}


def evaluate_tts(synth_dir: str | Path, out_dir: str | Path, scorers: Scorers, *, variant: str, profile: str,
                 overrides: Mapping[str, Any], hparams: Mapping[str, Any], samples: int = 3) -> dict:
    """Score every protocol folder of ``synth_dir``; write ``out_dir/eval_tts.json`` (+ audio samples)."""
    import shutil

    synth_dir, out_dir = Path(synth_dir), Path(out_dir)
    protocols = sorted(p.name for p in synth_dir.iterdir() if (p / ITEMS_FILE).is_file())
    if not protocols:
        raise FileNotFoundError(f"{synth_dir}: no synthesized protocol (no */{ITEMS_FILE}); run `ns3 synthesize`")
    out_dir.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {"variant": {"name": variant, "overrides": dict(overrides)}, "profile": profile,
                              **{k: dict(v) for k, v in hparams.items()}, "models": scorers.models,
                              "protocols": {}, "samples": [], "metric_notes": {
                                  "per": "phone error rate of the align stage's recogniser vs the G2P of the target "
                                         "text; ground_truth is the recogniser's floor on real recordings",
                                  "sim": "Resemblyzer cosine (the paper: WavLM-TDNN; not comparable in value)",
                                  "sim_wavlm_tdnn": "cosine of the paper's WavLM-Large + ECAPA-TDNN embeddings "
                                                    "(UniSpeech wavlm_large_finetune.pth), comparable to its SIM",
                                  "mcd_acc": "1-NN emotion accuracy by MCD over the 8 emotions (chance 0.125)"}}
    for protocol in protocols:
        items = read_items(synth_dir / protocol)
        result["protocols"][protocol] = evaluate_protocol(scorers, synth_dir / protocol, items)
        for it in items[:samples]:
            entry = {"protocol": protocol, "id": it["id"], "text": it["target_text"]}
            for system in SAMPLE_SYSTEMS:
                src = synth_dir / protocol / system / f"{it['id']}.wav"
                dst = out_dir / "samples" / protocol / f"{it['id']}_{system}.wav"
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, dst)
                entry["target" if system == GROUND_TRUTH else system] = str(dst.relative_to(out_dir))
            result["samples"].append(entry)
    tmp = out_dir / f".{RESULT_FILE}.tmp"
    tmp.write_text(json.dumps(result, indent=1, sort_keys=True))
    os.replace(tmp, out_dir / RESULT_FILE)
    return result


def flat_metrics(result: Mapping[str, Any]) -> dict[str, float]:
    """``tts/<protocol>/<system>/<metric>`` for MLflow (unavailable values left out, never zero-filled)."""
    out = {}
    for protocol, block in result["protocols"].items():
        for system, row in block["systems"].items():
            for k, v in row.items():
                if isinstance(v, (int, float)) and not isinstance(v, bool) and v is not None:
                    out[f"tts/{protocol}/{system}/{k}"] = float(v)
    return out
