"""The align stage as library functions: shards in, per-shard label tars + aligner + metrics out.

Three phases, each a plain function so an orchestrator can map the per-shard ones in parallel
(one call per shard, never per utterance):
  1. ``scan_shard``   (per train shard): G2P + F0 statistics -> ``ShardScan`` (keys and
     pronunciations only: no audio travels back to the driver)
  2. ``train_builtin`` (once): flat-start aligner on a bounded, seeded sample of the train split,
     whose audio is read back from the shards (memory set by ``max_train_utterances``, not the corpus)
  3. ``align_shard``  (per shard, every split): align, F0/UV/normalised log-F0, write the output tar
``align_shards`` runs them in order; the per-shard phases pin torch to ``threads`` intra-op threads so
that workers x threads stays within the cores. Output tar members per utterance (same
``__key__`` as the input shard): ``phones.json``, ``labels.npy`` (int16 frame phone ids), ``f0.npy``,
``uv.npy``, ``lf0n.npy``. Counts reconcile per shard: utterances in = aligned + failed.
"""
from __future__ import annotations

import io
import json
import logging
import os
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from functools import partial
from typing import Callable, Sequence

import numpy as np

from ns3.align.model import AlignerConfig, AlignerModel, align
from ns3.align.scoring import BoundaryReport, score_alignment
from ns3.align.train import AlignerUtterance, TrainSchedule, train_aligner
from ns3.align.types import Alignment
from ns3.align.viterbi import AlignmentError
from ns3.audio import num_frames
from ns3.data.pitch import PITCH_STATS_FILE, PitchStatsAccumulator, SpeakerPitchStats, extract_pitch, normalise_log_f0
from ns3.runtime import pin_torch_threads
from ns3.text.g2p import G2PError, Pronunciation, g2p
from ns3.text.inventory import PhoneInventory, UnknownReport

log = logging.getLogger(__name__)

INVENTORY_FILE = "inventory.json"
CHECKPOINT_FILE = "aligner.pt"
METRICS_FILE = "metrics.json"
FAILURES_FILE = "failures.jsonl"


def split_of(shard_path: str | Path) -> str:
    """'train-000003.tar' -> 'train'."""
    return Path(shard_path).name.split("-")[0]


def load_reference_alignments(path: str | Path) -> dict[str, list[dict]]:
    """JSON lines {"key", "phones": [{"phone", "start", "end"}], ...} -> {key: phones}."""
    refs = {}
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                try:
                    r = json.loads(line)
                    refs[r["key"]] = r["phones"]
                except (json.JSONDecodeError, KeyError) as e:
                    raise ValueError(f"{path}:{n}: not a reference alignment line ({e})") from e
    return refs


# --- phase 1 -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ScannedUtterance:
    """What training needs to know about an utterance before reading its audio again."""

    key: str
    speaker: str
    pron: Pronunciation


@dataclass
class ShardScan:
    shard: str  # the shard's path
    utterances: list[ScannedUtterance]
    pitch: PitchStatsAccumulator
    failures: list[dict]
    unknown: UnknownReport


def _iter(shard_path: Path):
    from ns3.data.shards import iter_shard

    return iter_shard(shard_path)


def scan_shard(shard_path: str | Path, inventory: PhoneInventory, voice: str = "en-us", pitch_method: str = "dio",
               threads: int | None = None) -> ShardScan:
    """G2P every utterance of a (train) shard and accumulate its speakers' voiced log-F0 statistics."""
    pin_torch_threads(threads)
    shard_path = Path(shard_path)
    scan = ShardScan(str(shard_path), [], PitchStatsAccumulator(), [], UnknownReport())
    for s in _iter(shard_path):
        try:
            pron = g2p(s.text, voice)
        except G2PError as e:
            scan.failures.append({"key": s.key, "shard": shard_path.name, "reason": "g2p", "detail": str(e)})
            continue
        inventory.encode(pron.phones, scan.unknown, s.key)
        scan.utterances.append(ScannedUtterance(s.key, s.speaker, pron))
        scan.pitch.add(s.speaker, extract_pitch(s.audio, method=pitch_method))
    return scan


