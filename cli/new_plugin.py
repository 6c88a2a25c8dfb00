"""``r2l new-plugin``: write a pip-installable plugin package with a task of its own.

The package holds a task (answer model, one prompt variant, rule words, an image-model recipe),
a synthetic example writer, the ``report2label`` entry point and a pytest test; installed with
``pip install -e DIR``, its task is listed by ``r2l tasks``. Nothing existing is ever
overwritten or deleted: a non-empty folder needs ``--force``, and even then no file is replaced.
"""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from string import Template

import click
from pydantic import BaseModel

from report2label.core.errors import R2LError

NAME = re.compile(r"[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*")
LABEL = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*")
MAX_NAME = 60
LANGUAGES = ("en", "de")


def check_name(name: str) -> str:
    """``name`` if it is a usable task name, else an :class:`R2LError` saying what is wrong with it."""
    if not name:
        raise R2LError("the plugin name is empty")
    if len(name) > MAX_NAME:
        raise R2LError(f"plugin name {name!r} is longer than {MAX_NAME} characters")
    if name != name.lower():
        raise R2LError(f"plugin name {name!r} has upper-case letters; use {name.lower()!r}")
    bad = sorted({c for c in name if not (c.isascii() and (c.isalnum() or c in "-_"))})
    if bad:
        shown = ", ".join(repr(c) for c in bad)
        raise R2LError(f"plugin name {name!r} has {shown}; use lower-case letters, digits and hyphens")
    if not name[0].isalpha():
        raise R2LError(f"plugin name {name!r} must start with a letter")
    if not NAME.fullmatch(name):
        raise R2LError(f"plugin name {name!r} must not end with, or repeat, '-' or '_'")
    return name


def _label_problem(label: str) -> str | None:
    if not LABEL.fullmatch(label):
        return "use lower-case letters, digits and '_', starting with a letter (e.g. effusion)"
    if keyword.iskeyword(label):
        return "it is a Python keyword"
    if label.startswith("model_") or hasattr(BaseModel, label):
        return "pydantic models reserve it"
    return None


def check_label(label: str) -> str:
    """``label`` if it can be an answer field (a Python identifier in lower case), else an error."""
    problem = _label_problem(label)
    if problem:
        raise R2LError(f"label {label!r} cannot be an answer field: {problem}")
    return label


def default_label(name: str) -> str:
    """The label a task name suggests: its last word (``knee-effusion`` → ``effusion``), else ``finding``."""
    last = re.split(r"[-_]", name)[-1]
    return "finding" if _label_problem(last) else last


@dataclass(frozen=True)
class Names:
    """Every name the generated package uses, derived from the task name."""

    task: str
    label: str
    language: str

    @property
    def module(self) -> str:
        return "r2l_" + self.task.replace("-", "_")

    @property
    def dist(self) -> str:
        return "r2l-" + self.task.replace("_", "-")

    @property
    def entry_point(self) -> str:
        return self.task.replace("-", "_")

    @property
    def words(self) -> str:
        return self.label.replace("_", " ")


# ---------------------------------------------------------------------------------------------
# Templates (string.Template: ${name} is substituted, $$ is a dollar sign).

PYPROJECT = """\
[build-system]
requires = ["setuptools>=64"]
build-backend = "setuptools.build_meta"

[project]
name = "${dist}"
version = "0.1.0"
description = "report2label plugin: the ${task} task."
readme = "README.md"
requires-python = ">=3.11"
dependencies = ["report2label>=${r2l_version}"]

[project.optional-dependencies]
test = ["pytest"]

# report2label loads every module named in this entry-point group and calls its @hookimpl functions.
[project.entry-points.report2label]
${entry_point} = "${module}"

[tool.setuptools.packages.find]
where = ["src"]

[tool.pytest.ini_options]
testpaths = ["tests"]
"""

README = """\
# ${dist}

A [report2label](https://pypi.org/project/report2label/) plugin with one task, `${task}`:
the answer model, a prompt variant, rule words for the `rules` backend and an image-model recipe
are in `src/${module}/task.py`; `src/${module}/example.py` writes a SYNTHETIC example study.

```bash
pip install -e .                  # registers the plugin through its report2label entry point
r2l tasks                         # lists ${task}
pytest                            # the plugin's own tests
r2l example ${task} demo          # a synthetic study to try the flow on
r2l label ${task} demo/reports.csv -o demo/labels --backend rules
r2l eval-labels demo/labels/labels.csv demo/reports.csv
```

Change the task's `version` whenever its prompts, rules or answer model change: stored labels
record it.
"""

