"""eval_tts.json documents in evaluate_tts's layout: a baseline, three ablation variants, another profile."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import soundfile as sf

from evaluation.report.reference import RAVDESS_EMOTIONS

LIBRISPEECH_KEYS = ("sim_o", "sim_r", "per", "per_utt_mean", "wer", "wer_utt_mean", "wer_utt_mean_capped",
                    "sim_o_wavlm_tdnn", "sim_r_wavlm_tdnn", "utmos", "dnsmos_ovrl", "dnsmos_p808")


def _system(**values: float | None) -> dict[str, float | None]:
    """One system block with every schema key; unspecified ones are null (not evaluated)."""
    return {**{k: None for k in LIBRISPEECH_KEYS}, **values}


def _librispeech(gen_sim: float, gen_per: float) -> dict:
    return {
        "items": 16, "speakers": 4, "list": "lists/librispeech.jsonl",
        "systems": {
            "generated": _system(sim_o=gen_sim, sim_r=gen_sim + 0.02, per=gen_per, per_utt_mean=gen_per + 0.01,
                                 rtf=0.72, nfe=60),
            "generated_one_step": _system(sim_o=gen_sim - 0.04, sim_r=gen_sim - 0.02, per=gen_per + 0.06, rtf=0.2,
                                          nfe=15),
            "resynthesis": _system(sim_o=0.81, sim_r=0.83, per=0.60),
            "ground_truth": _system(sim_o=0.85, per=0.223),
        },
        "reasons": {"generated/wer": "no Whisper checkpoint configured (evaluate.whisper_checkpoint)",
                    "ground_truth/sim_r": "the ground truth has no codec-reconstructed prompt"},
    }


def _ravdess(mcd: float, acc: float) -> dict:
    emotions = {f"mcd/{e}": round(mcd + 0.1 * i, 2) for i, e in enumerate(RAVDESS_EMOTIONS)}
    return {"items": 64, "speakers": 4,
            "systems": {"generated": {"mcd": mcd, "mcd_acc": acc, **emotions, "sim_o": 0.7, "rtf": 0.5, "nfe": 60},
                        "resynthesis": {"mcd": 3.9, "mcd_acc": 0.6, **{k: v - 2 for k, v in emotions.items()}},
                        "ground_truth": {"mcd": 0.0, "mcd_acc": 1.0}},
            "reasons": {}}


BASELINE = {
    "variant": {"name": "baseline", "overrides": {}},
    "profile": "mini",
    "codec_hparams": {"factorized": True, "prosody_input": "v1"},
    "diffusion_hparams": {"duration_objective": "ce", "duration_uses_prosody": True, "duration_uses_prompt": True},
    "sample": {"steps": 4, "duration_steps": 4, "use_cfg": True},
    "models": {"sim": "Resemblyzer", "sim_wavlm_tdnn": None, "per": "ns3 aligner phone loop", "wer": None,
               "mos": None},
    "protocols": {"librispeech": _librispeech(0.78, 0.64), "librispeech_valle": _librispeech(0.76, 0.62),
                  "ravdess": _ravdess(6.1, 0.31)},
    "samples": [{"protocol": "librispeech", "id": "spk1-utt3", "text": "a short sentence",
                 "prompt": "samples/spk1-utt3_prompt.wav", "target": "samples/spk1-utt3_target.wav",
                 "generated": "samples/spk1-utt3_generated.wav"}],
    "metric_notes": {"per": "phone loop of the built-in aligner"},
}


def variant(name: str, settings: dict[str, dict], profile: str = "mini", librispeech: tuple | None = None,
            ravdess: tuple | None = None) -> dict:
    """A copy of the baseline with other settings (block -> values) and numbers."""
    data = copy.deepcopy(BASELINE)
    data["variant"] = {"name": name, "overrides": {}}
    data["profile"] = profile
    for block, values in settings.items():
        data[block].update(values)
    if librispeech:
        data["protocols"]["librispeech"] = _librispeech(*librispeech)
    if ravdess:
        data["protocols"]["ravdess"] = _ravdess(*ravdess)
    return data


# Directions against the baseline (Sim-O 0.78, PER 64 %, MCD 6.1, MCD-Acc 0.31):
NO_CFG = variant("no-cfg", {"sample": {"use_cfg": False, "steps": 8}}, librispeech=(0.70, 0.66))  # Sim down: ✓
DURATION_L2 = variant("duration-l2", {"diffusion_hparams": {"duration_objective": "l2"}},
                      librispeech=(0.80, 0.70))  # Sim up: ✗; PER up: ✓
PROSODY_V2 = variant("prosody-v2", {"codec_hparams": {"prosody_input": "v2"}}, ravdess=(6.4, 0.35))  # MCD ✓, acc ✗
PAPER_BASELINE = variant("baseline", {}, profile="paper", librispeech=(0.55, 0.05))


def write_eval_dir(root: Path, data: dict) -> Path:
    """eval_tts.json under ``root`` with the sample audio it points to."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for sample in data.get("samples", []):
        for role in (r for r in ("prompt", "target", "generated") if r in sample):
            path = root / sample[role]
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(path, 0.1 * rng.standard_normal(1600).astype(np.float32), 16000)
    path = root / "eval_tts.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path
