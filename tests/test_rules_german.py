"""The rules backend on German phrasings: the ankle task's, decided by its definition (README, "The
ankle-fracture task"), and a few for the chest rule pack's German words.

The upper ankle joint is the distal tibia, the distal fibula and the talus; other bones, the foot
and the proximal parts of the long bones do not count; a suspected fracture counts; a treated or
healed fracture counts unless the report says that no fracture line is visible any more.
"""

import pytest

from report2label.plugins.ankle_fracture import TASK
from report2label.plugins.backends.rules import RuleEngine
from report2label.plugins.chest_xray.patterns import RULES as CHEST_RULES

ENGINE = RuleEngine(TASK.rules)
CHEST_ENGINE = RuleEngine(CHEST_RULES)

BOTH_SIDES = {
    "Im Seitenvergleich links Weber-B-Fraktur, rechts unauffällige Darstellung.": 1,
    "OSG beidseits: rechts keine Fraktur, links Fraktur des Innenknöchels.": 1,
    "Seitenvergleichend kein Frakturnachweis an beiden Sprunggelenken.": 0,
    "Rechts: Fraktur der distalen Fibula. Links: regelrechte Verhältnisse.": 1,
    "OSG rechts und links ohne Nachweis einer Fraktur.": 0,
}
QUESTION_AND_ANSWER = {
    "Fraktur? Nein.": 0,
    "Fraktur im OSG? Ja, Weber B.": 1,
    "Frakturnachweis: nein.": 0,
    "Frage: Fraktur? Antwort: Ja, Fraktur des Außenknöchels.": 1,
    "Frage: Fraktur? Antwort: Nein, ossär intakt.": 0,
    "Luxation: nein. Fraktur: ja, distale Fibula.": 1,
}
LONG_BONES = {
    "Fraktur der proximalen Fibula, OSG intakt.": 0,
    "Proximale Fibulafraktur, das Sprunggelenk ist regelrecht.": 0,
    "Tibiaschaftfraktur, OSG ohne Befund.": 0,
    "Tibiakopffraktur.": 0,
    "Fibulaköpfchenfraktur links.": 0,
    "Fraktur des Tibiaschafts im mittleren Drittel.": 0,
    "Distale Tibiafraktur.": 1,
    "Fraktur der distalen Fibula.": 1,
    "Fraktur der Fibula im proximalen Drittel.": 0,
}
FOOT_BONES = {
    "Fraktur des Calcaneus.": 0,
    "Fersenbeinfraktur.": 0,
    "Fraktur des Os naviculare.": 0,
    "Kahnbeinfraktur am Fuß.": 0,
    "Fraktur des Os cuboideum.": 0,
    "Würfelbeinfraktur.": 0,
    "Fraktur des Os cuneiforme mediale.": 0,
    "Keilbeinfraktur.": 0,
    "Fraktur des Mittelfußknochens IV.": 0,
    "Grundgliedfraktur der Großzehe.": 0,
    "Fraktur der Phalanx proximalis D2.": 0,
    "Fraktur des Sesambeins.": 0,
    "Fraktur des Processus anterior calcanei.": 0,
    "Lisfranc-Fraktur.": 0,
    "Sprungbeinfraktur.": 1,
    "Fraktur des Processus lateralis tali.": 1,
    "Fraktur des Malleolus medialis.": 1,
    "Fraktur des Wadenbeins distal.": 1,
}
HEALED = {
    "Knöchern konsolidierte Fraktur des Außenknöchels, die Frakturlinie ist nicht mehr abgrenzbar.": 0,
    "Konsolidierte Weber-B-Fraktur, Frakturspalt noch erkennbar.": 1,
    "Alte, verheilte Fraktur der distalen Fibula.": 1,
    "Z.n. Fraktur des Innenknöchels, vollständig durchbaut ohne abgrenzbare Frakturlinie.": 0,
    "Knöchern durchbaute Fraktur des Innenknöchels.": 1,
    "Verheilte Fibulafraktur, Frakturlinie weiterhin zart sichtbar.": 1,
}
ACROSS_BUT = {
    "Keine Fraktur der Fibula, jedoch fragliche Fissur am Innenknöchel.": 1,
    "V.a. Fraktur des Außenknöchels, jedoch kein Nachweis einer Fraktur am Innenknöchel.": 1,
    "Kein sicherer Frakturnachweis, jedoch Fissur am Außenknöchel nicht sicher auszuschließen.": 1,
    "Kein Frakturnachweis im OSG, aber Kalkaneusfraktur nicht auszuschließen.": 0,
    "Fraglich Fraktur des Os metatarsale V, jedoch keine Fraktur im OSG.": 0,
    "Kein Erguss, jedoch eine Fraktur des Innenknöchels.": 1,
}
LISTS = {
    "Kein Erguss, keine Luxation, jedoch Weber-B-Fraktur.": 1,
    "Fraktur des Innenknöchels, keine Luxation, kein Gelenkerguss.": 1,
    "Weichteilschwellung, Fraktur des Außenknöchels, kein Erguss.": 1,
    "Keine Fraktur, keine Luxation, kein Erguss.": 0,
    "Kein Nachweis von Fraktur, Luxation oder Erguss.": 0,
    "Weder Fraktur noch Luxation.": 0,
    "Erguss und Weichteilschwellung, keine Fraktur.": 0,
}
SEVERAL_JOINTS = {
    "Knie: Tibiakopffraktur. OSG: regelrecht.": 0,
    "Knie rechts: keine Fraktur. OSG rechts: Weber-B-Fraktur.": 1,
    "Handgelenk links: distale Radiusfraktur. OSG links: keine Fraktur.": 0,
    "Knie und OSG: kein Frakturnachweis.": 0,
    "OSG: Fraktur des Innenknöchels. Knie: unauffällig.": 1,
    "Fraktur im unteren Sprunggelenk, oberes Sprunggelenk intakt.": 0,
}
CASES = BOTH_SIDES | QUESTION_AND_ANSWER | LONG_BONES | FOOT_BONES | HEALED | ACROSS_BUT | LISTS | SEVERAL_JOINTS
ZERO = [text for text, value in CASES.items() if value == 0]
ONE = [text for text, value in CASES.items() if value == 1]


