"""Short content hashes that name what a model was trained on and what it was scored on.

They read the checksums the stages already record (``shards.json``, the code shards' ``.done`` sidecars)
instead of re-hashing the data: at LibriLight scale re-reading the shards would cost more than the stage.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Iterable, Mapping

HASH_CHARS = 16  # short enough to read in a tag key, long enough never to collide between test sets


def fingerprint(parts: Mapping[str, Any]) -> str:
    """Stable hash of a JSON-able mapping (sorted keys), ``HASH_CHARS`` hex digits."""
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:HASH_CHARS]


def shard_checksums(shard_dir: str | Path, splits: Iterable[str]) -> dict[str, str]:
    """shard name -> sha256 for the shards of ``splits``, from the shard stage's ``shards.json``."""
    path = Path(shard_dir) / "shards.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run `ns3 shard` first")
    wanted = set(splits)
    return {e["name"]: e["sha256"] for e in json.loads(path.read_text()) if e["split"] in wanted}


def code_checksums(code_dir: str | Path) -> dict[str, str]:
    """code shard name -> sha256 (from each ``.done`` sidecar), plus the folder's ``code_info.json`` as written."""
    code_dir = Path(code_dir)
    info = code_dir / "code_info.json"
    if not info.is_file():
        raise FileNotFoundError(f"{info} not found: run `ns3 extract-codes` first")
    out = {p.name.removesuffix(".done"): json.loads(p.read_text())["sha256"] for p in sorted(code_dir.glob("*.tar.done"))}
    out["code_info.json"] = hashlib.sha256(info.read_bytes()).hexdigest()
    return out


def file_checksums(paths: Iterable[str | Path]) -> dict[str, str]:
    """file name -> sha256 for the files that exist (a missing optional file simply is not part of the hash)."""
    from ns3.data.code_shards import file_sha256

    return {Path(p).name: file_sha256(p) for p in paths if Path(p).is_file()}


def codec_test_set(shard_dir: str | Path, align_dir: str | Path, settings: Mapping[str, Any]) -> str:
    """What a codec evaluation's scores depend on besides the codec: the test shards, the align stage's phone
    recogniser (PER) and ``settings`` (which utterances and pairs, which scoring models).

    The train split is left out on purpose, although the disentanglement probes learn from it: retraining on
    more data must stay comparable on an unchanged test set.
    """
    return fingerprint({"test_shards": shard_checksums(shard_dir, ["test"]),
                        "recogniser": file_checksums([Path(align_dir) / "aligner.pt"]), "settings": dict(settings)})


def tts_test_set(synth_dir: str | Path, shard_dir: str | Path, align_dir: str | Path,
                 settings: Mapping[str, Any]) -> str:
    """Ditto for a TTS evaluation: the synthesized test lists (prompts and targets), the test shards their audio
    comes from, the phone recogniser and ``settings`` (sampler and scoring models)."""
    lists = sorted((Path(synth_dir) / "lists").glob("*.jsonl"))
    if not lists:
        raise FileNotFoundError(f"{Path(synth_dir) / 'lists'}: no test lists; run `ns3 synthesize` first")
    shards = shard_checksums(shard_dir, ["test"]) if (Path(shard_dir) / "shards.json").is_file() else {}
    return fingerprint({"lists": file_checksums(lists), "test_shards": shards,
                        "recogniser": file_checksums([Path(align_dir) / "aligner.pt"]), "settings": dict(settings)})
