"""Codec evaluation on held-out speakers: reconstruction (ours vs classic codecs) and zero-shot VC.

Writes the JSON the report reads (see evaluation/report/collect.py), audio samples and a spectrogram
figure. Reconstruction metrics follow the paper's codec table (PESQ, STOI, MSTFT, MCD + bitrate);
VC pairs a source utterance with a prompt from another test speaker and scores speaker similarity to
the prompt (SIM-O) and to the source, plus intelligibility (PER from the pipeline's own phone
recogniser; WER when a Whisper checkpoint is configured). Each converted utterance has a control: the
same source codes decoded with the source's own timbre; similarities of the control (``*_own``) and the
pitch transfer (``evaluation/metrics/pitch_transfer.py``) separate the timbre swap from codec artefacts.
Speaker similarity is Resemblyzer's (``sim_*``, always available) and, with a WavLM checkpoint, also the
paper's VC model (``sim_o_wavlm``). With a UTMOS checkpoint every system's reconstructions and the
converted speech also get a predicted MOS (``utmos``).
"""
from __future__ import annotations

import json
import math
import os
import random
from pathlib import Path
from typing import Sequence

import numpy as np

from evaluation.baselines import classic_codecs
from evaluation.metrics import build_metric, build_whisper_wer
from evaluation.metrics.pitch_transfer import pitch_transfer
from ns3.audio import SAMPLE_RATE, log_mel, write_audio
from ns3.data.shards import ShardSample, iter_shard

OURS = "ns3-facodec"
RECON_METRICS = ("pesq_wb", "pesq_nb", "stoi", "mstft", "mcd", "f0_rmse")


def pick_test_utterances(shards: Sequence[Path], limit: int) -> list[ShardSample]:
    """Up to ``limit`` utterances, spread evenly over speakers (round robin, sorted keys): deterministic."""
    by_speaker: dict[str, list[ShardSample]] = {}
    for shard in shards:
        for s in iter_shard(shard):
            by_speaker.setdefault(s.speaker, []).append(s)
    for v in by_speaker.values():
        v.sort(key=lambda s: s.key)
    out: list[ShardSample] = []
    queues = [by_speaker[k] for k in sorted(by_speaker)]
    while len(out) < limit and any(queues):
        for q in queues:
            if q and len(out) < limit:
                out.append(q.pop(0))
    return out


def make_vc_pairs(utts: Sequence[ShardSample], n: int, seed: int) -> list[tuple[ShardSample, ShardSample]]:
    """(source, prompt) pairs with different speakers, drawn with a fixed seed."""
    rng = random.Random(f"vc-{seed}")
    if len({u.speaker for u in utts}) < 2:
        return []
    pairs = []
    while len(pairs) < n:
        src, prm = rng.choice(utts), rng.choice(utts)
        if src.speaker != prm.speaker:
            pairs.append((src, prm))
    return pairs


def match_length(wav: np.ndarray, n: int, hop: int, what: str) -> np.ndarray:
    """A codec's output ``[T']`` cut or zero-padded to the input's ``n`` samples, for sample-aligned metrics.

    The codec decodes whole frames: with input padding (``pad_input``) its output is up to one hop longer
    than the input, without it (the release's V1 framing) up to one hop shorter. A gap beyond one hop is
    not framing but a bug, and an error rather than something PESQ or STOI should silently cut away.
    """
    if abs(len(wav) - n) > hop:
        raise ValueError(f"{what}: {len(wav)} samples decoded for {n} input samples, more than one hop ({hop}) apart")
    return wav[:n] if len(wav) >= n else np.pad(wav, (0, n - len(wav)))


def _value(result) -> float | None:
    """A CorpusResult's headline number, rounded for the JSON; None when unavailable."""
    return None if result.value is None or not math.isfinite(result.value) else round(float(result.value), 4)


def _reconstruction(system_wavs: dict[str, list[np.ndarray]], refs: list[np.ndarray]) -> tuple[dict, dict]:
    metrics = {name: build_metric(name) for name in RECON_METRICS}
    out, reasons = {}, {}
    for system, wavs in system_wavs.items():
        row = {}
        for name, m in metrics.items():
            res = m.score_corpus(zip(refs, wavs))
            row[name] = _value(res)
            if res.value is None:
                reasons[f"{system}/{name}"] = res.reason
        row["utterances"] = len(wavs)
        out[system] = row
    return out, reasons


