"""Options shared by the commands that compare labels with gold labels (eval-labels, compare)."""

import click

from report2label.core.labelling.gold import GOLD_FORMATS
from report2label.core.task import UNCERTAIN_POLICIES

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
