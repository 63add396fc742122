"""`ns3 corpus` + `ns3 shard` on a LibriSpeech-layout folder with a truncated FLAC, a symlinked speaker folder,
a folder link back to the root and a file symlink loop: the stage finishes, says why, and loses nothing."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf
import yaml

from tests.helpers import make_project


def _speaker(root: Path, speaker: str, n: int = 3) -> Path:
    folder = root / speaker / "7"
    folder.mkdir(parents=True)
    t = np.arange(24000) / 16000
    lines = []
    for i in range(n):
        uid = f"{speaker}-7-{i:04d}"
        tone = 0.3 * np.sin(2 * np.pi * (150 + 30 * i + 7 * int(speaker)) * t)
        sf.write(str(folder / f"{uid}.flac"), tone.astype(np.float32), 16000)
        lines.append(f"{uid} A FEW WORDS NUMBER {i}")
    (folder / f"{speaker}-7.trans.txt").write_text("\n".join(lines) + "\n")
    return folder


def test_shard_stage_survives_damaged_audio_and_links(tmp_path, prefect_harness):
    from prefect.settings import PREFECT_API_URL

    corpus, elsewhere = tmp_path / "corpus", tmp_path / "elsewhere"
    for spk in ("11", "12", "13"):
        _speaker(corpus, spk)
    _speaker(elsewhere, "14")
    (corpus / "14").symlink_to(elsewhere / "14", target_is_directory=True)  # a speaker assembled from a link
    (corpus / "11" / "7" / "up").symlink_to(corpus, target_is_directory=True)  # a folder loop
    damaged = corpus / "12" / "7" / "12-7-0001.flac"
    damaged.write_bytes(damaged.read_bytes()[: damaged.stat().st_size // 2])  # header intact, stream cut
    loop = corpus / "13" / "7"
    os.symlink(loop / "13-7-0004.flac", loop / "13-7-0003.flac")
    os.symlink(loop / "13-7-0003.flac", loop / "13-7-0004.flac")
    with open(loop / "13-7.trans.txt", "a") as f:
        f.write("13-7-0003 LOOPED\n13-7-0004 LOOPED AGAIN\n")

    root = make_project(tmp_path / "proj", {})
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["profile"] = "test"
    params["corpus"].update(source="librispeech", root=str(corpus), style_source="none", min_duration=0.5)
    params["shard"].update(utts_per_shard=2, splits={"valid_speakers": 1, "test_speakers": 1})
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value(), "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'm.db'}",
           "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    for stage in ("corpus", "shard"):
        out = subprocess.run(["ns3", stage], cwd=root, env=env, capture_output=True, text=True, timeout=600)
        assert out.returncode == 0, f"ns3 {stage}:\n{out.stderr[-3000:]}"

    shards = root / "data" / "shards"
    stats = json.loads((root / "metrics" / "shard.json").read_text())
    # 4 speakers x 3 files + 2 looped links = 14 candidates; the folder loop adds none.
    assert stats["found"] == 14 and stats["found"] == stats["kept"] + stats["rejected"]
    assert stats["rejected_by_reason"] == {"broken_link": 2, "damaged_audio": 1}, stats["rejected_by_reason"]
    rows = [json.loads(x) for x in (shards / "rejections.jsonl").read_text().splitlines()]
    by_reason = {r["reason"]: r for r in rows}
    assert "12-7-0001.flac" in by_reason["damaged_audio"]["path"] and "re-encode" in by_reason["damaged_audio"]["detail"]
    assert "symbolic link loop" in by_reason["broken_link"]["detail"]
    manifest = [json.loads(x) for x in (shards / "manifest.jsonl").read_text().splitlines()]
    assert len(manifest) == stats["kept"] == 11
    assert {m["key"] for m in manifest if m["speaker"] == "14"} == {"14-7-0000", "14-7-0001", "14-7-0002"}
    assert not [p for p in shards.iterdir() if p.name.startswith(".")]  # no temp files left behind
