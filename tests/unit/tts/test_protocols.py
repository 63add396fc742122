"""The published test lists: who prompts whom, how long, which emotions; seeded and round-tripped."""
from __future__ import annotations

import pytest

from ns3.tts.protocols import (LIBRISPEECH_VALLE, RAVDESS_EMOTIONS, VALLE_RANGE, PoolUtterance, librispeech_protocol,
                               ravdess_protocol, read_list, write_list)


def _librispeech_pool(speakers: int = 5, per: int = 6) -> list[PoolUtterance]:
    return [PoolUtterance(f"{s}-0-{i:04d}", str(s), f"text {s} {i}", 1.5 + 1.3 * i, "test-000000.tar")
            for s in range(100, 100 + speakers) for i in range(per)]


def _ravdess_pool(actors=(1, 2)) -> list[PoolUtterance]:
    pool = []
    for a in actors:
        for e, name in enumerate(RAVDESS_EMOTIONS, 1):
            for intensity in ("normal",) if name == "neutral" else ("normal", "strong"):
                for st in (1, 2):
                    for rep in (1, 2):
                        key = f"03-01-{e:02d}-{1 if intensity == 'normal' else 2:02d}-{st:02d}-{rep:02d}-{a:02d}"
                        pool.append(PoolUtterance(key, f"Actor_{a:02d}", f"statement {st}", 2.0, f"/x/{key}.wav",
                                                  {"emotion": name, "intensity": intensity, "statement": st,
                                                   "repetition": rep, "vocal_channel": "speech"}))
    return pool


def test_librispeech_one_target_per_speaker_prompted_by_another_utterance_of_that_speaker():
    pool = _librispeech_pool()
    by_key = {u.key: u for u in pool}
    items = librispeech_protocol(pool, seed=3)
    assert len(items) == 5 and len({i.speaker for i in items}) == 5
    for it in items:
        prompt, target = by_key[it.prompt_key], by_key[it.target_key]
        assert it.prompt_key != it.target_key and prompt.speaker == target.speaker == it.speaker
        assert prompt.seconds >= 3.0 and 0.0 <= it.prompt_start <= prompt.seconds - 3.0
        assert it.prompt_seconds == 3.0 and it.target_text == target.text and it.prompt_text == prompt.text


def test_lists_are_seeded_and_widen_per_speaker():
    pool = _librispeech_pool()
    assert librispeech_protocol(pool, seed=3) == librispeech_protocol(pool, seed=3)
    assert librispeech_protocol(pool, seed=3) != librispeech_protocol(pool, seed=4)
    items = librispeech_protocol(pool, seed=3, sentences_per_speaker=3)
    assert len(items) == 15 and len({i.target_key for i in items}) == 15


def test_valle_variant_keeps_targets_of_4_to_10_seconds_only():
    pool = _librispeech_pool()
    items = librispeech_protocol(pool, seed=1, sentences_per_speaker=10, target_range=VALLE_RANGE,
                                 protocol=LIBRISPEECH_VALLE)
    assert items and all(VALLE_RANGE[0] <= i.target_seconds <= VALLE_RANGE[1] for i in items)
    assert all(i.protocol == LIBRISPEECH_VALLE and i.id.startswith(LIBRISPEECH_VALLE) for i in items)


def test_a_speaker_with_one_utterance_gives_no_item():
    pool = _librispeech_pool(speakers=2) + [PoolUtterance("999-0-0000", "999", "alone", 5.0, "t.tar")]
    assert "999" not in {i.speaker for i in librispeech_protocol(pool, seed=0)}


def test_ravdess_strong_intensity_per_actor_and_emotion_prompt_is_the_other_statement():
    pool = _ravdess_pool()
    by_key = {u.key: u for u in pool}
    items = ravdess_protocol(pool, seed=2)
    assert len(items) == 2 * 8
    assert {(i.speaker, i.emotion) for i in items} == {(f"Actor_{a:02d}", e) for a in (1, 2) for e in RAVDESS_EMOTIONS}
    for it in items:
        t, p = by_key[it.target_key].extra, by_key[it.prompt_key].extra
        assert t["emotion"] == p["emotion"] == it.emotion and by_key[it.prompt_key].speaker == it.speaker
        assert t["statement"] != p["statement"] and t["repetition"] == p["repetition"] == 1
        assert t["intensity"] == p["intensity"] == ("normal" if it.emotion == "neutral" else "strong")
        # MCD-Acc candidates: the same actor's target statement in every emotion, the target among them
        assert set(it.candidates) == set(RAVDESS_EMOTIONS) and it.candidates[it.emotion] == it.target_key
        for emotion, key in it.candidates.items():
            c = by_key[key]
            assert c.speaker == it.speaker and c.extra["statement"] == t["statement"] and c.extra["emotion"] == emotion


def test_list_round_trip_and_a_bad_line_names_the_file_and_line(tmp_path):
    items = librispeech_protocol(_librispeech_pool(), seed=0) + ravdess_protocol(_ravdess_pool((3,)), seed=0)
    path = write_list(tmp_path / "lists" / "all.jsonl", items)
    assert read_list(path) == items
    path.write_text(path.read_text() + '{"id": "x"}\n')
    with pytest.raises(ValueError, match=r"all.jsonl:\d+"):
        read_list(path)
