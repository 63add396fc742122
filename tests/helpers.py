"""Helpers shared by integration tests (import as ``tests.helpers``)."""
from __future__ import annotations

from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent


def make_project(dst: Path, profile_overlay: dict | None = None) -> Path:
    """A throw-away project folder (params.yaml, configs/, dvc.yaml) whose outputs stay inside ``dst``."""
    import shutil

    import yaml

    dst.mkdir(parents=True, exist_ok=True)
    for name in ("params.yaml", "dvc.yaml"):
        shutil.copy(PROJECT / name, dst / name)
    shutil.copytree(PROJECT / "configs", dst / "configs", dirs_exist_ok=True)
    if profile_overlay:
        (dst / "configs" / "test.yaml").write_text(yaml.safe_dump(profile_overlay))
    return dst


TINY_CORPUS = {
    "corpus": {"synth": {"num_speakers": 5, "utts_per_speaker": 3, "min_words": 4, "max_words": 7,
                         "style_actors": 1, "style_repetitions": 1, "workers": 1}},
    "shard": {"utts_per_shard": 4, "splits": {"valid_speakers": 1, "test_speakers": 1}, "workers": 2},
}
