"""Combine named losses with named weights.

One name per quantity: the loss dict keys are also the MLflow metric names and the config's loss-weight
keys (e.g. ``codec/rec``). A weight whose name matches no loss is a typo or a stale config entry that
would silently do nothing, so it is an error.
"""
from __future__ import annotations

from typing import Mapping

import torch


class UnknownLossWeightError(KeyError):
    """A loss weight names a loss that was not computed."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0])


def weighted_sum(losses: Mapping[str, torch.Tensor], weights: Mapping[str, float]) -> torch.Tensor:
    """Σ_k weights[k] · losses[k] over the weight keys.

    Losses without a weight are reported but not optimised. Raises UnknownLossWeightError naming every
    weight key with no matching loss and listing the available ones.
    """
    unknown = sorted(set(weights) - set(losses))
    if unknown:
        raise UnknownLossWeightError(
            f"loss weight(s) {unknown} match no computed loss; available: {sorted(losses)}. "
            "Fix the key in the loss-weight config (names are the metric names) or remove it."
        )
    if not weights:
        raise ValueError("weighted_sum: no weights given, nothing to optimise")
    total = None
    for key, w in weights.items():
        term = losses[key] * float(w)
        total = term if total is None else total + term
    return total
