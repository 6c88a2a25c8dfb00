"""The review loop: a self-contained HTML page of labelled reports, Label Studio files, and gold back.

:func:`review` reads a labelling folder's ``labels.csv`` with the reports it was made from and
writes, into that folder (or another): ``review.html`` — one card per report, its evidence
highlighted in the text (``<mark>`` at the stored character offsets), labels with their
confidence, filters for failed, low-confidence and disagreeing rows (with gold or a second run),
keyboard navigation; inline CSS and JavaScript, nothing fetched — ``label_studio_tasks.json``
(Label Studio's import format: a task per report with the text in ``data`` and the labels as
``predictions`` — a ``choices`` result per label, a ``labels`` span per piece of evidence — whose
``score`` is the lowest confidence, lowest first) and ``label_studio_config.xml`` (the labelling
interface those results belong to: one single-choice ``Choices`` control per label, named as the
label). :func:`import_export` turns a Label Studio JSON export (``annotations[].result[]``) into
a gold table that ``r2l eval-labels`` and ``r2l compare`` read. Label Studio counts text offsets
in UTF-16 code units, Python in code points: spans are converted (they differ only past U+FFFF).
"""

from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, get_args, get_origin
from xml.sax.saxutils import quoteattr

import pandas as pd

from .. import registry
from ..atomic import atomic_path
from ..errors import R2LError
from ..reports import read_reports, read_table, require_columns
from ..task import STATES, TaskSpec, training_value
from .gold import read_gold

PAGE, TASKS, CONFIG = "review.html", "label_studio_tasks.json", "label_studio_config.xml"
TEXT, EVIDENCE = "text", "evidence"
"""The names of Label Studio's text object and evidence control in the config."""


@dataclass(frozen=True)
class ReviewSummary:
    page: Path
    tasks: Path
    config: Path
    cards: int
    failed: int
    low: int
    disagreeing: int
    changed: int
    """Reports whose text differs from the one labelled (their evidence is not drawn)."""


@dataclass
class Card:
    report_id: str
    text: str
    status: str
    reason: str
    values: dict[str, Any]
    confidence: dict[str, float]
    evidence: dict[str, list[dict[str, Any]]]
    changed: bool
    disagree: dict[str, str]
    """Per label that disagrees: what it disagrees with (``gold 0``, ``other run 1``)."""

    @property
    def score(self) -> float | None:
        return min(self.confidence.values()) if self.confidence else None


def choices(task: TaskSpec, label: str) -> tuple[str, ...]:
    """The values a label can take, as text, or () for an open-ended one (free text, numbers)."""
    fields, computed = task.answer_model.model_fields, task.answer_model.model_computed_fields
    annotation = fields[label].annotation if label in fields else computed[label].return_type
    if get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    values = get_args(annotation)
    return tuple(str(v) for v in values) if values and all(isinstance(v, str | int) for v in values) else ()


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) and value else None


def _cards(task: TaskSpec, labels: pd.DataFrame, reports: pd.DataFrame, path: Path) -> list[Card]:
    texts = reports.set_index("report_id")
    cards = []
    for row in labels.to_dict("records"):
        rid = str(row["report_id"])
        if rid not in texts.index:
            raise R2LError(f"{path}: no report {rid!r}, which labels.csv holds; give the reports it was labelled from")
        text = texts.at[rid, "text"]
        changed = texts.at[rid, "text_hash"] != row.get("text_hash")
        confidence = {
            name: float(row[f"{name}_confidence"])
            for name in task.labels
            if not pd.isna(row.get(f"{name}_confidence", float("nan")))
        }
        evidence = {name: _json(row.get(f"{name}_evidence")) or [] for name in task.labels}
        values = {name: _cell(row.get(name)) for name in task.labels}
        cards.append(
            Card(rid, text, row["status"], _cell(row.get("reason")), values, confidence, evidence, changed, {})
        )
    return cards


