"""A SYNTHETIC impression study: invented chest reports split into their input and their Impression.

The reports are the chest plugin's synthetic ones (findings, indication, history, comparison);
``text`` is a report without its Impression, ``gold_impression`` the Impression it had.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from report2label.core.atomic import atomic_path
from report2label.plugins.chest_xray.example import _study

from .sections import split_report

NOTICE = """# Synthetic example data

Every report here is invented (report2label's synthetic chest reports); no patient data.
`reports.csv`: `text` is a report without its Impression (the impression task's input),
`gold_impression` the Impression written with it, `source` = synthetic.

    r2l label impression reports.csv -o labels --backend transformers --model MODEL_DIR
    r2l eval-labels labels/labels.csv reports.csv
"""


def write_example(directory: str | Path, seed: int = 0, n_reports: int = 200, image_size: int = 256) -> dict[str, int]:
    """Write ``reports.csv`` (report_id, text, gold_impression, source) and a README; no images."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_reports):
        report, _, _ = _study(rng, None)
        text, impression = split_report(report)
        rows.append({"report_id": f"I{i + 1:05d}", "text": text, "gold_impression": impression, "source": "synthetic"})
    with atomic_path(directory / "reports.csv") as tmp:
        pd.DataFrame(rows).to_csv(tmp, index=False)
    (directory / "README.md").write_text(NOTICE)
    return {"reports": len(rows)}
