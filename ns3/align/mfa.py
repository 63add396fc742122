"""Montreal Forced Aligner backend: export a corpus, run ``mfa`` as a subprocess, read its TextGrids.

MFA is optional (conda-forge only: it needs Kaldi binaries). We export in its layout — one folder
per speaker with ``<key>.wav`` (16 kHz PCM16) and ``<key>.lab`` (the transcript) — and a
pronunciation dictionary made by our own G2P, so MFA's phones are our inventory's phones. With no
acoustic model given we run ``mfa train`` (GMM-HMM from scratch, no downloaded weights); with one,
``mfa align``. Output TextGrids are read back into ``Alignment`` on the 80 frames/s grid.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from ns3.align.textgrid import read_textgrid
from ns3.align.types import Alignment
from ns3.audio import SAMPLE_RATE, num_frames, write_audio
from ns3.text.g2p import Pronunciation

INSTALL_HINT = (
    "Montreal Forced Aligner ('mfa') is not on PATH. It installs from conda-forge only (it needs Kaldi):\n"
    "    conda create -n aligner -c conda-forge montreal-forced-aligner\n"
    "    conda activate aligner   # or put that env's bin/ on PATH\n"
    "then re-run, or use the built-in aligner (align.backend: builtin)."
)


class MFAError(RuntimeError):
    pass


@dataclass(frozen=True)
class MFAUtterance:
    key: str
    speaker: str
    audio: np.ndarray  # [T] float32, 16 kHz
    pron: Pronunciation


def find_mfa(executable: str = "mfa") -> str:
    path = shutil.which(executable)
    if path is None:
        raise MFAError(INSTALL_HINT)
    return path


def word_token(text: str, phones: Sequence[str]) -> str:
    """Dictionary/transcript token: the word lower-cased with only letters, digits and apostrophes
    (MFA strips other punctuation itself); words G2P could not match to text get their phone string."""
    tok = "".join(c for c in text.lower() if c.isalnum() or c == "'")
    return tok or "".join(phones)


def export_corpus(utterances: Iterable[MFAUtterance], corpus_dir: str | Path, dictionary_path: str | Path) -> dict[str, int]:
    """Write MFA's corpus layout and a pronunciation dictionary. Returns {word: pronunciations}.

    Dictionary lines are ``word<TAB>p1 p2 ...``; a word espeak pronounced differently in different
    contexts gets one line per variant, and MFA picks the best per occurrence.
    """
    corpus_dir = Path(corpus_dir)
    lexicon: dict[str, set[tuple[str, ...]]] = {}
    for u in utterances:
        if "/" in u.speaker or "/" in u.key:
            raise MFAError(f"speaker/key must not contain '/': {u.speaker!r} / {u.key!r}")
        spk_dir = corpus_dir / u.speaker
        spk_dir.mkdir(parents=True, exist_ok=True)
        write_audio(spk_dir / f"{u.key}.wav", u.audio, SAMPLE_RATE)
        tokens = []
        for w in u.pron.words:
            if not w.phones:
                continue
            tok = word_token(w.text, w.phones)
            lexicon.setdefault(tok, set()).add(tuple(w.phones))
            tokens.append(tok)
        (spk_dir / f"{u.key}.lab").write_text(" ".join(tokens) + "\n", encoding="utf-8")
    dictionary_path = Path(dictionary_path)
    dictionary_path.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"{w}\t{' '.join(p)}" for w in sorted(lexicon) for p in sorted(lexicon[w])]
    tmp = dictionary_path.with_name(f".{dictionary_path.name}.tmp")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    os.replace(tmp, dictionary_path)
    return {w: len(p) for w, p in lexicon.items()}


def mfa_command(corpus_dir: Path, dictionary_path: Path, output_dir: Path, work_dir: Path,
                acoustic_model: str | Path | None, num_jobs: int, executable: str = "mfa") -> list[str]:
    """The command line: ``mfa train`` (from scratch) or ``mfa align`` (given acoustic model)."""
    common = ["--clean", "--overwrite", "-j", str(num_jobs), "--temporary_directory", str(work_dir),
              "--output_format", "long_textgrid"]
    if acoustic_model is None:
        return [executable, "train", str(corpus_dir), str(dictionary_path), str(work_dir / "acoustic_model.zip"),
                "--output_directory", str(output_dir), *common]
    return [executable, "align", str(corpus_dir), str(dictionary_path), str(acoustic_model), str(output_dir), *common]


def run_mfa(utterances: Iterable[MFAUtterance], work_dir: str | Path, acoustic_model: str | Path | None = None,
            num_jobs: int = 2, executable: str = "mfa", timeout_s: float | None = None) -> dict[str, Alignment]:
    """Align ``utterances`` with MFA; returns {key: Alignment}. Utterances MFA could not align are absent
    (the caller records them as failed). Raises ``MFAError`` with the install hint when MFA is missing.
    ``utterances`` may be a generator: each is written to MFA's corpus folder and only its key, speaker
    and length are kept, so a corpus's audio is never held at once."""
    exe = find_mfa(executable)
    work_dir = Path(work_dir)
    corpus, dictionary, output = work_dir / "corpus", work_dir / "dictionary.txt", work_dir / "textgrids"
    shutil.rmtree(corpus, ignore_errors=True)
    index: dict[str, tuple[str, int]] = {}

    def recorded():
        for u in utterances:
            index[u.key] = (u.speaker, len(u.audio))
            yield u

    export_corpus(recorded(), corpus, dictionary)
    cmd = mfa_command(corpus, dictionary, output, work_dir / "mfa_tmp", acoustic_model, num_jobs, exe)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired as e:
        raise MFAError(f"mfa timed out after {timeout_s} s: {' '.join(cmd)}") from e
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout or "")[-2000:]
        raise MFAError(f"mfa failed (exit {proc.returncode}): {' '.join(cmd)}\n{tail}")
    return read_mfa_output(output, index)


def read_mfa_output(output_dir: str | Path, index: dict[str, tuple[str, int]]) -> dict[str, Alignment]:
    """Read ``<output_dir>/<speaker>/<key>.TextGrid`` for each ``{key: (speaker, samples)}`` (missing ones are skipped)."""
    output_dir = Path(output_dir)
    out = {}
    for key, (speaker, samples) in index.items():
        tg = output_dir / speaker / f"{key}.TextGrid"
        if tg.exists():
            out[key] = read_textgrid(tg, num_frames=num_frames(samples))
    return out
