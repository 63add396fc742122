"""The ``extract_codes`` stage as library functions: audio shards + alignments + a codec -> code shards.

``extract_shard`` does one shard (one call per shard, never per utterance, so an orchestrator maps it on its
task runner): each utterance of the audio shard is joined by key to the align stage's ``phones.json``,
encoded in batches (``FACodec.encode_with_prosody_latent``: every item exactly as if encoded alone), and its
prosody latent is pooled per phone into phone-level prosody codes. The code shard is written atomically, then
a ``<shard>.done`` sidecar recording the codec's hash, the inputs' hashes and the counts, so a rerun with the
same codec and inputs keeps the shard and a different codec re-extracts it.

Counts reconcile per shard and overall: utterances = extracted + skipped, every skip with its reason
(``SKIP_REASONS``). One bad utterance never stops the stage. The align stage's durations sum to its frame
count, ceil(T / 200); a codec with another framing (the release's, for imported V1 weights) can differ by a
frame: up to ``MAX_FRAME_ADJUST`` frames are taken from / given to the last phone (``durations_adjusted``).
"""
from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from ns3.align.stage import split_of
from ns3.audio import SAMPLE_RATE
from ns3.data.code_shards import (CODE_INFO_FILE, CodeShardInfo, CodeUtterance, file_sha256, read_code_info,
                                  write_code_info, write_code_shard)
from ns3.runtime import pin_torch_threads

log = logging.getLogger(__name__)

NO_ALIGNMENT, BAD_LABELS = "no_alignment", "bad_labels"
DURATION_MISMATCH, UNREADABLE_AUDIO = "duration_mismatch", "unreadable_audio"
SKIP_REASONS = (NO_ALIGNMENT, BAD_LABELS, DURATION_MISMATCH, UNREADABLE_AUDIO)
MAX_FRAME_ADJUST = 2
METRICS_FILE, SKIPPED_FILE = "metrics.json", "skipped.jsonl"
SIDECAR_VERSION = 1


def level_names(n_prosody: int, n_content: int, n_detail: int) -> list[str]:
    """Code level names in code order: 1/2/3 codebooks -> ['p', 'c1', 'c2', 'd1', 'd2', 'd3']."""
    return [f"{letter}{i + 1 if n > 1 else ''}" for letter, n in (("p", n_prosody), ("c", n_content), ("d", n_detail))
            for i in range(n)]


def _bits(used: np.ndarray) -> str:
    return np.packbits(used.astype(bool)).tobytes().hex()


def _unbits(hex_bits: str, n: int) -> np.ndarray:
    return np.unpackbits(np.frombuffer(bytes.fromhex(hex_bits), np.uint8))[:n].astype(bool)


@dataclass
class ShardExtractResult:
    """One shard's outcome; ``level_usage`` / ``prosody_usage``: which codes occur, as packed-bit hex strings."""

    shard: str
    split: str
    output: str
    utterances: int = 0
    extracted: int = 0
    skipped: list[dict] = field(default_factory=list)  # {key, shard, split, reason, detail}
    durations_adjusted: int = 0
    frames: int = 0
    phones: int = 0
    level_usage: list[str] = field(default_factory=list)
    prosody_usage: str = ""
    inventory_hashes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    reused: bool = False  # kept from an earlier run (same codec, same inputs)

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> "ShardExtractResult":
        return cls(**d)


@dataclass
class AlignedAudio:
    """An utterance ready to encode: audio [T] float32, phone ids and durations [P] summing to the codec's F."""

    key: str
    speaker: str
    audio: np.ndarray
    phone_ids: np.ndarray
    durations: np.ndarray


