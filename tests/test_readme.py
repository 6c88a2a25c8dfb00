"""The README's opening commands are what CI runs, and the documented commands exist."""

import re
from pathlib import Path

from report2label.cli.main import cli

ROOT = Path(__file__).parent.parent


def readme_commands() -> list[str]:
    first_block = re.search(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), re.DOTALL)
    return first_block.group(1).strip().splitlines()


def test_ci_runs_the_readme_commands_in_order():
    install, test = readme_commands()
    ci = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line and not line.startswith("#")]
    assert ci[-2:] == [install, test]


def test_documented_commands_exist():
    readme = (ROOT / "README.md").read_text()
    for name in re.findall(r"^r2l ([a-z-]+)", readme, re.MULTILINE):
        assert name in cli.commands, name
