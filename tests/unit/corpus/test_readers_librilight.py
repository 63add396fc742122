import json
import re

import pytest

from ns3.corpus.readers import read_corpus, read_librilight


def read(tree, **kw):
    kw = {"min_duration": 1.0, "max_duration": 10.0, **kw}
    result = read_librilight(tree.root, **kw)
    result.check()
    return result


def test_whole_file_rejections_and_reconciliation(librilight_tree):
    result = read(librilight_tree)
    file_level = {r.path.stem: r.reason for r in result.rejected if r.reason != "too_short"}
    assert file_level == librilight_tree.expected
    segment_level = [r for r in result.rejected if r.reason == "too_short"]
    assert [r.path.stem for r in segment_level] == ["chapter_01"]
    assert "1234_chapter_01_0002" in segment_level[0].detail
    assert result.found == len(result.kept) + len(result.rejected) == 4 + 5


def test_sidecar_voice_activity_is_merged_into_segments_at_most_max_duration(librilight_tree):
    kept = [u for u in read(librilight_tree).kept if u.path.stem == "chapter_01"]
    assert [(u.key, u.start, u.end) for u in kept] == [
        ("1234_chapter_01_0000", 0.5, 9.9),
        ("1234_chapter_01_0001", 11.0, 20.0),
    ]
    u = kept[0]
    assert (u.speaker, u.chapter, u.text) == ("1234", "some_book_64kb", "")
    assert u.duration == pytest.approx(9.4)
    assert u.extra == {
        "unlabelled": True, "vad_source": "sidecar", "snr": 17.5, "book_title": "Some Book", "segment": 0,
    }


def test_energy_vad_segments_land_near_the_truth(librilight_tree, signals):
    # max 3 s forces a cut at every silence; the 3 s phrase fits exactly
    result = read(librilight_tree, max_duration=3.0, hangover=0.0)
    segs = [u for u in result.kept if u.path.stem == "chapter_02"]
    assert all(u.extra["vad_source"] == "energy" and u.duration <= 3.0 for u in segs)
    assert len(segs) == len(signals.expected_regions) == 3
    for u, (s, e) in zip(segs, signals.expected_regions):
        assert abs(u.start - s) <= 0.05 and abs(u.end - e) <= 0.05, (u.start, u.end, s, e)


def test_long_speech_without_pauses_is_split_within_max(tmp_path, signals):
    book = tmp_path / "ll" / "7" / "book"
    signals.write(book / "talk.flac", signals.speech_like(25.0, spans=[(0.0, 25.0)]))
    result = read_librilight(tmp_path / "ll", min_duration=1.0, max_duration=10.0, hangover=0.0)
    assert len(result.kept) == 3 and all(u.duration <= 10.0 for u in result.kept)
    assert result.kept[0].start == pytest.approx(0.0, abs=0.02) and result.kept[-1].end == pytest.approx(25.0, abs=0.02)


def test_sidecar_can_be_ignored_and_empty_activity_means_no_speech(librilight_tree):
    sidecar = librilight_tree.root / "1234" / "some_book_64kb" / "chapter_01.json"
    forced = read(librilight_tree, use_sidecar_vad=False)
    assert {u.extra["vad_source"] for u in forced.kept} == {"energy"}
    sidecar.write_text(json.dumps({"voice_activity": []}), encoding="utf-8")
    assert {r.path.stem: r.reason for r in read(librilight_tree).rejected}["chapter_01"] == "no_speech"


def test_keys_are_safe_unique_and_parallel_read_is_identical(librilight_tree):
    one = read(librilight_tree)
    two = read_corpus("librilight", librilight_tree.root, min_duration=1.0, max_duration=10.0, num_workers=2)
    assert [u.to_json() for u in one.kept] == [u.to_json() for u in two.kept]
    assert [r.to_json() for r in one.rejected] == [r.to_json() for r in two.rejected]
    assert all(re.fullmatch(r"[A-Za-z0-9_-]+", u.key) for u in one.kept)
    assert len({u.key for u in one.kept}) == len(one.kept)


def test_damaged_stream_is_caught_by_the_energy_vad(tmp_path, signals):
    good = signals.write(tmp_path / "ll" / "7" / "book" / "good.flac", signals.speech_like(4.0, spans=[(0.5, 3.5)]))
    data = good.read_bytes()
    (good.parent / "truncated.flac").write_bytes(data[: len(data) // 2])  # header intact, stream cut
    result = read_librilight(tmp_path / "ll", min_duration=1.0, max_duration=10.0)
    assert [u.key for u in result.kept] == ["7_good_0000"]
    # The header read fine, so the file is damaged rather than unreadable (the reason the shard stage gives too).
    assert [(r.path.name, r.reason) for r in result.rejected] == [("truncated.flac", "damaged_audio")]
    assert "decoding for VAD failed" in result.rejected[0].detail and "re-encode" in result.rejected[0].detail


def test_bad_arguments(librilight_tree, tmp_path):
    with pytest.raises(ValueError, match="frame_shift"):
        read_librilight(librilight_tree.root, frame_shift=0.0)
    with pytest.raises(ValueError, match="num_workers"):
        read_librilight(librilight_tree.root, num_workers=0)
    with pytest.raises(ValueError, match="min_duration"):
        read_librilight(librilight_tree.root, min_duration=2.0, max_duration=2.0)
    with pytest.raises(FileNotFoundError, match="LibriLight root"):
        read_librilight(tmp_path / "missing")
