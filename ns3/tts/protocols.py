"""The paper's zero-shot TTS test sets as published, seeded lists (paper §4.1).

- ``librispeech``: one target sentence per test speaker (``sentences_per_speaker`` widens it on a small corpus),
  prompted by a random ``prompt_seconds`` clip of *another* utterance of the same speaker (NaturalSpeech 2's
  protocol). ``librispeech_valle`` is the VALL-E variant: targets of 4-10 s only.
- ``ravdess``: strong intensity, the 8 emotions, per actor. The paper leaves the prompt open; ours: the target is
  one of the two statements (seeded), the prompt the *other* statement by the same actor in the same emotion and
  intensity (repetition 01), so the prompt carries the emotion and the target's words are never in the prompt.
  RAVDESS has no strong neutral, so neutral uses normal intensity. MCD-Acc compares each generated target with
  the same actor's recordings of the target statement in all 8 emotions.

A list is JSON lines of ``TestItem`` (written next to the results, logged to MLflow). Lists are built from
``PoolUtterance`` rows: the shard manifest's test split, or a real corpus root read by ``ns3.corpus.readers``.
The clip start is in the list; the clip's ends snap to phone boundaries when the prompt is prepared.
"""
from __future__ import annotations

import json
import os
import random
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

LIBRISPEECH, LIBRISPEECH_VALLE, RAVDESS = "librispeech", "librispeech_valle", "ravdess"
PROTOCOLS = (LIBRISPEECH, LIBRISPEECH_VALLE, RAVDESS)
VALLE_RANGE = (4.0, 10.0)  # VALL-E's target durations (s)
RAVDESS_EMOTIONS = ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")


@dataclass(frozen=True)
class PoolUtterance:
    """One candidate utterance: ``source`` says where its audio is (a shard name or a file path)."""

    key: str
    speaker: str
    text: str
    seconds: float
    source: str
    extra: dict = field(default_factory=dict)


@dataclass(frozen=True)
class TestItem:
    id: str
    protocol: str
    speaker: str
    target_key: str
    target_text: str
    target_seconds: float
    prompt_key: str
    prompt_text: str
    prompt_start: float  # seconds into the prompt utterance
    prompt_seconds: float | None  # clip length (None: the whole utterance)
    emotion: str | None = None  # ravdess: the emotion of prompt and target
    candidates: dict[str, str] = field(default_factory=dict)  # ravdess: emotion -> same actor's target-statement key

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> "TestItem":
        return cls(**d)


def _by_speaker(pool: Iterable[PoolUtterance]) -> dict[str, list[PoolUtterance]]:
    out: dict[str, list[PoolUtterance]] = defaultdict(list)
    for u in pool:
        out[u.speaker].append(u)
    return {s: sorted(us, key=lambda u: u.key) for s, us in sorted(out.items())}


def librispeech_protocol(pool: Iterable[PoolUtterance], seed: int, prompt_seconds: float = 3.0,
                         sentences_per_speaker: int = 1, target_range: tuple[float, float] | None = None,
                         protocol: str = LIBRISPEECH) -> list[TestItem]:
    """Per speaker ``sentences_per_speaker`` targets (in ``target_range`` seconds if given), each with a random
    ``prompt_seconds`` clip of another utterance of that speaker (one at least that long when there is one)."""
    rng = random.Random(f"{protocol}-{seed}")
    items = []
    for spk, us in _by_speaker(pool).items():
        targets = [u for u in us if target_range is None or target_range[0] <= u.seconds <= target_range[1]]
        if len(us) < 2 or not targets:
            continue
        for target in rng.sample(targets, min(sentences_per_speaker, len(targets))):
            others = [u for u in us if u.key != target.key]
            long_enough = [u for u in others if u.seconds >= prompt_seconds] or others
            prompt = rng.choice(long_enough)
            start = rng.uniform(0.0, max(0.0, prompt.seconds - prompt_seconds))
            items.append(TestItem(f"{protocol}-{target.key}", protocol, spk, target.key, target.text,
                                  round(target.seconds, 3), prompt.key, prompt.text, round(start, 3), prompt_seconds))
    return items


def ravdess_protocol(pool: Iterable[PoolUtterance], seed: int) -> list[TestItem]:
    """Per actor and emotion (strong intensity; neutral: normal), one target statement prompted by the other."""
    rng = random.Random(f"{RAVDESS}-{seed}")
    items = []
    for actor, us in _by_speaker(pool).items():
        pick: dict[tuple[str, int], PoolUtterance] = {}  # (emotion, statement) -> repetition 01 of the strongest take
        for u in us:
            e = u.extra
            if e.get("vocal_channel", "speech") != "speech":
                continue
            wanted = "normal" if e["emotion"] == "neutral" else "strong"
            if e["intensity"] == wanted and int(e["repetition"]) == 1:
                pick[(e["emotion"], int(e["statement"]))] = u
        for emotion in RAVDESS_EMOTIONS:
            statements = [s for s in (1, 2) if (emotion, s) in pick]
            if len(statements) < 2:
                continue
            t_st = rng.choice(statements)
            target, prompt = pick[(emotion, t_st)], pick[(emotion, 3 - t_st)]
            cands = {e: pick[(e, t_st)].key for e in RAVDESS_EMOTIONS if (e, t_st) in pick}
            items.append(TestItem(f"{RAVDESS}-{target.key}", RAVDESS, actor, target.key, target.text,
                                  round(target.seconds, 3), prompt.key, prompt.text, 0.0, None, emotion, cands))
    return items


def write_list(path: str | Path, items: Sequence[TestItem]) -> Path:
    """JSON lines, written atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text("".join(json.dumps(i.to_json(), ensure_ascii=False, sort_keys=True) + "\n" for i in items),
                   encoding="utf-8")
    os.replace(tmp, path)
    return path


def read_list(path: str | Path) -> list[TestItem]:
    items = []
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                items.append(TestItem.from_json(json.loads(line)))
            except (ValueError, TypeError) as e:
                raise ValueError(f"{path}:{n}: not a test-list item ({e})") from None
    return items


def manifest_pool(manifest: str | Path, split: str = "test") -> list[PoolUtterance]:
    """The shard stage's manifest rows of ``split`` (audio lives in the shard named by ``source``)."""
    rows = [json.loads(x) for x in Path(manifest).read_text(encoding="utf-8").splitlines() if x.strip()]
    return [PoolUtterance(r["key"], r["speaker"], r["text"], float(r["duration"]), r["shard"], r.get("extra") or {})
            for r in rows if r.get("split") == split]


def raw_pool(utterances: Iterable) -> list[PoolUtterance]:
    """``ns3.corpus.types.RawUtterance`` rows (a LibriSpeech or RAVDESS root) -> pool (audio at ``path``)."""
    return [PoolUtterance(u.key, u.speaker, u.text, float(u.duration), str(u.path), dict(u.extra or {}))
            for u in utterances]