# --- phase 2 -------------------------------------------------------------------------------------
def training_sample(scans: Sequence[ShardScan], max_utterances: int | None, seed: int = 0) -> dict[str, list[ScannedUtterance]]:
    """A seeded sample of at most ``max_utterances`` scanned utterances, grouped by shard path (None: all)."""
    utts = [(sc.shard, u) for sc in scans for u in sc.utterances]
    if max_utterances is not None and len(utts) > max_utterances:
        rng = np.random.default_rng(seed)
        utts = [utts[i] for i in sorted(rng.choice(len(utts), max_utterances, replace=False))]
    sample: dict[str, list[ScannedUtterance]] = {}
    for shard, u in utts:
        sample.setdefault(shard, []).append(u)
    return sample


def read_training_audio(sample: dict[str, list[ScannedUtterance]]) -> list[AlignerUtterance]:
    """Decode the sampled utterances' audio from their shards (only those: the rest are skipped undecoded)."""
    from ns3.audio import decode_audio_bytes
    from ns3.data.shards import iter_tar_groups

    out = []
    for shard, utts in sample.items():
        wanted = {u.key: u for u in utts}
        for key, parts in iter_tar_groups(shard):
            if key in wanted:
                out.append(AlignerUtterance(key, decode_audio_bytes(parts["flac"]), wanted.pop(key).pron))
        if wanted:
            raise ValueError(f"{shard}: {len(wanted)} scanned utterance(s) vanished, e.g. {next(iter(wanted))!r}; "
                             "the shard changed during the align stage (re-run `ns3 shard`, then `ns3 align`)")
    return out


def train_builtin(scans: Sequence[ShardScan], inventory: PhoneInventory, config: AlignerConfig, schedule: TrainSchedule,
                  max_utterances: int | None = None, seed: int = 0,
                  progress: Callable[[dict], None] | None = None) -> AlignerModel:
    utts = read_training_audio(training_sample(scans, max_utterances, seed))
    return train_aligner(utts, inventory, config, schedule, progress=progress)


# --- phase 3 -------------------------------------------------------------------------------------
@dataclass
class ShardAlignResult:
    shard: str
    split: str
    output: Path
    utterances: int
    aligned: int
    failures: list[dict]
    unknown: UnknownReport
    boundary: BoundaryReport
    frames: int
    silence_frames: int


def _npy(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a, allow_pickle=False)
    return buf.getvalue()


def _tar_add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    ti = tarfile.TarInfo(name)
    ti.size, ti.mtime, ti.mode, ti.uname, ti.gname = len(data), 0, 0o444, "ns3", "ns3"
    tar.addfile(ti, io.BytesIO(data))


