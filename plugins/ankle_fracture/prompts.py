"""Prompt variants for the upper-ankle-joint fracture question (our wording, after the study's definition)."""

from report2label.core.task import FewShotExample, PromptVariant

DEFINITION_DE = """\
Du bist Facharzt für Radiologie und liest Röntgenbefunde des Sprunggelenks. Beantworte für den \
Befund genau eine Frage: Beschreibt er eine Fraktur des oberen Sprunggelenks (OSG)?

Es gilt:
- Das OSG besteht aus distaler Tibia (mit Innenknöchel und hinterer Tibiakante/Volkmann-Dreieck), \
distaler Fibula (Außenknöchel) und Talus.
- Frakturen anderer Knochen zählen nicht, auch keine Frakturen des Fußes (Mittelfuß, Kalkaneus, \
Fußwurzel, Zehen).
- Ein Frakturverdacht zählt als Fraktur (z. B. "V.a.", "fraglich", "nicht sicher auszuschließen").
- Eine operativ versorgte Fraktur zählt als Fraktur, außer der Befund sagt ausdrücklich, dass keine \
Frakturlinie und kein Frakturspalt mehr sichtbar ist, auch kein zarter.
- Fragestellung und klinische Angaben sind kein Befund: werte nur, was der Radiologe beschreibt.

Antworte nur mit einem JSON-Objekt, ohne weiteren Text: {"fracture": 1} bei einer Fraktur des OSG, \
sonst {"fracture": 0}."""

DEFINITION_EN = """\
You are a radiologist reading ankle X-ray reports written in German. Answer exactly one question \
about the report: does it describe a fracture of the upper ankle joint (German "oberes \
Sprunggelenk", OSG)?

Rules:
- The upper ankle joint consists of the distal tibia (with the medial malleolus and the posterior \
tibial rim/Volkmann triangle), the distal fibula (lateral malleolus) and the talus.
- Fractures of other bones do not count, including fractures of the foot (metatarsals, calcaneus, \
tarsal bones, toes).
- A suspected fracture counts as a fracture ("V.a." = suspected, "fraglich", "nicht sicher \
auszuschließen").
- An operatively treated fracture counts as a fracture, unless the report says explicitly that no \
fracture line or gap, not even a faint one, is visible any more.
- The clinical question and clinical details are not findings: judge only what the radiologist describes.

Answer with a JSON object only, no other text: {"fracture": 1} for an upper ankle joint fracture, \
otherwise {"fracture": 0}."""

TEMPLATE_DE = 'Befundtext:\n"""\n{report}\n"""'
TEMPLATE_EN = 'Report:\n"""\n{report}\n"""'
CORRECTION_DE = (
    "Deine Antwort war ungültig: {reason}. Antworte noch einmal, nur mit einem JSON-Objekt nach "
    "diesem JSON-Schema, ohne weiteren Text: {schema}"
)

EXAMPLES = (
    FewShotExample(
        report="OSG rechts in 2 Ebenen: Weber-B-Fraktur der distalen Fibula mit geringer Dislokation.",
        answer={"fracture": 1},
    ),
    FewShotExample(
        report="Basisfraktur des Os metatarsale V. Malleolengabel regelrecht, OSG ossär intakt.", answer={"fracture": 0}
    ),
    FewShotExample(
        report="Fragliche Fissur am Innenknöchel, eine Fraktur ist nicht sicher auszuschließen.", answer={"fracture": 1}
    ),
    FewShotExample(
        report="Z.n. Plattenosteosynthese der Fibula. Keine Frakturlinie mehr abgrenzbar.", answer={"fracture": 0}
    ),
)

PROMPTS = (
    PromptVariant(
        name="de-zero-shot",
        language="de",
        instructions=DEFINITION_DE,
        report_template=TEMPLATE_DE,
        correction=CORRECTION_DE,
    ),
    PromptVariant(
        name="de-few-shot",
        language="de",
        instructions=DEFINITION_DE,
        examples=EXAMPLES,
        report_template=TEMPLATE_DE,
        correction=CORRECTION_DE,
    ),
    PromptVariant(name="en-zero-shot", language="en", instructions=DEFINITION_EN, report_template=TEMPLATE_EN),
)

EVIDENCE_INSTRUCTIONS = {
    "de": (
        'Gib zusätzlich unter dem Schlüssel "evidence" ein Objekt an: {"fracture": "<Zitat>"}. Das Zitat ist '
        "der Satz oder Satzteil des Befunds, auf den sich deine Antwort stützt, Zeichen für Zeichen aus dem "
        'Befundtext kopiert; null, wenn der Befund keine Fraktur erwähnt. Beispiel: {"fracture": 1, '
        '"evidence": {"fracture": "Weber-B-Fraktur der distalen Fibula"}}'
    ),
    "en": (
        'Also give, under the key "evidence", an object {"fracture": "<quote>"}: the sentence or phrase of the '
        "report your answer rests on, copied character for character from the German report text; null when "
        'the report mentions no fracture. Example: {"fracture": 1, "evidence": {"fracture": "Weber-B-Fraktur der '
        'distalen Fibula"}}'
    ),
}
"""What ``r2l label --evidence`` adds to a variant's instructions, by its language."""
