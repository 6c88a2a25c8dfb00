"""The rules backend on the phenomena the ankle task must get right (issue point 5)."""

import pytest

from report2label.plugins.ankle_fracture import TASK
from report2label.plugins.backends.rules import RuleEngine, sentences

ENGINE = RuleEngine(TASK.rules)

NEGATION = [
    "Keine Fraktur.",
    "Frakturausschluss.",
    "Kein Anhalt für eine Fraktur.",
    "OSG ossär intakt.",
    "Kein Frakturnachweis im OSG.",
    "Eine Fraktur ist ausgeschlossen.",
    "Distale Fibula ohne Frakturnachweis.",
    "Kein Hinweis auf eine Fraktur oder Luxation.",
    "No fracture.",
]
SUSPICION = [
    "V.a. Fraktur.",
    "V.a. Fraktur des Außenknöchels.",
    "Verdacht auf Fraktur.",
    "Fragliche Fissur am Innenknöchel.",
    "Fraktur des Talus nicht sicher auszuschließen.",
    "Frakturverdacht an der Fibulaspitze.",
    "Suspected fracture of the distal fibula.",
    "A fracture of the talus cannot be excluded.",
]
OTHER_BONES = [
    "Fraktur des Os metatarsale V.",
    "Kalkaneusfraktur.",
    "Basisfraktur MT V.",
    "Fraktur der Basis des 5. Mittelfußknochens. OSG intakt.",
    "Nicht dislozierte Fraktur der Basis des Os metatarsale V. Das OSG ist ossär intakt.",
    "Fraktur des Os metatarsale V, keine Fraktur im OSG.",
    "Fracture of the base of the fifth metatarsal. Ankle intact.",
    "Calcaneal fracture. No ankle fracture.",
]
ANKLE_FRACTURES = [
    "Weber-A-Fraktur.",
    "Weber B Fraktur der distalen Fibula.",
    "Fibulafraktur Typ Weber C.",
    "Bimalleoläre Fraktur.",
    "Trimalleoläre Luxationsfraktur.",
    "Fraktur des Außenknöchels.",
    "Innenknöchelfraktur.",
    "Fracture of the lateral malleolus.",
]
POST_OP_VISIBLE = [
    "Z.n. Plattenosteosynthese bei Weber-B-Fraktur. Frakturspalt noch abgrenzbar.",
    "Z.n. operativer Versorgung einer Außenknöchelfraktur. Regelrechte Materiallage, kein Materialbruch.",
    "Status post ORIF of a Weber B fracture with plate. Fracture line still visible.",
]
POST_OP_HEALED = [
    "Z.n. Plattenosteosynthese bei Weber-B-Fraktur. Keine Frakturlinie mehr abgrenzbar.",
    "Z.n. Schraubenosteosynthese des Innenknöchels. Die Fraktur ist knöchern durchbaut, "
    "die Frakturlinie ist nicht mehr abgrenzbar.",
    "Status post ORIF of a Weber B fracture. Fracture line no longer visible.",
]
MIXED_POSITIVE = [
    "keine Fraktur der Fibula, jedoch Fraktur des Innenknöchels",
    "Kalkaneusfraktur sowie Fraktur des Außenknöchels.",
    "Keine Fraktur des Außenknöchels, aber V.a. Fraktur des Innenknöchels.",
    "No fracture of the fibula, but fracture of the medial malleolus.",
]
NOT_FINDINGS = [
    "Fragestellung: Fraktur? Befund: Ossär intakt.",
    "Klinische Angaben: Sturz, V.a. Fraktur. Befund: Keine Fraktur.",
    "Clinical question: fracture? Findings: no fracture.",
]


def answer(text: str) -> int:
    return ENGINE.decide(text)["fracture"]


@pytest.mark.parametrize("text", NEGATION + OTHER_BONES + POST_OP_HEALED + NOT_FINDINGS)
def test_no_upper_ankle_fracture(text):
    assert answer(text) == 0, ENGINE.mentions(text)


@pytest.mark.parametrize("text", SUSPICION + ANKLE_FRACTURES + POST_OP_VISIBLE + MIXED_POSITIVE)
def test_upper_ankle_fracture(text):
    assert answer(text) == 1, ENGINE.mentions(text)


def test_suspicion_is_uncertain_and_counts_as_the_rule_says():
    [mention] = ENGINE.mentions("V.a. Fraktur des Außenknöchels.")
    assert (mention.status, mention.relevant) == ("uncertain", True)
    strict = RuleEngine(
        TASK.rules.model_copy(update={"findings": (TASK.rules.findings[0].model_copy(update={"uncertain": 0}),)})
    )
    assert strict.decide("V.a. Fraktur des Außenknöchels.") == {"fracture": 0}


def test_treated_fracture_is_historical():
    mentions = ENGINE.mentions("Z.n. Plattenosteosynthese bei Weber-B-Fraktur.")
    assert mentions and all(m.historical and m.status == "positive" for m in mentions)


def test_sentences_do_not_split_after_abbreviations_or_ordinals():
    assert sentences("V.a. Fraktur. Z.n. OSG-Fraktur. Basis des 5. Mittelfußknochens.") == [
        "V.a. Fraktur.",
        "Z.n. OSG-Fraktur.",
        "Basis des 5. Mittelfußknochens.",
    ]


def test_rules_engine_is_generic():
    """A task with its own words gets negation and uncertainty from the engine."""
    from report2label.core.rulespec import FindingRule, RuleSet

    engine = RuleEngine(RuleSet(findings=(FindingRule(label="effusion", mentions=(r"erguss", r"effusion")),)))
    assert engine.decide("Kein Gelenkerguss.") == {"effusion": 0}
    assert engine.decide("Small joint effusion.") == {"effusion": 1}
    assert engine.decide("Possible effusion.") == {"effusion": 1}
