"""Metrics JSON in the evaluate stage's layout: a baseline and one variant per ablation (shared test data)."""
from __future__ import annotations

import copy
import json
from pathlib import Path

HPARAMS = {"information_bottleneck": True, "use_detail": True, "prosody_input": "v1", "codebook_dim": 8,
           "codebook_size": 1024, "hop_length": 200, "sample_rate": 16000, "num_codebooks": 6}

BASELINE = {
    "variant": {"name": "baseline", "overrides": {}, "codec_hparams": HPARAMS},
    "reconstruction": {
        "ns3-facodec": {"pesq_wb": 2.1, "pesq_nb": 2.6, "stoi": 0.834, "mstft": 1.2, "mcd": 4.1,
                        "bitrate_kbps": 4.8, "utterances": 40,
                        "per": 0.31, "per_reference": 0.22},
        "opus-6k": {"pesq_wb": 1.5, "pesq_nb": 2.0, "stoi": 0.79, "mstft": None, "mcd": 5.3, "bitrate_kbps": 6.0},
    },
    "unavailable": {"codec2-3.2k": "c2enc not found on PATH (apt-get install codec2)"},
    "vc": {"ns3-facodec": {"sim_o": 0.71, "sim_src": 0.64, "sim_o_own": 0.66, "f0_transfer": 0.42, "per": 0.29,
                            "wer": None, "pairs": 20}},
    "metric_notes": {"wer": "unavailable: no whisper checkpoint configured", "sim": "resemblyzer"},
    "samples": {"recon": [{"key": "spk1-utt1", "reference": "audio/ref.wav", "ns3-facodec": "audio/facodec.wav",
                           "opus-6k": "audio/opus.wav"}],
                "vc": [{"source": "audio/ref.wav", "prompt": "audio/opus.wav", "converted": "audio/facodec.wav"}]},
    "figures": {"spectrograms": "spec.png"},
    "disentanglement": {"probes": {"prosody": {"phone": 0.21, "speaker": 0.4, "f0": 0.81},
                                   "content": {"phone": 0.74, "speaker": 0.3, "f0": 0.12},
                                   "timbre": {"phone": 0.12, "speaker": 0.97, "f0": 0.05}},
                        "chance": {"phone": 0.11, "speaker": 0.06, "f0": 0.0}},
}


def variant(name: str, recon: dict[str, float | None], vc: dict[str, float | None],
            probes: dict[str, dict[str, float]] | None = None, **hparams) -> dict:
    """A copy of the baseline with other hparams and our codec's numbers (and probe scores) replaced."""
    data = copy.deepcopy(BASELINE)
    for group, scores in (probes or {}).items():
        data["disentanglement"]["probes"][group].update(scores)
    data["variant"] = {"name": name, "overrides": {f"codec.model.{k}": v for k, v in hparams.items()},
                       "codec_hparams": {**HPARAMS, **hparams}}
    data["reconstruction"]["ns3-facodec"].update(recon)
    data["vc"]["ns3-facodec"].update(vc)
    return data


# Without the bottleneck the content codes carry more of the speaker (as expected), the timbre vector less.
NO_BOTTLENECK = variant("no_bottleneck", {"pesq_wb": 2.3, "stoi": 0.85}, {"sim_o": 0.62},
                        {"content": {"speaker": 0.55}, "timbre": {"speaker": 0.9}}, information_bottleneck=False)
# Detail codebooks removed: PESQ and STOI drop as the paper expects, MCD goes the "wrong" way.
NO_DETAIL = variant("no_detail", {"pesq_wb": 1.7, "stoi": 0.80, "mstft": 1.4, "mcd": 3.9, "bitrate_kbps": 2.4},
                    {}, use_detail=False, num_codebooks=3)
PROSODY_V2 = variant("prosody_v2", {"pesq_wb": 2.0}, {"sim_o": None}, prosody_input="v2")


def write_json(path: Path, data: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")
    return path
