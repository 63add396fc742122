import json

from ns3.data.codec_data import speaker_index


def test_speaker_index_is_sorted_per_split_and_skips_blank_lines(tmp_path):
    rows = [("b", "train"), ("a", "train"), ("c", "valid"), ("b", "train"), ("d", "test")]
    manifest = tmp_path / "manifest.jsonl"
    manifest.write_text("".join(json.dumps({"speaker": s, "split": sp}) + "\n" for s, sp in rows) + "\n\n")
    assert speaker_index(manifest) == {"a": 0, "b": 1}
    assert speaker_index(manifest, "valid") == {"c": 0}
    assert speaker_index(manifest, "missing") == {}
