"""A synthetic chest X-ray study: English reports with four-state gold labels and radiograph-like images.

Everything here is SYNTHETIC: invented report texts and drawn images, for trying the pipeline
end to end without patient data. Reports cover the phenomena the labellers must get right: lists
of negated findings, uncertainty ("may represent", "cannot exclude"), support devices, "stable" and
"no change" comparisons, resolved findings and removed devices, history in the indication (not
read) and old healed fractures (read), conventions such as sternotomy wires and calcified granulomas
(no finding), normal reports, and several findings per report. Patients have follow-up studies
whose chronic findings carry over. Each report has a frontal image and often a lateral one in
which every positive or uncertain finding has its own drawn sign (uncertain ones fainter).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw
from PIL.PngImagePlugin import PngInfo

from report2label.core.atomic import atomic_path
from report2label.core.progress import progress_bar

from .answer import FINDINGS

POS, UNC, NEG, NM = "positive", "uncertain", "negative", "not_mentioned"
PRECEDENCE = (POS, UNC, NEG, NM)
"""How the states of one finding in several sentences combine: as the rules engine and CheXpert do."""


@dataclass(frozen=True)
class Phrase:
    """A sentence and the state of every finding it speaks of."""

    text: str
    states: dict[str, str] = field(default_factory=dict)


def _p(text: str, **states: str) -> Phrase:
    return Phrase(text, states)


POSITIVE: dict[str, tuple[Phrase, ...]] = {
    "atelectasis": (
        _p("Linear atelectasis at the left lung base.", atelectasis=POS),
        _p("Bibasilar atelectasis.", atelectasis=POS),
        _p("Subsegmental atelectasis in the right lower lobe.", atelectasis=POS),
        _p("Plate-like atelectasis at the right base.", atelectasis=POS),
        _p("Right upper lobe collapse.", atelectasis=POS),
    ),
    "cardiomegaly": (
        _p("Moderate cardiomegaly.", cardiomegaly=POS),
        _p("The heart is enlarged.", cardiomegaly=POS),
        _p("Enlarged cardiac silhouette.", cardiomegaly=POS),
        _p("Mild cardiomegaly.", cardiomegaly=POS),
        _p("The cardiac silhouette is enlarged.", cardiomegaly=POS),
    ),
    "consolidation": (
        _p("Dense consolidation in the right lower lobe.", consolidation=POS),
        _p("Left lower lobe consolidation.", consolidation=POS),
        _p("Focal consolidation in the right middle lobe.", consolidation=POS),
    ),
    "edema": (
        _p("Mild pulmonary edema.", edema=POS),
        _p("Moderate interstitial pulmonary edema.", edema=POS),
        _p("Bilateral perihilar edema with Kerley B lines.", edema=POS),
    ),
    "enlarged_cardiomediastinum": (
        _p("The mediastinum is widened.", enlarged_cardiomediastinum=POS),
        _p("Widened superior mediastinum.", enlarged_cardiomediastinum=POS),
        _p("Mediastinal widening.", enlarged_cardiomediastinum=POS),
    ),
    "fracture": (
        _p("Acute fracture of the left seventh rib.", fracture=POS),
        _p("Displaced fracture of the right clavicle.", fracture=POS),
        _p("Old healed right rib fractures.", fracture=POS),
        _p("Healing fracture of the left clavicle.", fracture=POS),
        _p("Multiple healed left-sided rib fractures.", fracture=POS),
    ),
    "lung_lesion": (
        _p("A 2 cm nodule in the right upper lobe.", lung_lesion=POS),
        _p("Spiculated mass in the left upper lobe.", lung_lesion=POS),
        _p("Rounded lesion in the left mid lung.", lung_lesion=POS),
        _p("Known left upper lobe mass.", lung_lesion=POS),
    ),
    "lung_opacity": (
        _p("Patchy opacity in the right mid lung.", lung_opacity=POS),
        _p("Hazy opacities at both lung bases.", lung_opacity=POS),
        _p("Ill-defined density in the left mid zone.", lung_opacity=POS),
        _p("Increased interstitial markings.", lung_opacity=POS),
    ),
    "pleural_effusion": (
        _p("Small left pleural effusion.", pleural_effusion=POS),
        _p("Moderate right pleural effusion.", pleural_effusion=POS),
        _p("Bilateral pleural effusions.", pleural_effusion=POS),
        _p("Large right effusion with adjacent compressive atelectasis.", pleural_effusion=POS, atelectasis=POS),
    ),
    "pleural_other": (
        _p("Pleural thickening at the right apex.", pleural_other=POS),
        _p("Biapical pleural thickening.", pleural_other=POS),
        _p("Calcified pleural plaques.", pleural_other=POS),
        _p("Left apical pleural cap.", pleural_other=POS),
    ),
    "pneumonia": (
        _p("Right lower lobe pneumonia.", pneumonia=POS),
        _p("Consolidation in the left lower lobe consistent with pneumonia.", consolidation=POS, pneumonia=POS),
        _p("Multifocal pneumonia.", pneumonia=POS),
    ),
    "pneumothorax": (
        _p("Small right apical pneumothorax.", pneumothorax=POS),
        _p("Moderate left pneumothorax.", pneumothorax=POS),
        _p("Tiny right pneumothorax.", pneumothorax=POS),
    ),
    "support_devices": (
        _p("Right PICC line with tip in the SVC.", support_devices=POS),
        _p("Endotracheal tube 4 cm above the carina.", support_devices=POS),
        _p("Dual-chamber pacemaker with leads in the right atrium and right ventricle.", support_devices=POS),
        _p("Left-sided pacemaker in place.", support_devices=POS),
        _p("Nasogastric tube in the stomach.", support_devices=POS),
        _p("Right chest tube in place.", support_devices=POS),
        _p("Right internal jugular central venous catheter with tip in the SVC.", support_devices=POS),
    ),
}
UNCERTAIN: dict[str, tuple[Phrase, ...]] = {
    "atelectasis": (
        _p("Streaky left basilar opacity may represent atelectasis.", lung_opacity=POS, atelectasis=UNC),
        _p("Possible left basilar atelectasis.", atelectasis=UNC),
        _p("Bibasilar atelectasis is suspected.", atelectasis=UNC),
    ),
    "cardiomegaly": (
        _p("Borderline cardiomegaly.", cardiomegaly=UNC),
        _p("The heart is borderline enlarged.", cardiomegaly=UNC),
        _p("Possible mild cardiomegaly.", cardiomegaly=UNC),
    ),
    "consolidation": (
        _p("Possible early consolidation in the left lower lobe.", consolidation=UNC),
        _p("Questionable consolidation at the right base.", consolidation=UNC),
    ),
    "edema": (
        _p("Possible mild interstitial edema.", edema=UNC),
        _p("Interstitial edema is suspected.", edema=UNC),
        _p("Mild pulmonary edema cannot be excluded.", edema=UNC),
    ),
    "enlarged_cardiomediastinum": (
        _p("Possible mediastinal widening.", enlarged_cardiomediastinum=UNC),
        _p("The mediastinum may be widened.", enlarged_cardiomediastinum=UNC),
    ),
    "fracture": (
        _p("Possible nondisplaced fracture of the left sixth rib.", fracture=UNC),
        _p("Questionable fracture of the right clavicle.", fracture=UNC),
        _p("A subtle rib fracture cannot be excluded.", fracture=UNC),
    ),
    "lung_lesion": (
        _p("Possible nodule in the right upper lobe.", lung_lesion=UNC),
        _p("A small nodule cannot be excluded.", lung_lesion=UNC),
    ),
    "lung_opacity": (_p("Possible faint opacity at the right base.", lung_opacity=UNC),),
    "pleural_effusion": (
        _p("Possible small left pleural effusion.", pleural_effusion=UNC),
        _p("A small left effusion cannot be excluded.", pleural_effusion=UNC),
        _p("Questionable small bilateral pleural effusions.", pleural_effusion=UNC),
    ),
    "pleural_other": (_p("Possible pleural thickening at the left base.", pleural_other=UNC),),
    "pneumonia": (
        _p("Patchy right basilar opacity may represent pneumonia.", lung_opacity=POS, pneumonia=UNC),
        _p("Cannot exclude pneumonia.", pneumonia=UNC),
        _p("Findings are concerning for early pneumonia.", pneumonia=UNC),
        _p("Left basilar atelectasis versus pneumonia.", atelectasis=UNC, pneumonia=UNC),
    ),
    "pneumothorax": (
        _p("Cannot exclude a small pneumothorax.", pneumothorax=UNC),
        _p("Possible tiny right apical pneumothorax.", pneumothorax=UNC),
    ),
}
STABLE: dict[str, tuple[Phrase, ...]] = {
    "cardiomegaly": (
        _p("Stable cardiomegaly.", cardiomegaly=POS),
        _p("No significant interval change in cardiomegaly.", cardiomegaly=POS),
        _p("Unchanged mild cardiomegaly.", cardiomegaly=POS),
    ),
    "support_devices": (
        _p("Unchanged position of the right PICC line.", support_devices=POS),
        _p("Pacemaker leads are unchanged in position.", support_devices=POS),
        _p("Stable position of the endotracheal tube.", support_devices=POS),
    ),
    "pleural_effusion": (
        _p("No change in the moderate right pleural effusion.", pleural_effusion=POS),
        _p("Stable small left pleural effusion.", pleural_effusion=POS),
    ),
    "pleural_other": (_p("Stable biapical pleural thickening.", pleural_other=POS),),
    "fracture": (_p("Unchanged healed right rib fractures.", fracture=POS),),
    "lung_lesion": (_p("Stable 1.5 cm nodule in the right upper lobe.", lung_lesion=POS),),
}
RESOLVED: dict[str, tuple[Phrase, ...]] = {
    "pleural_effusion": (
        _p("Interval resolution of the left pleural effusion.", pleural_effusion=NEG),
        _p("The pleural effusion has resolved.", pleural_effusion=NEG),
    ),
    "pneumothorax": (_p("The right pneumothorax has resolved.", pneumothorax=NEG),),
    "pneumonia": (_p("Resolved right lower lobe pneumonia.", pneumonia=NEG),),
    "support_devices": (
        _p("Interval removal of the right chest tube.", support_devices=NEG),
        _p("The central venous catheter has been removed.", support_devices=NEG),
    ),
}
CHRONIC = ("cardiomegaly", "support_devices", "pleural_effusion", "pleural_other", "fracture", "lung_lesion")
"""Findings a follow-up study of the same patient keeps (or, where RESOLVED has words, loses)."""

NEGATABLE: dict[str, tuple[str, ...]] = {
    "consolidation": ("focal consolidation", "consolidation", "focal airspace consolidation"),
    "pleural_effusion": ("pleural effusion", "effusion", "pleural effusions"),
    "pneumothorax": ("pneumothorax",),
    "edema": ("pulmonary edema", "edema"),
    "lung_opacity": ("focal airspace opacity", "suspicious pulmonary opacity"),
    "pneumonia": ("pneumonia",),
    "atelectasis": ("atelectasis",),
    "lung_lesion": ("suspicious pulmonary nodules", "pulmonary mass"),
    "fracture": ("displaced rib fractures", "acute fracture"),
    "cardiomegaly": ("cardiomegaly",),
    "enlarged_cardiomediastinum": ("mediastinal widening",),
    "pleural_other": ("pleural thickening",),
}
LIST_FRAMES = ("No {}.", "There is no {}.", "Negative for {}.", "No evidence of {}.", "{} {} not seen.")
PARENCHYMA = ("atelectasis", "consolidation", "edema", "lung_lesion", "lung_opacity", "pneumonia")
NORMAL_STATEMENTS = (
    _p("Heart size is normal.", cardiomegaly=NEG),
    _p("Normal heart size.", cardiomegaly=NEG),
    _p("Normal cardiomediastinal silhouette.", cardiomegaly=NEG, enlarged_cardiomediastinum=NEG),
    _p(
        "The cardiomediastinal silhouette is within normal limits.",
        cardiomegaly=NEG,
        enlarged_cardiomediastinum=NEG,
    ),
    _p("Mediastinal contours are normal.", enlarged_cardiomediastinum=NEG),
    _p("Costophrenic angles are sharp.", pleural_effusion=NEG),
    _p("The lungs are clear.", lung_opacity=NEG),
    _p("Lungs are well expanded and clear.", lung_opacity=NEG),
)
FILLERS = (
    _p("No acute osseous abnormality."),
    _p("The osseous structures are intact."),
    _p("Degenerative changes of the thoracic spine."),
    _p("Calcified granuloma in the right upper lobe."),
    _p("Median sternotomy wires."),
    _p("Median sternotomy wires and mediastinal surgical clips."),
    _p("Tortuous and calcified thoracic aorta."),
    _p("Low lung volumes."),
    _p("Surgical clips in the right upper quadrant."),
)
NORMAL_IMPRESSIONS = (
    "No acute cardiopulmonary abnormality.",
    "No acute cardiopulmonary process.",
    "Normal chest radiograph.",
    "No active disease.",
)
CHANGE = ("No significant interval change.", "Compared to the prior study, there is no significant change.")
INDICATIONS = (
    "Shortness of breath.",
    "Cough and fever, rule out pneumonia.",
    "Chest pain.",
    "History of rib fractures, now with chest pain.",
    "Pre-operative evaluation.",
    "Status post pacemaker placement.",
    "Follow-up of pleural effusion.",
    "Line placement.",
    "",
)
EXAMS = {
    ("pa", "lateral"): ("Chest, PA and lateral.", "Chest radiograph, two views."),
    ("pa",): ("Chest, PA view.", "Chest radiograph, single frontal view."),
    ("ap",): ("Portable AP chest.", "Chest, single portable AP view."),
}
WEIGHTS = {
    "atelectasis": 1.0,
    "cardiomegaly": 1.2,
    "consolidation": 0.8,
    "edema": 1.0,
    "enlarged_cardiomediastinum": 1.2,
    "fracture": 0.7,
    "lung_lesion": 0.7,
    "lung_opacity": 1.0,
    "pleural_effusion": 1.2,
    "pleural_other": 0.9,
    "pneumonia": 0.9,
    "pneumothorax": 1.0,
    "support_devices": 1.2,
}


def _merge(states: dict[str, str], phrase: Phrase) -> None:
    for name, state in phrase.states.items():
        old = states.get(name, NM)
        states[name] = min(old, state, key=PRECEDENCE.index)


def _pick(rng: np.random.Generator, options: tuple) -> object:
    return options[int(rng.integers(len(options)))]


def _negation_list(rng: np.random.Generator, states: dict[str, str]) -> Phrase | None:
    """ "No focal consolidation, pleural effusion, or pneumothorax." over findings the report does not mention."""
    free = [name for name in NEGATABLE if states.get(name, NM) == NM]
    if len(free) < 1:
        return None
    frame = str(_pick(rng, LIST_FRAMES))
    # A negation after the list ("... are not seen") reaches back a few words only: two short items.
    most = 2 if frame.startswith("{} {}") else 4
    chosen = [
        free[i] for i in sorted(rng.choice(len(free), min(len(free), int(rng.integers(1, most + 1))), replace=False))
    ]
    nouns = [str(_pick(rng, NEGATABLE[name])) for name in chosen]
    if frame.startswith("{} {}") and len(" ".join(nouns).split()) > 4:
        frame = "No {}."
    if len(nouns) == 1:
        listed = nouns[0]
    else:
        conjunction = str(_pick(rng, ("or", "or", "and")))
        comma = "," if len(nouns) > 2 and rng.random() < 0.5 else ""
        listed = f"{', '.join(nouns[:-1])}{comma} {conjunction} {nouns[-1]}"
    if frame.startswith("{} {}"):
        text = frame.format(listed[0].upper() + listed[1:], "are" if len(nouns) > 1 else "is")
    else:
        text = frame.format(listed)
    return Phrase(text, dict.fromkeys(chosen, NEG))


@dataclass
class Study:
    report_id: str
    patient_id: str
    text: str
    states: dict[str, str]
    views: tuple[str, ...]
    follow_up: bool


def _study(rng: np.random.Generator, prior: dict[str, str] | None) -> tuple[str, dict[str, str], tuple[str, ...]]:
    """A report text, its gold states (every finding) and its views; ``prior``: the patient's last states."""
    states: dict[str, str] = {}
    body: list[Phrase] = []
    if prior is not None:
        for name in CHRONIC:
            if prior.get(name) != POS:
                continue
            if name in RESOLVED and rng.random() < 0.3:
                body.append(_pick(rng, RESOLVED[name]))
            else:
                body.append(_pick(rng, STABLE[name]))
        for name in ("pneumothorax", "pneumonia"):
            if prior.get(name) == POS and rng.random() < 0.5:
                body.append(_pick(rng, RESOLVED[name]))
    for phrase in body:
        _merge(states, phrase)
    normal = not any(state in (POS, UNC) for state in states.values()) and rng.random() < 0.4
    if not normal:
        names = list(WEIGHTS)
        weights = np.array([WEIGHTS[n] if states.get(n, NM) == NM else 0 for n in names])
        k = int(rng.choice([1, 2, 3, 4], p=[0.35, 0.35, 0.2, 0.1])) if states == {} else int(rng.integers(0, 3))
        k = min(k, int((weights > 0).sum()))
        for name in (names[i] for i in rng.choice(len(names), k, replace=False, p=weights / weights.sum())):
            uncertain = name in UNCERTAIN and rng.random() < 0.3
            phrase = _pick(rng, UNCERTAIN[name] if uncertain else POSITIVE[name])
            body.append(phrase)
            _merge(states, phrase)
    abnormal = [p for p in body if any(s in (POS, UNC) for s in p.states.values())]
    if rng.random() < 0.85 and (negated := _negation_list(rng, states)):
        body.append(negated)
        _merge(states, negated)
    lungs_clear = not any(states.get(n, NM) in (POS, UNC) for n in PARENCHYMA)
    for phrase in NORMAL_STATEMENTS:
        if all(states.get(n, NM) == NM for n in phrase.states) and rng.random() < 0.35:
            if "lung_opacity" in phrase.states and not lungs_clear:
                continue
            body.append(phrase)
            _merge(states, phrase)
    body += [FILLERS[int(i)] for i in rng.choice(len(FILLERS), int(rng.integers(0, 3)), replace=False)]
    devices = states.get("support_devices") == POS
    views = ("ap",) if devices and rng.random() < 0.7 else ("pa", "lateral") if rng.random() < 0.6 else ("pa",)
    indication = str(_pick(rng, INDICATIONS))
    parts = [f"EXAMINATION: {_pick(rng, EXAMS[views])}"]
    if indication:
        parts.append(f"{_pick(rng, ('INDICATION', 'HISTORY'))}: {indication}")
    if prior is not None:
        parts.append("COMPARISON: Prior chest radiograph.")
    order = [int(i) for i in rng.permutation(len(body))]
    parts.append("FINDINGS: " + " ".join(body[i].text for i in order))
    if abnormal:
        shown = [abnormal[int(i)] for i in rng.choice(len(abnormal), min(2, len(abnormal)), replace=False)]
        impression = " ".join(f"{n + 1}. {p.text}" for n, p in enumerate(shown)) if len(shown) > 1 else shown[0].text
    elif prior is not None and rng.random() < 0.5:
        impression = str(_pick(rng, CHANGE))
    else:
        impression = str(_pick(rng, NORMAL_IMPRESSIONS))
    parts.append(f"IMPRESSION: {impression}")
    gold = {name: states.get(name, NM) for name in FINDINGS}
    return " ".join(parts), gold, views


