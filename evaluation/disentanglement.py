"""Disentanglement probes: what each code group of a frozen codec carries (phones, speaker, F0).

FACodec's claim is that prosody, content and detail codes and the timbre vector each carry one attribute.
Small probes (one hidden layer) are trained on the frozen representations of train-speaker utterances and
scored on held-out data:
  phone  frame phone accuracy on the test speakers (labels: the align stage's frame labels);
  f0     Pearson correlation of the predicted and true speaker-normalised log-F0 on voiced test frames
         (normalised: the intonation contour; a speaker's register is the timbre's business);
  speaker  speaker-ID accuracy on held-out utterances of the train speakers (utterance means of a group).
Chance levels sit beside them: the majority phone's share of test frames, 0 correlation, the majority
speaker's share of the held-out utterances. The expected pattern: content -> phones, prosody -> F0,
timbre -> speaker, each carrying little of the others.

Frame groups are the quantized factor vectors [B, D, F] (``CodecOutput.factors``); the timbre vector
[B, D] is broadcast over frames for the frame probes.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch import nn

from ns3.data.batch import IGNORE_INDEX, CodecExample

MAX_FIT_FRAMES = 20_000  # frames a frame probe is fitted on (a seeded subsample): bounds its cost per group


@dataclass
class GroupFeatures:
    """One utterance's representations: frame groups [F, D] and the timbre vector [D]."""

    frames: dict[str, np.ndarray]
    timbre: np.ndarray


def extract(model, examples: Sequence[CodecExample]) -> list[GroupFeatures]:
    """Frozen codec representations of each example (eval mode: no detail dropout)."""
    model.eval()
    out = []
    with torch.inference_mode():
        for ex in examples:
            o = model(torch.from_numpy(ex.wav)[None])
            frames = {g: v[0].T.float().numpy() for g, v in o.factors.items()}
            out.append(GroupFeatures(frames, o.timbre[0].float().numpy()))
    return out


def _group(feat: GroupFeatures, group: str, n: int) -> np.ndarray:
    """[n, D] frame matrix of one group (the timbre vector repeated)."""
    if group == "timbre":
        return np.repeat(feat.timbre[None], n, axis=0)
    return feat.frames[group][:n]


def _fit_probe(x: np.ndarray, y: np.ndarray, outputs: int, seed: int, steps: int = 300) -> nn.Module:
    """A one-hidden-layer MLP on standardised inputs; cross-entropy when outputs > 1 else MSE. Full batch Adam."""
    torch.manual_seed(seed)
    mean, std = x.mean(0), x.std(0) + 1e-6
    net = nn.Sequential(nn.Linear(x.shape[1], 128), nn.GELU(), nn.Linear(128, outputs))
    xt = torch.from_numpy((x - mean) / std).float()
    yt = torch.from_numpy(y)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3, weight_decay=1e-4)
    loss_fn = nn.CrossEntropyLoss() if outputs > 1 else nn.MSELoss()
    target = yt.long() if outputs > 1 else yt.float()[:, None]
    for _ in range(steps):
        opt.zero_grad()
        loss_fn(net(xt), target).backward()
        opt.step()
    net.eval()
    net.standardise = (torch.from_numpy(mean).float(), torch.from_numpy(std).float())  # type: ignore[attr-defined]
    return net


def _predict(net: nn.Module, x: np.ndarray) -> np.ndarray:
    mean, std = net.standardise  # type: ignore[attr-defined]
    with torch.no_grad():
        return net((torch.from_numpy(x).float() - mean) / std).numpy()


def _frame_data(feats, examples, group: str, kind: str) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = [], []
    for f, ex in zip(feats, examples):
        n = min(len(ex.phone_ids), next(iter(f.frames.values())).shape[0])
        x = _group(f, group, n)
        if kind == "phone":
            keep = ex.phone_ids[:n] != IGNORE_INDEX
            xs.append(x[keep]), ys.append(ex.phone_ids[:n][keep])
        else:
            keep = ex.uv[:n] > 0.5
            xs.append(x[keep]), ys.append(ex.f0[:n][keep])
    return np.concatenate(xs), np.concatenate(ys)


