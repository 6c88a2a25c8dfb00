"""What the commands share: the console, ``-O KEY=VALUE`` parsing and the gold-comparison options."""

import json
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from report2label.core.labelling.gold import GOLD_FORMATS
from report2label.core.reports import is_url
from report2label.core.task import UNCERTAIN_POLICIES

console = Console(width=None if sys.stdout.isatty() else 160)


def parse_options(pairs: tuple[str, ...]) -> dict[str, Any]:
    """``-O KEY=VALUE`` pairs as a dict; a value is JSON where it parses, else the text."""
    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="-O/--option")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    return options


class TableSource(click.ParamType):
    """A table file, or the URL of one in a store (``s3://bucket/reports.parquet``), kept as text."""

    name = "table"

    def convert(self, value, param, ctx) -> Path | str:
        return value if is_url(value) else Path(value)


gold_format_option = click.option(
    "--gold-format",
    type=click.Choice(GOLD_FORMATS),
    default="auto",
    show_default=True,
    help="GOLD values: states (1/0/-1/blank or words; blank is not mentioned), 0/1, or auto (states if any -1 "
    "or state word).",
)

uncertain_metrics_option = click.option(
    "--uncertain",
    type=click.Choice(UNCERTAIN_POLICIES),
    default="ones",
    show_default=True,
    help="An uncertain finding counts as 1, as 0, or not at all (ignore) in the 0/1 metrics.",
)


def estimate_cell(est) -> str:
    """A table cell for an :class:`~report2label.core.metrics.Estimate`: the value over its 95% interval,
    the value alone when it has no interval, a dash when undefined (no positives, nothing labelled)."""
    if est is None or est.value != est.value:
        return "–"
    if est.low != est.low:
        return f"{est.value:.3f}"
    return f"{est.value:.3f}\n{est.low:.3f}–{est.high:.3f}"