DEVICE_KINDS = ("endotracheal tube", "nasogastric tube", "central line", "pacemaker", "chest tube")
LUNG = ((110, 38), (84, 40), (56, 64), (44, 110), (38, 170), (34, 224), (80, 214), (122, 204), (122, 60))
"""The image-left lung of a frontal view (the patient's right), in 256-pixel units; the other is its mirror."""
LATERAL_LUNG = ((96, 34), (150, 32), (196, 58), (212, 130), (224, 226), (150, 214), (58, 208), (50, 120), (64, 60))


class _Canvas:
    """A float image in [0, 1] drawn in 256-pixel units whatever its size."""

    def __init__(self, size: int) -> None:
        self.size, self.s = size, size / 256
        self.pixels = np.full((size, size), 0.04, dtype=np.float32)
        grid = (np.mgrid[0:size, 0:size].astype(np.float32) + 0.5) / self.s
        self.y, self.x = grid[0], grid[1]

    def mask(self, shape: str, points, width: float = 0) -> np.ndarray:
        image = Image.new("L", (self.size, self.size), 0)
        draw = ImageDraw.Draw(image)
        scaled = [(x * self.s, y * self.s) for x, y in points]
        if shape == "polygon":
            draw.polygon(scaled, fill=255)
        elif shape == "ellipse":
            draw.ellipse([*scaled[0], *scaled[1]], fill=255)
        elif shape == "line":
            draw.line(scaled, fill=255, width=max(1, round(width * self.s)), joint="curve")
        elif shape == "outline":
            draw.line([*scaled, scaled[0]], fill=255, width=max(1, round(width * self.s)))
        return np.asarray(image) > 127

    def gauss(self, cx: float, cy: float, sigma: float) -> np.ndarray:
        return np.exp(-((self.x - cx) ** 2 + (self.y - cy) ** 2) / (2 * sigma**2)).astype(np.float32)


