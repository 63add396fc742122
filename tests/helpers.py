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
    if profile_overlay is not None:
        (dst / "configs" / "test.yaml").write_text(yaml.safe_dump(profile_overlay))
    return dst


TINY_CORPUS = {
    "corpus": {"synth": {"num_speakers": 5, "utts_per_speaker": 3, "min_words": 4, "max_words": 7,
                         "style_actors": 1, "style_repetitions": 1, "workers": 1}},
    "shard": {"utts_per_shard": 4, "splits": {"valid_speakers": 1, "test_speakers": 1}, "workers": 2},
}


# Tiny settings for every stage after the corpus, so DVC/CLI tests can run the chain in a few minutes.
TINY_TRAINING = {
    "align": {"schedule": {"rounds": 1, "flat_epochs": 1, "epochs_per_round": 1}},
    "codec": {"train": {"batch_size": 2, "crop_seconds": 0.5, "max_steps": 4, "max_minutes": None, "log_every": 2,
                        "ckpt_every": 2, "eval_every": 1000, "valid_utterances": 1, "shuffle_buffer": 4}},
    "diffusion": {"train": {"batch_frames": 600, "max_steps": 2, "max_minutes": None, "log_every": 1,
                            "ckpt_every": 1, "eval_every": 1000, "valid_utterances": 1, "shuffle_buffer": 4},
                  "check_pairs": 1},
    # one LibriSpeech item: an untrained diffusion speaks slowly (the e2e test covers the other lists)
    "synthesize": {"protocols": ["librispeech"], "sentences_per_speaker": 1, "one_step": False},
    "evaluate": {"max_utterances": 2, "vc_pairs": 1, "samples": 1, "classic_codecs": False},
}


def deep_merge(a: dict, b: dict) -> dict:
    """An overlay on an overlay, merged the way profiles are (ns3.config)."""
    from ns3.config import _deep_merge

    return _deep_merge(a, b)


def dvc_project(dst: Path, overlay: dict, env: dict):
    """A git + DVC project in ``dst`` on the `test` profile; returns ``sh(*cmd)`` running commands inside it.

    dvc.yaml's deps name source folders; the throw-away project links to this checkout's.
    """
    import subprocess

    import yaml

    # The settings go into params.yaml itself (the `test` overlay stays empty): DVC tracks params.yaml per
    # key, while an overlay file is one dependency of every stage, and its keys would win over edits here.
    root = make_project(dst, {})
    params = deep_merge(yaml.safe_load((root / "params.yaml").read_text()), overlay)
    params["profile"] = "test"
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    for name in ("ns3", "pipelines", "evaluation"):
        (root / name).symlink_to(PROJECT / name)

    def sh(*cmd, check: bool = False):
        out = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=900)
        if check:
            assert out.returncode == 0, f"{' '.join(cmd)} failed:\n{out.stdout[-2000:]}\n{out.stderr[-4000:]}"
        return out

    for cmd in (["git", "init", "-q"], ["dvc", "init", "-q"]):
        sh(*cmd, check=True)
    return root, sh


def set_param(root: Path, dotted: str, value) -> None:
    """Edit one knob in ``root``/params.yaml, as a user would."""
    import yaml

    path = root / "params.yaml"
    data = yaml.safe_load(path.read_text())
    node = data
    *parents, leaf = dotted.split(".")
    for p in parents:
        node = node[p]
    node[leaf] = value
    path.write_text(yaml.safe_dump(data, sort_keys=False))
