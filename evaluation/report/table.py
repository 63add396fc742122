"""A small typed table: cells that know how to print themselves and why they are empty.

Two kinds of empty cell, kept apart on purpose:
- not applicable (``value=None, reason=None``) prints "–" (a classic codec has no codebooks);
- unavailable (``value=None, reason=...``) prints "n/a" with a numbered footnote carrying the reason.
A missing number is never printed as 0.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

NOT_APPLICABLE = "–"
UNAVAILABLE = "n/a"


@dataclass(frozen=True)
class Cell:
    value: float | int | str | None = None
    digits: int | None = None  # decimals for floats; None prints the value as is
    reason: str | None = None  # set only when the value is unavailable

    def __post_init__(self) -> None:
        if self.value is not None and self.reason is not None:
            raise ValueError("a cell with a value cannot carry an unavailability reason")

    @property
    def available(self) -> bool:
        return self.value is not None

    @property
    def text(self) -> str:
        if self.value is None:
            return UNAVAILABLE if self.reason else NOT_APPLICABLE
        if isinstance(self.value, float) and self.digits is not None:
            text = f"{self.value:.{self.digits}f}"
            return text[1:] if text.startswith("-") and float(text) == 0 else text  # no "-0.00"
        return str(self.value)


def na(reason: str) -> Cell:
    return Cell(None, reason=reason)


@dataclass
class Row:
    cells: list[Cell]
    kind: str = "ours"  # ours | paper | metric: the renderers set our system rows apart


@dataclass
class Table:
    key: str  # file stem for the CSV and anchor in the HTML
    title: str
    columns: list[str]
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, cells: Sequence[Cell], kind: str = "ours") -> None:
        if len(cells) != len(self.columns):
            raise ValueError(f"table {self.key}: row has {len(cells)} cells for {len(self.columns)} columns")
        self.rows.append(Row(list(cells), kind))

    def footnotes(self) -> list[str]:
        """Distinct unavailability reasons in reading order; footnote n is ``footnotes()[n - 1]``."""
        seen: dict[str, None] = {}
        for row in self.rows:
            for cell in row.cells:
                if cell.reason:
                    seen.setdefault(cell.reason)
        return list(seen)

    def footnote_number(self, reason: str) -> int:
        return self.footnotes().index(reason) + 1

    def column(self, name: str) -> list[Cell]:
        i = self.columns.index(name)
        return [row.cells[i] for row in self.rows]

    def find_row(self, first_cell: str, kind: str | None = None) -> Row:
        for row in self.rows:
            if row.cells[0].text == first_cell and (kind is None or row.kind == kind):
                return row
        raise KeyError(f"table {self.key}: no row {first_cell!r}")

    def cell(self, first_cell: str, column: str, kind: str | None = None) -> Cell:
        return self.find_row(first_cell, kind).cells[self.columns.index(column)]


# ------------------------------------------------------------------------------------------------- CSV

CSV_EXTRA = ("kind", "unavailable")


def _csv_value(cell: Cell) -> str:
    if cell.value is None:
        return UNAVAILABLE if cell.reason else ""
    return repr(cell.value) if isinstance(cell.value, float) else str(cell.value)


def table_to_csv(table: Table) -> str:
    """Raw values at full precision; each row's unavailability reasons go into an ``unavailable`` column."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([*table.columns, *CSV_EXTRA])
    for row in table.rows:
        reasons = "; ".join(f"{col}: {c.reason}" for col, c in zip(table.columns, row.cells) if c.reason)
        writer.writerow([*(_csv_value(c) for c in row.cells), row.kind, reasons])
    return buf.getvalue()


def _parse(text: str) -> float | str | None:
    if text in ("", UNAVAILABLE):
        return None
    try:
        return float(text)
    except ValueError:
        return text


def read_table_csv(path: str | Path) -> list[dict[str, float | str | None]]:
    """Rows of a CSV written by ``table_to_csv``: numbers as floats, "n/a" and blanks as ``None``."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return [{k: (v if k in CSV_EXTRA else _parse(v)) for k, v in row.items()} for row in rows]
