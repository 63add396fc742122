import csv
import json

import pytest

from ns3.corpus.readers import READERS, Reason, read_corpus, sanitize_key, summarize, write_rejections
from ns3.corpus.types import ReadResult


def test_summary_counts_per_reason(librispeech_tree):
    result = read_corpus("librispeech", librispeech_tree.root, min_duration=0.5, max_duration=4.0)
    s = summarize(result)
    expected = list(librispeech_tree.expected.values())
    assert s["found"] == len(expected) and s["kept"] == expected.count("kept")
    assert s["rejected"] == s["found"] - s["kept"]
    assert s["reasons"] == {r: expected.count(r) for r in sorted(set(expected) - {"kept"})}
    assert s["kept_seconds"] == pytest.approx(sum(librispeech_tree.durations.values()))
    assert s["kept_speakers"] == 2
    assert set(s["reasons"]) <= {str(r) for r in Reason}


def test_rejection_report_round_trips_as_jsonl_and_csv(ravdess_tree, tmp_path):
    result = read_corpus("ravdess", ravdess_tree.root)
    rows = [r.to_json() for r in result.rejected]
    jl = write_rejections(result, tmp_path / "reports" / "rejected.jsonl")
    assert [json.loads(line) for line in jl.read_text(encoding="utf-8").splitlines()] == rows
    with open(write_rejections(result, tmp_path / "rejected.csv"), newline="", encoding="utf-8") as f:
        assert list(csv.DictReader(f)) == rows
    assert not list(tmp_path.rglob(".*.tmp"))  # no temp files left behind


def test_empty_report_is_still_written(tmp_path):
    path = write_rejections(ReadResult(kept=[], rejected=[], found=0), tmp_path / "r.jsonl")
    assert path.read_text() == ""


def test_summary_refuses_results_that_do_not_reconcile():
    with pytest.raises(AssertionError, match="do not reconcile"):
        summarize(ReadResult(kept=[], rejected=[], found=1))


def test_dispatcher_knows_the_three_layouts(tmp_path):
    assert sorted(READERS) == ["librilight", "librispeech", "ravdess"]
    with pytest.raises(ValueError, match="unknown corpus layout 'vctk'"):
        read_corpus("vctk", tmp_path)


@pytest.mark.parametrize(
    ("name", "key"),
    [("100-200-0001", "100-200-0001"), ("a.b/c d", "a_b_c_d"), ("caf\u00e9", "caf_"), ("", "_"), ("x..y", "x__y")],
)
def test_sanitize_key(name, key):
    assert sanitize_key(name) == key
