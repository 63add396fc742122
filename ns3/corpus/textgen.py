"""Sentences for the embedded corpus: a small grammar over word lists, deterministic by seed.

Varied enough that every common English phone appears in many contexts, and each sentence is
different, so the aligner and the codec's content supervision see real phonetic variety.
"""
from __future__ import annotations

import random

_DET = ["the", "a", "every", "one", "that", "this", "some", "my", "her", "his", "our", "their"]
_ADJ = [
    "quick", "lazy", "quiet", "bright", "heavy", "gentle", "yellow", "ancient", "curious", "honest", "narrow",
    "famous", "smooth", "frozen", "wooden", "golden", "hungry", "careful", "distant", "sudden", "silver", "modest",
    "thirsty", "patient", "clever", "shallow", "rough", "royal", "vivid", "weary", "eager", "fragile", "jolly",
]
_NOUN = [
    "farmer", "river", "teacher", "garden", "engine", "island", "kitchen", "pilot", "village", "window", "doctor",
    "mountain", "letter", "basket", "shadow", "violin", "harbor", "judge", "orchard", "thunder", "museum", "sailor",
    "lantern", "journey", "pebble", "giraffe", "bakery", "chimney", "measure", "treasure", "voyage", "zebra", "cushion",
    "rhythm", "oyster", "feather", "bridge", "puzzle", "thought", "kettle", "wagon", "beacon", "cellar", "shepherd",
]
_VERB = [
    "carried", "noticed", "painted", "followed", "watched", "gathered", "measured", "visited", "pushed", "borrowed",
    "repaired", "admired", "answered", "finished", "cleaned", "delivered", "opened", "washed", "thanked", "judged",
    "chased", "joined", "ignored", "mentioned", "shaped", "wrapped", "treasured", "observed", "loaded", "described",
]
_ADV = [
    "slowly", "quietly", "gladly", "yesterday", "again", "together", "early", "often", "nearly", "surely",
    "happily", "rarely", "gently", "suddenly", "outside", "tonight", "boldly", "truly",
]
_PREP = ["near", "under", "behind", "beside", "across", "through", "toward", "over", "along", "without", "with", "after"]
_CONJ = ["and", "but", "while", "because", "so", "although", "until", "when"]
_OPENERS = ["", "", "", "", "then", "later", "at dawn", "in june", "on monday", "by noon", "after that"]


def _noun_phrase(rng: random.Random) -> list[str]:
    words = [rng.choice(_DET)]
    if rng.random() < 0.7:
        words.append(rng.choice(_ADJ))
    words.append(rng.choice(_NOUN))
    return words


def _clause(rng: random.Random) -> list[str]:
    words = _noun_phrase(rng) + [rng.choice(_VERB)] + _noun_phrase(rng)
    if rng.random() < 0.5:
        words += [rng.choice(_PREP)] + _noun_phrase(rng)
    if rng.random() < 0.4:
        words.append(rng.choice(_ADV))
    return words


def sentence(rng: random.Random, min_words: int, max_words: int) -> str:
    """One sentence of ``min_words``..``max_words`` words, capitalised, ending in '.' or '?' or '!'.

    Clauses are joined until the length is reached, then trimmed on a word boundary.
    """
    target = rng.randint(min_words, max_words)
    opener = rng.choice(_OPENERS)
    words = opener.split() + _clause(rng)
    while len(words) < target:
        words += [rng.choice(_CONJ)] + _clause(rng)
    words = words[:target]
    # A clause must not end on a function word: it sounds broken and confuses prosody.
    while len(words) > 1 and words[-1] in set(_DET) | set(_PREP) | set(_CONJ):
        words.pop()
    if rng.random() < 0.3 and len(words) > 4:
        cut = rng.randint(2, len(words) - 2)
        words[cut] = words[cut] + ","
    end = rng.choices([".", "?", "!"], weights=[0.8, 0.12, 0.08])[0]
    text = " ".join(words) + end
    return text[0].upper() + text[1:]
