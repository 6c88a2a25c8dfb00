"""Quality of the ``rules`` engine on real chest X-ray reports with human-coded labels.

Labels ``../shared/data/iu_chest_dev.csv`` (beside the repository; see its SOURCES.md) with the
chest task's rule words and prints per-finding precision, recall and F1, the micro-F1 over the
nine findings the file codes besides Normal, and the engine's reports per second on one core.
The file's gold is 0/1; the engine's four states become 0/1 through ``--uncertain`` as ``r2l
eval-labels`` does: ``zeros`` (default) because the file's coders, like RadReportX's labels, code
certain findings and mostly leave hedged ones ("may represent pneumonia") uncoded; the micro-F1
under the other policy is printed too. The file's ``Normal`` is its coders' "no abnormality of
any kind", not "none of the 13 findings", so it is shown apart and kept out of the micro-F1.

    python bench/rules_quality.py
    python bench/rules_quality.py --uncertain ones       # an uncertain finding counts as positive
    python bench/rules_quality.py --errors Atelectasis   # the misread reports of one finding
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

from report2label.plugins.backends.rules import RuleEngine
from report2label.plugins.chest_xray.patterns import RULES

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "iu_chest_dev.csv"
COLUMNS = {
    "Atelectasis": "atelectasis",
    "Cardiomegaly": "cardiomegaly",
    "Consolidation": "consolidation",
    "Edema": "edema",
    "Pleural Effusion": "pleural_effusion",
    "Pneumothorax": "pneumothorax",
    "Pneumonia": "pneumonia",
    "Fracture": "fracture",
    "Support Devices": "support_devices",
}
FOUND = {"zeros": ("positive",), "ones": ("positive", "uncertain")}  # the states counted 1 per policy


def scores(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    """Precision, recall and F1 (0 where undefined)."""
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    return precision, recall, 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def row(name: str, gold: list[bool], predicted: list[bool]) -> tuple[str, tuple[int, int, int]]:
    """One markdown table row and its (tp, fp, fn)."""
    tp = sum(g and p for g, p in zip(gold, predicted, strict=True))
    fp = sum(p and not g for g, p in zip(gold, predicted, strict=True))
    fn = sum(g and not p for g, p in zip(gold, predicted, strict=True))
    precision, recall, f1 = scores(tp, fp, fn)
    return f"| {name} | {sum(gold)} | {tp} | {fp} | {fn} | {precision:.3f} | {recall:.3f} | {f1:.3f} |", (tp, fp, fn)


def micro(rows: list[dict], states: list[dict], found: tuple[str, ...]) -> list[int]:
    """(tp, fp, fn) summed over the nine findings, ``found`` states counted 1."""
    total = [0, 0, 0]
    for column, field in COLUMNS.items():
        counts = row(column, [r[column] == "1" for r in rows], [s[field] in found for s in states])[1]
        total = [a + b for a, b in zip(total, counts, strict=True)]
    return total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--uncertain", choices=sorted(FOUND), default="zeros", help="an uncertain finding counts as")
    parser.add_argument("--errors", metavar="FINDING", help="print the reports whose FINDING was misread")
    args = parser.parse_args()
    if not args.data.exists():
        print(f"{args.data} not found: the shared chest reports are not beside this checkout; nothing measured.")
        return 0
    with args.data.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    engine = RuleEngine(RULES)
    start = time.process_time()
    states = [engine.states(r["report"]) for r in rows]
    seconds = time.process_time() - start
    print(f"{len(rows)} reports, {len(rows) / seconds:.0f} reports/s on one core (CPU time)\n")
    found, other = FOUND[args.uncertain], next(policy for policy in FOUND if policy != args.uncertain)
    print(f"uncertain findings count as {'1' if args.uncertain == 'ones' else '0'} (--uncertain {args.uncertain})\n")
    print("| finding | gold | TP | FP | FN | precision | recall | F1 |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for column, field in COLUMNS.items():
        print(row(column, [r[column] == "1" for r in rows], [s[field] in found for s in states])[0])
    for policy in (args.uncertain, other):
        total = micro(rows, states, FOUND[policy])
        precision, recall, f1 = scores(*total)
        name = "**micro (9 findings)**" if policy == args.uncertain else f"micro, --uncertain {policy}"
        f1_cell = f"**{f1:.3f}**" if policy == args.uncertain else f"{f1:.3f}"
        counts = " | ".join(str(c) for c in total)
        print(f"| {name} | {total[0] + total[2]} | {counts} | {precision:.3f} | {recall:.3f} | {f1_cell} |")
    normal = [not any(v in FOUND["ones"] for v in s.values()) for s in states]
    print(row("Normal (coders' normal; not in micro)", [r["Normal"] == "1" for r in rows], normal)[0])
    if args.errors:
        field = COLUMNS[args.errors]
        for r, s in zip(rows, states, strict=True):
            if (r[args.errors] == "1") != (s[field] in found):
                print(f"\n[{r[args.errors]} vs {s[field]}] {r['report_id']}: {r['report']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
