"""Prompt variants from a TOML file: validated like built-in ones, hashed into every label, picked by --prompt."""

import json

import pandas as pd
import pytest
from conftest import write_reports

from report2label.core import R2LError, label, registry
from report2label.core.prompt_file import read_prompt_file, with_prompt_file

VALID = """\
task = "ankle-fracture"

[[variant]]
name = "de-short"
language = "de"
instructions = 'Fraktur des oberen Sprunggelenks? Antworte nur {"fracture": 0} oder {"fracture": 1}.'
report_template = "Befund: {report}"

[[variant.examples]]
report = "Weber-B-Fraktur der distalen Fibula."
answer = { fracture = 1 }

[[variant]]
name = "few-shot-bare"
based_on = "de-few-shot"
report_template = "{report}"
"""


@pytest.fixture
def prompt_file(tmp_path):
    path = tmp_path / "prompts.toml"
    path.write_text(VALID)
    return path


def test_a_valid_file_adds_its_variants_after_the_tasks_own(prompt_file):
    task = registry.task("ankle-fracture")
    extended = with_prompt_file(task, prompt_file)
    assert [p.name for p in extended.prompts] == [
        "de-zero-shot",
        "de-few-shot",
        "en-zero-shot",
        "de-short",
        "few-shot-bare",
    ]
    short = extended.prompt("de-short")
    assert short.messages("Keine Fraktur.") == [
        {"role": "system", "content": short.instructions},
        {"role": "user", "content": "Befund: Weber-B-Fraktur der distalen Fibula."},
        {"role": "assistant", "content": '{"fracture": 1}'},
        {"role": "user", "content": "Befund: Keine Fraktur."},
    ]
    bare = extended.prompt("few-shot-bare")  # based_on: the keys not given come from the built-in variant
    assert bare.examples == task.prompt("de-few-shot").examples and bare.report_template == "{report}"
    assert bare.instructions == task.prompt("de-few-shot").instructions and bare.hash != task.prompt("de-few-shot").hash
    assert read_prompt_file(prompt_file, task)[0].hash == short.hash  # the hash is of the content: stable
    assert (extended.rules, extended.recipe, extended.labels) == (task.rules, task.recipe, task.labels)
    assert with_prompt_file(task, None) is task


def test_the_chest_tasks_examples_are_validated_against_its_answer_model(tmp_path):
    chest = registry.task("chest-xray")
    findings = {name: "not_mentioned" for name in chest.state_labels}
    good = tmp_path / "chest.toml"
    answer = ", ".join(f'{k} = "{v}"' for k, v in (findings | {"edema": "uncertain"}).items())
    good.write_text(
        f'[[variant]]\nname = "mine"\nlanguage = "en"\ninstructions = "States."\n'
        f'[[variant.examples]]\nreport = "Possible edema."\nanswer = {{ {answer} }}\n'
    )
    assert with_prompt_file(chest, good).prompt("mine").examples[0].answer["edema"] == "uncertain"
    bad = tmp_path / "bad.toml"
    bad.write_text(good.read_text().replace('edema = "uncertain"', 'edema = "maybe"'))
    with pytest.raises(R2LError, match=r"bad.toml: variant 'mine': example 1: key 'answer': not an answer of task "):
        with_prompt_file(chest, bad)


BASE = '[[variant]]\nname = "x"\nlanguage = "de"\ninstructions = "Frage."\n'


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (BASE + 'report_template = "Befund:"\n', "variant 'x': key 'report_template': must contain {report}"),
        (
            BASE + 'report_template = "{report} {befund}"\n',
            "variant 'x': key 'report_template': has the placeholder {befund}, which is not filled",
        ),
        (
            BASE + 'report_template = "{report} {"\n',
            "variant 'x': key 'report_template': cannot be filled",
        ),
        (BASE + 'correction = "Falsch: {grund}"\n', "variant 'x': key 'correction': has the placeholder {grund}"),
        ('[[variant]]\nname = "x"\nlanguage = "de"\n', "variant 'x': key 'instructions': missing"),
        ('[[variant]]\nlanguage = "de"\ninstructions = "Frage."\n', "variant 1: key 'name': missing"),
        (BASE + "temperature = 0\n", "variant 'x': key 'temperature': unknown"),
        (
            BASE.replace('language = "de"', "language = 5"),
            "variant 'x': key 'language': Input should be a valid string",
        ),
        (
            BASE + '[[variant.examples]]\nreport = "Weber B."\nanswer = { fracture = 2 }\n',
            "variant 'x': example 1: key 'answer': not an answer of task 'ankle-fracture': field 'fracture'",
        ),
        (
            BASE + '[[variant.examples]]\nreport = "Weber B."\nanswer = { fracture = true }\n',
            "variant 'x': example 1: key 'answer': not an answer of task 'ankle-fracture': field 'fracture'",
        ),
        (
            BASE + '[[variant.examples]]\nreport = "Weber B."\nanswer = { fracture = 1 }\nlabel = 1\n',
            "variant 'x': example 1: key 'label': unknown",
        ),
        (
            BASE + "[[variant.examples]]\nanswer = { fracture = 1 }\n",
            "variant 'x': example 1: key 'report': Field required",
        ),
        (BASE + 'examples = "none"\n', "variant 'x': key 'examples': Input should be a valid tuple"),
        (BASE + 'based_on = "de-long"\n', "variant 'x': key 'based_on': task 'ankle-fracture' has no prompt variant"),
        (
            BASE.replace('"x"', '"de-zero-shot"'),
            "variant 'de-zero-shot': key 'name': task 'ankle-fracture' has a built-in",
        ),
        (BASE + BASE, "variant 'x': key 'name': appears more than once"),
        ('task = "chest-xray"\n' + BASE, "key 'task': the file is for task 'chest-xray', not 'ankle-fracture'"),
        ('task = "ankle-fracture"\n', "key 'variant': no prompt variant; write each as a [[variant]] table"),
        ('prompt = "x"\n' + BASE, "key 'prompt': unknown"),
        ("[[variant]\n", "not valid TOML"),
    ],
)
def test_errors_are_one_line_naming_the_file_and_the_key(r2l, tmp_path, text, message):
    path = tmp_path / "prompts.toml"
    path.write_text(text)
    reports = write_reports(tmp_path / "reports.csv", ["Keine Fraktur."])
    result = r2l("label", "ankle-fracture", reports, "-o", tmp_path / "out", "--prompt-file", path, "--no-progress")
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: {path}: {message}"), result.output
    assert result.output.count("\n") == 1
    assert not (tmp_path / "out").exists()  # checked before the store is created