def _differ(ours: str, theirs: str) -> bool:
    """Whether two label values disagree; a state against 0/1 is compared as 0/1 (uncertain counts as 1)."""
    if theirs == "" or ours == theirs:
        return False
    if {ours, theirs} & {"0", "1"} and {ours, theirs} & set(STATES):
        ours, theirs = (str(int(training_value(v, "ones"))) if v in STATES else v for v in (ours, theirs))
    return ours != theirs


def _disagree(cards: list[Card], task: TaskSpec, other: dict[str, dict[str, str]], what: str) -> None:
    for card in cards:
        theirs = other.get(card.report_id)
        if theirs is None or card.status != "labelled":
            continue
        for name in task.labels:
            if name in theirs and _differ(card.values[name], theirs[name]):
                card.disagree[name] = f"{what} {theirs[name]}"


def _gold_values(path: Path, task: TaskSpec, id_col: str, gold_format: str) -> dict[str, dict[str, str]]:
    gold = read_gold(path, task, id_col=id_col, gold_col=None, gold_format=gold_format)
    return {
        rid: {name: _cell(values.iloc[i]) for name, values in gold.values.items()} for i, rid in enumerate(gold.ids)
    }


def _run_values(path: Path, task: TaskSpec) -> dict[str, dict[str, str]]:
    table = read_table(path, ("report_id",))
    require_columns(table, path, {"report_id": "give a labels.csv of r2l label", "status": "give a labels.csv"})
    labelled = table[table["status"] == "labelled"]
    return {
        str(r["report_id"]): {name: _cell(r.get(name)) for name in task.labels} for r in labelled.to_dict("records")
    }


def _marked(text: str, evidence: dict[str, list[dict[str, Any]]]) -> str:
    """The report as HTML: escaped, each stretch covered by evidence in a ``<mark>`` naming its labels and offsets."""
    cover: dict[int, set[str]] = {}
    bounds = {0, len(text)}
    for name, spans in evidence.items():
        for span in spans:
            start, end = span.get("start"), span.get("end")
            if isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= len(text):
                bounds |= {start, end}
                for i in range(start, end):
                    cover.setdefault(i, set()).add(name)
    edges = sorted(bounds)
    parts = []
    for start, end in zip(edges, edges[1:], strict=False):
        piece = html.escape(text[start:end])
        names = cover.get(start)
        if names:
            label_list = " ".join(sorted(names))
            parts.append(
                f'<mark data-labels="{html.escape(label_list)}" data-start="{start}" data-end="{end}" '
                f'title="{html.escape(label_list)}">{piece}</mark>'
            )
        else:
            parts.append(piece)
    return "".join(parts)


def _card_html(card: Card, low: float) -> str:
    rows = []
    for name, value in card.values.items():
        confidence = card.confidence.get(name)
        shown = f"{confidence:.2f}" if confidence is not None else "–"
        classes = " ".join(
            c
            for c, on in (("low", confidence is not None and confidence < low), ("disagree", name in card.disagree))
            if on
        )
        against = html.escape(card.disagree.get(name, ""))
        rows.append(
            f'<tr class="{classes}" data-label="{html.escape(name)}"><th>{html.escape(name)}</th>'
            f'<td class="value">{html.escape(value) or "–"}</td><td class="confidence">{shown}</td>'
            f'<td class="against">{against}</td></tr>'
        )
    flags = {
        "failed": card.status == "failed",
        "low": card.score is not None and card.score < low,
        "disagree": bool(card.disagree),
    }
    data = " ".join(f'data-{k}="{int(v)}"' for k, v in flags.items())
    reason = f'<p class="reason">{html.escape(card.reason)}</p>' if card.reason else ""
    changed = '<p class="reason">report text changed since labelling: evidence not shown</p>' if card.changed else ""
    text = html.escape(card.text) if card.changed else _marked(card.text, card.evidence)
    return (
        f'<article class="card {html.escape(card.status)}" {data} tabindex="-1">'
        f'<header><h2>{html.escape(card.report_id)}</h2><span class="status">{html.escape(card.status)}</span></header>'
        f'{reason}{changed}<table>{"".join(rows)}</table><pre class="report">{text}</pre></article>'
    )


