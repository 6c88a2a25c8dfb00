"""How ``r2l eval-labels`` prints a free-text task's scores."""

from rich.table import Table

from report2label.cli.options import console
from report2label.core.labelling.text_metrics import TextAgreement

NAMES = {"rouge1": "ROUGE-1", "rouge2": "ROUGE-2", "rougeL": "ROUGE-L", "bleu": "BLEU (0-100)"}


def print_text_agreement(report: TextAgreement) -> None:
    """ROUGE and BLEU with their intervals, the counts and the files written."""
    title = f"{report.task}: {report.label} vs {report.gold_column}; 95% CI: bootstrap over reports"
    table = Table("metric", "value", "95% CI", title=title)
    for name, est in report.metrics.items():
        table.add_row(NAMES[name], f"{est.value:.3f}", f"{est.low:.3f} – {est.high:.3f}")
    console.print(table)
    console.print(
        f"compared {report.compared} reports; {report.failed} failed and {report.missing} unlabelled excluded"
    )
    console.print(f"worst cases (lowest ROUGE-L first): {report.worst_cases}\nmetrics: {report.summary}")