def _mirror(points, axis: float = 128) -> tuple:
    return tuple((2 * axis - x, y) for x, y in points)


def _shift(points, dx: float, dy: float = 0) -> tuple:
    return tuple((x + dx, y + dy) for x, y in points)


def _shrink(points, anchor: tuple[float, float], fx: float, fy: float) -> tuple:
    return tuple((anchor[0] + (x - anchor[0]) * fx, anchor[1] + (y - anchor[1]) * fy) for x, y in points)


def _parameters(rng: np.random.Generator) -> dict:
    """Every random choice of one image, drawn whatever it shows: the same stream gives the same anatomy."""
    u = rng.uniform
    return {
        "dx": u(-6, 6),
        "heart": u(33, 39),
        "ribs": u(-4, 4),
        "texture": rng.normal(0, 1, (32, 32)),
        "effusion": (int(rng.integers(3)), u(40, 70)),
        "pneumothorax": (int(rng.integers(2)), u(0.78, 0.86)),
        "consolidation": (int(rng.integers(2)), u(150, 190), u(0.35, 0.65), rng.normal(0, 8, (3, 2)), u(14, 20)),
        "lung_opacity": (int(rng.integers(2)), u(100, 150), u(0.3, 0.7)),
        "pneumonia": (int(rng.integers(2)), u(160, 195), rng.normal(0, 12, (7, 2))),
        "edema": u(24, 32),
        "atelectasis": (int(rng.integers(2)), u(170, 196), u(-6, 6)),
        "lung_lesion": (int(rng.integers(2)), u(70, 120), u(0.35, 0.65), u(7, 11)),
        "fracture": (int(rng.integers(2)), int(rng.integers(1, 5))),
        "pleural_other": (int(rng.integers(3)), u(7, 11)),
        "devices": rng.random(len(DEVICE_KINDS)),
        "rotate": u(-4, 4),
        "gain": u(0.88, 1.08),
    }


