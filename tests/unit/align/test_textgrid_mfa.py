"""TextGrid I/O in MFA's format, corpus export, and the MFA adapter (absent and faked)."""
from __future__ import annotations

import os
import stat
import sys
import textwrap

import numpy as np
import pytest

from ns3.align.mfa import INSTALL_HINT, MFAError, MFAUtterance, export_corpus, find_mfa, mfa_command, run_mfa
from ns3.align.textgrid import TextGridError, read_textgrid, write_textgrid
from ns3.align.types import Alignment, WordSpan
from ns3.text.g2p import g2p
from ns3.text.phones import SIL, UNK

# What MFA 3 writes (long format): empty intervals are silence, 'spn' is an unknown word's phone.
MFA_TEXTGRID = textwrap.dedent('''\
    File type = "ooTextFile"
    Object class = "TextGrid"

    xmin = 0
    xmax = 1.0
    tiers? <exists>
    size = 2
    item []:
        item [1]:
            class = "IntervalTier"
            name = "words"
            xmin = 0
            xmax = 1.0
            intervals: size = 4
            intervals [1]:
                xmin = 0
                xmax = 0.1
                text = ""
            intervals [2]:
                xmin = 0.1
                xmax = 0.45
                text = "hi"
            intervals [3]:
                xmin = 0.45
                xmax = 0.8
                text = "bob"
            intervals [4]:
                xmin = 0.8
                xmax = 1.0
                text = ""
        item [2]:
            class = "IntervalTier"
            name = "phones"
            xmin = 0
            xmax = 1.0
            intervals: size = 7
            intervals [1]:
                xmin = 0
                xmax = 0.1
                text = ""
            intervals [2]:
                xmin = 0.1
                xmax = 0.2
                text = "h"
            intervals [3]:
                xmin = 0.2
                xmax = 0.45
                text = "ˈaɪ"
            intervals [4]:
                xmin = 0.45
                xmax = 0.55
                text = "b"
            intervals [5]:
                xmin = 0.55
                xmax = 0.7
                text = "spn"
            intervals [6]:
                xmin = 0.7
                xmax = 0.8
                text = "b"
            intervals [7]:
                xmin = 0.8
                xmax = 1.0
                text = "sil"
    ''')


def test_read_mfa_long_textgrid(tmp_path):
    path = tmp_path / "utt.TextGrid"
    path.write_text(MFA_TEXTGRID, encoding="utf-8")
    a = read_textgrid(path, num_frames=80)
    assert a.phones == [SIL, "h", "aɪ", "b", UNK, "b", SIL]
    assert a.durations.tolist() == [8, 8, 20, 8, 12, 8, 16]
    assert a.num_frames == 80
    assert [(w.text, w.start, w.end, w.phone_start, w.phone_end) for w in a.words] == [
        ("hi", 8, 36, 1, 3), ("bob", 36, 64, 3, 6)]
    # our grid can be one frame longer than MFA's end time (ceil of a partial hop)
    assert read_textgrid(path, num_frames=81).num_frames == 81


def test_textgrid_round_trip(tmp_path):
    a = Alignment([SIL, "h", "aɪ", SIL, "b", "ɑː", "b"], np.array([5, 3, 9, 4, 3, 10, 6]),
                  [WordSpan("hi", 5, 17, 1, 3), WordSpan("bob", 21, 40, 4, 7)])
    path = write_textgrid(a, tmp_path / "x" / "a.TextGrid")
    b = read_textgrid(path, num_frames=a.num_frames)
    assert b.phones == a.phones and b.durations.tolist() == a.durations.tolist()
    assert b.words == a.words


def test_unreadable_textgrids(tmp_path):
    with pytest.raises(TextGridError, match="not found"):
        read_textgrid(tmp_path / "nope.TextGrid")
    (tmp_path / "junk.TextGrid").write_text("hello")
    with pytest.raises(TextGridError, match="not a readable"):
        read_textgrid(tmp_path / "junk.TextGrid")
    (tmp_path / "w.TextGrid").write_text(MFA_TEXTGRID.replace('name = "phones"', 'name = "segments"'))
    with pytest.raises(TextGridError, match="no 'phones' tier"):
        read_textgrid(tmp_path / "w.TextGrid")