INIT = '''\
"""report2label plugin: the ${task} task.

report2label finds this module through the ``report2label`` entry point in pyproject.toml and
calls its ``@hookimpl`` functions, each with a ``register`` callable.
"""

from report2label.core import hookimpl

from .example import write_example
from .task import TASK

__all__ = ["TASK", "register_examples", "register_tasks", "write_example"]


@hookimpl
def register_tasks(register) -> None:
    register(TASK)


@hookimpl
def register_examples(register) -> None:
    register(TASK.name, write_example)
'''

TASK = '''\
"""The ${task} task: its answer model, prompt, rule words and image-model recipe.

Edit the description, the prompt's instructions and the rule words for your reports; raise
``version`` whenever the prompts, rules or answer model change (stored labels record it).
"""

from pydantic import BaseModel, ConfigDict, Field
from report2label.core import (
    Binary,
    FindingRule,
    ImageModelSpec,
    PromptVariant,
    RuleSet,
    TaskSpec,
)


class Answer(BaseModel):
    """One report's answer: every field is a label (computed fields too).

    ``Binary`` is 0 or 1. For four states (positive, negative, uncertain, not mentioned; CheXpert's
    1 / 0 / -1 / blank) annotate a field with ``report2label.core.Finding`` instead.
    """

    model_config = ConfigDict(extra="forbid")
    ${label}: Binary = Field(
        description=${field_description},
    )


PROMPTS = (
    PromptVariant(
        name="${language}-zero-shot",
        language="${language}",
        instructions=(
${instructions}
        ),
    ),
)
"""The first variant is the default; add variants (few-shot examples, other languages) here."""

RULES = RuleSet(
    findings=(
        FindingRule(
            label="${label}",
            # Case-insensitive regular expressions; the rules backend handles negation,
            # uncertainty and history. See FindingRule for sites, other_sites, unmentions, absent.
            mentions=(${mention},),
        ),
    ),
)

RECIPE = ImageModelSpec(
    architecture="resnet18",  # any timm model name
    in_chans=1,
    image_size=224,
    outputs="binary",
    batch_size=32,
    epochs=30,
)

TASK = TaskSpec(
    name="${task}",
    version="1",
    description=${description},
    languages=("${language}",),
    prompts=PROMPTS,
    answer_model=Answer,
    rules=RULES,
    recipe=RECIPE,
)
'''

EXAMPLE = '''\
"""A SYNTHETIC example study: ``r2l example ${task} DIR`` writes it, for trying the flow end to end.

A stub to grow: invented one-sentence reports and drawn images (a bright blob where the finding
is). It contains no patient data.
"""

from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

POSITIVE = (
${positive}
)
NEGATIVE = (
${negative}
)


def write_example(
    directory: str | Path, seed: int = 0, n_reports: int = 200, image_size: int = 256
) -> dict[str, int]:
    """Write reports.csv (with gold_${label}), images.csv and images/ into ``directory``."""
    directory = Path(directory)
    (directory / "images").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    reports, images = [], []
    for i in range(n_reports):
        gold = i % 2 if i < 2 else int(rng.random() < 0.5)
        report_id, patient_id = f"R{i + 1:05d}", f"P{i + 1:05d}"
        text = str(rng.choice(POSITIVE if gold else NEGATIVE))
        reports.append(
            {
                "report_id": report_id,
                "patient_id": patient_id,
                "text": text,
                "gold_${label}": gold,
                "source": "synthetic",
            }
        )
        pixels = rng.normal(0.3, 0.05, (image_size, image_size))
        if gold:
            y, x = np.ogrid[:image_size, :image_size]
            cy, cx = rng.uniform(0.3, 0.7, 2) * image_size
            pixels[(y - cy) ** 2 + (x - cx) ** 2 < (image_size / 8) ** 2] += 0.4
        image = f"images/{report_id}.png"
        pixels = (np.clip(pixels, 0, 1) * 255).astype(np.uint8)
        Image.fromarray(pixels).save(directory / image)
        row = {"image": image, "report_id": report_id, "patient_id": patient_id}
        images.append(row)
    pd.DataFrame(reports).to_csv(directory / "reports.csv", index=False)
    pd.DataFrame(images).to_csv(directory / "images.csv", index=False)
    (directory / "README.md").write_text("SYNTHETIC example data: no patient data.\\n")
    positive = sum(report["gold_${label}"] for report in reports)
    return {"reports": n_reports, "images": len(images), "positive_reports": positive}
'''

