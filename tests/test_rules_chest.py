"""The chest rules' probability lexicon in German: likely is positive, unlikely negative."""

import pytest

from report2label.plugins.backends.rules import RuleEngine
from report2label.plugins.chest_xray.patterns import RULES

ENGINE = RuleEngine(RULES)
POS, NEG, UNC = "positive", "negative", "uncertain"

GERMAN_PROBABILITY = {
    "Kein Erguss, am ehesten Dystelektase basal links.": {"pleural_effusion": NEG, "atelectasis": POS},
    "Wahrscheinlich kleiner Pleuraerguss rechts.": {"pleural_effusion": POS},
    "Eine Pneumonie ist unwahrscheinlich.": {"pneumonia": NEG},
    "Fragliche Dystelektase, eher unwahrscheinlich ein Infiltrat.": {"atelectasis": UNC, "lung_opacity": NEG},
}


@pytest.mark.parametrize(("text", "expected"), GERMAN_PROBABILITY.items())
def test_german_chest_probability(text, expected):
    states = ENGINE.states(text)
    assert {field: states[field] for field in expected} == expected, ENGINE.mentions(text)
