"""Speed of the ``rules`` backend on one core: the engine alone and the whole ``label`` run.

Writes N synthetic German ankle reports (the example study's generator, no images), labels them
with the ``label`` Python API and the rules backend (store and CSV included, as ``r2l label``
does) and times the engine alone on the same reports; then times the chest task's 13 findings
through the engine on N synthetic English chest reports.
Synthetic reports repeat their sentences far more than real ones, which the engine's sentence
cache rewards, so each engine figure comes with the rate without that cache (every sentence
read anew); ``bench/rules_quality.py`` gives the rate on real chest reports.

    python bench/rules_speed.py              # 100,000 reports each
    python bench/rules_speed.py --n 20000
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from report2label.core import label
from report2label.core.rulespec import RuleSet
from report2label.plugins.ankle_fracture import TASK
from report2label.plugins.ankle_fracture.example import CASES, WEIGHTS, _report
from report2label.plugins.backends.rules import SENTENCE_CACHE, RuleEngine
from report2label.plugins.chest_xray.patterns import RULES as CHEST

CHEST_SENTENCES = (
    "The heart size and mediastinal contours are within normal limits.",
    "Heart size is mildly enlarged.",
    "Stable cardiomegaly.",
    "No focal consolidation, pleural effusion, or pneumothorax.",
    "There is no pneumothorax or large pleural effusion.",
    "Small left pleural effusion with adjacent basilar atelectasis.",
    "Streaky opacities in the lung bases may represent atelectasis or scarring.",
    "Patchy right lower lobe airspace disease, concerning for pneumonia.",
    "The lungs are clear.",
    "Calcified granuloma in the right upper lobe.",
    "Right PICC line with tip in the SVC.",
    "Left chest wall pacemaker with leads in the right atrium and ventricle.",
    "Old healed right rib fractures.",
    "Degenerative changes of the thoracic spine.",
    "Mild interstitial edema cannot be excluded.",
    "No acute cardiopulmonary abnormality.",
)


def ankle_reports(n: int, seed: int = 0) -> list[str]:
    """``n`` synthetic German ankle reports, drawn like the example study's."""
    rng = np.random.default_rng(seed)
    p = WEIGHTS / WEIGHTS.sum()
    return [_report(rng, CASES[rng.choice(len(CASES), p=p)]) for _ in range(n)]


def chest_reports(n: int, seed: int = 0) -> list[str]:
    """``n`` synthetic English chest reports of 4 to 7 sentences (FINDINGS and IMPRESSION)."""
    rng = np.random.default_rng(seed)
    reports = []
    for _ in range(n):
        picked = rng.choice(CHEST_SENTENCES, int(rng.integers(4, 8)), replace=False)
        reports.append("FINDINGS: " + " ".join(picked[:-1]) + " IMPRESSION: " + picked[-1])
    return reports


def engine_rate(rules: RuleSet, reports: list[str], cache_size: int = SENTENCE_CACHE) -> float:
    """Reports per CPU second of a new engine's ``decide``."""
    engine = RuleEngine(rules, cache_size)
    start = time.process_time()
    for report in reports:
        engine.decide(report)
    return len(reports) / (time.process_time() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="reports per measurement")
    args = parser.parse_args()
    start = time.perf_counter()
    RuleEngine(TASK.rules), RuleEngine(CHEST)
    print(f"compiling both rule sets: {(time.perf_counter() - start) * 1000:.0f} ms")
    reports = ankle_reports(args.n)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "reports.csv"
        pd.DataFrame({"report_id": [f"R{i}" for i in range(args.n)], "text": reports}).to_csv(path, index=False)
        start = time.perf_counter()
        summary = label(TASK, path, Path(tmp) / "labels", backend="rules", show_progress=False)
        whole = args.n / (time.perf_counter() - start)
    assert summary.labelled == args.n, summary
    alone = engine_rate(TASK.rules, reports)
    print(f"ankle, {args.n:,} reports: label() {whole:,.0f} reports/s (store and CSV included)")
    print(
        f"  engine {alone:,.0f} reports/s ({whole / alone:.0%} of the label() run), "
        f"without its sentence cache {engine_rate(TASK.rules, reports, 0):,.0f}"
    )
    chest = chest_reports(args.n)
    print(
        f"chest (13 findings), {args.n:,} reports: engine {engine_rate(CHEST, chest):,.0f} reports/s, "
        f"without its sentence cache {engine_rate(CHEST, chest, 0):,.0f}"
    )


if __name__ == "__main__":
    main()
