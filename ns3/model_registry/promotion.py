"""Who gets the ``champion`` alias: a pure function of two versions' scores on one test set.

A rule per metric (the names the evaluation stages log, e.g. ``tts/librispeech/generated/sim_o``):
``higher`` / ``lower`` -- the candidate must improve on the champion in that direction (a tie is not enough);
``not_lower`` / ``not_higher`` -- it may tie or improve, never regress. A candidate becomes champion when every
rule holds; scores from different test sets are never compared (the candidate stays challenger and the reason
says so), and a metric missing on either side fails its rule rather than being skipped.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Literal, Mapping

CHAMPION, CHALLENGER = "champion", "challenger"
Rule = Literal["higher", "lower", "not_lower", "not_higher"]
RULES: tuple[str, ...] = ("higher", "lower", "not_lower", "not_higher")
# Which way each rule counts as better, and whether a tie passes.
_HIGHER_IS_BETTER = {"higher": True, "not_lower": True, "lower": False, "not_higher": False}
_TIE_PASSES = {"higher": False, "lower": False, "not_lower": True, "not_higher": True}


@dataclass(frozen=True)
class Scores:
    """One model version's evaluation: ``metrics`` were measured on the test set whose hash is ``test_set``."""

    version: str
    test_set: str
    metrics: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Check:
    """One rule applied: ``margin`` is signed so that > 0 means the candidate is better (None: not comparable)."""

    metric: str
    rule: str
    candidate: float | None
    champion: float | None
    margin: float | None
    passed: bool

    def describe(self) -> str:
        if self.candidate is None or self.champion is None:
            side = "the candidate" if self.candidate is None else "the champion"
            return f"{self.metric} is missing for {side} (rule {self.rule})"
        verdict = "ok" if self.passed else "fails"
        # 6 digits: scores rounded to 4 decimals (the evaluation JSON) must not print as equal when they differ
        return (f"{self.metric} {self.candidate:.6g} vs {self.champion:.6g} "
                f"(margin {self.margin:+.3g}, rule {self.rule}: {verdict})")


@dataclass(frozen=True)
class Promotion:
    """The decision for ``candidate_version``: ``alias`` is ``champion`` or ``challenger``, ``reason`` says why."""

    alias: str
    reason: str
    candidate_version: str
    champion_version: str | None  # the champion it was compared with (None: there was none)
    test_set: str
    checks: tuple[Check, ...] = ()

    @property
    def promoted(self) -> bool:
        return self.alias == CHAMPION

    def to_dict(self) -> dict:
        return {**asdict(self), "promoted": self.promoted, "checks": [asdict(c) for c in self.checks]}


def _value(metrics: Mapping[str, float], key: str) -> float | None:
    v = metrics.get(key)
    # NaN is how an unavailable score sometimes arrives; it must fail a rule, not compare False both ways.
    return None if v is None or not math.isfinite(float(v)) else float(v)


def check(metric: str, rule: str, candidate: Mapping[str, float], champion: Mapping[str, float]) -> Check:
    if rule not in RULES:
        raise ValueError(f"unknown promotion rule {rule!r} for {metric}; use one of {list(RULES)}")
    new, old = _value(candidate, metric), _value(champion, metric)
    if new is None or old is None:
        return Check(metric, rule, new, old, None, False)
    margin = new - old if _HIGHER_IS_BETTER[rule] else old - new
    return Check(metric, rule, new, old, margin, margin > 0 or (margin == 0 and _TIE_PASSES[rule]))


def decide(criteria: Mapping[str, str], candidate: Scores, champion: Scores | None) -> Promotion:
    """``champion`` if ``candidate`` beats ``champion`` by every rule of ``criteria`` on the same test set.

    With no champion the candidate takes the alias; a candidate that already is the champion keeps it (a
    re-evaluation records new scores, it does not compete with itself).
    """
    if not criteria:
        raise ValueError("no promotion criteria: name at least one metric and its rule")
    for metric, rule in criteria.items():
        if rule not in RULES:
            raise ValueError(f"unknown promotion rule {rule!r} for {metric}; use one of {list(RULES)}")
    base = dict(candidate_version=candidate.version, test_set=candidate.test_set)
    if champion is None:
        return Promotion(CHAMPION, "no champion yet: the first evaluated version takes the alias",
                         champion_version=None, **base)
    if champion.version == candidate.version:
        return Promotion(CHAMPION, f"already the champion; re-scored on test set {candidate.test_set}",
                         champion_version=champion.version, **base)
    if champion.test_set != candidate.test_set:
        return Promotion(CHALLENGER, f"not comparable: champion v{champion.version} was scored on test set "
                         f"{champion.test_set or '(none)'}, this version on {candidate.test_set}; promote by hand "
                         "or re-evaluate the champion on this test set", champion_version=champion.version, **base)
    checks = tuple(check(m, r, candidate.metrics, champion.metrics) for m, r in criteria.items())
    failed = [c for c in checks if not c.passed]
    if failed:
        reason = f"does not beat champion v{champion.version}: " + "; ".join(c.describe() for c in failed)
        return Promotion(CHALLENGER, reason, champion_version=champion.version, checks=checks, **base)
    reason = f"beats champion v{champion.version}: " + "; ".join(c.describe() for c in checks)
    return Promotion(CHAMPION, reason, champion_version=champion.version, checks=checks, **base)