def _prepare(key: str, parts: dict[str, bytes], phones_json: bytes | None, frames_for: Callable[[int], int],
             res: ShardExtractResult) -> AlignedAudio | None:
    """Audio + alignment of one utterance, durations fitted to the codec's frames; None (and a recorded skip)
    when the utterance cannot be used."""
    from ns3.audio import AudioError, decode_audio_bytes

    def skip(reason: str, detail: str) -> None:
        res.skipped.append({"key": key, "shard": res.shard, "split": res.split, "reason": reason, "detail": detail})

    try:
        meta = json.loads(parts["json"])
        audio = decode_audio_bytes(parts["flac"])
        if len(audio) == 0:
            raise AudioError("no samples")
    except (KeyError, ValueError, RuntimeError, AudioError) as e:  # soundfile raises RuntimeErrors
        skip(UNREADABLE_AUDIO, f"{type(e).__name__}: {e}")
        return None
    if phones_json is None:
        skip(NO_ALIGNMENT, "the align stage has no alignment for this utterance (see its failures.jsonl)")
        return None
    try:
        doc = json.loads(phones_json)
        ids, durs = np.asarray(doc["phone_ids"], np.int64), np.asarray(doc["durations"], np.int64)
        if ids.ndim != 1 or len(ids) == 0 or len(ids) != len(durs) or int(durs.min()) < 1:
            raise ValueError(f"{len(ids)} phone ids, {len(durs)} durations (each must be >= 1)")
        res.inventory_hashes = sorted(set(res.inventory_hashes) | {str(doc["inventory_hash"])})
    except (KeyError, TypeError, ValueError) as e:
        skip(BAD_LABELS, f"phones.json: {type(e).__name__}: {e}")
        return None
    f = frames_for(len(audio))
    try:
        fitted = fit_codec_frames(durs, f)
    except ValueError as e:
        skip(DURATION_MISMATCH, f"{e} for {len(audio)} samples")
        return None
    res.durations_adjusted += int(fitted is not durs)
    return AlignedAudio(key, str(meta.get("speaker", "")), audio, ids, fitted)


def fit_codec_frames(durations: np.ndarray, frames: int) -> np.ndarray:
    """Durations [P] fitted to the codec's ``frames`` by moving at most ``MAX_FRAME_ADJUST`` frames on the last
    phone (the aligner's ceil(T / 200) framing vs a codec's own); ``durations`` itself when nothing moves.
    Raises ValueError when they are further apart: that is a wrong alignment, not framing."""
    diff = frames - int(durations.sum())
    if not diff:
        return durations
    if abs(diff) > MAX_FRAME_ADJUST or durations[-1] + diff < 1:
        raise ValueError(f"durations sum to {int(durations.sum())} frames, the codec gives {frames}")
    out = durations.copy()
    out[-1] += diff
    return out


def encode_utterances(model, items: Sequence[AlignedAudio]) -> list[CodeUtterance]:
    """Encode one batch: codes, timbre and phone-level prosody codes per item, as if each were encoded alone."""
    import torch

    lengths = torch.tensor([len(it.audio) for it in items])
    wav = torch.zeros(len(items), int(lengths.max()))
    n_phones = max(len(it.phone_ids) for it in items)
    durations = torch.zeros(len(items), n_phones, dtype=torch.long)
    phone_mask = torch.zeros(len(items), n_phones, dtype=torch.bool)
    for i, it in enumerate(items):
        wav[i, : len(it.audio)] = torch.from_numpy(it.audio)
        durations[i, : len(it.durations)] = torch.from_numpy(it.durations)
        phone_mask[i, : len(it.durations)] = True
    enc, prosody_latent = model.encode_with_prosody_latent(wav, lengths)
    phone_prosody = model.phone_prosody_codes(prosody_latent, durations, phone_mask)
    codes = enc.codes.stacked()
    out = []
    for i, it in enumerate(items):
        f, p = int(it.durations.sum()), len(it.durations)
        out.append(CodeUtterance(
            key=it.key, speaker=it.speaker, codes=codes[i, :, :f].numpy().astype(np.int64),
            timbre=enc.timbre[i].numpy().astype(np.float32), phone_ids=it.phone_ids, durations=it.durations,
            phone_prosody=phone_prosody[i, :p].numpy().astype(np.int64), num_samples=len(it.audio)))
    return out