def test_a_missing_file_is_named(r2l, tmp_path):
    reports = write_reports(tmp_path / "reports.csv", ["Keine Fraktur."])
    result = r2l("label", "ankle-fracture", reports, "-o", tmp_path / "out", "--prompt-file", tmp_path / "no.toml")
    assert result.exit_code == 1 and f"{tmp_path / 'no.toml'}: no such file" in result.output


def test_prompt_picks_a_file_variant_and_its_hash_is_stored_with_every_label(
    outside_plugin, r2l, prompt_file, tmp_path
):
    reports = write_reports(tmp_path / "reports.csv", ["Keine Fraktur.", "Weber-B-Fraktur."])
    log = tmp_path / "asked.jsonl"
    args = ("label", "ankle-fracture", reports, "-o", tmp_path / "out", "--backend", "fake", "--no-progress")
    result = r2l(*args, "-O", f"log={log}", "--prompt-file", prompt_file, "--prompt", "de-short")
    assert result.exit_code == 0, result.output
    variant = with_prompt_file(registry.task("ankle-fracture"), prompt_file).prompt("de-short")
    labels = pd.read_csv(tmp_path / "out" / "labels.csv")
    assert labels["prompt"].tolist() == ["de-short"] * 2 and labels["prompt_hash"].tolist() == [variant.hash] * 2
    asked = [json.loads(line) for line in log.read_text().splitlines()]
    assert [a["messages"] for a in asked] == [variant.messages("Keine Fraktur."), variant.messages("Weber-B-Fraktur.")]

    again = r2l(*args, "-O", f"log={log}", "--prompt-file", prompt_file, "--prompt", "de-short")
    assert "2 already stored, 0 asked" in again.output and len(log.read_text().splitlines()) == 2
    prompt_file.write_text(VALID.replace("Antworte nur", "Antworte ausschließlich"))  # a new wording: a new hash
    changed = label(
        "ankle-fracture",
        reports,
        tmp_path / "out",
        backend="fake",
        prompt="de-short",
        prompt_file=prompt_file,
        show_progress=False,
    )
    assert (changed.reused, changed.asked) == (0, 2)
    assert pd.read_csv(tmp_path / "out" / "labels.csv")["prompt_hash"].iloc[0] != variant.hash


def test_an_unknown_prompt_lists_the_file_variants_too(r2l, prompt_file, tmp_path):
    reports = write_reports(tmp_path / "reports.csv", ["Keine Fraktur."])
    result = r2l(
        "label", "ankle-fracture", reports, "-o", tmp_path / "out", "--prompt-file", prompt_file, "--prompt", "x"
    )
    assert result.exit_code == 1
    assert "no prompt variant 'x' (variants: de-zero-shot, de-few-shot, en-zero-shot, de-short, few-shot-bare)" in (
        result.output
    )


def test_a_pipeline_names_a_prompt_file_relative_to_itself(prompt_file, tmp_path):
    from report2label.core.pipeline import load_pipeline

    study = tmp_path / "study"
    study.mkdir()
    toml = study / "pipeline.toml"
    body = 'task = "ankle-fracture"\n[reports]\npath = "r.csv"\n[images]\npath = "i.csv"\n[label]\n'
    toml.write_text(body + 'backend = "rules"\nprompt = "de-short"\nprompt_file = "../prompts.toml"\n')
    assert load_pipeline(toml).label.prompt_file == study / "../prompts.toml"
    toml.write_text(body + 'prompt = "de-longer"\nprompt_file = "../prompts.toml"\n')
    with pytest.raises(R2LError, match=r"pipeline.toml: label.prompt: .*'de-longer'.*de-short"):
        load_pipeline(toml)
    (tmp_path / "prompts.toml").write_text(VALID.replace('language = "de"', "language = 1", 1))
    with pytest.raises(R2LError, match=r"pipeline.toml: label.prompt_file: .*prompts.toml: variant 'de-short'"):
        load_pipeline(toml)