def _utts():
    rng = np.random.default_rng(0)
    return [
        MFAUtterance("s1-c-0001", "s1", rng.normal(0, 0.1, 16000).astype(np.float32), g2p("Hello, world.")),
        MFAUtterance("s2-c-0002", "s2", rng.normal(0, 0.1, 12000).astype(np.float32), g2p("I paid $3.50 to the world")),
    ]


def test_export_corpus_layout_and_dictionary(tmp_path):
    lex = export_corpus(_utts(), tmp_path / "corpus", tmp_path / "dict.txt")
    assert (tmp_path / "corpus" / "s1" / "s1-c-0001.wav").exists()
    assert (tmp_path / "corpus" / "s1" / "s1-c-0001.lab").read_text().strip() == "hello world"
    assert (tmp_path / "corpus" / "s2" / "s2-c-0002.lab").read_text().split() == ["i", "paid", "350", "to", "the", "world"]
    lines = (tmp_path / "dict.txt").read_text(encoding="utf-8").splitlines()
    entries = dict(line.split("\t") for line in lines if line.startswith(("hello", "350")))
    assert entries["hello"] == "h ə l oʊ"
    assert entries["350"].startswith("d ɑː l ɚ")
    assert lex["world"] == 1


def test_missing_mfa_gives_install_hint(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(MFAError, match="conda-forge montreal-forced-aligner"):
        find_mfa()
    with pytest.raises(MFAError, match="not on PATH"):
        run_mfa(_utts(), tmp_path / "work")
    assert "conda create" in INSTALL_HINT


def test_commands():
    from pathlib import Path

    train = mfa_command(Path("c"), Path("d.txt"), Path("o"), Path("w"), None, 3)
    assert train[:3] == ["mfa", "train", "c"] and "--output_directory" in train and "3" in train
    al = mfa_command(Path("c"), Path("d.txt"), Path("o"), Path("w"), "english_mfa.zip", 2)
    assert al[:6] == ["mfa", "align", "c", "d.txt", "english_mfa.zip", "o"]


FAKE_MFA = '''#!{python}
"""Stands in for MFA: writes one TextGrid per .lab, phones spread evenly, using the dictionary."""
import sys, pathlib, soundfile
from praatio import textgrid
args = sys.argv[1:]
cmd, corpus, dictionary = args[0], pathlib.Path(args[1]), pathlib.Path(args[2])
out = pathlib.Path(args[args.index("--output_directory") + 1]) if cmd == "train" else pathlib.Path(args[4])
lex = {{}}
for line in dictionary.read_text(encoding="utf-8").splitlines():
    w, p = line.split("\\t")
    lex.setdefault(w, p.split())
for lab in corpus.glob("*/*.lab"):
    dur = soundfile.info(str(lab.with_suffix(".wav"))).duration
    words = lab.read_text(encoding="utf-8").split()
    phones = [(w, p) for w in words for p in lex[w]]
    step = dur / len(phones)
    ph = [(i * step, (i + 1) * step, p) for i, (_, p) in enumerate(phones)]
    wd, i = [], 0
    for w in words:
        n = len(lex[w]); wd.append((i * step, (i + n) * step, w)); i += n
    tg = textgrid.Textgrid()
    tg.addTier(textgrid.IntervalTier("words", wd, 0, dur)); tg.addTier(textgrid.IntervalTier("phones", ph, 0, dur))
    (out / lab.parent.name).mkdir(parents=True, exist_ok=True)
    tg.save(str(out / lab.parent.name / (lab.stem + ".TextGrid")), format="long_textgrid", includeBlankSpaces=True)
'''


def test_run_mfa_through_a_fake_executable(tmp_path, monkeypatch):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    exe = bindir / "mfa"
    exe.write_text(FAKE_MFA.format(python=sys.executable))
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    utts = _utts()
    out = run_mfa(iter(utts), tmp_path / "work")  # a generator, as the align stage streams it
    assert set(out) == {u.key for u in utts}
    a = out["s1-c-0001"]
    assert a.num_frames == 80 and a.phones[:4] == ["h", "ə", "l", "oʊ"]
    assert [w.text for w in a.words] == ["hello", "world"]
