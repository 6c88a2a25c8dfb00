"""The ``rules`` labeler: negation- and uncertainty-aware pattern matching, no model, no GPU.

In the spirit of NegEx and the CheXpert labeler: a report is cut into sections (the clinical
question is not read), sentences and clauses (at "jedoch", "but", ...); each mention of a finding
is classified as negated, uncertain or positive by the triggers around it, placed by the sites
near it, and marked historical in sentences about earlier treatment. Per finding: a positive
relevant mention gives 1, a suspected one gives the rule's ``uncertain`` value, a historical one
counts unless the report states that the finding has resolved. The task supplies the domain
words (:class:`~report2label.core.rulespec.RuleSet`); the German and English triggers are here.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Literal

from report2label.core.errors import R2LError
from report2label.core.hookspecs import hookimpl
from report2label.core.labelling import Labeler, LabelRequest, RowFailure
from report2label.core.rulespec import FindingRule, RuleSet

ENGINE_VERSION = "1"

TRIGGERS: dict[str, tuple[str, ...]] = {
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
    ),
    "post_negation": (
        r"ausgeschlossen\b",
        r"ausschluss\b",
        r"\bnicht (?:mehr )?(?:nachweisbar|abgrenzbar|abzugrenzen|erkennbar|sichtbar|darstellbar)\b",
        r"\bnicht (?:mehr )?(?:nachzuweisen|zu sehen)\b",
        r"\b(?:is |are )?(?:excluded|ruled out)\b",
        r"\bnot (?:seen|visible|identified|demonstrated|detected)\b",
        r"\bno longer (?:visible|seen|identifiable|evident)\b",
    ),
    "pre_uncertainty": (
        r"\bv\.\s?a\.",
        r"\bverdacht auf\b",
        r"\bverdächtig auf\b",
        r"\bfraglich\w*",
        r"\bmöglich\w*",
        r"\bdd\b",
        r"\bsuspected\b",
        r"\bsuspicio\w+ (?:of|for)\b",
        r"\bpossibl[ey]\b",
        r"\bprobabl[ey]\b",
        r"\bquestionable\b",
        r"\bequivocal\b",
        r"\bmay represent\b",
        r"\bcannot exclude\b",
    ),
    "post_uncertainty": (
        r"\bnicht (?:sicher |ganz |sicher ganz )?auszuschlie(?:ß|ss)en\b",
        r"\bnicht sicher ausgeschlossen\b",
        r"verdacht\b",
        r"\?",
        r"\bcannot be (?:excluded|ruled out)\b",
        r"\bnot (?:be )?excluded\b",
        r"\bis suspected\b",
        r"\bnicht sicher abgrenzbar\b",
    ),
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
        r"\bno (?:significant |secondary |further |interval )?(?:change|displacement|loosening)\b",
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
        r"\bbut\b",
        r"\bhowever\b",
        r"\balthough\b",
        r"\bwhereas\b",
        r"\bexcept\b",
        r";",
    ),
}
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
    r"findings",
    r"impression",
    r"conclusion",
    r"technique",
    r"comparison",
    r"examination",
)
ABBREVIATIONS = {
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
    "li.",
    "re.",
    "ap",
}
PRE_WINDOW, POST_WINDOW, SITE_AFTER, SITE_BEFORE = 6, 4, 8, 3

Status = Literal["positive", "uncertain", "negative"]


def _any(patterns: tuple[str, ...] | list[str]) -> re.Pattern[str] | None:
    return re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE) if patterns else None


def _spans(pattern: re.Pattern[str] | None, text: str) -> list[tuple[int, int]]:
    return [m.span() for m in pattern.finditer(text)] if pattern else []


def _overlaps(span: tuple[int, int], others: list[tuple[int, int]]) -> bool:
    return any(span[0] < b and a < span[1] for a, b in others)


def _words(text: str) -> int:
    return len(re.findall(r"\w+", text))


def _word_span(text: str, start: int, end: int) -> tuple[int, int]:
    """The span of the whole (hyphenated) word around text[start:end]."""
    before = re.search(r"[\w-]*$", text[:start])
    after = re.match(r"[\w-]*", text[end:])
    return start - len(before.group() if before else ""), end + len(after.group() if after else "")


def sentences(text: str) -> list[str]:
    """Split at sentence ends and line breaks, but not after abbreviations ("V.a."), initials or ordinals."""
    pieces = [p for p in re.split(r"(?<=[.!?])\s+|\n+", text) if p.strip()]
    merged: list[str] = []
    for piece in pieces:
        if merged:
            last = re.search(r"([\w.]+)\.$", merged[-1])
            word = last.group(1).lower() if last else ""
            if word and (
                word in ABBREVIATIONS or len(word) == 1 or word.isdigit() or word.rstrip(".") in ABBREVIATIONS
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


class _Finding:
    def __init__(self, rule: FindingRule) -> None:
        self.rule = rule
        self.mentions = _any(rule.mentions)
        self.unmentions = _any(rule.unmentions)
        self.sites = _any(rule.sites)
        self.other_sites = _any(rule.other_sites)
        self.resolved = _any(rule.resolved)

    def site(self, clause: str, token: tuple[int, int]) -> bool:
        """Whether the mention in the word ``clause[token]`` is at a relevant site.

        Evidence is sought in the word itself ("Kalkaneusfraktur"), then after it up to a comma
        ("Fraktur des Innenknöchels"), then just before it ("distale Fibulafraktur"); within a
        window the site nearest to the mention wins. No site named: the mention counts.
        """
        if self.sites is None and self.other_sites is None:
            return True
        after = " ".join(re.match(r"[^,]*", clause[token[1] :]).group().split()[:SITE_AFTER])
        before = " ".join(clause[: token[0]].split(",")[-1].split()[-SITE_BEFORE:])
        for window, nearest_last in ((clause[token[0] : token[1]], False), (after, False), (before, True)):
            hits = [(m.start(), True) for m in self.sites.finditer(window)] if self.sites else []
            hits += [(m.start(), False) for m in self.other_sites.finditer(window)] if self.other_sites else []
            if hits:
                return sorted(hits)[-1 if nearest_last else 0][1]
        return True


class RuleEngine:
    """Applies a task's :class:`RuleSet` with the built-in German and English triggers."""

    def __init__(self, rules: RuleSet) -> None:
        self.rules = rules
        merged = {kind: TRIGGERS[kind] + tuple(rules.triggers.get(kind, ())) for kind in TRIGGERS}
        self.triggers = {kind: _any(patterns) for kind, patterns in merged.items()}
        self.findings = [_Finding(rule) for rule in rules.findings]
        headings = "|".join(IGNORED_SECTIONS + rules.ignored_sections + OTHER_SECTIONS)
        self.heading = re.compile(rf"(?:^|(?<=[\s.]))({headings})\s*:", re.IGNORECASE)
        self.ignored = re.compile("|".join(IGNORED_SECTIONS + rules.ignored_sections), re.IGNORECASE)
        content = json.dumps({"rules": rules.model_dump(mode="json"), "triggers": TRIGGERS, "v": ENGINE_VERSION})
        self.hash = hashlib.sha256(content.encode()).hexdigest()[:12]

    def read_sections(self, text: str) -> str:
        """The report without the sections that are not findings (clinical question, history)."""
        kept, position, skipping = [], 0, False
        for heading in self.heading.finditer(text):
            if not skipping:
                kept.append(text[position : heading.start()])
            skipping = bool(self.ignored.fullmatch(heading.group(1)))
            position = heading.start() if not skipping else heading.end()
        if not skipping:
            kept.append(text[position:])
        return "\n".join(kept)

    def _status(
        self, clause: str, match: tuple[int, int], token: tuple[int, int], spans: dict[str, list[tuple[int, int]]]
    ) -> Status:
        """Negated beats uncertain beats positive.

        A trigger applies within a window of words before or after the mention's word; one inside
        the word itself applies too ("Frakturausschluss", "Frakturverdacht").
        """

        def gap(a: int, b: int) -> int:
            return _words(clause[a:b]) if a < b else 0

        def near(kind: str) -> bool:
            pre = any(b <= match[0] and gap(b, token[0]) <= PRE_WINDOW for _, b in spans[f"pre_{kind}"])
            post = any(a >= match[1] and gap(token[1], a) <= POST_WINDOW for a, _ in spans[f"post_{kind}"])
            return pre or post

        if near("negation"):
            return "negative"
        return "uncertain" if near("uncertainty") else "positive"

    def mentions(self, report: str) -> list[Mention]:
        """Every mention of every finding in ``report``, classified."""
        found: list[Mention] = []
        for sentence in sentences(self.read_sections(report)):
            historical = bool(self.triggers["history"].search(sentence))
            clauses = self.triggers["terminator"].split(sentence)
            for clause in clauses:
                pseudo = _spans(self.triggers["pseudo"], clause)
                spans = {
                    k: [s for s in _spans(self.triggers[k], clause) if not _overlaps(s, pseudo)]
                    for k in ("pre_uncertainty", "post_uncertainty", "pre_negation", "post_negation")
                }
                uncertain = spans["pre_uncertainty"] + spans["post_uncertainty"]
                for kind in ("pre_negation", "post_negation"):
                    spans[kind] = [s for s in spans[kind] if not _overlaps(s, uncertain)]
                for finding in self.findings:
                    excluded = _spans(finding.unmentions, clause)
                    for match in finding.mentions.finditer(clause):
                        if _overlaps(match.span(), excluded):
                            continue
                        token = _word_span(clause, *match.span())
                        found.append(
                            Mention(
                                label=finding.rule.label,
                                text=clause[token[0] : token[1]],
                                status=self._status(clause, match.span(), token, spans),
                                relevant=finding.site(clause, token),
                                historical=historical,
                            )
                        )
        return found

    def decide(self, report: str) -> dict[str, int]:
        """The answer for ``report``: one 0/1 value per finding rule."""
        mentions = self.mentions(report)
        answer = {}
        for finding in self.findings:
            rule = finding.rule
            relevant = [m for m in mentions if m.label == rule.label and m.relevant]
            resolved = bool(finding.resolved and finding.resolved.search(report))
            positive = any(m.status == "positive" and not (m.historical and resolved) for m in relevant)
            suspected = any(m.status == "uncertain" and not (m.historical and resolved) for m in relevant)
            answer[rule.label] = 1 if positive else (rule.uncertain if suspected else 0)
        return answer


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
        return [json.dumps(self.engine.decide(request.report)) for request in requests]


@hookimpl
def register_labelers(register) -> None:
    register(RulesLabeler)