STYLE = """
body{font:15px/1.45 system-ui,sans-serif;margin:0;background:#f4f4f2;color:#222}
nav{position:sticky;top:0;background:#fff;border-bottom:1px solid #ccc;padding:.6em 1em;z-index:1}
nav button{margin-right:.4em;padding:.25em .7em;border:1px solid #999;background:#fafafa;border-radius:4px}
nav button[aria-pressed=true]{background:#234;color:#fff}
main{max-width:60em;margin:1em auto;padding:0 1em}
.card{background:#fff;border:1px solid #ddd;border-left:5px solid #5a5;border-radius:4px;margin:.8em 0;padding:.6em 1em}
.card.failed{border-left-color:#c33}.card[data-low="1"]{border-left-color:#d90}.card.current{outline:3px solid #36c}
.card header{display:flex;gap:1em;align-items:baseline}.card h2{font-size:1em;margin:0}.status{color:#666}
table{border-collapse:collapse;margin:.4em 0}th,td{padding:.1em .8em .1em 0;text-align:left;font-weight:normal}
th{color:#555}tr.low .confidence{color:#b60;font-weight:bold}tr.disagree .against{color:#c33;font-weight:bold}
pre.report{white-space:pre-wrap;font:inherit;background:#fafaf8;padding:.5em;margin:.3em 0}
mark{background:#fe8;border-bottom:2px solid #c90}.reason{color:#c33;margin:.2em 0}
"""

SCRIPT = """
const cards=[...document.querySelectorAll('.card')];let current=-1;
function show(filter){
for(const b of document.querySelectorAll('nav button'))b.setAttribute('aria-pressed',b.dataset.filter===filter);
for(const c of cards){c.hidden=filter!=='all'&&c.dataset[filter]!=='1';c.classList.remove('current');}
document.getElementById('shown').textContent=cards.filter(c=>!c.hidden).length;current=-1;move(1);}
function move(step){const visible=cards.filter(c=>!c.hidden);if(!visible.length)return;
let i=visible.indexOf(cards[current]);i=i<0?(step>0?0:visible.length-1):Math.min(Math.max(i+step,0),visible.length-1);
if(cards[current])cards[current].classList.remove('current');current=cards.indexOf(visible[i]);
visible[i].classList.add('current');visible[i].focus({preventScroll:true});visible[i].scrollIntoView({block:'nearest'});}
document.addEventListener('keydown',e=>{if(e.target.tagName==='INPUT')return;
const keys={j:1,ArrowDown:1,k:-1,ArrowUp:-1};if(e.key in keys){e.preventDefault();move(keys[e.key]);}
const filters={'1':'all','2':'failed','3':'low','4':'disagree'};if(e.key in filters)show(filters[e.key]);});
for(const b of document.querySelectorAll('nav button'))b.addEventListener('click',()=>show(b.dataset.filter));
show('all');
"""


def _page(task: TaskSpec, cards: list[Card], low: float, source: str, compared: str) -> str:
    counts = {
        "all": len(cards),
        "failed": sum(c.status == "failed" for c in cards),
        "low": sum(c.score is not None and c.score < low for c in cards),
        "disagree": sum(bool(c.disagree) for c in cards),
    }
    names = {"all": "all", "failed": "failed", "low": f"confidence &lt; {low:g}", "disagree": "disagreeing"}
    buttons = "".join(
        f'<button data-filter="{key}" title="key {i}">{names[key]} ({n})</button>'
        for i, (key, n) in enumerate(counts.items(), 1)
    )
    against = f" · disagreement with {html.escape(compared)}" if compared else " · no gold or second run given"
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>review: {html.escape(task.name)}</title><style>{STYLE}</style></head><body>"
        f'<nav>{buttons} <span><span id="shown">{len(cards)}</span> shown · keys: j/k or ↓/↑ move, 1–4 filter'
        f" · {html.escape(source)}{against}</span></nav>"
        f"<main>{''.join(_card_html(card, low) for card in cards)}</main><script>{SCRIPT}</script></body></html>"
    )


