"""Every constructor argument of the factorized diffusion model, in one frozen dataclass.

``paper()`` holds the sizes of NS3 Appendix A.1 (../shared/notes/ns3_diffusion.md §2); ``mini()`` is the
CPU-sized variant the embedded pipeline trains in minutes. Builders translate ``params.yaml`` into these
fields; the models never read a config file.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

DURATION_OBJECTIVES = ("ce", "l2")
# The frame levels in generation order and the attribute each belongs to. An attribute's levels are the
# only ones its prompt shows (paper §3.3.1: each diffusion gets its own attribute's prompt).
LEVELS = ("p", "c1", "c2", "d1", "d2", "d3")
ATTRIBUTES = {"p": "prosody", "c1": "content", "c2": "content", "d1": "detail", "d2": "detail", "d3": "detail"}


@dataclass(frozen=True)
class DiffusionHParams:
    num_phones: int = 100  # phone inventory size (id 0 = padding)
    codebook_size: int = 1024  # V; the mask token is id V
    levels: tuple[str, ...] = LEVELS  # frame levels of the codec (3 for a no-detail codec, 6 for -factorization)
    level_attributes: tuple[str, ...] = tuple(ATTRIBUTES[n] for n in LEVELS)
    max_duration: int = 40  # duration classes 1..max_duration frames (data-driven cap, set from the train codes)

    # Phoneme encoder ("similar to NS2": 6 layers, 512, conv FFN 2048 / kernel 9).
    encoder_layers: int = 6
    encoder_dim: int = 512
    encoder_heads: int = 8
    encoder_hidden: int = 2048
    encoder_kernel: int = 9
    # Phone-level model: phone-level prosody and duration diffusion share it (6 layers, 1024).
    phone_layers: int = 6
    phone_dim: int = 1024
    # Frame-level model: one network for p, c1, c2, d1, d2, d3 (12 layers, 1024).
    frame_layers: int = 12
    frame_dim: int = 1024
    heads: int = 8
    hidden: int = 2048
    kernel: int = 3
    dropout: float = 0.1

    # Ablation switches (paper Table 11 / A.6).
    duration_objective: str = "ce"  # "l2": regression on log-duration instead of classes
    duration_uses_prosody: bool = True  # condition the duration model on the phone-level prosody codes
    duration_uses_prompt: bool = True  # give the duration model the prompt's durations as a prefix

    def __post_init__(self) -> None:
        if self.duration_objective not in DURATION_OBJECTIVES:
            raise ValueError(f"duration_objective must be one of {DURATION_OBJECTIVES}, got {self.duration_objective!r}")
        if len(self.level_attributes) != len(self.levels):
            raise ValueError(f"level_attributes {self.level_attributes} must name one attribute per level {self.levels}")
        if self.max_duration < 1:
            raise ValueError(f"max_duration must be >= 1, got {self.max_duration}")

    @property
    def num_levels(self) -> int:
        return len(self.levels)

    @property
    def mask_id(self) -> int:
        return self.codebook_size

    @property
    def duration_classes(self) -> int:
        """Classes 0..max_duration (0 is never a target: aligned phones last at least one frame)."""
        return self.max_duration + 1

    def prompt_levels(self, level: int) -> tuple[int, ...]:
        """The levels a prompt shows while ``level`` is generated: those of the same attribute."""
        attr = self.level_attributes[level]
        return tuple(i for i, a in enumerate(self.level_attributes) if a == attr)

    @classmethod
    def paper(cls, **overrides: Any) -> "DiffusionHParams":
        return cls(**overrides)

    @classmethod
    def mini(cls, **overrides: Any) -> "DiffusionHParams":
        base = dict(encoder_layers=3, encoder_dim=128, encoder_heads=4, encoder_hidden=384, encoder_kernel=5,
                    phone_layers=3, phone_dim=128, frame_layers=4, frame_dim=192, heads=4, hidden=512, dropout=0.1)
        return cls(**{**base, **overrides})

    def replace(self, **changes: Any) -> "DiffusionHParams":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "DiffusionHParams":
        d = dict(d)
        for k in ("levels", "level_attributes"):
            if k in d:
                d[k] = tuple(d[k])
        return cls(**d)
