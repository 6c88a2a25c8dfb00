"""The ``rules`` labeler: negation- and uncertainty-aware pattern matching, no model, no GPU.

In the spirit of NegEx/ConText and the CheXpert labeler: a report is cut into sections (the
clinical question is not read), sentences and clauses (at "jedoch", "but", ";", ...). A trigger
before a mention ("no", "kein", "possible") scopes forward to the end of its clause, across
lists, until a trigger of another kind starts; one after a mention ("ausgeschlossen", "is not
seen") reaches back a few words. Hedges are weighed: probable ones ("likely", "am ehesten") assert,
improbable ones ("unlikely", "less likely") negate, the others ("may", "possible", "versus", "not
well seen") leave the finding uncertain. Each mention is negated, uncertain or positive, placed
by the sites near it, and marked historical in sentences about earlier treatment. Per finding: a
positive relevant mention makes it positive, else a suspected one uncertain, else a negated one
or an absence statement negative; a historical mention counts unless the report states that the
finding has resolved. The task supplies the domain words
(:class:`~report2label.core.rulespec.RuleSet`); the German and English triggers are here.

Every answer carries evidence and a certainty: per finding the character spans, in the report as
given, of the mentions (or absence statements) that decided its state, and a confidence by that
state (:data:`CERTAINTY`): 1 for a stated finding, positive or negative, less for an uncertain or
an unmentioned one. These are levels of the rules' reading, not calibrated probabilities.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from report2label.core.errors import R2LError
from report2label.core.hookspecs import hookimpl
from report2label.core.labelling import Labeler, LabelRequest, RowFailure
from report2label.core.labelling.evidence import EXACT, span
from report2label.core.labelling.labeler import Answer
from report2label.core.rulespec import FindingRule, RuleSet

ENGINE_VERSION = "3"

UNLIKELY = (
    r"\b(?:(?:very |highly |much |rather )?(?:unlikely|improbable|doubtful)|less (?:likely|probable)"
    r"|(?:eher |sehr )?unwahrscheinlich\w*)\b"
)
"""Hedges of low probability: they negate ("pneumonia is unlikely", "less likely pneumonia")."""
TRIGGERS: dict[str, tuple[str, ...]] = {
    "pseudo": (
        r"\bnicht[-\s]?disloz\w*",
        r"\bundisloz\w*",
        r"\bnicht verschoben\w*",
        r"\bnon-?displaced\b",
        r"\bnot displaced\b",
        r"\bnicht nur\b",
        r"\bnot only\b",
        r"\bkein\w* (?:wesentliche\w* |sekundäre\w* |weitere\w* |relevante\w* )?"
        r"(?:dislokation|stellungsänderung|befundänderung|änderung|progredienz|lockerung|materiallockerung)\b",
        r"\b(?:no|without) (?:\w+ ){0,2}(?:change|increase|progression|worsening|improvement|displacement|loosening)\b",
        r"\bnot (?:significantly )?(?:changed|increased|improved)\b",
        r"\b(?:has |have )?not (?:yet )?(?:completely |fully )?resolved\b",
        r"\b(?:partial(?:ly)?|incomplete(?:ly)?|near(?:ly)?[- ]?(?:complete(?:ly)?|total(?:ly)?)|largely|mostly) "
        r"(?:resol|clear)\w*",
        r"\bresolving\b",
        r"\?\s*(?:[-–]\s*)?(?:ja|yes)\b",
    ),
    "pre_uncertainty": (
        r"\bv\.\s?a\.",
        r"\bverdacht auf\b",
        r"\bverdächtig auf\b",
        r"\bfraglich\w*",
        r"\bmöglich\w*",
        r"\bvereinbar mit\b",
        r"\bdd\b",
        r"\bsuspicio\w+ (?:of|for)\b",
        r"\b(?:concern\w*|worrisome) (?:for|of)\b",
        r"\bpossibl[ey]\b",
        r"\bquestion(?:able)?\b",
        r"\bequivocal\b",
        r"\bborderline\b",
        r"\bmay\b",
        r"\bmight\b",
        r"\bcould\b",
        r"\bsuggest\w*",
        r"\bcan(?:not|'t) (?:entirely |completely |definitely )?(?:exclude|rule out)\b",
        r"\bno evidence to (?:exclude|rule out)\b",
        r"\bdifferential\b",
        r"\bddx\b",
        r"\balternatively\b",
        r"\bfavou?r\w*",
        r"\bmaybe\b",
    ),
    "post_uncertainty": (
        r"\bnicht (?:sicher |ganz |sicher ganz |völlig )?auszuschlie(?:ß|ss)en\b",
        r"\bnicht sicher ausgeschlossen\b",
        r"verdacht\b",
        r"\?(?!\s*(?:[-–]\s*)?(?:nein|negativ|ja|yes)\b)",
        r"\bcan(?:not|'t) (?:\w+ )?be (?:\w+ )?(?:excluded|ruled out)\b",
        r"\bnot (?:be )?(?:entirely |completely |definitely )?(?:excluded|ruled out)\b",
        r"\b(?:is |are )?(?:also |still )?(?:questioned|possible|not certain)\b",
        r"\bnicht sicher abgrenzbar\b",
        r"\b(?:is |are |was |were )?(?:not (?:well|clearly|optimally|adequately|fully)|poorly) "
        r"(?:seen|visuali[sz]ed|demonstrated|evaluated|assessed|delineated|depicted)\b",
    ),
    "post_negation": (
        r"(?<=[\w-])ausschluss\b",
        r"ausgeschlossen\b",
        r"\bnicht (?:mehr )?(?:nachweisbar|abgrenzbar|abzugrenzen|erkennbar|sichtbar|darstellbar)\b",
        r"\bnicht (?:mehr )?(?:nachzuweisen|zu sehen)\b",
        r"\b(?:is |are )?(?:excluded|ruled out)\b",
        r"\b(?:is |are |was |were )?not (?:\w+ )?"
        r"(?:seen|visible|identified|demonstrated|detected|appreciated|present)\b",
        r"\bno longer (?:\w+ )?(?:visible|seen|identifi\w+|evident|present|appreciated|demonstrated)\b",
        r"\b(?:has |have )(?:since |now |interval(?:ly)? )?(?:resolved|cleared)\b",
        r"\b(?:vollständig |komplett )?(?:rückgebildet|resorbiert)\b",
        r"\?\s*(?:[-–]\s*)?(?:nein|negativ)\b",
        r":\s*(?:nein|negativ|none|absent)\b(?! for)",
        r"\b(?:is|are|was|were|seems?|appears?|felt|thought|considered)(?: to be)?(?: \w+)? " + UNLIKELY,
        UNLIKELY + r"(?=\s*(?:[.;:)]|\Z))",
    ),
    "pre_negation": (
        r"\bkein(?:e|en|em|er|es)?\b",
        r"\bohne\b",
        r"\bweder\b",
        r"\bfrei von\b",
        r"\bausschluss\b",
        r"\bno\b",
        r"\bnot\b",
        r"\bwithout\b",
        r"\bnegative for\b",
        r"\bfree of\b",
        r"\babsence of\b",
        r"\bnor\b",
        r"\b(?:interval )?resolution of\b",
        r"\bclear of\b",
        r"\b(?:interval )?(?:clearing|disappearance) of\b",
        r"\brather than\b",
        r"\binstead of\b",
        UNLIKELY,
    ),
    "pre_probable": (
        r"\bwahrscheinlich\w*",
        r"\bam ehesten\b",
        r"\bprobabl[ey]\b",
        r"\b(?:most |more )?likely\b",
        r"\bpresum(?:ed|ably|ptive)\b",
    ),
    "negation": (r"\bresolved\b", r"\bcleared\b"),
    "uncertainty": (
        r"\bversus\b",
        r"\bvs\b\.?",
        r"\bsuspected\b",
        r"\b(?:difficult|impossible|hard) to (?:\w+ )?(?:exclude|rule out)\b",
    ),
    "pre_hypothetical": (
        r"\bif\b",
        r"\bfalls\b",
        r"\bin case of\b",
        r"\b(?:evaluat\w*|assess\w*|search\w*|look\w*) for\b",
        r"\bcorrelat\w*",
        r"\bzum ausschluss\b",
        r"\bin the (?:appropriate |proper |right )?clinical (?:setting|context)\b",
    ),
    "history": (
        r"\bz\.\s?n\.",
        r"\bzustand nach\b",
        r"osteosynth\w*",
        r"\bplatte\w*",
        r"schraube\w*",
        r"\bcerclage\w*",
        r"\bversorg\w*",
        r"\boperativ\w*",
        r"\bpostop\w*",
        r"\bstatus post\b",
        r"\bs/p\b",
        r"\bpost-?operative\w*",
        r"\borif\b",
        r"\bfixation\b",
        r"\b(?:vor)?bekannt\w*",
        r"\bknown\b",
        r"\balt(?:e|er|en|em)\b",
        r"\bold\b",
        r"konsolid\w*",
        r"durchbau\w*",
        r"heilung",
        r"\bheal\w*",
    ),
    "terminator": (
        r"\bjedoch\b",
        r"\baber\b",
        r"\ballerdings\b",
        r"\bhingegen\b",
        r"\bdagegen\b",
        r"\bwährend\b",
        r"\bbis auf\b",
        r"\babgesehen von\b",
        r"\bmit ausnahme\b",
        r"\bansonsten\b",
        r"\bsonst\b",
        r",\s*(?:und\s+)?(?:links|rechts|linksseitig|rechtsseitig|li\.|re\.)\s",
        r"\bbut\b",
        r"\bhowever\b",
        r"\balthough\b",
        r"\bthough\b",
        r"\bwhereas\b",
        r"\bexcept\b",
        r"\bother than\b",
        r"\b(?:apart|aside) from\b",
        r"\bbesides\b",
        r"\bwith the exception of\b",
        r"\bnevertheless\b",
        r"\botherwise\b",
        r";",
    ),
}
KIND_ORDER = (
    "pseudo",
    "pre_uncertainty",
    "post_uncertainty",
    "uncertainty",
    "post_negation",
    "pre_negation",
    "negation",
    "pre_probable",
    "pre_hypothetical",
    "history",
    "terminator",
)
"""Where triggers of two kinds overlap, the earlier kind wins ("not excluded" is uncertain, not negated)."""
IGNORED_SECTIONS = (
    r"fragestellung",
    r"frage",
    r"klinische angaben?",
    r"klinik",
    r"anamnese",
    r"(?:rechtfertigende )?indikation",
    r"clinical (?:information|history|question|indication)",
    r"indication",
    r"history",
    r"reason for (?:exam\w*|request)",
)
OTHER_SECTIONS = (
    r"befund",
    r"beurteilung",
    r"technik",
    r"vergleich",
    r"voraufnahmen?",
    r"untersuchung",
    r"antwort",
    r"findings",
    r"impression",
    r"conclusion",
    r"technique",
    r"comparison",
    r"examination",
)
ABBREVIATIONS = frozenset(
    (
        "v.a",
        "z.n",
        "z.b",
        "ggf",
        "bzw",
        "ca",
        "re",
        "li",
        "bds",
        "dd",
        "evtl",
        "inkl",
        "vs",
        "e.g",
        "i.e",
        "ant",
        "post",
        "lat",
        "med",
        "dist",
        "prox",
        "mt",
        "os",
        "st",
        "dr",
        "nr",
        "bzgl",
        "pat",
        "u.a",
        "o.g",
        "s.o",
        "s.u",
        "a.p",
        "d.h",
        "sog",
        "max",
        "min",
        "mm",
        "cm",
        "ap",
    )
)
FORWARD = {
    "pre_negation": "negation",
    "negation": "negation",
    "pre_uncertainty": "uncertainty",
    "uncertainty": "uncertainty",
    "pre_probable": "probable",
}
BACKWARD = {
    "post_negation": "negation",
    "negation": "negation",
    "post_uncertainty": "uncertainty",
    "uncertainty": "uncertainty",
}
POST_WINDOW, SITE_AFTER, SITE_BEFORE = 6, 8, 3
HEADING_CHARS, TOKEN_CHARS = 40, 24
SENTENCE_CACHE = 65_536
"""Sentences read per engine and remembered: report templates repeat them (60% of the chest file's)."""

Status = Literal["positive", "uncertain", "negative", "hypothetical"]
State = Literal["positive", "uncertain", "negative"] | None
PRECEDENCE: tuple[Status, ...] = ("positive", "uncertain", "negative")
CERTAINTY: dict[State, float] = {"positive": 1.0, "negative": 1.0, "uncertain": 0.5, None: 0.75}
"""The confidence of a rule label by its finding's state: stated, uncertain, or not mentioned (None)."""

SPLIT = re.compile(r"(?<=[.!?])\s+|\n+")
LAST_WORD = re.compile(r"([\w.]+)\.\Z")
ANSWER = re.compile(r"(?:ja|nein|yes|no|negativ|positiv)\b", re.IGNORECASE)
WORD_CHARS = re.compile(r"[\w-]")
NONSPACE = re.compile(r"\S+")
LIST_BREAK = re.compile(r"(?:,|\band|\bund)\s*\Z", re.IGNORECASE)


def _value(state: State, uncertain: int) -> int:
    return 1 if state == "positive" else uncertain if state == "uncertain" else 0


def _split(patterns: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """Patterns that start at a word boundary (without it) and the others."""
    words = [p[2:] for p in patterns if p.startswith(r"\b")]
    return words, [p for p in patterns if not p.startswith(r"\b")]


def _alternation(patterns: tuple[str, ...]) -> str:
    """One regex for ``patterns``, the leading word boundary tested once (fast: most positions fail it)."""
    words, others = _split(patterns)
    head = [r"\b(?:" + "|".join(f"(?:{p})" for p in words) + ")"] if words else []
    return "|".join(head + [f"(?:{p})" for p in others])


def _any(patterns: tuple[str, ...]) -> re.Pattern[str] | None:
    return re.compile(_alternation(patterns), re.IGNORECASE) if patterns else None


def _trigger_regex(triggers: dict[str, tuple[str, ...]]) -> re.Pattern[str]:
    """All triggers in one regex; the match's group name (after "w_" or "o_") is its kind.

    Word-boundary patterns come first, each part in ``KIND_ORDER``.
    """
    words, others = [], []
    for kind in KIND_ORDER:
        w, o = _split(triggers[kind])
        words += [f"(?P<w_{kind}>" + "|".join(f"(?:{p})" for p in w) + ")"] if w else []
        others += [f"(?P<o_{kind}>" + "|".join(f"(?:{p})" for p in o) + ")"] if o else []
    head = [r"\b(?:" + "|".join(words) + ")"] if words else []
    return re.compile("|".join(head + others), re.IGNORECASE)


def _spans(pattern: re.Pattern[str] | None, text: str) -> list[tuple[int, int]]:
    return [m.span() for m in pattern.finditer(text)] if pattern else []


def _overlaps(span: tuple[int, int], others: list[tuple[int, int]]) -> bool:
    return any(span[0] < b and a < span[1] for a, b in others)


def _word_span(text: str, start: int, end: int) -> tuple[int, int]:
    """The span of the whole (hyphenated) word around text[start:end]."""
    while start > 0 and WORD_CHARS.match(text[start - 1]):
        start -= 1
    while end < len(text) and WORD_CHARS.match(text[end]):
        end += 1
    return start, end


def sentences(text: str) -> list[str]:
    """Split at sentence ends and line breaks, but not after abbreviations ("V.a."), initials or
    ordinals, nor between a question and its answer ("Fraktur? Nein.")."""
    merged: list[str] = []
    for piece in SPLIT.split(text):
        if not piece.strip():
            continue
        if merged:
            last = LAST_WORD.search(merged[-1][-TOKEN_CHARS:])
            word = last.group(1).lower() if last else ""
            if (word and (len(word) == 1 or word.isdigit() or word.rstrip(".") in ABBREVIATIONS)) or (
                merged[-1].endswith("?") and ANSWER.match(piece)
            ):
                merged[-1] += " " + piece
                continue
        merged.append(piece)
    return merged


@dataclass(frozen=True)
class Mention:
    """One mention of a finding and how the rules read it."""

    label: str
    text: str
    status: Status
    relevant: bool
    historical: bool
    span: tuple[int, int] = (0, 0)
    """Where ``text`` is in its sentence."""


@dataclass(frozen=True)
class Reading:
    """What one sentence says: its mentions and the findings it states absent."""

    mentions: tuple[Mention, ...]
    absent: frozenset[str]
    absent_spans: tuple[tuple[str, int, int], ...] = ()
    """(label, start, end) of each absence statement in the sentence."""


Trigger = tuple[int, int, str]
Hit = tuple[int, int, bool]


def _nearest(hits: list[Hit]) -> bool:
    """Of hits in one word, the last (the head of a German compound) decides; on a tie, the other site."""
    return max(hits, key=lambda h: (h[1], not h[2]))[2]


def _word_of(text: str, position: int) -> int:
    """The start of the whitespace-delimited word at ``position``."""
    return max(text.rfind(" ", 0, position), text.rfind("\n", 0, position)) + 1


class _Finding:
    def __init__(self, rule: FindingRule) -> None:
        self.rule = rule
        self.mentions = _any(rule.mentions)
        self.unmentions = _any(rule.unmentions)
        places = [f"(?P<o>{_alternation(rule.other_sites)})"] if rule.other_sites else []
        places += [f"(?P<s>{_alternation(rule.sites)})"] if rule.sites else []
        self.places = re.compile("|".join(places), re.IGNORECASE) if places else None
        self.resolved = _any(rule.resolved)
        self.absent = _any(rule.absent)

    def site_hits(self, text: str) -> list[Hit]:
        """Sites (True) and other sites (False) in ``text``; where both match at one place, the other site."""
        return [(*m.span(), m.lastgroup == "s") for m in self.places.finditer(text)] if self.places else []

    def relevant(self, text: str, hits: list[Hit], token: tuple[int, int], clause: tuple[int, int]) -> bool:
        """Whether the mention in the word ``text[token]`` is at a relevant site.

        Evidence is sought in the word itself ("Kalkaneusfraktur"), then after it up to a comma
        ("Fraktur des Innenknöchels"), then just before it ("distale Fibula, Fraktur"); the word
        nearest to the mention decides, and within a word its last site ("Tibiaschaftfraktur").
        No site named: the mention counts.
        """
        if self.places is None:
            return True
        inside = [h for h in hits if h[0] < token[1] and h[1] > token[0]]
        if inside:
            return _nearest(inside)
        comma = text.find(",", token[1], clause[1])
        words = text[token[1] : comma if comma >= 0 else clause[1]].split()[:SITE_AFTER]
        after_end = token[1] + len(" ".join(words)) + 1 if words else token[1]
        after = [h for h in hits if token[1] <= h[0] < after_end]
        if after:
            first = _word_of(text, min(h[0] for h in after))
            return _nearest([h for h in after if _word_of(text, h[0]) == first])
        before_start = max(text.rfind(",", clause[0], token[0]) + 1, clause[0])
        words = text[before_start : token[0]].split()[-SITE_BEFORE:]
        before_start = token[0] - len(" ".join(words)) - 1 if words else token[0]
        before = [h for h in hits if before_start <= h[0] and h[1] <= token[0]]
        return _nearest(before) if before else True


class RuleEngine:
    """Applies a task's :class:`RuleSet` with the built-in German and English triggers.

    The readings of the last ``cache_size`` distinct sentences are remembered (0: none).
    """

    def __init__(self, rules: RuleSet, cache_size: int = SENTENCE_CACHE) -> None:
        self.rules = rules
        self.triggers = _trigger_regex({kind: TRIGGERS[kind] + rules.triggers.get(kind, ()) for kind in KIND_ORDER})
        self.findings = [_Finding(rule) for rule in rules.findings]
        headings = "|".join(IGNORED_SECTIONS + rules.ignored_sections + OTHER_SECTIONS)
        self.heading = re.compile(rf"(?:^|(?<=[\s.]))({headings})\s*\Z", re.IGNORECASE)
        self.ignored = re.compile("|".join(IGNORED_SECTIONS + rules.ignored_sections), re.IGNORECASE)
        self.read_sentence = lru_cache(maxsize=cache_size)(self._read_sentence)
        content = json.dumps({"rules": rules.model_dump(mode="json"), "triggers": TRIGGERS, "v": ENGINE_VERSION})
        self.hash = hashlib.sha256(content.encode()).hexdigest()[:12]

    def _headings(self, text: str) -> Iterator[re.Match[str]]:
        """Section headings ("Befund:"), sought just before each colon."""
        colon = text.find(":")
        while colon >= 0:
            heading = self.heading.search(text, max(colon - HEADING_CHARS, 0), colon)
            if heading:
                yield heading
            colon = text.find(":", colon + 1)

    def read_sections(self, text: str) -> str:
        """The report without the sections that are not findings (clinical question, history)."""
        kept, position, skipping = [], 0, False
        for heading in self._headings(text):
            if not skipping:
                kept.append(text[position : heading.start()])
            skipping = bool(self.ignored.fullmatch(heading.group(1)))
            position = heading.start() if not skipping else heading.end() + 1
        if not skipping:
            kept.append(text[position:])
        return "\n".join(kept)

    @staticmethod
    def _status(text: str, triggers: list[Trigger], match: tuple[int, int], token: tuple[int, int]) -> Status:
        """Hypothetical beats negated beats uncertain beats positive; ``triggers`` are the clause's.

        A trigger before the mention (or inside it: "heart is not enlarged") scopes forward until
        a trigger of another kind starts: a negation ends an uncertainty, an uncertainty or a
        probable hedge ends a negation only in the next list item ("no effusion, possible
        atelectasis", "no effusion, likely atelectasis", but "no opacity to suggest pneumonia"); a
        probable hedge leaves the mention positive. One after the mention reaches back
        ``POST_WINDOW`` words, or into the word itself ("Frakturausschluss").
        """
        negated = uncertain = hypothetical = False
        scope, scope_end = "", 0
        for start, end, kind in triggers:
            if end <= match[1] and kind == "pre_hypothetical":
                hypothetical = True
            elif end <= match[1] and kind in FORWARD:
                if scope != "negation" or FORWARD[kind] == "negation" or LIST_BREAK.search(text[scope_end:start]):
                    scope = FORWARD[kind]
                scope_end = end
            elif start >= match[1] and kind in BACKWARD:
                if start < token[1] or len(text[token[1] : start].split()) <= POST_WINDOW:
                    negated |= BACKWARD[kind] == "negation"
                    uncertain |= BACKWARD[kind] == "uncertainty"
        negated |= scope == "negation"
        uncertain |= scope == "uncertainty"
        if hypothetical:
            return "hypothetical"
        return "negative" if negated else "uncertain" if uncertain else "positive"

    def _read_sentence(self, sentence: str) -> Reading:
        """The mentions in ``sentence`` and the findings it states absent; triggers only sought near mentions."""
        statements = [(f.rule.label, *m.span()) for f in self.findings if f.absent and (m := f.absent.search(sentence))]
        absent = frozenset(label for label, _, _ in statements)
        found = [(f, matches) for f in self.findings if (matches := list(f.mentions.finditer(sentence)))]
        if not found:
            return Reading((), absent, tuple(statements))
        triggers = [(m.start(), m.end(), (m.lastgroup or "")[2:]) for m in self.triggers.finditer(sentence)]
        historical = any(kind == "history" for _, _, kind in triggers)
        cuts = [0] + [end for _, end, kind in triggers if kind == "terminator"] + [len(sentence)]
        mentions = []
        for finding, matches in found:
            excluded = _spans(finding.unmentions, sentence)
            hits = finding.site_hits(sentence)
            for match in matches:
                span = match.span()
                if excluded and _overlaps(span, excluded):
                    continue
                token = _word_span(sentence, *span)
                i = bisect.bisect_right(cuts, span[0]) - 1
                clause = (cuts[i], cuts[i + 1])
                local = [t for t in triggers if clause[0] <= t[0] < clause[1] and t[2] != "terminator"]
                mentions.append(
                    Mention(
                        label=finding.rule.label,
                        text=sentence[token[0] : token[1]],
                        status=self._status(sentence, local, span, token),
                        relevant=finding.relevant(sentence, hits, token, clause),
                        historical=historical,
                        span=token,
                    )
                )
        return Reading(tuple(mentions), absent, tuple(statements))

    def _readings(self, report: str) -> list[Reading]:
        return [self.read_sentence(sentence) for sentence in sentences(self.read_sections(report))]

    def mentions(self, report: str) -> list[Mention]:
        """Every mention of every finding in ``report``, classified."""
        return [m for reading in self._readings(report) for m in reading.mentions]

    def states(self, report: str) -> dict[str, State]:
        """Per finding: "positive", "uncertain", "negative" or None (not mentioned); CheXpert's 1/-1/0/blank."""
        return self._states(self._readings(report), report)

    def _states(self, readings: list[Reading], report: str) -> dict[str, State]:
        seen: dict[str, set[tuple[str, bool]]] = {f.rule.label: set() for f in self.findings}
        for reading in readings:
            for label in reading.absent:
                seen[label].add(("negative", False))
            for m in reading.mentions:
                if m.relevant and m.status != "hypothetical":
                    seen[m.label].add((m.status, m.historical))
        answer: dict[str, State] = {}
        for finding in self.findings:
            pairs = seen[finding.rule.label]
            resolved = any(h for _, h in pairs) and finding.resolved is not None and finding.resolved.search(report)
            statuses = {"negative" if historical and resolved else status for status, historical in pairs}
            answer[finding.rule.label] = next((s for s in PRECEDENCE if s in statuses), None)
        return answer

    def evidence(self, report: str) -> tuple[dict[str, State], dict[str, list[tuple[int, int]]]]:
        """The states of :meth:`states` and per finding the spans of ``report`` that decided them.

        A state's spans are those of its relevant mentions with that status (a negative one also its
        absence statements); a mention of a resolved, treated finding counts for negative.
        """
        parts = sentences(self.read_sections(report))
        readings = [self.read_sentence(sentence) for sentence in parts]
        states = self._states(readings, report)
        historical = {m.label for reading in readings for m in reading.mentions if m.historical}
        resolved = {
            f.rule.label
            for f in self.findings
            if f.rule.label in historical and f.resolved is not None and f.resolved.search(report) is not None
        }
        spans: dict[str, list[tuple[int, int]]] = {f.rule.label: [] for f in self.findings}
        cursor = 0
        for sentence, reading in zip(parts, readings, strict=True):
            decided = [(m.label, *m.span) for m in reading.mentions if _decides(m, states[m.label], resolved)]
            decided += [(label, a, b) for label, a, b in reading.absent_spans if states[label] == "negative"]
            words = sentence.split()
            start = report.find(words[0], cursor) if words else -1
            if start < 0:
                continue
            cursor = start + len(sentence.strip())  # the sentence's text in the report is at least as long
            offsets = _offsets(report, sentence, start) if decided else None
            for label, a, b in decided if offsets else ():
                where = (offsets(a), offsets(b - 1) + 1)
                if where not in spans[label]:
                    spans[label].append(where)
        return states, spans

    def decide(self, report: str) -> dict[str, int]:
        """The answer for ``report``: one 0/1 value per finding rule (uncertain: the rule's ``uncertain``)."""
        states = self.states(report)
        return {f.rule.label: _value(states[f.rule.label], f.rule.uncertain) for f in self.findings}


def _decides(mention: Mention, state: State, resolved: set[str]) -> bool:
    """Whether ``mention`` is one of those that gave its finding ``state``."""
    if not mention.relevant or mention.status == "hypothetical" or state is None:
        return False
    status = "negative" if mention.historical and mention.label in resolved else mention.status
    return status == state


def _offsets(report: str, sentence: str, start: int) -> Callable[[int], int] | None:
    """Maps a character offset in ``sentence``, whose first word is at ``start`` in ``report``, to ``report``.

    The sentence splitter joins pieces with one space where the report has a run of whitespace, so
    the words (runs of non-space) are the same in both; None when they are not.
    """
    lead = len(sentence) - len(sentence.lstrip())
    if report.startswith(sentence, start - lead):  # the common case: the sentence as it is in the report
        return lambda k: start - lead + k
    ours = [m.span() for m in NONSPACE.finditer(sentence)]
    theirs = []
    for word, found in zip(ours, NONSPACE.finditer(report, start), strict=False):
        if found.group() != sentence[word[0] : word[1]]:
            return None
        theirs.append(found.start())
    if len(theirs) < len(ours):
        return None
    starts = [a for a, _ in ours]

    def offset(k: int) -> int:
        i = max(bisect.bisect_right(starts, k) - 1, 0)
        return theirs[i] + k - starts[i]

    return offset


class RulesLabeler(Labeler):
    name = "rules"
    description = "Negation- and uncertainty-aware rules (German, English) from the task's patterns; no model."
    uses_prompt = False
    batch_size = 256

    class Options(Labeler.Options):
        model: None = None

    def __init__(self, task, prompt, options) -> None:
        super().__init__(task, prompt, options)
        if task.rules is None:
            raise R2LError(f"task {task.name!r} has no rule patterns; choose an LLM backend with --backend")
        self.engine = RuleEngine(task.rules)

    @property
    def model_id(self) -> str:
        return f"rules-{self.engine.hash}"

    def label(self, requests: list[LabelRequest]) -> list[str | RowFailure]:
        answers: list[str | RowFailure] = []
        for request in requests:
            states, spans = self.engine.evidence(request.report)
            evidence = {
                label: [span(request.report[a:b], a, b, EXACT) for a, b in found] for label, found in spans.items()
            }
            confidence = {label: CERTAINTY[state] for label, state in states.items()}
            answers.append(Answer(json.dumps(self._answer(states)), confidence, evidence))
        return answers

    def answer(self, report: str) -> dict[str, int | str]:
        """The task's answer: a state for each :data:`Finding` field, else the rule's 0/1 decision."""
        return self._answer(self.engine.states(report))

    def _answer(self, states: dict[str, State]) -> dict[str, int | str]:
        if not self.task.state_labels:
            return {rule.label: _value(states[rule.label], rule.uncertain) for rule in self.task.rules.findings}
        return {
            label: (state or "not_mentioned") if label in self.task.state_labels else _value(state, rule.uncertain)
            for (label, state), rule in zip(states.items(), self.task.rules.findings, strict=True)
        }


@hookimpl
def register_labelers(register) -> None:
    register(RulesLabeler)