def _subsample(x: np.ndarray, y: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    if len(x) <= MAX_FIT_FRAMES:
        return x, y
    keep = np.random.default_rng(seed).choice(len(x), MAX_FIT_FRAMES, replace=False)
    return x[keep], y[keep]


def _utterance_means(feats, group: str) -> np.ndarray:
    return np.stack([f.timbre if group == "timbre" else f.frames[group].mean(0) for f in feats])


def probe_codes(model, train: Sequence[CodecExample], test: Sequence[CodecExample], seed: int = 0) -> dict:
    """Probe every code group of ``model``; returns {"probes": {group: {probe: value}}, "chance": {...}, counts}.

    ``train``: labelled utterances of train speakers (speaker_id >= 0); ``test``: labelled utterances of
    held-out speakers. The speaker probe splits ``train`` by utterance (alternate utterances of each
    speaker), since held-out speakers cannot be identified by a classifier over train speakers.
    """
    if not train or not test:
        raise ValueError(f"probes need train and test utterances, got {len(train)} and {len(test)}")
    tr_feats, te_feats = extract(model, train), extract(model, test)
    groups = [*tr_feats[0].frames, "timbre"]
    num_phones = int(max(ex.phone_ids.max() for ex in [*train, *test])) + 1
    seen: dict[int, int] = {}
    fit_idx, held_idx = [], []
    for i, ex in enumerate(train):  # alternate utterances of each speaker: half to fit, half held out
        k = seen.get(ex.speaker_id, 0)
        (fit_idx if k % 2 == 0 else held_idx).append(i)
        seen[ex.speaker_id] = k + 1
    spk = np.array([ex.speaker_id for ex in train])
    spk_ids = {s: j for j, s in enumerate(sorted(set(spk.tolist())))}
    spk_y = np.array([spk_ids[s] for s in spk])

    probes: dict[str, dict[str, float]] = {}
    for g_i, group in enumerate(groups):
        row: dict[str, float] = {}
        x, y = _subsample(*_frame_data(tr_feats, train, group, "phone"), seed)
        xt, yt = _frame_data(te_feats, test, group, "phone")
        net = _fit_probe(x, y, num_phones, seed + g_i)
        row["phone"] = float((_predict(net, xt).argmax(1) == yt).mean())
        x, y = _subsample(*_frame_data(tr_feats, train, group, "f0"), seed)
        xt, yt = _frame_data(te_feats, test, group, "f0")
        pred = _predict(_fit_probe(x, y, 1, seed + 10 + g_i), xt)[:, 0]
        # A constant input (the -factorization codec's zero timbre) gives a constant prediction up to float noise,
        # whose correlation would be noise too: below 1e-6 (normalised log-F0 units) it counts as constant.
        row["f0"] = float(np.corrcoef(pred, yt)[0, 1]) if pred.std() > 1e-6 and yt.std() > 0 else 0.0
        means = _utterance_means(tr_feats, group)
        net = _fit_probe(means[fit_idx], spk_y[fit_idx], len(spk_ids), seed + 20 + g_i)
        row["speaker"] = float((_predict(net, means[held_idx]).argmax(1) == spk_y[held_idx]).mean()) if held_idx else 0.0
        probes[group] = {k: round(v, 4) for k, v in row.items()}

    _, y_phone = _frame_data(tr_feats, train, groups[0], "phone")
    _, yt_phone = _frame_data(te_feats, test, groups[0], "phone")
    majority = np.bincount(y_phone).argmax()
    fit_majority = np.bincount(spk_y[fit_idx]).argmax()
    chance = {"phone": round(float((yt_phone == majority).mean()), 4), "f0": 0.0,
              "speaker": round(float((spk_y[held_idx] == fit_majority).mean()), 4) if held_idx else 0.0}
    return {"probes": probes, "chance": chance, "train_utterances": len(train), "test_utterances": len(test),
            "speakers": len(spk_ids), "held_out_utterances": len(held_idx)}


EXPECTED = {"phone": "content", "f0": "prosody", "speaker": "timbre"}  # the group that should carry each


def pattern(result: dict) -> dict[str, bool]:
    """For each probe: does the expected group score highest of all groups? ({probe: bool})"""
    probes = result["probes"]
    out = {}
    for probe, group in EXPECTED.items():
        if group in probes:
            out[probe] = all(probes[group][probe] >= v[probe] for v in probes.values())
    return out
