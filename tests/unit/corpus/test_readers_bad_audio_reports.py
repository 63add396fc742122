"""What the walk says about a folder it reaches twice: which path it was already walked as, so the link can be found."""
from __future__ import annotations

import logging

from ns3.corpus.readers import read_librispeech


def test_a_folder_reached_twice_is_logged_with_the_path_it_was_walked_as(tmp_path, signals, caplog):
    chapter = tmp_path / "ls" / "5" / "50"
    signals.write(chapter / "5-50-0000.flac", signals.tone(1.0))
    (chapter / "5-50.trans.txt").write_text("5-50-0000 ONE LINE\n")
    (chapter / "again").symlink_to(tmp_path / "ls", target_is_directory=True)  # a loop back to the root
    with caplog.at_level(logging.WARNING, logger="ns3.corpus.readers.common"):
        result = read_librispeech(tmp_path / "ls")
    assert [u.key for u in result.kept] == ["5-50-0000"] and result.found == 1
    (message,) = [r.getMessage() for r in caplog.records]
    assert str(chapter / "again") in message and f"the same folder as {tmp_path / 'ls'}," in message
