import pytest

from ns3.corpus.readers import CorpusLayoutError, parse_ravdess_name, read_ravdess
from ns3.corpus.readers.common import Skip


def test_every_file_gets_the_expected_outcome(ravdess_tree):
    result = read_ravdess(ravdess_tree.root)
    result.check()
    got = {u.key: "kept" for u in result.kept} | {r.path.stem: r.reason for r in result.rejected}
    assert got == ravdess_tree.expected
    assert {u.key: round(u.duration, 4) for u in result.kept} == ravdess_tree.durations


def test_fields_text_speaker_and_gender(ravdess_tree):
    by_key = {u.key: u for u in read_ravdess(ravdess_tree.root).kept}
    u = by_key["03-01-05-02-02-02-01"]
    assert (u.speaker, u.text) == ("Actor_01", "Dogs are sitting by the door")
    assert u.extra == {
        "emotion": "angry", "emotion_id": 5, "intensity": "strong", "statement": 2, "repetition": 2, "actor": 1,
        "gender": "male", "modality": "audio-only", "vocal_channel": "speech",
    }
    u = by_key["03-01-08-02-01-01-12"]
    assert (u.speaker, u.text, u.extra["gender"], u.extra["emotion"]) == (
        "Actor_12", "Kids are talking by the door", "female", "surprised",
    )


def test_song_kept_when_asked_and_duration_filter(ravdess_tree):
    result = read_ravdess(ravdess_tree.root, include_song=True)
    song = [u for u in result.kept if u.key == "03-02-03-01-01-01-01"]
    assert len(song) == 1 and song[0].extra["vocal_channel"] == "song"
    short = read_ravdess(ravdess_tree.root, min_duration=0.5)
    assert not short.kept and sum(r.reason == "too_short" for r in short.rejected) == 3


@pytest.mark.parametrize(
    ("stem", "field"),
    [
        ("04-01-01-01-01-01-01", "modality"),
        ("03-03-01-01-01-01-01", "vocal channel"),
        ("03-01-00-01-01-01-01", "emotion"),
        ("03-01-02-03-01-01-01", "intensity"),
        ("03-01-02-01-03-01-01", "statement"),
        ("03-01-02-01-01-03-01", "repetition"),
        ("03-01-02-01-01-01-00", "actor"),
        ("03-01-02-01-01-01-1", "seven two-digit fields"),
    ],
)
def test_parser_names_the_wrong_field(stem, field):
    with pytest.raises(Skip, match=field) as e:
        parse_ravdess_name(stem)
    assert e.value.reason == "bad_name"


def test_all_emotions_decode():
    names = [parse_ravdess_name(f"03-01-{e:02d}-01-01-01-03").emotion for e in range(1, 9)]
    assert names == ["neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised"]


def test_empty_root_is_a_layout_error(tmp_path):
    (tmp_path / "Actor_01").mkdir()
    with pytest.raises(CorpusLayoutError, match="Actor_XX"):
        read_ravdess(tmp_path)
