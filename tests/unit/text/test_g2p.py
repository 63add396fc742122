"""G2P through espeak-ng: phones, word grouping, pauses, normalisation, clear errors."""
from __future__ import annotations

import pytest

from ns3.text.g2p import G2PError, g2p
from ns3.text.inventory import PhoneInventory
from ns3.text.phones import SIL, split_stress, strip_stress


def test_plain_sentence_words_and_stress():
    p = g2p("The quick brown fox.")
    assert [w.text for w in p.words] == ["The", "quick", "brown", "fox"]
    assert p.words[1].phones == ("k", "w", "ɪ", "k")
    assert p.words[1].stress == (0, 0, 1, 0)  # 'ˈɪ' split into phone + primary stress
    assert all("ˈ" not in ph and "ˌ" not in ph for ph in p.phones)
    assert len(p.phones) == len(p.stress) == len(p.word_index)
    assert p.text_matched


def test_numbers_expand_but_stay_one_word():
    p = g2p("I have 23 apples")
    texts = [w.text for w in p.words]
    assert texts == ["I", "have", "23", "apples"]
    # 'twenty three': far more phones than the two digits
    assert len(p.words[2].phones) >= 7 and "θ" in p.words[2].phones


def test_punctuation_marks_pauses():
    p = g2p("Hello, world -- again; done.")
    assert [w.pause_after for w in p.words] == [True, True, True, True]
    seq = p.with_pauses()
    assert seq.count(SIL) == 3  # none after the final word
    assert seq[0] != SIL and seq[-1] != SIL
    assert [w.text for w in p.words] == ["Hello", "world", "again", "done"]


def test_all_caps_transcripts_are_not_spelled_as_acronyms():
    upper, lower = g2p("IT IS US"), g2p("it is us")
    assert upper.phones == lower.phones


def test_unknown_word_is_still_pronounced():
    p = g2p("zxqvb")
    assert len(p.phones) > 3


@pytest.mark.parametrize("bad", ["", "   ", "\n\t"])
def test_empty_text_is_a_clear_error(bad):
    with pytest.raises(G2PError, match="empty transcript"):
        g2p(bad)


def test_punctuation_only_text_is_a_clear_error():
    with pytest.raises(G2PError, match="no pronounceable"):
        g2p("... -- !")


def test_non_str_input():
    with pytest.raises(G2PError, match="UTF-8"):
        g2p(b"bytes")  # type: ignore[arg-type]
    with pytest.raises(G2PError, match="expects str"):
        g2p(None)  # type: ignore[arg-type]


def test_g2p_phones_are_in_the_english_inventory():
    inv = PhoneInventory.english()
    p = g2p("Dr. Smith paid $3.50 at 10:30 p.m. for a measure of azure beige treasure, didn't he?")
    assert inv.unknown(p.phones) == []


def test_split_stress():
    assert split_stress("ˈɪ") == ("ɪ", 1)
    assert split_stress("ˌoʊ") == ("oʊ", 2)
    assert split_stress("k") == ("k", 0)
    assert strip_stress("ˈɑːɹ") == "ɑːɹ"
