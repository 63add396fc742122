"""Code shards: what the ``extract_codes`` stage writes for the factorized diffusion.

A code shard mirrors an audio shard: ``<data>/codes/<shard name>.tar`` (WebDataset layout, the same
``__key__`` per utterance). Members per utterance:

- ``codes.npy``          int16 [Q, F]: the frame code levels p, c1, c2, d1, d2, d3 (Q = 3 without detail)
- ``timbre.npy``         float32 [D]: the codec's timbre vector
- ``phone_ids.npy``      int16 [P]: phone ids of the align stage's inventory
- ``durations.npy``      int16 [P]: codec frames per phone, summing exactly to F
- ``phone_prosody.npy``  int16 [P]: one prosody code per phone (NaturalSpeech 3 §4.1)
- ``meta.json``          {key, speaker, num_samples, num_frames}

``code_info.json`` beside the shards names the codec (sha256 of its checkpoint file) and the phone
inventory the codes go with, so codes from another codec are refused (``check_codec``) rather than mixed.
Integers are stored as int16 (a 1024-entry codebook, a few hundred phone ids) and read back as int64.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from ns3.data import storage
from ns3.data.shards import _tar_add, iter_tar_groups

CODE_FORMAT = "ns3.code-shards"
CODE_VERSION = 1
CODE_INFO_FILE = "code_info.json"
MEMBERS = ("codes.npy", "timbre.npy", "phone_ids.npy", "durations.npy", "phone_prosody.npy", "meta.json")
_FIX = "re-run `ns3 extract-codes`"
_INT16 = np.iinfo(np.int16)


class CodecMismatchError(ValueError):
    """Code shards made by another codec than the one in use."""


@dataclass
class CodeUtterance:
    """One utterance of a code shard. Q = code levels, F = frames, D = timbre dim, P = phones."""

    key: str
    speaker: str
    codes: np.ndarray  # [Q, F] int64
    timbre: np.ndarray  # [D] float32
    phone_ids: np.ndarray  # [P] int64
    durations: np.ndarray  # [P] int64, sum == F
    phone_prosody: np.ndarray  # [P] int64
    num_samples: int  # audio samples the codes were made from

    @property
    def num_frames(self) -> int:
        return int(self.codes.shape[1])

    def validate(self) -> None:
        """Shapes and the duration sum; raises ValueError naming the key."""
        problems = []
        if self.codes.ndim != 2:
            problems.append(f"codes must be [Q, F], got shape {self.codes.shape}")
        if self.timbre.ndim != 1:
            problems.append(f"timbre must be [D], got shape {self.timbre.shape}")
        p = {len(self.phone_ids), len(self.durations), len(self.phone_prosody)}
        if len(p) != 1 or self.phone_ids.ndim != 1:
            problems.append(f"phone_ids / durations / phone_prosody lengths differ: {sorted(p)}")
        if self.codes.ndim == 2 and int(np.sum(self.durations)) != self.codes.shape[1]:
            problems.append(f"durations sum to {int(np.sum(self.durations))} frames, codes have {self.codes.shape[1]}")
        if len(self.durations) and int(np.min(self.durations)) < 1:
            problems.append("every phone needs at least one frame")
        if problems:
            raise ValueError(f"code utterance {self.key!r}: " + "; ".join(problems))


@dataclass(frozen=True)
class CodeShardInfo:
    """``code_info.json``: which codec and phone inventory a folder of code shards belongs to."""

    codec_hash: str  # sha256 (hex) of the codec checkpoint file
    codec_path: str
    codebook_size: int
    n_prosody: int
    n_content: int
    n_detail: int  # 0 for a no-detail codec
    latent_dim: int
    frame_rate: float
    inventory_hash: str | None  # the align stage's phone inventory (None: nothing was aligned)
    factorized: bool = True  # False: codes of the -factorization codec (one residual VQ, a zero timbre vector)
    format: str = CODE_FORMAT
    version: int = CODE_VERSION

    @property
    def num_levels(self) -> int:
        return self.n_prosody + self.n_content + self.n_detail

    def to_json(self) -> dict:
        return asdict(self)


def file_sha256(path: str | Path) -> str:
    """sha256 (64 hex digits) of a file's bytes, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _npy(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a, allow_pickle=False)
    return buf.getvalue()


def _load(data: bytes) -> np.ndarray:
    return np.load(io.BytesIO(data), allow_pickle=False)


def _int16(a: np.ndarray, what: str, key: str) -> np.ndarray:
    a = np.asarray(a)
    if a.size and (int(a.min()) < _INT16.min or int(a.max()) > _INT16.max):
        raise ValueError(f"code utterance {key!r}: {what} outside int16 ({int(a.min())}..{int(a.max())})")
    return a.astype(np.int16)