def _radiograph(rng: np.random.Generator, size: int, states: dict[str, str], lateral: bool = False) -> np.ndarray:
    """A radiograph-like chest in [0, 1]: each positive finding has its own sign, an uncertain one a fainter one."""
    from scipy.ndimage import binary_dilation, gaussian_filter, zoom  # here: the plugin loads for every r2l command

    p = _parameters(rng)
    strength = {name: {POS: 1.0, UNC: 0.6}.get(states.get(name, NM), 0.0) for name in FINDINGS}
    c, dx = _Canvas(size), p["dx"]
    px = c.pixels
    body = c.mask("ellipse", [(22 + dx, -20), (234 + dx, 300)])
    px[body] = 0.36
    if lateral:
        lungs = [_shift(LATERAL_LUNG, dx)]
        corners = [(224 + dx, 226)]
        laterals = [1]
    else:
        lungs = [_shift(LUNG, dx), _shift(_mirror(LUNG), dx)]
        corners = [(34 + dx, 224), (222 + dx, 224)]
        laterals = [-1, 1]
    masks = [c.mask("polygon", lung) for lung in lungs]
    lung_mask = np.logical_or.reduce(masks)
    texture = zoom(p["texture"], size / 32, order=1)[:size, :size].astype(np.float32)
    px[lung_mask] = 0.11 + 0.025 * texture[lung_mask]
    for i in range(7):  # ribs
        y0 = 52 + 24 * i + p["ribs"]
        for sign in laterals:
            x_med = 128 + dx if not lateral else 210 + dx
            xs = np.linspace(0, 90, 12)
            points = [(x_med + sign * x * (1 if not lateral else -1.7), y0 - 8 + (x / 90) ** 1.6 * 26) for x in xs]
            px += 0.07 * (c.mask("line", points, 5) & body)
    # mediastinum, spine, heart, trachea
    ecm = 22 * strength["enlarged_cardiomediastinum"]
    if lateral:
        px[c.mask("polygon", [(204 + dx, 0), (236 + dx, 0), (238 + dx, 256), (206 + dx, 256)])] = 0.5
        anterior = c.mask("ellipse", [(78 + dx - ecm, 48), (122 + dx + ecm, 118 + ecm)])
        px[anterior] = np.maximum(px[anterior], 0.11 + 0.3 * strength["enlarged_cardiomediastinum"])
        hx, hy, hh = 100 + dx, 172, 38
    else:
        half = (12 + ecm, 18 + ecm / 2)
        px[
            c.mask(
                "polygon",
                [
                    (128 + dx - half[0], 0),
                    (128 + dx + half[0], 0),
                    (128 + dx + half[1], 150),
                    (128 + dx - half[1], 150),
                ],
            )
        ] = 0.48
        px[c.mask("polygon", [(118 + dx, 150), (138 + dx, 150), (138 + dx, 256), (118 + dx, 256)])] = 0.46
        hx, hy, hh = 140 + dx, 178, 34
    hw = p["heart"] + 20 * strength["cardiomegaly"]
    px[c.mask("ellipse", [(hx - hw, hy - hh - 4 * strength["cardiomegaly"]), (hx + hw, hy + hh)])] = 0.5
    trachea = [(124 + dx, 0), (132 + dx, 0), (132 + dx, 92), (124 + dx, 92)]
    px[c.mask("polygon", trachea if not lateral else _shift(trachea, 8))] = 0.2
    masks = [mask & (px < 0.3) for mask in masks]  # the lung that heart and mediastinum leave visible
    lung_mask = np.logical_or.reduce(masks)

    def lung_of(side: int) -> int:
        return side % len(lungs)

    def bbox(i: int) -> tuple[float, float, float, float]:
        xs, ys = [x for x, _ in lungs[i]], [y for _, y in lungs[i]]
        return min(xs), min(ys), max(xs), max(ys)

    def inward(i: int, fraction: float) -> float:
        """The x ``fraction`` of the lung's width in from its lateral (on a lateral view: posterior) edge."""
        x0, _, x1, _ = bbox(i)
        return x1 - fraction * (x1 - x0) if laterals[i] > 0 else x0 + fraction * (x1 - x0)

    def add(name: str, value: np.ndarray, where: np.ndarray | None = None) -> None:
        if strength[name]:
            px[:] += strength[name] * value * (lung_mask if where is None else where)

    # pneumothorax: no lung markings between the collapsed lung and the chest wall, a thin pleural line
    side, factor = p["pneumothorax"]
    i = lung_of(side)
    x0, y0, x1, y1 = bbox(i)
    anchor = ((x0 + x1) / 2 if lateral else x1 if laterals[i] < 0 else x0, y1)
    if strength["pneumothorax"]:
        gap = (1 - factor) * strength["pneumothorax"] * (0.6 if lateral else 1)
        collapsed = _shrink(lungs[i], anchor, 1 - gap, 1 - gap * 0.4)
        rim = masks[i] & ~c.mask("polygon", collapsed)
        px[rim] = 0.03
        line = c.mask("outline", collapsed, 2) & masks[i] & binary_dilation(rim, iterations=max(1, round(3 * c.s)))
        px[line] = 0.3
    # pleural effusion: the costophrenic angle and the lung base filled, a meniscus rising laterally
    which, height = p["effusion"]
    for i in range(len(lungs)) if which == 2 else [lung_of(which)]:
        if not strength["pleural_effusion"]:
            break
        h = height * strength["pleural_effusion"]
        cx, cy = corners[i]
        sign = laterals[i]
        meniscus = [
            (cx - sign * 10, cy - h),
            (cx - sign * 40, cy - h * 0.6),
            (cx - sign * 90, cy - h * 0.35),
            (cx - sign * 110, cy - h * 0.3),
            (cx - sign * 110, cy + 30),
            (cx + sign * 10, cy + 30),
        ]
        fill = c.mask("polygon", meniscus) & body
        px[fill] = np.maximum(px[fill], 0.44)
    side, cy, fx, offsets, radius = p["consolidation"]
    i = lung_of(side)
    if strength["consolidation"]:
        cx = inward(i, fx * 0.7)
        region = (
            np.logical_or.reduce(
                [
                    c.mask("ellipse", [(cx + ox - radius, cy + oy - radius), (cx + ox + radius, cy + oy + radius)])
                    for ox, oy in offsets
                ]
            )
            & masks[i]
        )
        px[region] = np.maximum(px[region], 0.1 + 0.34 * strength["consolidation"])
    side, cy, fx = p["lung_opacity"]
    add("lung_opacity", 0.17 * c.gauss(inward(lung_of(side), fx * 0.8), cy, 15))
    side, cy, offsets = p["pneumonia"]
    if strength["pneumonia"]:
        blobs = sum(c.gauss(inward(lung_of(side), 0.35) + ox * 1.2, cy + oy, 5) for ox, oy in offsets)
        add("pneumonia", 0.22 * np.minimum(blobs, 1.2))
    if strength["edema"]:
        sigma = p["edema"]
        hila = [(100 + dx, 120), (156 + dx, 120)] if not lateral else [(140 + dx, 110)]
        add("edema", 0.16 * sum(c.gauss(x, y, sigma) for x, y in hila))
        for i, (cx, cy) in enumerate(corners):  # Kerley B lines at the lateral bases
            for k in range(4):
                line = [(cx - laterals[i] * 3, cy - 30 - 9 * k), (cx - laterals[i] * 18, cy - 30 - 9 * k)]
                add("edema", 0.14 * c.mask("line", line, 2))
    side, cy, tilt = p["atelectasis"]
    mid = inward(lung_of(side), 0.4)
    add("atelectasis", 0.3 * c.mask("line", [(mid - 30, cy - tilt), (mid + 30, cy + tilt)], 5))
    side, cy, fx, radius = p["lung_lesion"]
    i = lung_of(side)
    x0, y0, x1, y1 = bbox(i)
    if strength["lung_lesion"]:
        cx = x0 + fx * (x1 - x0)
        nodule = c.mask("ellipse", [(cx - radius, cy - radius), (cx + radius, cy + radius)])
        px[nodule] = np.maximum(px[nodule], 0.12 + 0.4 * strength["lung_lesion"])
    side, rib = p["fracture"]
    i = lung_of(side)
    if strength["fracture"]:  # a callus with a dark gap on a lateral rib
        y = 52 + 24 * rib + p["ribs"] + 14
        x = corners[i][0] - laterals[i] * 14
        callus = c.mask("ellipse", [(x - 8, y - 7), (x + 8, y + 7)])
        px[callus] += 0.32 * strength["fracture"]
        px[c.mask("line", [(x, y - 9), (x + 2, y + 9)], 3)] = 0.06
    which, thickness = p["pleural_other"]
    for i in range(len(lungs)) if which == 2 else [lung_of(which)]:
        if not strength["pleural_other"]:
            break
        lowered = c.mask("polygon", _shift(lungs[i], 0, thickness))
        cap = masks[i] & ~lowered & (c.y < bbox(i)[1] + 60)
        px[cap] = np.maximum(px[cap], 0.1 + 0.45 * strength["pleural_other"])
    if strength["support_devices"]:
        chosen = [k for k, r in zip(DEVICE_KINDS, p["devices"], strict=True) if r < 0.4] or [
            DEVICE_KINDS[int(np.argmin(p["devices"]))]
        ]
        for kind in chosen:
            _device(c, kind, dx + (8 if lateral else 0), lateral)
    image = Image.fromarray(px).rotate(p["rotate"], resample=Image.BILINEAR, fillcolor=0.04)
    pixels = gaussian_filter(np.asarray(image, dtype=np.float32), sigma=0.7 * c.s) * p["gain"]
    pixels += rng.normal(0, 0.02, pixels.shape).astype(np.float32)
    return np.clip(pixels, 0, 1)


