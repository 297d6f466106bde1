"""Challenge rules, defined the way prop firms define them, judged exactly and without I/O.

:class:`RuleSet` holds a challenge's rules and round-trips through an account's
stored ``rules`` object; :class:`Evaluator` judges one account incrementally from
its fills and equity samples; :func:`evaluate` does the same in one go; both give
a :class:`Verdict`. The README's "Challenge rules" section defines every rule.
"""

from ._days import DayClock
from ._evaluator import MAX_AMOUNT, Evaluator, FillLike, PositionLike, evaluate, sample_of
from ._ruleset import DEFAULT_WARN_AT_PCT, MAX_DAYS, MAX_PCT, RULE_NAMES, RuleSet
from ._verdict import (
    Breach,
    EvaluatorState,
    Metrics,
    PositionCost,
    RuleWarning,
    Sample,
    SampleCoverage,
    Status,
    Verdict,
)

__all__ = [
    "DEFAULT_WARN_AT_PCT",
    "MAX_AMOUNT",
    "MAX_DAYS",
    "MAX_PCT",
    "RULE_NAMES",
    "Breach",
    "DayClock",
    "Evaluator",
    "EvaluatorState",
    "FillLike",
    "Metrics",
    "PositionCost",
    "PositionLike",
    "RuleSet",
    "RuleWarning",
    "Sample",
    "SampleCoverage",
    "Status",
    "Verdict",
    "evaluate",
    "sample_of",
]