def align_shard(
    shard_path: str | Path,
    out_dir: str | Path,
    inventory: PhoneInventory,
    pitch_stats: SpeakerPitchStats,
    aligner: AlignerModel | str | Path | None = None,
    precomputed: dict[str, Alignment] | None = None,
    references: dict[str, list[dict]] | None = None,
    voice: str = "en-us",
    pitch_method: str = "dio",
    threads: int | None = None,
) -> ShardAlignResult:
    """Align one shard (built-in ``aligner`` or ``precomputed`` alignments, e.g. from MFA) and write
    ``<out_dir>/<shard name>`` atomically. Utterances that fail are listed with a reason."""
    pin_torch_threads(threads)
    shard_path, out_dir = Path(shard_path), Path(out_dir)
    if isinstance(aligner, (str, Path)):
        aligner = AlignerModel.load(aligner)
    if aligner is None and precomputed is None:
        raise ValueError("align_shard needs an aligner model or precomputed alignments")
    res = ShardAlignResult(shard_path.name, split_of(shard_path), out_dir / shard_path.name, 0, 0, [], UnknownReport(),
                           BoundaryReport(), 0, 0)
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out_dir / f".{shard_path.name}.tmp"
    with open(tmp, "wb") as f, tarfile.open(fileobj=f, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for s in _iter(shard_path):
            res.utterances += 1

            def fail(reason: str, detail: str) -> None:
                res.failures.append({"key": s.key, "shard": shard_path.name, "split": res.split, "reason": reason, "detail": detail})

            try:
                pron: Pronunciation = g2p(s.text, voice)
            except G2PError as e:
                fail("g2p", str(e))
                continue
            n = num_frames(len(s.audio))
            if precomputed is not None:
                a = precomputed.get(s.key)
                if a is None:
                    fail("not_aligned", "the external aligner produced no alignment for this utterance")
                    continue
            else:
                try:
                    a = align(aligner, s.audio, pron)
                except (AlignmentError, ValueError) as e:
                    fail("align", str(e))
                    continue
            if a.num_frames != n:
                fail("frame_mismatch", f"alignment covers {a.num_frames} frames, audio has {n}")
                continue
            labels = a.frame_labels(inventory, res.unknown, s.key)
            track = extract_pitch(s.audio, method=pitch_method)
            lf0n = normalise_log_f0(track, *pitch_stats.get(s.speaker))
            doc = {"key": s.key, "speaker": s.speaker, "num_frames": n, "inventory_hash": inventory.hash,
                   "phone_ids": [int(i) for i in a.phone_ids(inventory)], **a.to_json()}
            _tar_add(tar, f"{s.key}.phones.json", json.dumps(doc, ensure_ascii=False, sort_keys=True).encode())
            _tar_add(tar, f"{s.key}.labels.npy", _npy(labels))
            _tar_add(tar, f"{s.key}.f0.npy", _npy(track.f0))
            _tar_add(tar, f"{s.key}.uv.npy", _npy(track.uv))
            _tar_add(tar, f"{s.key}.lf0n.npy", _npy(lf0n))
            res.aligned += 1
            res.frames += n
            res.silence_frames += int((labels == inventory.sil_id).sum())
            if references is not None and s.key in references:
                res.boundary.add(score_alignment(a, references[s.key], s.key))
    os.replace(tmp, res.output)
    return res


# --- all together --------------------------------------------------------------------------------
@dataclass
class AlignStageResult:
    out_dir: Path
    inventory_path: Path
    checkpoint_path: Path | None
    pitch_stats_path: Path
    shards: list[ShardAlignResult]
    failures: list[dict]
    metrics: dict = field(default_factory=dict)


def _metrics(shards: Sequence[ShardAlignResult], unknown: UnknownReport, train_seconds: float, history: list) -> dict:
    out: dict = {"splits": {}, "unknown_symbols": unknown.to_json(), "train_seconds": round(train_seconds, 2),
                 "aligner_rounds": history}
    for split in sorted({s.split for s in shards}):
        ss = [s for s in shards if s.split == split]
        rep = BoundaryReport()
        for s in ss:
            rep.utterances += s.boundary.utterances
            rep.ref_phones += s.boundary.ref_phones
            rep.matched += s.boundary.matched
            rep.errors_ms += s.boundary.errors_ms
        frames = sum(s.frames for s in ss)
        m = {"utterances": sum(s.utterances for s in ss), "aligned": sum(s.aligned for s in ss),
             "failed": sum(len(s.failures) for s in ss), "frames": frames,
             "silence_share": sum(s.silence_frames for s in ss) / max(frames, 1)}
        if rep.utterances:
            m["boundary"] = rep.summary()
        out["splits"][split] = m
    return out


def align_shards(
    shard_paths: Sequence[str | Path],
    out_dir: str | Path,
    backend: str = "builtin",
    config: AlignerConfig = AlignerConfig(),
    schedule: TrainSchedule = TrainSchedule(),
    max_train_utterances: int | None = None,
    voice: str = "en-us",
    pitch_method: str = "dio",
    reference_alignments: str | Path | None = None,
    mfa_acoustic_model: str | Path | None = None,
    mfa_jobs: int = 2,
    map_fn: Callable[[Callable, list], list] | None = None,
    threads: int | None = None,
    say: Callable[[str], None] = log.info,
) -> AlignStageResult:
    """G2P, train the aligner on the train shards, align every shard, write outputs and metrics.

    ``backend``: 'builtin' (default, no downloaded weights) or 'mfa' (needs ``mfa`` on PATH).
    ``reference_alignments``: optional JSON-lines timings used only for scoring.
    ``map_fn(fn, items)``: runs the per-shard phases (scan, align); an orchestrator passes its task runner's map.
    The aligner goes to the per-shard workers as a checkpoint path, so process and cluster runners work too.
    ``threads``: torch intra-op threads in each per-shard call (``ns3.runtime.threads_per_worker``); None leaves
    torch's default, which oversubscribes the cores as soon as two workers run at once.
    ``say``: one line per phase and per aligner round (the flow passes its run logger).
    """
    map_fn = map_fn or (lambda fn, items: [fn(x) for x in items])
    from ns3 import tracking

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    shard_paths = [Path(p) for p in shard_paths]
    missing = [str(p) for p in shard_paths if not p.exists()]
    if missing:
        raise FileNotFoundError(f"align: shard(s) not found: {missing[:5]} (run the shard stage first)")
    train = [p for p in shard_paths if split_of(p) == "train"]
    if not train:
        raise ValueError("align: no train-*.tar among the shards; the aligner and F0 statistics need a train split")
    if backend not in ("builtin", "mfa"):
        raise ValueError(f"align: unknown backend {backend!r} (use 'builtin' or 'mfa')")
    if backend == "mfa":
        from ns3.align.mfa import find_mfa

        find_mfa()  # fail before reading every shard when MFA is absent

    inventory = PhoneInventory.english()
    inventory_path = inventory.save(out_dir / INVENTORY_FILE)
    references = load_reference_alignments(reference_alignments) if reference_alignments else None

    import torch

    # A thread runner's workers share this process's torch thread count: restore it after each map, so the
    # aligner's training here gets every core back.
    own_threads = torch.get_num_threads()
    t0 = time.perf_counter()
    scans = map_fn(partial(scan_shard, inventory=inventory, voice=voice, pitch_method=pitch_method, threads=threads), train)
    say(f"align: scanned {len(train)} train shard(s), {sum(len(sc.utterances) for sc in scans)} utterances, "
        f"in {time.perf_counter() - t0:.0f} s")
    pin_torch_threads(own_threads)
    unknown = UnknownReport()
    for sc in scans:
        unknown.merge(sc.unknown)
    stats = PitchStatsAccumulator()
    for sc in scans:
        stats.merge(sc.pitch)
    pitch_stats = stats.finish()
    pitch_stats_path = pitch_stats.save(out_dir / PITCH_STATS_FILE)

    t0 = time.perf_counter()
    model, checkpoint, precomputed, history = None, None, None, []
    if backend == "builtin":
        def progress(r: dict) -> None:
            say(f"align: aligner round {r['round']}/{schedule.rounds} on {r['utterances']} utterances: frame accuracy "
                f"{r['frame_acc']:.3f}, relabelled {r['relabelled']:.3f} ({r['seconds']:.0f} s)")

        model = train_builtin(scans, inventory, config, schedule, max_train_utterances, schedule.seed, progress)
        history = getattr(model, "history", [])
        checkpoint = model.save(out_dir / CHECKPOINT_FILE)
    else:
        from ns3.align.mfa import MFAUtterance, run_mfa

        def utterances():  # a generator: MFA's corpus is written one file at a time, never held in memory
            for p in shard_paths:
                for s in _iter(p):
                    try:
                        yield MFAUtterance(s.key, s.speaker, s.audio, g2p(s.text, voice))
                    except G2PError:
                        pass  # recorded as a g2p failure by align_shard

        precomputed = run_mfa(utterances(), out_dir / "mfa_work", mfa_acoustic_model, mfa_jobs)
    train_seconds = time.perf_counter() - t0

    t0 = time.perf_counter()
    results = map_fn(partial(align_shard, out_dir=out_dir, inventory=inventory, pitch_stats=pitch_stats,
                             aligner=checkpoint, precomputed=precomputed, references=references, voice=voice,
                             pitch_method=pitch_method, threads=threads), shard_paths)
    pin_torch_threads(own_threads)
    failures = [f for r in results for f in r.failures]
    say(f"align: aligned {sum(r.aligned for r in results)}/{sum(r.utterances for r in results)} utterances in "
        f"{len(results)} shard(s) in {time.perf_counter() - t0:.0f} s")
    for r in results:
        if r.split != "train":  # train symbols were counted while scanning
            unknown.merge(r.unknown)
    tmp = out_dir / f".{FAILURES_FILE}.tmp"
    tmp.write_text("".join(json.dumps(f, ensure_ascii=False) + "\n" for f in failures), encoding="utf-8")
    os.replace(tmp, out_dir / FAILURES_FILE)

    metrics = _metrics(results, unknown, train_seconds, history)
    metrics["backend"] = backend
    metrics["inventory_hash"] = inventory.hash
    tmp = out_dir / f".{METRICS_FILE}.tmp"
    tmp.write_text(json.dumps(metrics, indent=1, ensure_ascii=False, default=float))
    os.replace(tmp, out_dir / METRICS_FILE)
    flat = {}
    for split, m in metrics["splits"].items():
        for k, v in tracking.flatten(m).items():
            if isinstance(v, (int, float)):
                flat[f"align/{split}/{k}".replace(".", "/")] = float(v)
    tracking.log_metrics(flat)
    return AlignStageResult(out_dir, inventory_path, checkpoint, pitch_stats_path, results, failures, metrics)