def _device(c: _Canvas, kind: str, dx: float, lateral: bool) -> None:
    """Radio-opaque lines and boxes: tubes, a central line, a pacemaker with its leads, a chest tube."""
    bright = 0.95
    if kind == "endotracheal tube":
        c.pixels[c.mask("line", [(128 + dx, 0), (128 + dx, 84)], 4)] = bright
    elif kind == "nasogastric tube":
        c.pixels[c.mask("line", [(126 + dx, 0), (126 + dx, 150), (130 + dx, 232), (162 + dx, 246)], 3)] = bright
    elif kind == "central line":
        c.pixels[c.mask("line", [(14 + dx, 66), (62 + dx, 54), (108 + dx, 66), (120 + dx, 104)], 3)] = bright
    elif kind == "pacemaker":
        box = (176, 46) if not lateral else (70, 44)
        c.pixels[c.mask("polygon", _shift([(0, 0), (26, 0), (26, 17), (0, 17)], box[0] + dx, box[1]))] = bright
        leads = [(box[0] + 4 + dx, box[1] + 16), (150 + dx, 100), (134 + dx, 150), (132 + dx, 184)]
        c.pixels[c.mask("line", leads, 2)] = bright
    elif kind == "chest tube":
        c.pixels[c.mask("line", [(236 + dx, 206), (206 + dx, 150), (186 + dx, 84)], 4)] = bright


