"""Symlinked folders, symlink loops and truncated FLACs: every candidate is counted, with a clear reason."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from ns3.audio import DamagedAudioError, load_audio
from ns3.corpus.readers import read_librispeech


def _chapter(root: Path, speaker: str, chapter: str, n: int, seconds: float = 1.0) -> None:
    folder = root / speaker / chapter
    folder.mkdir(parents=True)
    t = np.arange(int(seconds * 16000)) / 16000
    lines = []
    for i in range(n):
        uid = f"{speaker}-{chapter}-{i:04d}"
        sf.write(str(folder / f"{uid}.flac"), (0.3 * np.sin(2 * np.pi * (200 + 40 * i) * t)).astype(np.float32), 16000)
        lines.append(f"{uid} SOME WORDS {i}")
    (folder / f"{speaker}-{chapter}.trans.txt").write_text("\n".join(lines) + "\n")


def truncate(path: Path, keep: float = 0.6) -> Path:
    """Keep the header and the first part of the stream: the header still states the full length."""
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def test_truncated_flac_passes_the_header_but_not_the_decode(tmp_path):
    _chapter(tmp_path, "1", "10", 1, seconds=2.0)
    path = truncate(tmp_path / "1" / "10" / "1-10-0000.flac")
    assert sf.info(str(path)).frames == 32000  # what the header-only readers see
    with pytest.raises(DamagedAudioError, match=r"1-10-0000\.flac.*(decoded \d+ of the 32000 frames|damaged audio stream)"):
        load_audio(path)


def test_symlinked_speaker_folder_is_followed_and_a_folder_loop_terminates(tmp_path):
    corpus, elsewhere = tmp_path / "corpus", tmp_path / "elsewhere"
    _chapter(corpus, "1", "10", 2)
    _chapter(elsewhere, "2", "20", 3)
    (corpus / "2").symlink_to(elsewhere / "2", target_is_directory=True)
    (corpus / "1" / "10" / "back").symlink_to(corpus, target_is_directory=True)  # a loop to the root
    result = read_librispeech(corpus)
    result.check()
    assert sorted(u.key for u in result.kept) == ["1-10-0000", "1-10-0001", "2-20-0000", "2-20-0001", "2-20-0002"]
    linked = next(u for u in result.kept if u.speaker == "2")
    assert linked.path == corpus / "2" / "20" / "2-20-0000.flac"  # the corpus path, not the link target
    assert result.found == 5 and not result.rejected


def test_file_symlink_loop_and_dangling_link_get_clear_reasons(tmp_path):
    _chapter(tmp_path, "1", "10", 1)
    folder = tmp_path / "1" / "10"
    os.symlink(folder / "1-10-0002.flac", folder / "1-10-0001.flac")
    os.symlink(folder / "1-10-0001.flac", folder / "1-10-0002.flac")  # 0001 -> 0002 -> 0001
    os.symlink(tmp_path / "gone.flac", folder / "1-10-0003.flac")
    with open(folder / "1-10.trans.txt", "a") as f:
        f.write("1-10-0001 LOOP\n1-10-0002 LOOP TOO\n1-10-0003 DANGLING\n")
    result = read_librispeech(tmp_path)
    result.check()
    assert [u.key for u in result.kept] == ["1-10-0000"]
    by_name = {r.path.name: r for r in result.rejected}
    assert {n: r.reason for n, r in by_name.items()} == {
        "1-10-0001.flac": "broken_link", "1-10-0002.flac": "broken_link", "1-10-0003.flac": "broken_link"}
    assert "symbolic link loop" in by_name["1-10-0001.flac"].detail and "fix or remove" in by_name["1-10-0001.flac"].detail
    assert "missing file" in by_name["1-10-0003.flac"].detail and "gone.flac" in by_name["1-10-0003.flac"].detail
    assert all("System error" not in r.detail for r in result.rejected)
