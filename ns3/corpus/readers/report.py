"""The rejection report and the per-reason summary every reader's result gets."""
from __future__ import annotations

import csv
import json
import os
from collections import Counter
from pathlib import Path

from ns3.corpus.types import ReadResult


def summarize(result: ReadResult) -> dict:
    """Counts for logs and metrics: found/kept/rejected, kept hours and speakers, rejections per reason."""
    result.check()
    return {
        "found": result.found,
        "kept": len(result.kept),
        "rejected": len(result.rejected),
        "kept_seconds": round(sum(u.duration for u in result.kept), 3),
        "kept_speakers": len({u.speaker for u in result.kept}),
        "reasons": dict(sorted(Counter(r.reason for r in result.rejected).items())),
    }


def write_rejections(result: ReadResult, path: str | Path) -> Path:
    """Write one row per rejection (path, reason, detail), atomically.

    ``.csv`` gives CSV with a header; any other suffix gives JSON lines. An empty report is still
    written, so a stage can always declare it as an output.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    rows = [r.to_json() for r in result.rejected]
    try:
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            if path.suffix.lower() == ".csv":
                writer = csv.DictWriter(f, fieldnames=["path", "reason", "detail"])
                writer.writeheader()
                writer.writerows(rows)
            else:
                f.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
