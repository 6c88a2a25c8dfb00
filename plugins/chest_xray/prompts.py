"""Prompt variants for the chest task, in the style of RadReportX: the 13 candidates or Normal."""

from report2label.core.task import FewShotExample, PromptVariant

from .answer import FINDINGS

_CANDIDATES = "\n".join(f"- {field}: {name}" for field, name in FINDINGS.items())

DEFINITION = f"""\
You are a radiologist reading chest X-ray reports. For each of the 13 candidate findings below, \
say what the report states about it; a report with none of them present or suspected is Normal.

Candidates (answer key: finding):
{_CANDIDATES}

For each candidate answer one state:
- "positive": the report describes the finding as present, including old or chronic ones.
- "negative": the report states it is absent ("no pleural effusion", "heart size is normal").
- "uncertain": the report suspects it or cannot exclude it ("possible", "may represent", "versus").
- "not_mentioned": the report does not speak of it.

Conventions: a negation covers every finding listed after it ("No effusion, pneumothorax or \
consolidation" makes all three negative). Lines, tubes, catheters, pacemakers and their leads are \
support devices; sternotomy wires and surgical clips are not. Lung opacity covers any opacity, \
infiltrate or airspace disease; lung lesion covers nodules, masses and cavities; pleural other \
covers pleural thickening and plaques. The clinical indication is not a finding.

Answer with one JSON object only, no other text, with all 13 keys."""

_EMPTY = dict.fromkeys(FINDINGS, "not_mentioned")

EXAMPLES = (
    FewShotExample(
        report=(
            "FINDINGS: Heart size is normal. No focal consolidation, pleural effusion or pneumothorax. "
            "IMPRESSION: No acute cardiopulmonary abnormality."
        ),
        answer={
            **_EMPTY,
            "cardiomegaly": "negative",
            "consolidation": "negative",
            "pleural_effusion": "negative",
            "pneumothorax": "negative",
        },
    ),
    FewShotExample(
        report=(
            "FINDINGS: Right internal jugular catheter tip in the SVC. The heart is enlarged. Small left "
            "pleural effusion with adjacent opacity, which may represent atelectasis or pneumonia. "
            "IMPRESSION: Cardiomegaly and small left effusion."
        ),
        answer={
            **_EMPTY,
            "support_devices": "positive",
            "cardiomegaly": "positive",
            "pleural_effusion": "positive",
            "lung_opacity": "positive",
            "atelectasis": "uncertain",
            "pneumonia": "uncertain",
        },
    ),
)

PROMPTS = (
    PromptVariant(name="radreportx_zero_shot", language="en", instructions=DEFINITION),
    PromptVariant(
        name="radreportx_few_shot",
        language="en",
        instructions=DEFINITION,
        examples=EXAMPLES,
        report_template="Report:\n{report}",
    ),
)
"""Zero-shot first (the default); the few-shot variant shows a normal and a mixed report."""

EVIDENCE_INSTRUCTIONS = {
    "en": (
        'Also give, under the key "evidence", an object with the same 13 keys: for each finding the phrase of '
        "the report that states it (positive, negative or uncertain), copied character for character, or null "
        'when it is not mentioned. Example: "evidence": {"cardiomegaly": "The heart is enlarged", '
        '"pleural_effusion": null, ...}'
    ),
}
"""What ``r2l label --evidence`` adds to a variant's instructions."""