def _sidecar(output: Path) -> Path:
    return output.with_name(f"{output.name}.done")


def _reusable(output: Path, codec_hash: str, inputs: dict) -> ShardExtractResult | None:
    """The earlier result when ``output`` was made by this codec from these inputs and is intact."""
    done = _sidecar(output)
    if not (output.exists() and done.exists()):
        return None
    try:
        d = json.loads(done.read_text())
        if (d.get("version") != SIDECAR_VERSION or d.get("codec_hash") != codec_hash or d.get("inputs") != inputs
                or d.get("sha256") != file_sha256(output)):
            return None
        res = ShardExtractResult.from_json(d["result"])
    except (OSError, ValueError, TypeError, KeyError):
        return None  # unreadable sidecar: extract again
    res.reused = True
    return res


def extract_shard(shard_path: str | Path, out_dir: str | Path, label_dir: str | Path, codec_path: str | Path,
                  codec_hash: str, batch_size: int = 1, threads: int | None = None) -> ShardExtractResult:
    """Extract one audio shard into ``<out_dir>/<shard name>`` (kept as is when its sidecar says the same codec
    already made it from the same audio and labels)."""
    from ns3.codec.checkpoint import load_codec
    from ns3.data.shards import iter_tar_groups

    pin_torch_threads(threads)
    shard_path, out_dir, label_dir = Path(shard_path), Path(out_dir), Path(label_dir)
    labels_path = label_dir / shard_path.name
    if not labels_path.exists():
        raise FileNotFoundError(f"{labels_path}: no labels for {shard_path.name}; run `ns3 align` first")
    output = out_dir / shard_path.name
    inputs = {"audio": file_sha256(shard_path), "labels": file_sha256(labels_path)}
    earlier = _reusable(output, codec_hash, inputs)
    if earlier is not None:
        return earlier
    if file_sha256(codec_path) != codec_hash:
        raise RuntimeError(f"{codec_path} changed while the codes were being extracted; run `ns3 extract-codes` again")
    t0 = time.perf_counter()
    _sidecar(output).unlink(missing_ok=True)  # from here on the shard is not done, whatever a crash leaves
    model = load_codec(codec_path)
    hp = model.hp
    res = ShardExtractResult(shard_path.name, split_of(shard_path), str(output))
    phones = {key: parts["phones.json"] for key, parts in iter_tar_groups(labels_path) if "phones.json" in parts}
    used = np.zeros((sum(hp.codebooks.values()), hp.codebook_size), bool)
    prosody_used = np.zeros(hp.codebook_size, bool)

    def encoded(batch: list[AlignedAudio]) -> Iterator[CodeUtterance]:
        for u in encode_utterances(model, batch):
            res.extracted += 1
            res.frames += u.num_frames
            res.phones += len(u.phone_ids)
            for q in range(u.codes.shape[0]):
                used[q, u.codes[q]] = True
            prosody_used[u.phone_prosody] = True
            yield u

    def utterances() -> Iterator[CodeUtterance]:
        batch: list[AlignedAudio] = []
        for key, parts in iter_tar_groups(shard_path):
            res.utterances += 1
            item = _prepare(key, parts, phones.get(key), hp.frames_for, res)
            if item is not None:
                batch.append(item)
            if len(batch) >= batch_size:
                yield from encoded(batch)
                batch = []
        if batch:
            yield from encoded(batch)

    write_code_shard(output, utterances())
    if res.utterances != res.extracted + len(res.skipped):  # guards the bookkeeping above
        raise AssertionError(f"{shard_path.name}: {res.utterances} utterances but {res.extracted} extracted + "
                             f"{len(res.skipped)} skipped")
    res.level_usage, res.prosody_usage = [_bits(u) for u in used], _bits(prosody_used)
    res.seconds = round(time.perf_counter() - t0, 3)
    doc = {"version": SIDECAR_VERSION, "codec_hash": codec_hash, "inputs": inputs, "sha256": file_sha256(output),
           "result": res.to_json()}
    tmp = out_dir / f".{output.name}.done.tmp-{os.getpid()}"
    try:
        tmp.write_text(json.dumps(doc, sort_keys=True))
        os.replace(tmp, _sidecar(output))
    finally:
        tmp.unlink(missing_ok=True)
    return res


