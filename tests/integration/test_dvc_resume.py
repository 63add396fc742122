"""`dvc repro` keeps work: training continues from its checkpoint, a codec knob re-runs only what follows it."""
from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

import pytest

from tests.helpers import TINY_CORPUS, TINY_TRAINING, deep_merge, dvc_project, set_param


def _cached(root: Path, path: Path) -> bool:
    md5 = hashlib.md5(path.read_bytes()).hexdigest()
    return (root / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]).exists()


def _ran(out) -> list[str]:
    return [line.split("'")[1] for line in out.stdout.splitlines() if line.startswith("Running stage '")]


@pytest.mark.slow
@pytest.mark.e2e  # in `make test`: ~2.5 min on 2 cores
def test_dvc_repro_resumes_training_and_reruns_only_downstream(tmp_path, prefect_harness):
    from prefect.settings import PREFECT_API_URL

    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value(), "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'm.db'}",
           "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    root, sh = dvc_project(tmp_path / "proj", deep_merge(TINY_CORPUS, TINY_TRAINING), env)

    first = sh("dvc", "repro", check=True)
    assert _ran(first) == ["corpus", "shard", "align", "train_codec", "extract_codes", "train_diffusion",
                           "evaluate_codec", "synthesize", "evaluate_tts", "report"]
    summary = json.loads((root / "metrics" / "train_codec.json").read_text())
    assert summary["steps"] == 4 and summary["resumed_from"] == 0
    state = root / "data" / "state" / "train_codec"
    assert (state / "last.pt").exists() and not (root / "data" / "codec" / "last.pt").exists()

    # A longer budget: DVC re-runs train_codec and what follows it, and training continues from step 4.
    set_param(root, "codec.train.max_steps", 6)
    second = sh("dvc", "repro", check=True)
    # The codes come from the new codec, so the diffusion is retrained on them.
    assert _ran(second) == ["train_codec", "extract_codes", "train_diffusion", "evaluate_codec", "synthesize",
                            "evaluate_tts", "report"]
    summary = json.loads((root / "metrics" / "train_codec.json").read_text())
    assert summary["steps"] == 6 and summary["resumed_from"] == 4
    # Its budget did not change, but its codes did: the diffusion state of the old codec is not resumed.
    assert json.loads((root / "metrics" / "train_diffusion.json").read_text())["resumed_from"] == 0
    # The DVC cache holds the exported codec, never the training state (optimizer, RNG, stream position).
    assert _cached(root, root / "data" / "codec" / "codec.pt")
    assert not _cached(root, state / "last.pt")

    # Nothing changed: a no-op.
    third = sh("dvc", "repro", check=True)
    assert _ran(third) == [] and "didn't change" in third.stdout

    # A codec knob defines another run: train_codec (and only it, up to there) runs, from scratch, and the
    # old state is moved aside rather than lost.
    set_param(root, "codec.model.use_detail", False)
    fourth = sh("dvc", "repro", "train_codec", check=True)
    assert _ran(fourth) == ["train_codec"]
    summary = json.loads((root / "metrics" / "train_codec.json").read_text())
    assert summary["steps"] == 6 and summary["resumed_from"] == 0
    assert [p.name for p in state.parent.iterdir() if p.name.startswith("train_codec.replaced-")]
    status = sh("dvc", "status", check=True)
    assert "train_codec" not in status.stdout
