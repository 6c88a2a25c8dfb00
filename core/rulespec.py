"""What a task tells the rule-based labeler: regular expressions per finding, no engine.

The engine (negation, uncertainty, history and scope handling) lives in the ``rules`` backend;
a task only supplies the words of its domain. All patterns are case-insensitive regexes.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .spec import Spec

TriggerKind = Literal[
    "pre_negation",
    "post_negation",
    "pre_uncertainty",
    "post_uncertainty",
    "pseudo",
    "history",
    "terminator",
    "negation",
    "uncertainty",
    "pre_hypothetical",
    "pre_probable",
]
"""``negation`` and ``uncertainty`` triggers act in both directions ("resolved", "versus");
``pre_hypothetical`` ones ("if", "evaluate for") make the mentions after them count for nothing;
``pre_probable`` ones ("likely", "am ehesten") leave the finding after them positive and end a negation."""


class FindingRule(Spec):
    """How one 0/1 answer field is decided from the mentions of a finding."""

    label: str = Field(description="The answer field this rule sets.")
    mentions: tuple[str, ...] = Field(min_length=1, description="Words that mention the finding.")
    unmentions: tuple[str, ...] = Field((), description="Matches that are never mentions (e.g. 'Materialbruch').")
    sites: tuple[str, ...] = Field((), description="Locations that make a nearby mention count.")
    other_sites: tuple[str, ...] = Field((), description="Locations that make a nearby mention irrelevant.")
    uncertain: Literal[0, 1] = Field(1, description="The answer for a suspected finding.")
    resolved: tuple[str, ...] = Field(
        (), description="Statements that a treated finding has resolved; historical mentions then count 0."
    )
    absent: tuple[str, ...] = Field(
        (),
        description="Statements that the finding is absent ('heart size is normal'); a positive mention wins.",
    )


class RuleSet(Spec):
    """A task's rule patterns: findings plus extra triggers added to the backend's German/English sets."""

    findings: tuple[FindingRule, ...] = Field(min_length=1)
    triggers: dict[TriggerKind, tuple[str, ...]] = {}
    ignored_sections: tuple[str, ...] = Field(
        (), description="Extra section headings whose text is not read (clinical question, history)."
    )
