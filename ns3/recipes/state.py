"""Training state a recipe resumes from, and the guard that resumes only the same recipe.

A state folder (``<data>/state/<stage>``) holds the solver's ``last.pt`` and ``recipe.json``, the
fingerprint of the recipe that made it. Budgets and logging cadence may change between a run and its
resume; everything else (model, data, losses, optimiser, seed) defines the run, and state made under
another definition is moved aside, never deleted, to ``<state>.replaced-<its hash>``.
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, Mapping

from ns3 import tracking

FINGERPRINT_FILE = "recipe.json"
log = logging.getLogger(__name__)


def recipe_fingerprint(recipe: Mapping[str, Any]) -> dict:
    """{"hash", "recipe"} of a JSON-able recipe description (budgets already left out by the caller)."""
    return {"hash": tracking.config_hash(dict(recipe)), "recipe": dict(recipe)}


def retire_stale_state(state_dir: Path, fingerprint: dict) -> Path | None:
    """Keep ``state_dir`` if it was made by the same recipe; else move it aside and start empty.

    Returns where stale state went (None when nothing moved). Call on one process only
    (`prepare_training_state` does that under torchrun).
    """
    state_dir = Path(state_dir)
    marker = state_dir / FINGERPRINT_FILE
    aside = None
    if state_dir.exists() and any(state_dir.iterdir()):
        old = json.loads(marker.read_text()) if marker.exists() else {"hash": "unknown"}
        if old["hash"] != fingerprint["hash"]:
            base = f"{state_dir.name}.replaced-{old['hash']}"
            aside, n = state_dir.with_name(base), 1
            while aside.exists():
                n += 1
                aside = state_dir.with_name(f"{base}-{n}")
            state_dir.rename(aside)
            log.warning("recipe changed (%s -> %s): previous training state moved to %s; training from scratch",
                        old["hash"], fingerprint["hash"], aside)
    state_dir.mkdir(parents=True, exist_ok=True)
    tmp = marker.with_suffix(".tmp")
    tmp.write_text(json.dumps(fingerprint, indent=1, sort_keys=True))
    tmp.replace(marker)
    return aside


def prepare_training_state(state_dir: Path, fingerprint: dict) -> None:
    """`retire_stale_state` once per job. Under torchrun every rank calls this: rank 0 alone checks the
    state and the others wait for it before their solver loads it (the solver joins the same process
    group; joining is idempotent)."""
    import torch

    from ns3.solvers.distributed import init_distributed

    info = init_distributed()
    if info.is_main:
        retire_stale_state(state_dir, fingerprint)
    if info.enabled:
        torch.distributed.barrier()


def is_main_process() -> bool:
    """Rank 0 of a torchrun job, or a plain process: the one that writes summaries, metrics and MLflow runs."""
    return int(os.environ.get("RANK", "0")) == 0


def write_json_atomic(path: Path, obj: Any) -> Path:
    """``obj`` as JSON at ``path`` via a per-process temp file and a rename (no torn or shared temp files)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(obj, indent=1, sort_keys=True, default=str))
    os.replace(tmp, path)
    return path