def phone_recognizer(aligner_dir: Path | None):
    if aligner_dir is None or not (aligner_dir / "aligner.pt").exists():
        return None
    from ns3.align.model import AlignerModel, recognize

    model = AlignerModel.load(aligner_dir / "aligner.pt")
    return lambda wav: recognize(model, wav)


def timbre_effect(converted: Sequence[np.ndarray], controls: Sequence[np.ndarray]) -> float | None:
    """Mean absolute log-mel difference between each conversion and its control (same codes, own timbre).

    A codec-independent check that the timbre input is used at all: whatever the codec's quality, decoding
    the same codes with another speaker's timbre must change the output.
    """
    diffs = [float(np.mean(np.abs(log_mel(c) - log_mel(k)))) for c, k in zip(converted, controls)]
    return round(float(np.mean(diffs)), 4) if diffs else None


def evaluate_codec(
    codec_checkpoint: str | Path,
    test_shards: Sequence[Path],
    out_dir: str | Path,
    *,
    max_utterances: int,
    vc_pairs: int,
    classic: bool,
    samples: int,
    aligner_dir: str | Path | None,
    whisper_checkpoint: str | None,
    wavlm_checkpoint: str | None,
    utmos_checkpoint: str | None,
    variant: str,
    overrides: dict,
    seed: int,
    probe_train_shards: Sequence[Path] = (),
    probe_utterances: int = 0,
) -> dict:
    """Evaluate one codec checkpoint; returns (and writes to ``out_dir/eval_codec.json``) the report JSON."""
    import torch

    from ns3.codec.checkpoint import load_codec

    out_dir = Path(out_dir)
    (out_dir / "samples").mkdir(parents=True, exist_ok=True)
    (out_dir / "figures").mkdir(parents=True, exist_ok=True)
    model = load_codec(codec_checkpoint).eval()
    hp = model.hp
    utts = pick_test_utterances(test_shards, max_utterances)
    if not utts:
        raise ValueError("no test utterances: the shard stage wrote no test-*.tar (check shard.splits)")
    refs = [u.audio for u in utts]

    # before any decoding: a checkpoint in neither Whisper format fails here, not after the reconstructions
    wer, wer_model = build_whisper_wer(whisper_checkpoint)  # .pt: openai-whisper; CTranslate2 dir: faster-whisper
    rtf = build_metric("rtf")
    ours = []
    with torch.inference_mode():
        for u in utts:
            with rtf.measure() as m:
                enc = model.encode(torch.from_numpy(u.audio)[None])
                wav = match_length(model.decode(enc.codes, enc.timbre)[0].numpy(), len(u.audio), hp.hop_length, u.key)
                m.audio_samples = len(u.audio)
            ours.append(wav.astype(np.float32))
    systems = {OURS: ours}
    unavailable: dict[str, str] = {}
    bitrates = {OURS: hp.frame_rate * sum(hp.codebooks.values()) * math.log2(hp.codebook_size) / 1000}
    if classic:
        for codec in classic_codecs():
            reason = codec.unavailable_reason()
            if reason:
                unavailable[codec.name] = reason
                continue
            systems[codec.name] = [codec.roundtrip(r) for r in refs]
            bitrates[codec.name] = codec.bitrate_kbps
    recon, reasons = _reconstruction(systems, refs)
    for name, row in recon.items():
        row["bitrate_kbps"] = round(bitrates[name], 3)
    utmos = build_metric("utmos", checkpoint=utmos_checkpoint)
    for name, wavs in systems.items():
        res = utmos.score_corpus(wavs)
        recon[name]["utmos"] = _value(res)
        if res.value is None:
            reasons[f"{name}/utmos"] = res.reason
    # Intelligibility first: the phone error rate of each system's reconstructions, beside the ground truth's
    # (the same recogniser on the uncoded audio), since a listener notices lost phones before lost PESQ.
    from ns3.text.g2p import g2p

    per = build_metric("per", recognize=phone_recognizer(Path(aligner_dir) if aligner_dir else None))
    phones = [g2p(u.text).phones for u in utts]
    per_ref = per.score_corpus(zip(refs, phones))
    for name, wavs in systems.items():
        res = per.score_corpus(zip(wavs, phones))
        recon[name]["per"], recon[name]["per_reference"] = _value(res), _value(per_ref)
        if res.value is None:
            reasons[f"{name}/per"] = reasons[f"{name}/per_reference"] = res.reason
    recon[OURS]["rtf"] = _value(rtf.result())
    recon[OURS].update({"sample_rate": hp.sample_rate, "hop": hp.hop_length, "codebooks": sum(hp.codebooks.values())})

    # Zero-shot VC: source prosody/content codes + prompt timbre.
    pairs = make_vc_pairs(utts, vc_pairs, seed)
    sim = build_metric("sim_resemblyzer")
    sim_wavlm = build_metric("sim_wavlm", checkpoint=wavlm_checkpoint)
    converted, controls = [], []
    with torch.inference_mode():
        for src, prm in pairs:
            enc = model.encode(torch.from_numpy(src.audio)[None])
            prompt_timbre = model.encode(torch.from_numpy(prm.audio)[None]).timbre
            # The control decodes the same source codes with the source's own timbre: codec artefacts
            # are common to both, so converted - control is what the timbre swap did.
            for timbre, into in ((prompt_timbre, converted), (enc.timbre, controls)):
                out = model.convert_codes(enc.codes, timbre)[0].numpy()
                into.append(match_length(out, len(src.audio), hp.hop_length, src.key).astype(np.float32))
    vc = {"pairs": len(pairs)}
    notes = {"timbre_effect": "mean |log-mel(converted) - log-mel(control)|: what the prompt's timbre changed "
                              "(0: the decoder ignored it)",
             "sim": "resemblyzer (sim_o/sim_src; *_own: the source decoded with its own timbre, the control); "
                    "sim_o_wavlm: wavlm-base-plus-sv when a checkpoint is configured"}
    if utmos.unavailable_reason is not None:
        notes["utmos"] = f"unavailable: {utmos.unavailable_reason}"
    if wer_model is not None:
        notes["wer"] = wer_model  # replaced by the reason below when WER could not be computed
    if pairs:
        sim_o = sim.score_corpus((p.audio, c) for (_, p), c in zip(pairs, converted))
        sim_src = sim.score_corpus((s.audio, c) for (s, _), c in zip(pairs, converted))
        vc["sim_o"], vc["sim_src"] = _value(sim_o), _value(sim_src)
        sim_o_own = sim.score_corpus((p.audio, k) for (_, p), k in zip(pairs, controls))
        sim_src_own = sim.score_corpus((s.audio, k) for (s, _), k in zip(pairs, controls))
        vc["sim_o_own"], vc["sim_src_own"] = _value(sim_o_own), _value(sim_src_own)
        f0_res = pitch_transfer([s.audio for s, _ in pairs], [p.audio for _, p in pairs], converted, controls)
        vc["f0_transfer"], vc["f0_transfer_pairs"] = f0_res.value, f0_res.detail["pairs"]
        vc["timbre_effect"] = timbre_effect(converted, controls)
        wl = sim_wavlm.score_corpus((p.audio, c) for (_, p), c in zip(pairs, converted))
        vc["sim_o_wavlm"] = _value(wl)
        ref_phones = [g2p(s.text).phones for s, _ in pairs]
        per_res = per.score_corpus(zip(converted, ref_phones))
        vc["per"] = _value(per_res)
        vc["per_source"] = _value(per.score_corpus((s.audio, ph) for (s, _), ph in zip(pairs, ref_phones)))
        wer_res = wer.score_corpus((c, s.text) for (s, _), c in zip(pairs, converted))
        vc["wer"] = _value(wer_res)
        vc["utmos"] = _value(utmos.score_corpus(converted))
        for key, res in (("wer", wer_res), ("per", per_res), ("sim_o_wavlm", wl), ("sim_o", sim_o), ("sim_src", sim_src),
                         ("f0_transfer", f0_res)):
            if res.value is None:
                notes[key] = f"unavailable: {res.reason}"

    disentanglement = None
    if probe_utterances and probe_train_shards and aligner_dir:
        disentanglement = probe_disentanglement(model, probe_train_shards, test_shards, Path(aligner_dir),
                                                probe_utterances, max_utterances, seed)

    # Samples and a spectrogram comparison for the report.
    sample_list = []
    for i, u in enumerate(utts[:samples]):
        entry = {"key": u.key, "reference": f"samples/{u.key}_reference.wav"}
        write_audio(out_dir / entry["reference"], u.audio)
        for system, wavs in systems.items():
            entry[system] = f"samples/{u.key}_{system}.wav"
            write_audio(out_dir / entry[system], wavs[i])
        sample_list.append(entry)
    vc_samples = []
    for i, ((src, prm), conv) in enumerate(list(zip(pairs, converted))[:samples]):
        names = {k: f"samples/vc{i}_{k}.wav" for k in ("source", "prompt", "converted")}
        for k, w in zip(names, (src.audio, prm.audio, conv)):
            write_audio(out_dir / names[k], w)
        vc_samples.append(names)
    figures = {}
    if utts:
        from evaluation.report.plots import plot_spectrograms

        fig = plot_spectrograms(utts[0].audio, {s: w[0] for s, w in systems.items()}, title=utts[0].key)
        fig.savefig(out_dir / "figures" / "spectrograms.png", dpi=90)
        figures["spectrograms"] = "figures/spectrograms.png"

    result = {
        "variant": {"name": variant, "overrides": overrides, "codec_hparams": {
            "information_bottleneck": hp.information_bottleneck, "use_detail": hp.use_detail,
            "prosody_input": hp.prosody_input, "codebook_dim": hp.codebook_dim, "codebook_size": hp.codebook_size,
            "hop_length": hp.hop_length, "sample_rate": hp.sample_rate, "num_codebooks": sum(hp.codebooks.values())}},
        "reconstruction": recon,
        "unavailable": unavailable,
        "metric_reasons": reasons,
        "vc": {OURS: vc},
        "metric_notes": notes,
        "samples": {"recon": sample_list, "vc": vc_samples},
        "figures": figures,
        "disentanglement": disentanglement,
        "test_utterances": len(utts),
        "test_speakers": len({u.speaker for u in utts}),
    }
    tmp = out_dir / ".eval_codec.json.tmp"
    tmp.write_text(json.dumps(result, indent=1, sort_keys=True))
    os.replace(tmp, out_dir / "eval_codec.json")
    return result


