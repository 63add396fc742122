import re

import pytest

from ns3.corpus.readers import CorpusLayoutError, parse_transcript, read_corpus, read_librispeech
from ns3.corpus.types import RawUtterance


def outcomes(result, root):
    """file label -> "kept" | reason, labelled as the fixture labels them."""
    out = {}
    for item in [*result.kept, *result.rejected]:
        rel = item.path.relative_to(root).as_posix()
        label = ("zcopy/" if rel.startswith("zcopy/") else "") + item.path.name
        if getattr(item, "reason", None) == "missing_audio":
            label += ":" + re.search(r"(\S+)\.flac not found", item.detail).group(1)
        assert label not in out, f"{label} reported twice"
        out[label] = "kept" if isinstance(item, RawUtterance) else item.reason
    return out


def test_every_file_gets_the_expected_outcome(librispeech_tree):
    result = read_librispeech(librispeech_tree.root, min_duration=0.5, max_duration=4.0)
    result.check()
    assert outcomes(result, librispeech_tree.root) == librispeech_tree.expected
    assert result.found == len(librispeech_tree.expected)  # the hidden ._ file is not counted


def test_kept_records_carry_ids_text_speaker_chapter_and_header_durations(librispeech_tree):
    result = read_librispeech(librispeech_tree.root, min_duration=0.5, max_duration=4.0)
    by_key = {u.key: u for u in result.kept}
    assert {k: round(u.duration, 4) for k, u in by_key.items()} == librispeech_tree.durations
    u = by_key["100-200-0001"]
    assert (u.speaker, u.chapter, u.text) == ("100", "200", "IT'S A TEST")  # whitespace collapsed, case kept
    assert u.start is None and u.end is None and u.path.name == "100-200-0001.flac"
    assert by_key["100-300-0000"].text == "PLAIN ASCII"
    assert by_key["101-401-0000_v2"].path.name == "101-401-0000.v2.flac"


def test_keys_are_webdataset_safe(librispeech_tree):
    result = read_librispeech(librispeech_tree.root, min_duration=0.5, max_duration=4.0)
    assert all(re.fullmatch(r"[A-Za-z0-9_-]+", u.key) for u in result.kept)
    assert len({u.key for u in result.kept}) == len(result.kept)


def test_reasons_name_the_problem(librispeech_tree):
    result = read_librispeech(librispeech_tree.root, min_duration=0.5, max_duration=4.0)
    details = {r.path.name: r.detail for r in result.rejected}
    assert "line 2" in details["100-300-0001.flac"]
    assert "0.200 s < min_duration 0.5" in details["100-200-0004.flac"]
    assert "100-200-0006" in details["100-200-0006.flac"]
    assert "101-400.trans.txt" in details["101-400-0000.flac"]


def test_deterministic_and_independent_of_duration_limits_when_unbounded(librispeech_tree):
    a = read_librispeech(librispeech_tree.root, min_duration=0.5, max_duration=4.0)
    b = read_corpus("librispeech", librispeech_tree.root, min_duration=0.5, max_duration=4.0)
    assert [u.to_json() for u in a.kept] == [u.to_json() for u in b.kept]
    assert [r.to_json() for r in a.rejected] == [r.to_json() for r in b.rejected]
    unbounded = read_librispeech(librispeech_tree.root)
    assert {"100-200-0004", "100-200-0005"} <= {u.key for u in unbounded.kept}


def test_transcript_parser_handles_repeats_bom_and_blank_lines(tmp_path):
    p = tmp_path / "1-2.trans.txt"
    p.write_bytes(b"\xef\xbb\xbf1-2-0000 A B\n\n1-2-0001 SAME\n1-2-0001 SAME\n1-2-0002 ONE\n1-2-0002 TWO\n1-2-0003\n")
    entries = parse_transcript(p)
    assert entries["1-2-0000"].text == "A B" and entries["1-2-0000"].problem is None
    assert entries["1-2-0001"].text == "SAME" and entries["1-2-0001"].problem is None
    assert entries["1-2-0002"].problem.reason == "duplicate_key"
    assert entries["1-2-0003"].problem.reason == "empty_text"


def test_bad_roots_and_arguments_raise_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="LibriSpeech root"):
        read_librispeech(tmp_path / "nowhere")
    with pytest.raises(CorpusLayoutError, match="expected LibriSpeech layout"):
        read_librispeech(tmp_path)
    with pytest.raises(ValueError, match="min_duration"):
        read_librispeech(tmp_path, min_duration=5.0, max_duration=1.0)
