"""The rules engine's four states on English chest phrasings (CheXpert's 1 / 0 / -1 / blank)."""

import pytest

from report2label.plugins.backends.rules import RuleEngine
from report2label.plugins.chest_xray.patterns import RULES

ENGINE = RuleEngine(RULES)
POS, NEG, UNC = "positive", "negative", "uncertain"

NEGATION_LISTS = {
    "No focal consolidation, suspicious pulmonary opacity, pleural effusion, or pneumothorax.": {
        "consolidation": NEG,
        "lung_opacity": NEG,
        "pleural_effusion": NEG,
        "pneumothorax": NEG,
    },
    "There is no pneumothorax or pleural effusion.": {"pneumothorax": NEG, "pleural_effusion": NEG},
    "Lungs are clear without consolidation, effusion or pneumothorax.": {
        "consolidation": NEG,
        "pleural_effusion": NEG,
        "pneumothorax": NEG,
        "lung_opacity": NEG,
    },
    "Negative for pneumothorax, effusion, and edema.": {"pneumothorax": NEG, "pleural_effusion": NEG, "edema": NEG},
    "Pneumothorax, pleural effusion and consolidation are not seen.": {
        "pneumothorax": NEG,
        "pleural_effusion": NEG,
        "consolidation": NEG,
    },
    "No effusion, but there is mild cardiomegaly.": {"pleural_effusion": NEG, "cardiomegaly": POS},
    "No pneumothorax; small left pleural effusion.": {"pneumothorax": NEG, "pleural_effusion": POS},
    "No effusion, possible left basilar atelectasis.": {"pleural_effusion": NEG, "atelectasis": UNC},
    "No focal airspace opacity to suggest pneumonia.": {"lung_opacity": NEG, "pneumonia": NEG},
    "There are no XXXX of a pleural effusion.": {"pleural_effusion": NEG},
    "No displaced rib fractures.": {"fracture": NEG},
    "No new consolidation.": {"consolidation": NEG},
}
UNCERTAINTY = {
    "Patchy right basilar opacity may represent pneumonia.": {"lung_opacity": POS, "pneumonia": UNC},
    "Cannot exclude a small pneumothorax.": {"pneumothorax": UNC},
    "A small left effusion cannot be excluded.": {"pleural_effusion": UNC},
    "Findings are concerning for early pneumonia.": {"pneumonia": UNC},
    "Borderline cardiomegaly.": {"cardiomegaly": UNC},
    "The heart is borderline enlarged.": {"cardiomegaly": UNC},
    "Left basilar atelectasis versus pneumonia.": {"atelectasis": UNC, "pneumonia": UNC},
    "Interstitial edema is suspected.": {"edema": UNC},
}
PROBABILITY = {
    "Left basilar opacity, most likely atelectasis.": {"atelectasis": POS, "lung_opacity": POS},
    "There is probably a small right effusion.": {"pleural_effusion": POS},
    "No pneumothorax, likely a small left effusion.": {"pneumothorax": NEG, "pleural_effusion": POS},
    "Presumed postobstructive atelectasis in the left upper lobe.": {"atelectasis": POS},
    "Right middle lobe pneumonia is felt to be unlikely.": {"pneumonia": NEG},
    "Patchy opacity, likely atelectasis, less likely pneumonia.": {"atelectasis": POS, "pneumonia": NEG},
    "An acute rib fracture is doubtful.": {"fracture": NEG},
    "Interstitial edema seems less likely than an atypical infection.": {"edema": NEG},
    "Linear opacity favoring scar rather than atelectasis.": {"atelectasis": NEG},
    "Heart size is at the upper limits of normal or mildly enlarged.": {"cardiomegaly": UNC},
    "Basilar opacity; alternatively a small effusion.": {"pleural_effusion": UNC},
}
VISIBILITY = {
    "A left 7th rib fracture is not well seen on this study.": {"fracture": UNC},
    "The small right pneumothorax is poorly visualized.": {"pneumothorax": UNC},
    "Pneumothorax is not seen.": {"pneumothorax": NEG},
}
DEVICES = {
    "Right PICC line with tip in the SVC.": {"support_devices": POS},
    "Dual-chamber pacemaker with leads in the right atrium and right ventricle.": {"support_devices": POS},
    "Endotracheal tube 4 cm above the carina. Nasogastric tube in the stomach.": {"support_devices": POS},
    "Right chest XXXX with tip projecting over the cavoatrial junction.": {"support_devices": POS},
    "Prosthetic aortic valve.": {"support_devices": POS},
    "Interval removal of the right chest tube.": {"support_devices": NEG},
    "The central venous catheter has been removed.": {"support_devices": NEG},
    "Median sternotomy wires and mediastinal surgical clips.": {"support_devices": None},
    "Bilateral breast prostheses.": {"support_devices": None},
    "A spinal neurostimulator overlies the lower thoracic spine.": {"support_devices": POS},
    "Atrial septal occluder in place.": {"support_devices": POS},
}
HISTORY_AND_CHANGE = {
    "Interval resolution of the left pleural effusion.": {"pleural_effusion": NEG},
    "The right pneumothorax has resolved.": {"pneumothorax": NEG},
    "Resolved right lower lobe pneumonia.": {"pneumonia": NEG},
    "No change in the moderate right pleural effusion.": {"pleural_effusion": POS},
    "No significant interval change in cardiomegaly.": {"cardiomegaly": POS},
    "Stable cardiomegaly. Unchanged small left effusion.": {"cardiomegaly": POS, "pleural_effusion": POS},
    "Old healed right rib fractures.": {"fracture": POS},
    "Healing fracture of the left clavicle.": {"fracture": POS},
    "Near-complete resolution of the right pleural effusion.": {"pleural_effusion": POS},
    "If there is concern for rib fracture, dedicated rib views are recommended.": {"fracture": None},
    "The lateral fixation screw is fractured.": {"fracture": None},
    "The inferior screw of the plate is fractured.": {"fracture": None},
    "Interval clearing of the left lower lobe pneumonia.": {"pneumonia": NEG},
    "The right basilar pneumonia has largely cleared.": {"pneumonia": POS},
    "Cleared right middle lobe consolidation.": {"consolidation": NEG},
}
NORMAL_STATEMENTS = {
    "Heart size is normal.": {"cardiomegaly": NEG},
    "Normal heart size.": {"cardiomegaly": NEG},
    "The heart is not enlarged.": {"cardiomegaly": NEG},
    "Heart size is at the upper limits of normal.": {"cardiomegaly": NEG},
    "Heart size is now mildly enlarged.": {"cardiomegaly": POS},
    "The lungs are clear.": {"lung_opacity": NEG},
    "Lungs are well expanded and clear.": {"lung_opacity": NEG},
    "Pleural effusion: none.": {"pleural_effusion": NEG},
    "Costophrenic angles are sharp.": {"pleural_effusion": NEG},
    "Normal cardiomediastinal silhouette.": {"cardiomegaly": NEG, "enlarged_cardiomediastinum": NEG},
}
OTHER_CONVENTIONS = {
    "Low lung volumes.": {"atelectasis": None},
    "Calcified granuloma in the right upper lobe.": {"lung_lesion": None},
    "Calcified nodule in the left lower lobe.": {"lung_lesion": None},
    "Spiculated nodule in the right upper lobe.": {"lung_lesion": POS},
    "Blunting of the left costophrenic angle.": {"pleural_effusion": None},
    "Pleural thickening at the right apex.": {"pleural_other": POS, "pleural_effusion": None},
    "Mediastinal widening.": {"enlarged_cardiomediastinum": POS},
    "Enlarged cardiac silhouette.": {"cardiomegaly": POS},
    "Pericardial effusion.": {"pleural_effusion": None},
    "Soft tissue edema of the chest wall.": {"edema": None},
    "Mild pulmonary vascular congestion.": {"edema": None},
    "Right upper lobe collapse.": {"atelectasis": POS},
}
CASES = (
    NEGATION_LISTS
    | UNCERTAINTY
    | PROBABILITY
    | VISIBILITY
    | DEVICES
    | HISTORY_AND_CHANGE
    | NORMAL_STATEMENTS
    | OTHER_CONVENTIONS
)


@pytest.mark.parametrize(("text", "expected"), CASES.items())
def test_english_chest_states(text, expected):
    states = ENGINE.states(text)
    assert {field: states[field] for field in expected} == expected, ENGINE.mentions(text)


def test_every_finding_has_a_state_and_unmentioned_ones_are_none():
    states = ENGINE.states("FINDINGS: No acute cardiopulmonary abnormality. IMPRESSION: Normal chest.")
    assert set(states) == {rule.label for rule in RULES.findings} and set(states.values()) == {None}


def test_positive_beats_uncertain_beats_negative_across_a_report():
    assert ENGINE.states("Possible small effusion. Small left pleural effusion.")["pleural_effusion"] == POS
    assert ENGINE.states("No effusion on the right. Possible left effusion.")["pleural_effusion"] == UNC


def test_clinical_history_is_not_read():
    states = ENGINE.states("INDICATION: Pneumonia? FINDINGS: Lungs are clear.")
    assert (states["pneumonia"], states["lung_opacity"]) == (None, NEG)


def test_decide_maps_states_to_the_rules_values():
    assert ENGINE.decide("Cannot exclude a small pneumothorax. No effusion.") == {
        rule.label: int(rule.label == "pneumothorax") for rule in RULES.findings
    }