def _save_png(pixels: np.ndarray, path: Path, sixteen_bit: bool) -> None:
    info = PngInfo()
    info.add_text("Comment", "SYNTHETIC image written by report2label; not a patient image")
    if sixteen_bit:
        image = Image.fromarray((pixels * 65535).astype(np.uint16))
    else:
        image = Image.fromarray((pixels * 255).astype(np.uint8))
    image.save(path, pnginfo=info)


NOTICE = """# Synthetic example data

Everything in this folder is SYNTHETIC, written by `r2l example chest-xray`: invented English
chest radiograph reports and drawn radiograph-like images. It contains no patient data and is not
suitable for any clinical or scientific conclusion.

- `reports.csv`: report_id, patient_id, text, then one gold column per label, `gold_<label>`:
  the 13 findings as positive, negative, uncertain or not_mentioned (the state the text was
  written for) and `gold_normal` (1 when no finding is positive or uncertain); follow_up (the
  report compares with the patient's previous study), source
- `images.csv`: image (path relative to this folder), report_id, patient_id, view (pa, ap, lateral)
- `images/`: PNG images, 8- and 16-bit; every positive finding has its own drawn sign (a wide
  heart, a filled costophrenic angle, a dark rim without lung markings, bright tubes and lines,
  a nodule, patchy or dense opacities, ...), an uncertain one a fainter sign
- `pipeline.toml`: the whole study for `r2l run`, set for a quick CPU run
"""