# --- all shards ----------------------------------------------------------------------------------
@dataclass
class ExtractStageResult:
    out_dir: Path
    info: CodeShardInfo
    shards: list[ShardExtractResult]
    skipped: list[dict]
    metrics: dict


def _metrics(results: Sequence[ShardExtractResult], info: CodeShardInfo, seconds: float) -> dict:
    names = level_names(info.n_prosody, info.n_content, info.n_detail)
    v = info.codebook_size
    used = np.zeros((len(names), v), bool)
    prosody = np.zeros(v, bool)
    for r in results:
        if r.level_usage:
            used |= np.stack([_unbits(h, v) for h in r.level_usage])
            prosody |= _unbits(r.prosody_usage, v)

    def counts(rs: Sequence[ShardExtractResult]) -> dict:
        by_reason = {k: 0 for k in SKIP_REASONS}
        for r in rs:
            for s in r.skipped:
                by_reason[s["reason"]] = by_reason.get(s["reason"], 0) + 1
        frames = sum(r.frames for r in rs)
        return {"utterances": sum(r.utterances for r in rs), "extracted": sum(r.extracted for r in rs),
                "skipped": sum(by_reason.values()), "skipped_by_reason": by_reason,
                "durations_adjusted": sum(r.durations_adjusted for r in rs), "frames": frames,
                "phones": sum(r.phones for r in rs), "hours": round(frames / info.frame_rate / 3600, 4)}

    out = counts(results)
    out.update(
        shards=len(results), shards_reused=sum(r.reused for r in results), seconds=round(seconds, 2),
        code_usage={n: round(float(used[i].mean()), 4) for i, n in enumerate(names)},
        phone_prosody_usage=round(float(prosody.mean()), 4),
        splits={s: counts([r for r in results if r.split == s]) for s in sorted({r.split for r in results})},
    )
    return out


def _remove_stale(out_dir: Path, keep: set[str]) -> None:
    """Code shards (and sidecars, temp files) of audio shards that no longer exist: an earlier, larger plan."""
    for f in out_dir.iterdir():
        stale_shard = f.name.endswith((".tar", ".tar.done")) and f.name.removesuffix(".done") not in keep
        if f.is_file() and (stale_shard or (f.name.startswith(".") and ".tmp" in f.name)):
            f.unlink()


