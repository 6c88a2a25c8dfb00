"""English prompt variants after seed 001: write the Impression from the Findings and the background."""

from report2label.core.task import TEXT_CORRECTION, FewShotExample, PromptVariant

DEFINITION = """\
You are a radiologist. You are given the Findings of a radiology report, and the indication or
clinical history when there is one. Write the report's Impression: a concise summary of the
clinically important findings and the conclusion a referring physician reads first, in the
radiologist's usual style (short sentences or a numbered list; "No acute cardiopulmonary
abnormality." when nothing acute is found). Do not repeat every finding and do not invent any.
Answer with the Impression text only: no heading, no quotes, no other text."""

EXAMPLES = (
    FewShotExample(
        report=(
            "INDICATION: Chest pain. FINDINGS: The heart size and mediastinal contours are within normal limits. "
            "The lungs are clear. No pleural effusion or pneumothorax."
        ),
        answer="No acute cardiopulmonary abnormality.",
    ),
    FewShotExample(
        report=(
            "INDICATION: Shortness of breath. FINDINGS: The heart is enlarged. Bilateral pleural effusions, "
            "larger on the right. Vascular congestion. No pneumothorax."
        ),
        answer="1. Cardiomegaly. 2. Bilateral pleural effusions, right greater than left, with vascular congestion.",
    ),
)

PROMPTS = (
    PromptVariant(
        name="en-zero-shot",
        language="en",
        instructions=DEFINITION,
        report_template="{report}",
        correction=TEXT_CORRECTION,
    ),
    PromptVariant(
        name="en-few-shot",
        language="en",
        instructions=DEFINITION,
        examples=EXAMPLES,
        report_template="{report}",
        correction=TEXT_CORRECTION,
    ),
)
