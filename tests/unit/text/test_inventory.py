"""PhoneInventory: ids, unknown reporting, versioned JSON with a hash."""
from __future__ import annotations

import json

import pytest

from ns3.text.inventory import InventoryError, PhoneInventory, UnknownReport
from ns3.text.phones import PAD, SIL, SPECIAL_TOKENS, UNK


def test_special_tokens_first_and_ids_round_trip():
    inv = PhoneInventory.english()
    assert inv.symbols[:3] == SPECIAL_TOKENS
    assert (inv.pad_id, inv.sil_id, inv.unk_id) == (0, 1, 2)
    ids = inv.encode(["ð", "ə", SIL, "k"])
    assert inv.decode(ids) == ["ð", "ə", SIL, "k"]
    assert len(set(inv.symbols)) == len(inv)


def test_unknown_symbols_are_counted_not_dropped():
    inv = PhoneInventory.english()
    rep = UnknownReport()
    ids = inv.encode(["k", "ʘ", "ʘ", "ǃ"], rep, where="utt1")
    assert ids == [inv.id("k"), inv.unk_id, inv.unk_id, inv.unk_id]
    assert rep.counts == {"ʘ": 2, "ǃ": 1} and rep.total == 3
    assert rep.examples["ʘ"] == ["utt1"]
    other = UnknownReport()
    inv.encode(["ʘ"], other, where="utt2")
    rep.merge(other)
    assert rep.to_json()["symbols"] == {"ʘ": 3, "ǃ": 1}
    assert rep.examples["ʘ"] == ["utt1", "utt2"]


def test_save_load_round_trip_and_hash(tmp_path):
    inv = PhoneInventory.from_phones(["b", "a", "a", SIL])
    assert inv.symbols == (PAD, SIL, UNK, "a", "b")
    path = inv.save(tmp_path / "inv.json")
    back = PhoneInventory.load(path)
    assert back == inv and back.hash == inv.hash
    assert PhoneInventory.english().hash != inv.hash


def test_tampered_or_future_files_are_rejected(tmp_path):
    d = PhoneInventory.english().to_json()
    d["symbols"] = d["symbols"] + ["zz"]
    (tmp_path / "bad.json").write_text(json.dumps(d))
    with pytest.raises(InventoryError, match="does not match"):
        PhoneInventory.load(tmp_path / "bad.json")
    d = PhoneInventory.english().to_json()
    d["format_version"] = 99
    (tmp_path / "new.json").write_text(json.dumps(d))
    with pytest.raises(InventoryError, match="newer"):
        PhoneInventory.load(tmp_path / "new.json")
    with pytest.raises(InventoryError, match="not found"):
        PhoneInventory.load(tmp_path / "missing.json")


def test_invalid_inventories():
    with pytest.raises(InventoryError, match="must start"):
        PhoneInventory(("a", "b"))
    with pytest.raises(InventoryError, match="duplicate"):
        PhoneInventory(SPECIAL_TOKENS + ("a", "a"))
    with pytest.raises(InventoryError, match="outside"):
        PhoneInventory.english().decode([10_000])