def _utf16(text: str, offset: int) -> int:
    return len(text[:offset].encode("utf-16-le")) // 2


def label_studio_config(task: TaskSpec) -> str:
    """The labelling interface: the report, one single-choice control per label, evidence spans."""
    controls = []
    for name in task.labels:
        values = choices(task, name)
        if values:
            options = "".join(f"<Choice value={quoteattr(v)}/>" for v in values)
            controls.append(
                f"  <Header value={quoteattr(name)}/>\n  <Choices name={quoteattr(name)} toName={quoteattr(TEXT)} "
                f'choice="single" showInline="true">{options}</Choices>'
            )
    spans = "".join(f"<Label value={quoteattr(name)}/>" for name in task.labels)
    return (
        f"<View>\n  <Labels name={quoteattr(EVIDENCE)} toName={quoteattr(TEXT)}>{spans}</Labels>\n"
        f'  <Text name={quoteattr(TEXT)} value="${TEXT}"/>\n' + "\n".join(controls) + "\n</View>\n"
    )


def label_studio_tasks(task: TaskSpec, cards: list[Card], model_version: str) -> list[dict[str, Any]]:
    """Label Studio tasks with the labels as predictions, lowest confidence first (failed rows before all)."""
    tasks = []
    for card in sorted(cards, key=lambda c: (c.status == "labelled", c.score if c.score is not None else 1.0)):
        item: dict[str, Any] = {"data": {TEXT: card.text, "report_id": card.report_id, "task": task.name}}
        if card.status == "labelled":
            result = [
                {
                    "id": f"{name}",
                    "from_name": name,
                    "to_name": TEXT,
                    "type": "choices",
                    "value": {"choices": [card.values[name]]},
                    **({"score": card.confidence[name]} if name in card.confidence else {}),
                }
                for name in task.labels
                if choices(task, name) and card.values[name] in choices(task, name)
            ]
            if not card.changed:
                result += [
                    {
                        "id": f"evidence-{name}-{n}",
                        "from_name": EVIDENCE,
                        "to_name": TEXT,
                        "type": "labels",
                        "value": {
                            "start": _utf16(card.text, span["start"]),
                            "end": _utf16(card.text, span["end"]),
                            "text": card.text[span["start"] : span["end"]],
                            "labels": [name],
                        },
                    }
                    for name, spans in card.evidence.items()
                    for n, span in enumerate(spans)
                    if isinstance(span.get("start"), int)
                ]
            prediction: dict[str, Any] = {"model_version": model_version, "result": result}
            if card.score is not None:
                prediction["score"] = card.score
            item["predictions"] = [prediction]
        tasks.append(item)
    return tasks


def review(
    outdir: str | Path,
    reports: str | Path,
    *,
    id_col: str = "report_id",
    text_col: str = "text",
    gold: str | Path | None = None,
    gold_id_col: str = "report_id",
    gold_format: str = "auto",
    other: str | Path | None = None,
    low: float = 0.6,
    to: str | Path | None = None,
) -> ReviewSummary:
    """Write the review page and the Label Studio files for the labels in ``outdir`` (into ``to``, default ``outdir``).

    ``gold`` (a gold table) or ``other`` (a second run's labels.csv) mark the rows whose labels disagree;
    ``low`` is the confidence below which a label counts as low.
    """
    if not 0 < low <= 1:
        raise R2LError(f"low-confidence threshold {low}: expected a number in (0, 1]")
    outdir = Path(outdir)
    csv = outdir / "labels.csv" if outdir.is_dir() else outdir
    labels = read_table(csv, ("report_id", "text_hash"))
    require_columns(labels, csv, {"task": "give the output folder of r2l label", "status": "give a labels.csv"})
    if labels.empty:
        raise R2LError(f"{csv}: no labelled reports")
    task = registry.task(str(labels["task"].iloc[0]))
    cards = _cards(task, labels, read_reports(reports, id_col, text_col), Path(reports))
    compared = []
    if gold is not None:
        _disagree(cards, task, _gold_values(Path(gold), task, gold_id_col, gold_format), "gold")
        compared.append(f"gold {Path(gold).name}")
    if other is not None:
        _disagree(cards, task, _run_values(Path(other), task), "other run")
        compared.append(f"run {other}")
    target = Path(to) if to is not None else csv.parent
    target.mkdir(parents=True, exist_ok=True)
    first = labels.iloc[0]
    version = " ".join(_cell(first.get(k)) for k in ("backend", "model", "prompt") if _cell(first.get(k)))
    paths = target / PAGE, target / TASKS, target / CONFIG
    contents = (
        _page(task, cards, low, str(csv), " and ".join(compared)),
        json.dumps(label_studio_tasks(task, cards, version), ensure_ascii=False, indent=1),
        label_studio_config(task),
    )
    for path, content in zip(paths, contents, strict=True):
        with atomic_path(path) as tmp:
            tmp.write_text(content, encoding="utf-8")
    return ReviewSummary(
        *paths,
        cards=len(cards),
        failed=sum(c.status == "failed" for c in cards),
        low=sum(c.score is not None and c.score < low for c in cards),
        disagreeing=sum(bool(c.disagree) for c in cards),
        changed=sum(c.changed for c in cards),
    )


