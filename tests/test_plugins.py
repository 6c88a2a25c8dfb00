"""Plugins: built-ins and outside packages load through the same entry points and hooks."""

import pandas as pd
from conftest import write_reports


def test_builtins_are_listed_with_version_and_hooks(r2l):
    out = r2l("plugins").output
    assert "ankle_fracture" in out and "register_tasks" in out and "register_examples" in out
    assert "rules" in out and "register_labelers" in out
    assert "report2label" in out and "0.1.0" in out


def test_tasks_lists_the_ankle_task(r2l):
    out = r2l("tasks").output
    for text in ("ankle-fracture", "fracture", "de-zero-shot", "de-few-shot", "en-zero-shot", "densenet121"):
        assert text in out
    assert "labelling backends: llamacpp, openai, rules, transformers, vllm" in out


def test_tasks_json_is_the_full_spec(r2l):
    import json

    [spec] = json.loads(r2l("tasks", "ankle-fracture", "--json").output)
    assert spec["name"] == "ankle-fracture" and spec["answer_schema"]["required"] == ["fracture"]
    assert len(spec["prompts"]) == 3 and all(len(p["hash"]) == 12 for p in spec["prompts"])


def test_outside_plugin_appears_and_labels(outside_plugin, r2l_process, tmp_path):
    listing = r2l_process("plugins")
    assert listing.returncode == 0, listing.stderr
    assert "r2l-fake" in listing.stdout and "0.3" in listing.stdout
    tasks = r2l_process("tasks")
    assert "smoke-test" in tasks.stdout and "plain" in tasks.stdout and "fake" in tasks.stdout
    reports = write_reports(tmp_path / "notes.csv", ["smoke in the kitchen", "all quiet", "SMOKE alarm"])
    run = r2l_process("label", "smoke-test", reports, "-o", tmp_path / "out", "--backend", "fake")
    assert run.returncode == 0, run.stderr
    labels = pd.read_csv(tmp_path / "out" / "labels.csv")
    assert labels["smoke"].tolist() == [1, 0, 1]
    assert set(labels["backend"]) == {"fake"} and set(labels["model"]) == {"fake-1"}


def test_outside_task_works_in_process(outside_plugin, r2l, tmp_path):
    """The same plugin through the Python API's loader, in this process."""
    reports = write_reports(tmp_path / "notes.csv", ["smoke", "all quiet"])
    result = r2l("label", "smoke-test", reports, "-o", tmp_path / "out", "--backend", "fake", "--no-progress")
    assert result.exit_code == 0, result.output
    assert "2 labelled" in result.output


def test_env_var_restricts_plugins(outside_plugin, r2l_process, monkeypatch):
    monkeypatch.setenv("R2L_PLUGINS", "r2l-fake")
    only_fake = r2l_process("tasks")
    assert "smoke-test" in only_fake.stdout and "ankle-fracture" not in only_fake.stdout
    monkeypatch.setenv("R2L_PLUGINS", "ankle_fracture,rules")
    builtins = r2l_process("tasks")
    assert "ankle-fracture" in builtins.stdout and "smoke-test" not in builtins.stdout
    monkeypatch.setenv("R2L_PLUGINS", "")
    unknown = r2l_process("label", "ankle-fracture", "x.csv", "-o", "out")
    assert unknown.returncode == 1
    assert "unknown task 'ankle-fracture' (available: none installed)" in unknown.stderr
