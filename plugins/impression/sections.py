"""Report sections: the impression task's input (everything before the Impression) and its answer."""

from __future__ import annotations

import re

IMPRESSION = re.compile(r"\bIMPRESSIONS?\s*:", re.IGNORECASE)
FINDINGS = re.compile(r"\bFINDINGS?\s*:", re.IGNORECASE)


def split_report(report: str) -> tuple[str, str | None]:
    """``(input, impression)``: the text before the Impression heading (findings, indication, history)
    and the Impression's text; ``impression`` is None when the report has no Impression section."""
    match = IMPRESSION.search(report)
    if match is None:
        return report.strip(), None
    return report[: match.start()].strip(), report[match.end() :].strip()


def findings(report_input: str) -> str:
    """The Findings section of an impression input (the whole input when it has no Findings heading)."""
    match = FINDINGS.search(report_input)
    return report_input[match.end() :].strip() if match else report_input.strip()