@dataclass(frozen=True)
class ImportSummary:
    gold: Path
    task: str
    reports: int
    skipped: int
    """Exported tasks without a finished annotation."""


def import_export(export: str | Path, output: str | Path, task: str | None = None) -> ImportSummary:
    """A Label Studio JSON export → a gold table: ``report_id`` and ``gold_<label>`` per label.

    Each task's last annotation that was not cancelled counts; its ``choices`` results name the
    label (``from_name``) and the value. A missing choice is blank for a four-state label (not
    mentioned) and an error otherwise. The task is named by ``data.task`` (as written by
    :func:`review`) unless given.
    """
    export = Path(export)
    try:
        items = json.loads(export.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise R2LError(f"{export}: no such file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise R2LError(f"{export}: not a Label Studio JSON export ({exc})") from None
    if not isinstance(items, list):
        raise R2LError(f"{export}: not a Label Studio JSON export (expected a list of tasks)")
    names = {str(i.get("data", {}).get("task")) for i in items if isinstance(i, dict) and i.get("data", {}).get("task")}
    if task is None and len(names) != 1:
        raise R2LError(
            f"{export}: its tasks do not name one report2label task ({', '.join(sorted(names)) or 'none'}); give --task"
        )
    spec = registry.task(task or names.pop())
    rows, skipped = [], 0
    for number, item in enumerate(items, 1):
        where = f"{export}: task {number}"
        data = item.get("data") if isinstance(item, dict) else None
        if not isinstance(data, dict) or "report_id" not in data:
            raise R2LError(f"{where}: no data.report_id (export tasks made by r2l review)")
        where += f" (report {data['report_id']!r})"
        done = [a for a in item.get("annotations") or [] if not a.get("was_cancelled")]
        if not done:
            skipped += 1
            continue
        chosen = {
            r["from_name"]: (r.get("value") or {}).get("choices") or []
            for r in done[-1].get("result") or []
            if r.get("type") == "choices"
        }
        row = {"report_id": str(data["report_id"])}
        for name in spec.labels:
            values = choices(spec, name)
            if not values:
                continue
            picked = chosen.get(name) or []
            if len(picked) > 1 or (picked and picked[0] not in values):
                raise R2LError(f"{where}: label {name!r} is {picked}, expected one of {', '.join(values)}")
            if not picked and name not in spec.state_labels:
                raise R2LError(f"{where}: the annotation gives no choice for label {name!r}")
            row[f"gold_{name}"] = picked[0] if picked else ""
        rows.append(row)
    if not rows:
        raise R2LError(f"{export}: no task has a finished annotation")
    table = pd.DataFrame(rows)
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(output) as tmp:
        table.to_csv(tmp, index=False)
    return ImportSummary(output, spec.name, len(rows), skipped)
