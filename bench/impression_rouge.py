"""Impression generation on real chest reports: ROUGE of simple baselines and of a backend, side by side.

Splits each report of ``../shared/data/iu_chest_dev.csv`` (beside the repository; see its
SOURCES.md; ``FINDINGS: … IMPRESSION: …``) into the impression task's input and its Impression,
keeps the reports with both, and scores against the radiologist's Impression: the first and the
last sentence of the Findings, the constant "No acute cardiopulmonary abnormality.", and, with
``--backend``, what that backend writes through ``r2l label impression`` (a failed row scores as
an empty text). ROUGE-1/2/L are mean F-measures, BLEU is corpus BLEU (0-100); 95% intervals from a
bootstrap over reports.

    python bench/impression_rouge.py
    python bench/impression_rouge.py --n 200 --backend transformers --model /models/Llama-3.1-8B-Instruct
"""

from __future__ import annotations

import argparse
import json
import re
import tempfile
import time
from pathlib import Path

import pandas as pd

from report2label.core import label
from report2label.core.labelling.text_metrics import text_metrics
from report2label.plugins.impression.sections import findings, split_report

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "iu_chest_dev.csv"
CONSTANT = "No acute cardiopulmonary abnormality."
SENTENCE = re.compile(r"(?<=[.!?])\s+")


def pairs(path: Path, n: int | None) -> pd.DataFrame:
    """``report_id``, ``text`` (the report without its Impression) and ``impression`` of reports with both."""
    table = pd.read_csv(path, dtype={"report_id": str})
    split = table["report"].map(split_report)
    rows = pd.DataFrame({"report_id": table["report_id"], "text": split.str[0], "impression": split.str[1]})
    rows = rows[rows["impression"].fillna("").str.len().gt(0) & rows["text"].map(findings).str.len().gt(0)]
    return rows.head(n) if n else rows


def sentences(text: str) -> list[str]:
    return [s for s in SENTENCE.split(findings(text)) if s.strip()] or [""]


def backend_impressions(rows: pd.DataFrame, args: argparse.Namespace) -> tuple[list[str], float]:
    """What the backend writes for each report (empty where it failed), and its reports per second."""
    folder = Path(args.outdir or tempfile.mkdtemp(prefix="impression-bench-"))
    reports = folder / "reports.csv"
    folder.mkdir(parents=True, exist_ok=True)
    rows[["report_id", "text"]].to_csv(reports, index=False)
    options = {key: _value(value) for key, _, value in (o.partition("=") for o in args.option)}
    if args.model:
        options["model"] = args.model
    start = time.perf_counter()
    label("impression", reports, folder / "labels", backend=args.backend, options=options, prompt=args.prompt)
    seconds = time.perf_counter() - start
    labels = pd.read_csv(folder / "labels" / "labels.csv", dtype={"report_id": str, "impression": str})
    written = labels.set_index("report_id")["impression"].fillna("")
    return [written.get(i, "") for i in rows["report_id"]], len(rows) / seconds


def _value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--n", type=int, help="Only the first N reports with findings and impression.")
    parser.add_argument("--backend", help="Also score this labelling backend (r2l label impression).")
    parser.add_argument("--model")
    parser.add_argument("-O", "--option", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--prompt", help="Prompt variant of the impression task.")
    parser.add_argument("--outdir", help="Where the backend's labels go (resumable; default: a new temp folder).")
    parser.add_argument("--bootstrap", type=int, default=1000)
    args = parser.parse_args()
    if not args.data.is_file():
        raise SystemExit(f"{args.data}: no such file (see ../shared/data/SOURCES.md)")
    rows = pairs(args.data, args.n)
    gold = rows["impression"].tolist()
    methods = {
        "first sentence of the findings": [sentences(t)[0] for t in rows["text"]],
        "last sentence of the findings": [sentences(t)[-1] for t in rows["text"]],
        f'constant "{CONSTANT}"': [CONSTANT] * len(rows),
    }
    speed = None
    if args.backend:
        name = f"{args.backend}" + (f" {Path(args.model).name}" if args.model else "")
        methods[name], speed = backend_impressions(rows, args)
    print(f"{len(rows)} reports with findings and impression from {args.data.name}; 95% CI: bootstrap over reports")
    print("| method | ROUGE-1 | ROUGE-2 | ROUGE-L (95% CI) | BLEU |\n| --- | ---: | ---: | ---: | ---: |")
    for method, written in methods.items():
        m, _ = text_metrics(written, gold, n_boot=args.bootstrap)
        rouge_l = f"{m['rougeL'].value:.3f} ({m['rougeL'].low:.3f}–{m['rougeL'].high:.3f})"
        print(f"| {method} | {m['rouge1'].value:.3f} | {m['rouge2'].value:.3f} | {rouge_l} | {m['bleu'].value:.1f} |")
    if speed is not None:
        print(f"{args.backend}: {speed:.2f} reports/s")


if __name__ == "__main__":
    main()