@pytest.mark.parametrize(("text", "expected"), CASES.items())
def test_german_ankle_phrasings(text, expected):
    assert ENGINE.decide(text) == {"fracture": expected}, ENGINE.mentions(text)


def test_uncertainty_and_negation_in_one_sentence_keep_their_own_clause():
    mentions = ENGINE.mentions("Keine Fraktur der Fibula, jedoch fragliche Fissur am Innenknöchel.")
    assert [(m.status, m.relevant) for m in mentions] == [("negative", True), ("uncertain", True)]


def test_answer_after_question_is_read_with_it():
    [no] = ENGINE.mentions("Fraktur? Nein.")
    [yes] = ENGINE.mentions("Fraktur? Ja.")
    assert (no.status, yes.status) == ("negative", "positive")


CHEST = {
    "Kein Pleuraerguss, kein Pneumothorax.": {"pleural_effusion": "negative", "pneumothorax": "negative"},
    "Herz nicht verbreitert.": {"cardiomegaly": "negative"},
    "Herz normal groß, Randwinkel frei.": {"cardiomegaly": "negative", "pleural_effusion": "negative"},
    "Kardiomegalie mit beidseitigen Pleuraergüssen.": {"cardiomegaly": "positive", "pleural_effusion": "positive"},
    "Infiltrat im rechten Unterfeld, DD Pneumonie.": {"lung_opacity": "positive", "pneumonia": "uncertain"},
    "ZVK von rechts jugulär, Spitze in der oberen Hohlvene. Magensonde im Magen.": {"support_devices": "positive"},
    "Thoraxdrainage links entfernt, kein Pneumothorax.": {"support_devices": "negative", "pneumothorax": "negative"},
    "Pleuraerguss rechts vollständig rückgebildet.": {"pleural_effusion": "negative"},
    "Keine Stauung, keine Infiltrate.": {"edema": None, "lung_opacity": "negative"},
}


@pytest.mark.parametrize(("text", "expected"), CHEST.items())
def test_german_chest_states(text, expected):
    states = CHEST_ENGINE.states(text)
    assert {field: states[field] for field in expected} == expected
