"""Phone symbols: the special tokens, stress handling, and the English base set.

Phone identity is espeak-ng's IPA phoneme *without* stress marks: 'ˈɪ', 'ˌɪ' and 'ɪ' are the same
phone (same articulation, same acoustics to first order), and folding them keeps every class
well populated for the aligner and the content codes. Stress is not thrown away: it travels as a
separate per-phone feature (0 none, 1 primary, 2 secondary) that a phoneme encoder can embed.
Length marks ('ː') and multi-letter symbols espeak treats as one phoneme ('aɪ', 'dʒ', 'əl', 'ɑːɹ')
stay part of the identity: espeak's phoneme boundaries are the units it times in synthesis, so the
reference alignments of the embedded corpus use the same units.
"""
from __future__ import annotations

PAD = "<pad>"
SIL = "<sil>"
UNK = "<unk>"
SPECIAL_TOKENS: tuple[str, ...] = (PAD, SIL, UNK)

PRIMARY_STRESS = "ˈ"
SECONDARY_STRESS = "ˌ"
_STRESS_LEVEL = {PRIMARY_STRESS: 1, SECONDARY_STRESS: 2}

# Every phoneme espeak-ng 1.51 emits for a phonetically varied English text (pangrams, minimal
# pairs, numbers, abbreviations, spelled letters, r-coloured triphthongs as in 'fire') in its eight
# English voices: en-us, en (gb), en-gb-scotland, en-gb-x-rp, en-029, en-us-nyc, en-gb-x-gbclan,
# en-gb-x-gbcwmd. Stress removed.
# Fixed here so the vocabulary (and every model's embedding table) does not depend on which
# corpus happened to be aligned first; symbols outside it are counted and reported as unknown.
ENGLISH_PHONES: tuple[str, ...] = (
    "a", "a:", "aa", "aɪ", "aɪə", "aɪɚ", "aʊ", "aː", "b", "d", "dʒ", "e", "ei", "eə", "eɪ", "eʲ", "eː",
    "f", "h", "i", "iə", "iː", "j", "k", "l", "m", "n", "n̩", "o", "oə", "oɪ", "oʊ", "oː", "p", "r",
    "s", "t", "tʃ", "t̪", "uː", "v", "w", "x", "z", "æ", "æʊ", "ð", "ŋ", "ɐ", "ɑə", "ɑː", "ɑːɹ",
    "ɒ", "ɔ", "ɔɪ", "ɔː", "ɔːɹ", "ə", "əl", "əu", "əɪ", "əɹ", "əʊ", "ɚ", "ɛ", "ɛə", "ɛɹ", "ɜ",
    "ɜː", "ɡ", "ɪ", "ɪɹ", "ɹ", "ɾ", "ʃ", "ʉ", "ʉɹ", "ʉː", "ʊ", "ʊə", "ʊɹ", "ʌ", "ʌɹ", "ʌʉ", "ʌʊ",
    "ʍ", "ʒ", "ʔ", "θ", "ᵻ",
)


def split_stress(symbol: str) -> tuple[str, int]:
    """'ˈɪ' -> ('ɪ', 1); 'ˌoʊ' -> ('oʊ', 2); 'k' -> ('k', 0). Marks may sit anywhere in the symbol."""
    level = 0
    for mark, lvl in _STRESS_LEVEL.items():
        if mark in symbol:
            level = level or lvl
            symbol = symbol.replace(mark, "")
    return symbol, level


def strip_stress(symbol: str) -> str:
    return split_stress(symbol)[0]