def extract_codes(
    codec_path: str | Path,
    shard_paths: Sequence[str | Path],
    label_dir: str | Path,
    out_dir: str | Path,
    batch_size: int = 1,
    map_fn: Callable[[Callable, list], list] | None = None,
    threads: int | None = None,
    say: Callable[[str], None] = log.info,
) -> ExtractStageResult:
    """Extract every shard, then write ``code_info.json``, ``skipped.jsonl`` and ``metrics.json`` in ``out_dir``.

    ``batch_size``: utterances per encode batch (results do not depend on it). ``map_fn(fn, items)`` runs the
    per-shard work (an orchestrator passes its task runner's map); the codec travels to the workers as a path.
    ``threads``: torch intra-op threads in each per-shard call (``ns3.runtime.threads_per_worker``).
    """
    import torch

    from ns3.codec.checkpoint import load_codec
    from ns3.text.inventory import PhoneInventory

    map_fn = map_fn or (lambda fn, items: [fn(x) for x in items])
    codec_path, label_dir, out_dir = Path(codec_path), Path(label_dir), Path(out_dir)
    shard_paths = [Path(p) for p in shard_paths]
    if not shard_paths:
        raise ValueError("extract_codes: no audio shards to extract (run `ns3 shard`, or check extract.splits)")
    missing = [str(p) for p in shard_paths if not p.exists()]
    if missing:
        raise FileNotFoundError(f"extract_codes: shard(s) not found: {missing[:5]} (run the shard stage first)")
    if batch_size < 1:
        raise ValueError(f"extract_codes: batch_size must be >= 1, got {batch_size}")
    hp = load_codec(codec_path).hp  # fails here, clearly, for a missing or foreign checkpoint
    if hp.sample_rate != SAMPLE_RATE:
        raise ValueError(f"{codec_path}: a {hp.sample_rate} Hz codec; the shards and alignments are {SAMPLE_RATE} Hz")
    codec_hash = file_sha256(codec_path)
    out_dir.mkdir(parents=True, exist_ok=True)
    try:  # a folder that names another codec must not keep claiming it while it is being rewritten
        if read_code_info(out_dir).codec_hash != codec_hash:
            (out_dir / CODE_INFO_FILE).unlink()
    except (FileNotFoundError, ValueError):
        (out_dir / CODE_INFO_FILE).unlink(missing_ok=True)

    own_threads = torch.get_num_threads()  # a thread runner's workers share this process's count
    t0 = time.perf_counter()
    results = map_fn(partial(extract_shard, out_dir=out_dir, label_dir=label_dir, codec_path=codec_path,
                             codec_hash=codec_hash, batch_size=batch_size, threads=threads), shard_paths)
    pin_torch_threads(own_threads)
    seconds = time.perf_counter() - t0

    hashes = sorted({h for r in results for h in r.inventory_hashes})
    if len(hashes) > 1:
        raise ValueError(f"{label_dir}: alignments made with different phone inventories {hashes}; re-run `ns3 align`")
    inventory_hash = hashes[0] if hashes else None
    if inventory_hash is None and (label_dir / "inventory.json").exists():
        inventory_hash = PhoneInventory.load(label_dir / "inventory.json").hash
    info = CodeShardInfo(codec_hash=codec_hash, codec_path=str(codec_path), codebook_size=hp.codebook_size,
                         n_prosody=hp.n_prosody, n_content=hp.n_content, n_detail=hp.codebooks["detail"],
                         latent_dim=hp.latent_dim, frame_rate=float(hp.frame_rate), inventory_hash=inventory_hash,
                         factorized=hp.factorized)
    _remove_stale(out_dir, {p.name for p in shard_paths})
    skipped = [s for r in results for s in r.skipped]
    metrics = _metrics(results, info, seconds)
    if metrics["utterances"] != metrics["extracted"] + metrics["skipped"]:
        raise AssertionError(f"extract_codes: counts do not reconcile: {metrics}")
    tmp = out_dir / f".{SKIPPED_FILE}.tmp"
    tmp.write_text("".join(json.dumps(s, ensure_ascii=False) + "\n" for s in skipped), encoding="utf-8")
    os.replace(tmp, out_dir / SKIPPED_FILE)
    tmp = out_dir / f".{METRICS_FILE}.tmp"
    tmp.write_text(json.dumps(metrics, indent=1, sort_keys=True))
    os.replace(tmp, out_dir / METRICS_FILE)
    write_code_info(out_dir, info)  # last: the folder names its codec only once every shard is written
    say(f"extract_codes: {metrics['extracted']}/{metrics['utterances']} utterances from {len(results)} shard(s) "
        f"({metrics['shards_reused']} kept from an earlier run), {metrics['skipped']} skipped, in {seconds:.0f} s")
    return ExtractStageResult(out_dir, info, list(results), skipped, metrics)