TEST = '''\
"""The plugin's own tests; run ``pytest`` after ``pip install -e .``."""

import pandas as pd
from report2label.core import label, registry

from ${module} import TASK

SENTENCES = {
${sentences}
}


def write_reports(path, texts):
    ids = [f"r{i}" for i in range(len(texts))]
    pd.DataFrame({"report_id": ids, "text": list(texts)}).to_csv(path, index=False)
    return path


def test_the_task_registers():
    # Found through the report2label entry point, as r2l finds it.
    assert registry.task("${task}") is TASK
    assert TASK.labels == ("${label}",) and TASK.rules is not None
    assert TASK.validate_answer('{"${label}": 1}').answer == {"${label}": 1}
    assert TASK.validate_answer('{"${label}": "yes"}').reason


def test_the_rules_label_sentences(tmp_path):
    reports = write_reports(tmp_path / "reports.csv", SENTENCES)
    summary = label("${task}", reports, tmp_path / "labels", show_progress=False)
    assert summary.labelled == len(SENTENCES)
    labels = pd.read_csv(summary.output)
    assert labels["${label}"].tolist() == list(SENTENCES.values())


def test_the_example_is_labelled_as_written(tmp_path):
    write = registry.example("${task}")
    counts = write(tmp_path / "example", seed=0, n_reports=6, image_size=64)
    assert counts["reports"] == 6 and counts["images"] == 6
    reports = tmp_path / "example" / "reports.csv"
    summary = label("${task}", reports, tmp_path / "labels", show_progress=False)
    labels = pd.read_csv(summary.output)
    gold = pd.read_csv(reports)
    assert labels["${label}"].tolist() == gold["gold_${label}"].tolist()
'''

#: Per language: the prompt, the rule mention and the sentences (with the rules' answer) the test checks.
PHRASES = {
    "en": {
        "instructions": (
            "You read radiology reports. Does the report describe {words}? ",
            "A suspected {words} counts (1); a negated or unmentioned one does not (0). ",
            'Answer with only a JSON object: {{"{label}": 1}} or {{"{label}": 0}}.',
        ),
        "description": "TODO: what the task asks: {words} in radiology reports.",
        "field": "1 if the report describes {words} (also when suspected), else 0.",
        "positive": ("There is {words}.", "Possible {words}.", "Findings: {words} is seen."),
        "negative": ("No {words}.", "No evidence of {words}.", "Unremarkable study."),
        "sentences": {"There is {words}.": 1, "No {words}.": 0, "Possible {words}.": 1, "No evidence of {words}.": 0},
        "mention_prefix": r"\b",
    },
    "de": {
        "instructions": (
            "Du liest radiologische Befunde. Beschreibt der Befund {words}? ",
            "Ein Verdacht zählt (1), eine Verneinung oder keine Erwähnung nicht (0). ",
            'Antworte nur mit einem JSON-Objekt: {{"{label}": 1}} oder {{"{label}": 0}}.',
        ),
        "description": "TODO: was die Aufgabe fragt: {words} in radiologischen Befunden.",
        "field": "1 wenn der Befund {words} beschreibt (auch als Verdacht), sonst 0.",
        "positive": ("Nachweis von {words}.", "V.a. {words}.", "Es zeigt sich {words}."),
        "negative": ("Kein {words}.", "Kein Nachweis von {words}.", "Unauffälliger Befund."),
        "sentences": {
            "Nachweis von {words}.": 1,
            "Kein {words}.": 0,
            "V.a. {words}.": 1,
            "Kein Nachweis von {words}.": 0,
        },
        "mention_prefix": "",
    },
}


def _mention(names: Names, prefix: str) -> str:
    words = r"[\s-]+".join(names.label.split("_"))
    return f'r"{prefix}{words}\\w*"'


def _literal(text: str) -> str:
    """A Python string literal for ``text``, double-quoted unless the text holds a double quote."""
    return f'"{text}"' if '"' not in text and "\\" not in text else repr(text)


def _lines(items: list[str], indent: int) -> str:
    return "\n".join(" " * indent + _literal(item) + "," for item in items)