def probe_disentanglement(model, train_shards: Sequence[Path], test_shards: Sequence[Path], label_dir: Path,
                          train_utterances: int, test_utterances: int, seed: int) -> dict:
    """Probes on a bounded sample: ~``train_utterances`` spread over at most 20 evenly spaced train shards."""
    from evaluation.disentanglement import pattern, probe_codes
    from ns3.data.codec_data import load_labelled, speaker_index

    picked = [train_shards[i] for i in np.unique(np.linspace(0, len(train_shards) - 1, min(20, len(train_shards))).astype(int))]
    speakers = speaker_index(Path(train_shards[0]).parent / "manifest.jsonl", "train")
    train = load_labelled(picked, label_dir, speakers, per_shard=-(-train_utterances // len(picked))).examples
    test = load_labelled(test_shards, label_dir, {}, per_shard=-(-test_utterances // max(1, len(test_shards)))).examples
    result = probe_codes(model, train[:train_utterances], test[:test_utterances], seed)
    result["expected_pattern"] = pattern(result)
    return result


def flat_metrics(result: dict) -> dict[str, float]:
    """MLflow keys ``eval/<system>/<metric>`` and ``eval/vc/<metric>`` (the report reads these names)."""
    out = {}
    for system, row in result["reconstruction"].items():
        for k, v in row.items():
            if isinstance(v, (int, float)) and v is not None:
                out[f"eval/{system}/{k}"] = float(v)
    for k, v in result["vc"].get(OURS, {}).items():
        if isinstance(v, (int, float)) and v is not None:
            out[f"eval/vc/{k}"] = float(v)
    probes = (result.get("disentanglement") or {}).get("probes", {})
    for group, row in probes.items():
        for k, v in row.items():
            out[f"eval/probe/{group}/{k}"] = float(v)
    for k, v in ((result.get("disentanglement") or {}).get("chance") or {}).items():
        out[f"eval/probe/chance/{k}"] = float(v)
    return out
