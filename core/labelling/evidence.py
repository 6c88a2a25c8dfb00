"""Evidence: verbatim quotes grounded to character offsets in the report they were taken from.

A quote is sought exactly first (``str.find``: offsets are Python code points, so umlauts and ß
count one each), then case- and whitespace-tolerantly: both texts are case-folded character by
character and runs of whitespace become one space, with a map from each folded character back
to the original one, so a fold that changes the length (``'ß'.casefold() == 'ss'``) still maps
to the right offsets. A quote found more than once is grounded to its first occurrence. A span
is recorded as ``{"quote", "start", "end", "status"}``, status ``exact``, ``fuzzy`` or
``not_found``; ``report[start:end]`` is the report's own text of the quote.
"""

from __future__ import annotations

import unicodedata
from typing import Any

EXACT, FUZZY, NOT_FOUND = "exact", "fuzzy", "not_found"
QUOTE_MARKS = "\"'„“”‚‘’«»‹›…"


def _folded(text: str) -> tuple[str, list[int], list[int]]:
    """``text`` case-folded with whitespace runs as one space, and per folded character its original start and end."""
    chars: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    for i, char in enumerate(text):
        if char.isspace():
            if chars and chars[-1] == " ":
                ends[-1] = i + 1
                continue
            folded = " "
        else:
            folded = char.casefold()
        for piece in folded:
            chars.append(piece)
            starts.append(i)
            ends.append(i + 1)
    return "".join(chars), starts, ends


def _clean(quote: str) -> str:
    """The quote in composed (NFC) form without surrounding whitespace, quotation marks, periods and ellipses."""
    return unicodedata.normalize("NFC", quote).strip(QUOTE_MARKS + ". \t\n\r")


def span(quote: str, start: int | None, end: int | None, status: str) -> dict[str, Any]:
    return {"quote": quote, "start": start, "end": end, "status": status}


def ground(report: str, quote: str) -> dict[str, Any]:
    """The span of ``quote`` in ``report``: exact, else case- and whitespace-tolerant, else not found."""
    found = report.find(quote) if quote else -1
    if found >= 0:
        return span(quote, found, found + len(quote), EXACT)
    cleaned = _clean(quote)
    if cleaned:
        needle = _folded(cleaned)[0].strip()
        haystack, starts, ends = _folded(report)
        at = haystack.find(needle) if needle else -1
        if at >= 0:
            start, end = starts[at], ends[at + len(needle) - 1]
            return span(report[start:end], start, end, FUZZY)
    return span(quote, None, None, NOT_FOUND)


def ground_quotes(report: str, quotes: dict[str, str | None]) -> tuple[dict[str, list[dict[str, Any]]], str | None]:
    """Per label its grounded span (none for a null or empty quote), and why they are invalid, if one is not found."""
    evidence: dict[str, list[dict[str, Any]]] = {}
    missing = []
    for label, quote in quotes.items():
        if quote is None or not quote.strip():
            evidence[label] = []
            continue
        found = ground(report, quote)
        evidence[label] = [found]
        if found["status"] == NOT_FOUND:
            missing.append(label)
    if not missing:
        return evidence, None
    names = ", ".join(repr(label) for label in missing)
    return evidence, f"evidence for {names} is not a verbatim quote from the report"


def check_spans(report: str, evidence: dict[str, list[dict[str, Any]]]) -> str | None:
    """Why spans a backend computed itself do not fit ``report``, or None when each is its report's text."""
    for label, spans in evidence.items():
        for s in spans:
            start, end = s.get("start"), s.get("end")
            if not (isinstance(start, int) and isinstance(end, int) and 0 <= start <= end <= len(report)):
                return f"evidence for {label!r}: span {start}–{end} is outside the report"
            if report[start:end] != s.get("quote"):
                return f"evidence for {label!r}: span {start}–{end} is not the quoted text"
    return None