def render(names: Names) -> dict[str, str]:
    """The package's files (relative path → text) for ``names``."""
    phrases = PHRASES[names.language]
    fill = {"words": names.words, "label": names.label}
    instructions = "\n".join(" " * 12 + _literal(part.format(**fill)) for part in phrases["instructions"])
    values = {
        "task": names.task,
        "label": names.label,
        "language": names.language,
        "module": names.module,
        "dist": names.dist,
        "entry_point": names.entry_point,
        "r2l_version": version("report2label"),
        "instructions": instructions,
        "description": _literal(phrases["description"].format(**fill)),
        "field_description": _literal(phrases["field"].format(**fill)),
        "mention": _mention(names, phrases["mention_prefix"]),
        "positive": _lines([p.format(**fill) for p in phrases["positive"]], 4),
        "negative": _lines([n.format(**fill) for n in phrases["negative"]], 4),
        "sentences": "\n".join(f"    {_literal(s.format(**fill))}: {v}," for s, v in phrases["sentences"].items()),
    }
    templates = {
        "pyproject.toml": PYPROJECT,
        "README.md": README,
        f"src/{names.module}/__init__.py": INIT,
        f"src/{names.module}/task.py": TASK,
        f"src/{names.module}/example.py": EXAMPLE,
        "tests/test_plugin.py": TEST,
    }
    return {path: Template(text).substitute(values) for path, text in templates.items()}


def write_plugin(
    name: str, directory: str | Path, *, label: str | None = None, language: str = "en", force: bool = False
) -> list[Path]:
    """Write the plugin package for task ``name`` into ``directory``; returns the files written.

    A non-empty ``directory`` needs ``force``; no existing file is ever overwritten.
    """
    check_name(name)
    if language not in LANGUAGES:
        raise R2LError(f"language {language!r} has no template (available: {', '.join(LANGUAGES)})")
    names = Names(name, check_label(label) if label is not None else default_label(name), language)
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise R2LError(f"{directory}: exists and is not a folder")
    if directory.is_dir() and any(directory.iterdir()) and not force:
        raise R2LError(f"{directory}: folder is not empty; choose another or pass --force")
    files = {directory / path: text for path, text in render(names).items()}
    existing = [str(path) for path in files if path.exists() or path.is_symlink()]
    existing += sorted({str(p) for path in files for p in path.parents if p.exists() and not p.is_dir()})
    if existing:
        shown = ", ".join(existing[:3]) + (f" and {len(existing) - 3} more" if len(existing) > 3 else "")
        raise R2LError(f"{shown}: already there; new-plugin overwrites no file, move them away first")
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("x", encoding="utf-8") as handle:
            handle.write(text)
    return list(files)


def _installed_by(task: str) -> str | None:
    """The plugin that already registers a task named ``task``, if any (None when plugins fail to load)."""
    from report2label.core.plugins import collect

    try:
        found = collect("register_tasks")
    except Exception:  # a broken plugin must not stop anyone from writing a new one
        return None
    return next((item.plugin for item in found if getattr(item.args[0], "name", None) == task), None)


@click.command("new-plugin", short_help="Write a pip-installable plugin package for a new task.")
@click.argument("name")
@click.option(
    "-o", "--outdir", type=click.Path(path_type=Path), help="Folder to write the package into (default: ./r2l-NAME)."
)
@click.option("--label", help="The answer field (default: NAME's last word, knee-effusion → effusion).")
@click.option("--language", type=click.Choice(LANGUAGES), default="en", show_default=True, help="Prompt language.")
@click.option("--force", is_flag=True, help="Write into a folder that is not empty (no file is ever overwritten).")
def new_plugin(name: str, outdir: Path | None, label: str | None, language: str, force: bool) -> None:
    """Write a plugin package for the task NAME (lower-case letters, digits, hyphens).

    The package holds the task (an answer model, a prompt variant, rule words and an image-model
    recipe), a synthetic example writer, the report2label entry point and a pytest test. Install
    it with `pip install -e OUTDIR`; `r2l tasks` then lists NAME.
    """
    check_name(name)
    owner = _installed_by(name)
    if owner:
        raise R2LError(f"a task named {name!r} is installed already (plugin {owner!r}); choose another name")
    directory = outdir or Path(f"r2l-{name.replace('_', '-')}")
    written = write_plugin(name, directory, label=label, language=language, force=force)
    names = Names(name, label or default_label(name), language)
    click.echo(f"wrote {names.dist} ({len(written)} files) to {directory}: task {name!r}, label {names.label!r}")
    click.echo(f"next: pip install -e {directory} && r2l tasks {name} && pytest {directory}")
