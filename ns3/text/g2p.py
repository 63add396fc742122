"""English text -> phones with word boundaries and pause hints, through espeak-ng.

espeak-ng does the text normalisation (numbers, currency, times, abbreviations, spelling out
unknown letter strings) and the pronunciation, always on the whole text so that context-dependent
choices ('the' before a vowel, clause intonation) match what espeak would speak. To keep each
phone attached to the orthographic word it came from, every whitespace token is also phonemized
on its own, only to count how many espeak words it expands to ('23' -> 'twenty three' is two);
the whole-text words are then grouped by those counts. When the counts disagree (espeak merged
or split across tokens), words keep their phones and get the text '' (flagged in ``text_matched``).

All-caps transcripts are lower-cased first (see ``_normalise``).

Pause hints: a token ending in clause punctuation (, . ; : ! ? dashes, closing brackets) marks a
likely pause after its word. Aligners treat every inter-word silence as optional either way.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from ns3.text.espeak import phonemize_words
from ns3.text.phones import SIL, split_stress

_PAUSE_PUNCT = set(",.;:!?…—–)]}\"»”")
_HAS_WORD_CHAR = re.compile(r"\w", re.UNICODE)


class G2PError(ValueError):
    pass


@dataclass(frozen=True)
class WordPronunciation:
    text: str  # orthographic token ('' when it could not be matched)
    phones: tuple[str, ...]  # stress-free phone symbols
    stress: tuple[int, ...]  # per phone: 0 none, 1 primary, 2 secondary
    pause_after: bool  # punctuation after this word suggests a pause


@dataclass(frozen=True)
class Pronunciation:
    text: str
    words: tuple[WordPronunciation, ...]
    text_matched: bool  # every word carries its orthographic token

    @property
    def phones(self) -> list[str]:
        return [p for w in self.words for p in w.phones]

    @property
    def stress(self) -> list[int]:
        return [s for w in self.words for s in w.stress]

    @property
    def word_index(self) -> list[int]:
        """Per phone: which word it belongs to."""
        return [i for i, w in enumerate(self.words) for _ in w.phones]

    def with_pauses(self) -> list[str]:
        """Phones with ``<sil>`` after each word that ends in clause punctuation (TTS input without an aligner)."""
        out: list[str] = []
        for i, w in enumerate(self.words):
            out.extend(w.phones)
            if w.pause_after and i < len(self.words) - 1:
                out.append(SIL)
        return out


def _split_word(espeak_word: str) -> tuple[list[str], list[int]]:
    # '_' separates phonemes; empty pieces ('__', leading/trailing '_') are espeak's short pauses
    # or punctuation residue, not phonemes.
    phones, stress = [], []
    for piece in espeak_word.split("_"):
        if not piece:
            continue
        p, s = split_stress(piece)
        if p:
            phones.append(p)
            stress.append(s)
    return phones, stress


def _strip_punct(token: str) -> str:
    """'apples,' -> 'apples'; '"quoted"' -> 'quoted'; '$3.50' and '1,500' keep their inner symbols."""
    is_punct = lambda c: unicodedata.category(c).startswith("P")  # noqa: E731
    i, j = 0, len(token)
    while i < j and is_punct(token[i]):
        i += 1
    while j > i and is_punct(token[j - 1]):
        j -= 1
    return token[i:j] or token


def _normalise(text: str) -> str:
    text = unicodedata.normalize("NFC", text)
    # All-caps transcripts (LibriSpeech style) would make espeak spell short words as acronyms
    # ('IT' -> 'I T', 'US' -> 'U S'); lower-case them. Mixed-case text keeps its acronyms.
    if any(c.isalpha() for c in text) and not any(c.islower() for c in text):
        text = text.lower()
    return " ".join(text.split())


def g2p(text: str, voice: str = "en-us") -> Pronunciation:
    """Text -> ``Pronunciation``. Raises ``G2PError`` on empty/unspeakable text or non-str input."""
    if isinstance(text, bytes):
        raise G2PError("g2p expects str; decode the transcript as UTF-8 first")
    if not isinstance(text, str):
        raise G2PError(f"g2p expects str, got {type(text).__name__}")
    clean = _normalise(text)
    if not clean:
        raise G2PError("empty transcript: nothing to phonemize (drop the utterance or fix its text)")
    if not _HAS_WORD_CHAR.search(clean):
        # espeak would read lone symbols aloud ('!' -> 'exclamation'); a transcript needs words.
        raise G2PError(f"transcript {clean[:60]!r} has no pronounceable words (punctuation only)")
    whole = [w for w in (_split_word(x) for x in phonemize_words(clean, voice)) if w[0]]
    if not whole:
        raise G2PError(f"transcript {clean[:60]!r} has no pronounceable words")

    tokens = clean.split(" ")
    counts = [sum(1 for x in phonemize_words(t, voice) if _split_word(x)[0]) if _HAS_WORD_CHAR.search(t) else 0 for t in tokens]
    words: list[WordPronunciation] = []
    if sum(counts) == len(whole):
        k = 0
        for tok, n in zip(tokens, counts):
            if n == 0:
                # A token that is pure punctuation ('--') still signals a pause after the previous word.
                if words and any(c in _PAUSE_PUNCT or c in "-" for c in tok):
                    words[-1] = WordPronunciation(words[-1].text, words[-1].phones, words[-1].stress, True)
                continue
            group = whole[k:k + n]
            k += n
            phones = tuple(p for g in group for p in g[0])
            stress = tuple(s for g in group for s in g[1])
            words.append(WordPronunciation(_strip_punct(tok), phones, stress, tok[-1] in _PAUSE_PUNCT))
        matched = True
    else:
        words = [WordPronunciation("", tuple(p), tuple(s), False) for p, s in whole]
        matched = False
    return Pronunciation(text=clean, words=tuple(words), text_matched=matched)