def _write_atomic(path: Path, write) -> None:
    """``write(file)`` into a temp file beside ``path``, then rename; no temp file outlives a failure."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            write(f)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_code_shard(path: str | Path, utterances: Iterable[CodeUtterance]) -> int:
    """Write the utterances (any iterable: a generator streams them) as one code shard, atomically.

    Tar headers and JSON are deterministic, so the same codes give the same bytes. Returns the count.
    """
    count = 0

    def write(f) -> None:
        nonlocal count
        with tarfile.open(fileobj=f, mode="w", format=tarfile.USTAR_FORMAT) as tar:
            for u in utterances:
                u.validate()
                if "." in u.key:  # the key is everything up to the first dot of a member name
                    raise ValueError(f"code utterance key {u.key!r} contains a dot")
                meta = {"key": u.key, "speaker": u.speaker, "num_samples": int(u.num_samples),
                        "num_frames": u.num_frames}
                arrays = {"codes.npy": _int16(u.codes, "codes", u.key),
                          "timbre.npy": np.asarray(u.timbre, dtype=np.float32),
                          "phone_ids.npy": _int16(u.phone_ids, "phone_ids", u.key),
                          "durations.npy": _int16(u.durations, "durations", u.key),
                          "phone_prosody.npy": _int16(u.phone_prosody, "phone_prosody", u.key)}
                for name, a in arrays.items():
                    _tar_add(tar, f"{u.key}.{name}", _npy(a))
                _tar_add(tar, f"{u.key}.meta.json", json.dumps(meta, sort_keys=True).encode())
                count += 1

    _write_atomic(Path(path), write)
    return count


def iter_code_shard(path: str | Path) -> Iterator[CodeUtterance]:
    """The utterances of a code shard (a local path or a URL) in file order (integers as int64, timbre float32)."""
    for key, parts in iter_tar_groups(path):
        missing = [m for m in MEMBERS if m not in parts]
        if missing:
            raise ValueError(f"{path}: utterance {key!r} lacks {missing}; {_FIX}")
        meta = json.loads(parts["meta.json"])
        u = CodeUtterance(
            key=key, speaker=meta["speaker"], codes=_load(parts["codes.npy"]).astype(np.int64),
            timbre=_load(parts["timbre.npy"]).astype(np.float32),
            phone_ids=_load(parts["phone_ids.npy"]).astype(np.int64),
            durations=_load(parts["durations.npy"]).astype(np.int64),
            phone_prosody=_load(parts["phone_prosody.npy"]).astype(np.int64), num_samples=int(meta["num_samples"]),
        )
        u.validate()
        yield u


def write_code_info(code_dir: str | Path, info: CodeShardInfo) -> Path:
    path = Path(code_dir) / CODE_INFO_FILE
    _write_atomic(path, lambda f: f.write(json.dumps(info.to_json(), indent=1, sort_keys=True).encode()))
    return path


def read_code_info(code_dir: str | Path) -> CodeShardInfo:
    """``<code_dir>/code_info.json`` (a folder or a URL) -> CodeShardInfo; a missing file, another format or
    version is an error naming the file and the fix."""
    path = storage.join(code_dir, CODE_INFO_FILE)
    if not storage.exists(path):
        raise FileNotFoundError(f"{path}: no code-shard info (not a folder of extracted codes); {_FIX}")
    try:
        d = json.loads(storage.read_text(path))
    except storage.StorageError:  # the store, not the file: its message says what to check
        raise
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: not readable as JSON ({e}); {_FIX}") from e
    if not isinstance(d, dict) or d.get("format") != CODE_FORMAT:
        got = d.get("format") if isinstance(d, dict) else type(d).__name__
        raise ValueError(f"{path}: format {got!r}, expected {CODE_FORMAT!r}; {_FIX}")
    if d.get("version") != CODE_VERSION:
        raise ValueError(f"{path}: {CODE_FORMAT} version {d.get('version')!r} is not supported (this code reads "
                         f"version {CODE_VERSION}); {_FIX}")
    try:
        return CodeShardInfo(**d)
    except TypeError as e:
        raise ValueError(f"{path}: fields do not match {CODE_FORMAT} v{CODE_VERSION} ({e}); {_FIX}") from e


def check_codec_hash(expected: str, codec_path: str | Path, what: str, fix: str) -> None:
    """Refuse ``what`` (made from the codec with sha256 ``expected``) beside the codec at ``codec_path`` if that file
    is another codec; the message names both hashes and ``fix``."""
    have = file_sha256(codec_path)
    if have != expected:
        raise CodecMismatchError(f"{what} the codec with sha256 {expected}, but {codec_path} has sha256 {have}: {fix}")


def check_codec(info: CodeShardInfo, codec_path: str | Path) -> None:
    """Refuse code shards made by another codec than ``codec_path`` (compared by the checkpoint's sha256)."""
    check_codec_hash(info.codec_hash, codec_path, f"the code shards ({info.codec_path}) were made by",
                     "re-run `ns3 extract-codes` with this codec")