PIPELINE = """# report2label pipeline for the SYNTHETIC chest example, set for a quick CPU run (small images, few
# epochs).
# r2l run pipeline.toml   — paths are relative to this file
task = "chest-xray"
workdir = "."

[reports]
path = "reports.csv"
gold_col = "auto"

[images]
path = "images.csv"

[label]
backend = "rules"

[dataset]
seed = 0
uncertain = "ones"  # an uncertain finding trains as positive (CheXpert's U-Ones)

[train]
device = "cpu"
image_size = 64
epochs = 10
batch_size = 16

[export]
output = "model.onnx"
"""


def write_example(directory: str | Path, seed: int = 0, n_reports: int = 200, image_size: int = 256) -> dict[str, int]:
    """Write the synthetic chest study into ``directory``; the same seed gives the same files."""
    directory = Path(directory)
    (directory / "images").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    studies: list[Study] = []
    patient, prior = 0, None
    for i in range(n_reports):
        if i == 0 or prior is None or rng.random() < 0.6:
            patient, prior = patient + 1, None
        text, states, views = _study(rng, prior)
        studies.append(Study(f"R{i + 1:05d}", f"P{patient:05d}", text, states, views, prior is not None))
        prior = states
    reports, images = [], []
    with progress_bar("writing example images", total=len(studies)) as advance:
        for study in studies:
            for view in study.views:
                name = f"images/{study.report_id}_{view}.png"
                pixels = _radiograph(rng, image_size, study.states, lateral=view == "lateral")
                _save_png(pixels, directory / name, sixteen_bit=len(images) % 3 == 2)
                images.append(
                    {"image": name, "report_id": study.report_id, "patient_id": study.patient_id, "view": view}
                )
            normal = int(not any(state in (POS, UNC) for state in study.states.values()))
            reports.append(
                {
                    "report_id": study.report_id,
                    "patient_id": study.patient_id,
                    "text": study.text,
                    **{f"gold_{name}": state for name, state in study.states.items()},
                    "gold_normal": normal,
                    "follow_up": int(study.follow_up),
                    "source": "synthetic",
                }
            )
            advance(1)
    table = pd.DataFrame(reports)
    for name, frame in (("reports.csv", table), ("images.csv", pd.DataFrame(images))):
        with atomic_path(directory / name) as tmp:
            frame.to_csv(tmp, index=False)
    (directory / "README.md").write_text(NOTICE)
    (directory / "pipeline.toml").write_text(PIPELINE)
    return {
        "reports": len(reports),
        "images": len(images),
        "patients": patient,
        "normal_reports": int(table["gold_normal"].sum()),
    }
