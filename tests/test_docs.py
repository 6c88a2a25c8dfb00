"""docs/plugins.md documents every hook and every public name, and its code runs.

As datasette does for its plugin hooks: a hook specification or a name added to
``report2label.core.__all__`` without documentation fails here.
"""

from __future__ import annotations

import importlib
import inspect
import json
import re
from pathlib import Path

import pytest

import report2label.core
from report2label.cli.main import cli
from report2label.core import LabelRequest, hookspecs

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "plugins.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def text() -> str:
    return DOC.read_text()


def prose() -> str:
    """The document without its fenced code blocks."""
    return FENCE.sub("", text())


def blocks(language: str) -> list[str]:
    return [body for lang, body in FENCE.findall(text()) if lang == language]


def section(heading: str) -> str:
    """The text under ``## heading`` up to the next ``## `` heading."""
    match = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", prose(), re.MULTILINE | re.DOTALL)
    assert match, f"docs/plugins.md has no section '## {heading}'"
    return match.group(1)


def table(markdown: str, number: int = 0) -> list[list[str]]:
    """The cells of the ``number``-th table in ``markdown``, header and rule rows left out."""
    tables = re.findall(r"((?:^\|.*\|\n)+)", markdown, re.MULTILINE)
    rows = [[cell.strip() for cell in line.strip().strip("|").split("|")] for line in tables[number].splitlines()]
    return rows[2:]


def code_names(cell: str) -> list[str]:
    """The identifiers written in backticks in a table cell (``f(x)`` gives ``f``)."""
    return [m for m in re.findall(r"`([A-Za-z_][\w.]*)(?:\(.*?\))?`", cell)]


def hook_names() -> list[str]:
    return sorted(
        name for name, f in inspect.getmembers(hookspecs, inspect.isfunction) if hasattr(f, "report2label_spec")
    )


def test_there_are_hooks():
    assert {"register_tasks", "register_labelers", "register_trainers", "register_examples"} <= set(hook_names())


@pytest.mark.parametrize("hook", hook_names())
def test_every_hook_has_a_heading_with_its_signature(hook):
    parameters = ", ".join(inspect.signature(getattr(hookspecs, hook)).parameters)
    assert re.search(rf"^### `{hook}\({parameters}\)`$", text(), re.MULTILINE), f"no heading for {hook}"


def test_every_documented_hook_exists():
    documented = re.findall(r"^### `(register_\w+)\(", text(), re.MULTILINE)
    assert sorted(documented) == hook_names()


def test_every_public_name_is_documented():
    """The table of ``report2label.core`` names is exactly ``__all__``: nothing missing, nothing extra."""
    documented = [code_names(row[0])[0] for row in table(section("The public API"), 0)]
    missing = sorted(set(report2label.core.__all__) - set(documented))
    assert not missing, f"report2label.core exports these, docs/plugins.md does not document them: {missing}"
    extra = sorted(set(documented) - set(report2label.core.__all__))
    assert not extra, f"docs/plugins.md documents these as report2label.core.__all__, which has not: {extra}"


def test_every_documented_module_has_its_names():
    rows = table(section("The public API"), 1)
    assert len(rows) >= 10
    for module_cell, names_cell in rows:
        (module_name,) = code_names(module_cell)
        module = importlib.import_module(module_name)
        for name in code_names(names_cell):
            assert hasattr(module, name), f"docs/plugins.md: {module_name} has no {name}"


def test_dotted_names_in_the_prose_resolve():
    for dotted in sorted(set(re.findall(r"`(report2label(?:\.\w+)+)", prose()))):
        parts = dotted.split(".")
        for cut in range(len(parts), 0, -1):
            try:
                target = importlib.import_module(".".join(parts[:cut]))
            except ModuleNotFoundError:
                continue
            for attribute in parts[cut:]:
                target = getattr(target, attribute)
            break


def test_files_named_in_the_docs_exist():
    for path in set(re.findall(r"`((?:plugins|core|cli|tests)/[\w/.]*)`", prose())):
        assert (ROOT / path).exists(), path


def test_documented_commands_exist():
    for block in blocks("bash"):
        for name in re.findall(r"^r2l ([a-z-]+)", block, re.MULTILINE):
            assert name in cli.commands, name


def run_blocks() -> dict:
    """Every Python block, compiled and run in order in one namespace."""
    namespace: dict = {"__name__": "docs_plugins"}
    for number, block in enumerate(blocks("python"), 1):
        # dont_inherit: this file's ``from __future__ import annotations`` must not reach the blocks.
        exec(compile(block, f"docs/plugins.md, python block {number}", "exec", dont_inherit=True), namespace)
    return namespace


def test_the_python_blocks_run():
    """Run in order, the blocks build the shortened chest task, a labeler and a test that passes."""
    assert len(blocks("python")) >= 6
    namespace = run_blocks()
    task = namespace["TASK"]
    assert task.labels == ("cardiomegaly", "pleural_effusion", "pneumothorax", "normal")
    assert task.state_labels == ("cardiomegaly", "pleural_effusion", "pneumothorax")
    raw = '{"cardiomegaly": "uncertain", "pleural_effusion": "negative", "pneumothorax": "negative"}'
    assert task.validate_answer(raw).answer == {**json.loads(raw), "normal": 0}
    keyword = namespace["KeywordLabeler"]
    labeler = keyword(task, task.prompt(), keyword.Options())
    request = namespace["LabelRequest"]("r1", "Pneumothorax on the right.", ())
    assert labeler.label([request]) == ['{"cardiomegaly": 0, "pleural_effusion": 0, "pneumothorax": 1}']
    namespace["test_a_task_in_process"]()


def test_the_rules_in_the_docs_answer_states():
    from report2label.core import registry

    task = run_blocks()["TASK"]
    rules = registry.labeler("rules")
    labeler = rules(task, task.prompt(), rules.Options())
    [answer] = labeler.label([LabelRequest("r", "Heart size is normal. Possible small effusion.", ())])
    assert json.loads(answer) == {
        "cardiomegaly": "negative",
        "pleural_effusion": "uncertain",
        "pneumothorax": "not_mentioned",
    }
