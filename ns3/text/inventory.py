"""The phone vocabulary every model shares: ids, special tokens, a version and a content hash.

A model's embedding table is only meaningful together with the inventory it was trained with, so
the inventory is saved next to every checkpoint and compared by hash when loading. Symbols that
are not in the inventory map to ``<unk>`` and are *counted*, never silently dropped; callers
surface ``UnknownReport`` in their metrics.
"""
from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from ns3.text.phones import ENGLISH_PHONES, PAD, SIL, SPECIAL_TOKENS, UNK

INVENTORY_FORMAT_VERSION = 1


class InventoryError(ValueError):
    pass


@dataclass
class UnknownReport:
    """Symbols seen while encoding that the inventory lacks: how often, and in which utterances (first few)."""

    counts: Counter = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)

    def add(self, symbol: str, where: str = "") -> None:
        self.counts[symbol] += 1
        seen = self.examples.setdefault(symbol, [])
        if where and len(seen) < 5 and where not in seen:
            seen.append(where)

    def merge(self, other: "UnknownReport") -> None:
        for sym, n in other.counts.items():
            self.counts[sym] += n
            for w in other.examples.get(sym, []):
                seen = self.examples.setdefault(sym, [])
                if len(seen) < 5 and w not in seen:
                    seen.append(w)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def to_json(self) -> dict:
        return {"total": self.total, "symbols": dict(self.counts.most_common()), "examples": self.examples}


@dataclass(frozen=True)
class PhoneInventory:
    """Ordered symbols; id = position. The first three are always ``<pad>``, ``<sil>``, ``<unk>``."""

    symbols: tuple[str, ...]
    name: str = "english-espeak"
    version: int = INVENTORY_FORMAT_VERSION

    def __post_init__(self) -> None:
        if tuple(self.symbols[: len(SPECIAL_TOKENS)]) != SPECIAL_TOKENS:
            raise InventoryError(f"inventory must start with {SPECIAL_TOKENS}, got {self.symbols[:3]}")
        dup = [s for s, n in Counter(self.symbols).items() if n > 1]
        if dup:
            raise InventoryError(f"inventory has duplicate symbols: {dup}")
        object.__setattr__(self, "_index", {s: i for i, s in enumerate(self.symbols)})

    # --- construction -------------------------------------------------------------------------
    @classmethod
    def english(cls) -> "PhoneInventory":
        """The default: special tokens + espeak-ng's English phonemes (see ns3.text.phones)."""
        return cls(SPECIAL_TOKENS + ENGLISH_PHONES)

    @classmethod
    def from_phones(cls, phones: Iterable[str], name: str = "corpus") -> "PhoneInventory":
        """An inventory of exactly the phones seen (sorted for determinism), plus the special tokens."""
        seen = sorted({p for p in phones if p not in SPECIAL_TOKENS})
        return cls(SPECIAL_TOKENS + tuple(seen), name=name)

    # --- lookup -------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.symbols)

    def __contains__(self, symbol: str) -> bool:
        return symbol in self._index  # type: ignore[attr-defined]

    @property
    def pad_id(self) -> int:
        return self._index[PAD]  # type: ignore[attr-defined]

    @property
    def sil_id(self) -> int:
        return self._index[SIL]  # type: ignore[attr-defined]

    @property
    def unk_id(self) -> int:
        return self._index[UNK]  # type: ignore[attr-defined]

    def id(self, symbol: str) -> int:
        return self._index.get(symbol, self.unk_id)  # type: ignore[attr-defined]

    def encode(self, phones: Sequence[str], report: UnknownReport | None = None, where: str = "") -> list[int]:
        """Symbols -> ids; unknown symbols become ``<unk>`` and are added to ``report``."""
        ids = []
        for p in phones:
            i = self._index.get(p)  # type: ignore[attr-defined]
            if i is None:
                i = self.unk_id
                if report is not None:
                    report.add(p, where)
            ids.append(i)
        return ids

    def decode(self, ids: Iterable[int]) -> list[str]:
        out = []
        for i in ids:
            if not 0 <= int(i) < len(self.symbols):
                raise InventoryError(f"phone id {int(i)} outside inventory of size {len(self.symbols)}")
            out.append(self.symbols[int(i)])
        return out

    def unknown(self, phones: Iterable[str]) -> list[str]:
        return sorted({p for p in phones if p not in self})

    # --- persistence --------------------------------------------------------------------------
    @property
    def hash(self) -> str:
        """Content hash of the ordered symbols: equal hash <=> identical id mapping."""
        return hashlib.sha256(json.dumps(list(self.symbols), ensure_ascii=False).encode()).hexdigest()[:16]

    def to_json(self) -> dict:
        return {"format_version": self.version, "name": self.name, "hash": self.hash, "symbols": list(self.symbols)}

    @classmethod
    def from_json(cls, d: dict, source: str = "<dict>") -> "PhoneInventory":
        try:
            version, symbols = int(d["format_version"]), tuple(d["symbols"])
        except (KeyError, TypeError, ValueError) as e:
            raise InventoryError(f"{source}: not a phone inventory (needs 'format_version' and 'symbols'): {e}") from e
        if version > INVENTORY_FORMAT_VERSION:
            raise InventoryError(f"{source}: inventory format {version} is newer than this code ({INVENTORY_FORMAT_VERSION})")
        inv = cls(symbols, name=str(d.get("name", "corpus")), version=version)
        if "hash" in d and d["hash"] != inv.hash:
            raise InventoryError(f"{source}: hash {d['hash']} does not match its symbols ({inv.hash}); file edited by hand?")
        return inv

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(self.to_json(), ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> "PhoneInventory":
        path = Path(path)
        try:
            d = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as e:
            raise InventoryError(f"{path}: phone inventory not found (the align stage writes inventory.json)") from e
        except json.JSONDecodeError as e:
            raise InventoryError(f"{path}: not valid JSON ({e})") from e
        return cls.from_json(d, source=str(path))
